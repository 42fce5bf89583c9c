"""Agents working loans: reading, editing (re-pricing), requesting, rolling back, history."""

from typing import Any

import pytest

from tests.conftest import register
from tests.helpers import LOAN_KEYS, assert_field_error, assert_problem

AGENT = "/api/v1/agent"
LOANS = f"{AGENT}/loans"


async def apply(
    client: Any,
    caller: Any,
    loan_type: str = "home_loan",
    principal: Any = "10000",
    tenure_months: int = 12,
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/customer/loans",
        json={"loan_type": loan_type, "principal": principal, "tenure_months": tenure_months},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def set_rate(client: Any, admin: Any, loan_type: str, rate: str) -> None:
    response = await client.put(
        f"/api/v1/admin/loan-products/{loan_type}",
        json={
            "annual_rate": rate,
            "min_principal": "1000.00",
            "max_principal": "10000000.00",
            "min_tenure_months": 1,
            "max_tenure_months": 360,
        },
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["annual_rate"] == rate


async def get_loan(client: Any, caller: Any, loan_id: Any) -> dict[str, Any]:
    response = await client.get(f"{LOANS}/{loan_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def history(client: Any, caller: Any, loan_id: Any) -> list[dict[str, Any]]:
    response = await client.get(f"{LOANS}/{loan_id}/history", headers=caller.headers)
    assert response.status_code == 200, response.text
    items = list(response.json()["items"])
    assert [event["version"] for event in items] == list(range(1, len(items) + 1))
    return items


async def patch(client: Any, caller: Any, loan_id: Any, body: Any, **headers: str) -> Any:
    return await client.patch(
        f"{LOANS}/{loan_id}", json=body, headers={**caller.headers, **headers}
    )


async def edit(client: Any, caller: Any, loan_id: Any, body: Any) -> dict[str, Any]:
    response = await patch(client, caller, loan_id, body)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    return dict(response.json())


async def request_loan(client: Any, agent: Any, loan_id: Any) -> dict[str, Any]:
    response = await client.post(f"{LOANS}/{loan_id}/request", headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "requested"
    return dict(response.json())


async def admin_decide(client: Any, admin: Any, loan_id: Any, action: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/admin/loans/{loan_id}/{action}", headers=admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def withdraw(client: Any, customer: Any, loan_id: Any) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/customer/loans/{loan_id}/withdraw", headers=customer.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def list_ids(client: Any, caller: Any, path: str, **params: Any) -> list[Any]:
    response = await client.get(path, params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items", "next_cursor"}
    return [loan["id"] for loan in response.json()["items"]]


# --- reading ----------------------------------------------------------------------------------


async def test_agent_lists_every_customers_loans(client, agent, customer, new_customer):
    other = await new_customer("olivia")
    first = await apply(client, customer)
    second = await apply(client, other, loan_type="car_loan")
    third = await apply(client, customer, loan_type="personal_loan")
    response = await client.get(LOANS, headers=agent.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"items": [third, second, first], "next_cursor": None}
    for loan in body["items"]:
        assert set(loan) == LOAN_KEYS


async def test_agent_reads_any_loan(client, agent, customer):
    loan = await apply(client, customer)
    response = await client.get(f"{LOANS}/{loan['id']}", headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json() == loan
    assert response.headers["etag"] == '"1"'


async def test_agent_get_unknown_loan_is_404(client, agent):
    response = await client.get(f"{LOANS}/{2**31 - 1}", headers=agent.headers)
    assert_problem(response, 404)


@pytest.mark.parametrize("bad_id", ["0", str(2**31), "-3", "x"])
async def test_agent_loan_id_out_of_range_is_422(client, agent, bad_id):
    response = await client.get(f"{LOANS}/{bad_id}", headers=agent.headers)
    assert_field_error(response, "path", "loan_id")


AGENT_ENDPOINTS = [
    ("GET", "/loans", None),
    ("GET", "/loans/{id}", None),
    ("PATCH", "/loans/{id}", {"principal": "20000"}),
    ("POST", "/loans/{id}/request", None),
    ("POST", "/loans/{id}/rollback", {"version": 1}),
    ("GET", "/loans/{id}/history", None),
    ("GET", "/requests", None),
]


@pytest.mark.parametrize("role", ["customer", "admin"])
@pytest.mark.parametrize(("method", "suffix", "body"), AGENT_ENDPOINTS)
async def test_other_roles_get_403_on_agent_endpoints(
    client, customer, admin, role, method, suffix, body
):
    loan = await apply(client, customer)
    caller = {"customer": customer, "admin": admin}[role]
    path = AGENT + suffix.format(id=loan["id"])
    response = await client.request(method, path, json=body, headers=caller.headers)
    assert_problem(response, 403)
    unchanged = await client.get(f"/api/v1/admin/loans/{loan['id']}", headers=admin.headers)
    assert unchanged.json() == loan


@pytest.mark.parametrize(("method", "suffix", "body"), AGENT_ENDPOINTS)
async def test_anonymous_gets_401_on_agent_endpoints(client, customer, admin, method, suffix, body):
    loan = await apply(client, customer)
    response = await client.request(method, AGENT + suffix.format(id=loan["id"]), json=body)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    unchanged = await client.get(f"/api/v1/admin/loans/{loan['id']}", headers=admin.headers)
    assert unchanged.json() == loan


async def test_pending_agent_cannot_get_a_token(client):
    await register(client, "agent", "penny")
    response = await client.post(
        "/api/v1/auth/token", data={"username": "penny", "password": "s3cret-pass"}
    )
    body = assert_problem(response, 403)
    assert "approved" in body["detail"]


# --- editing ----------------------------------------------------------------------------------


async def test_edit_principal_reprices_at_the_loans_rate(client, agent, customer):
    loan = await apply(client, customer, loan_type="car_loan", principal="10000", tenure_months=24)
    edited = await edit(client, agent, loan["id"], {"principal": "20000"})
    assert edited["principal"] == "20000.00"
    assert edited["annual_rate"] == "7.25"
    assert edited["emi"] == "897.72"
    assert edited["total_payable"] == "21545.27"
    assert edited["total_interest"] == "1545.27"
    assert edited["version"] == 2
    assert edited["status"] == "new"
    assert edited["agent_id"] is None
    assert edited["created_at"] == loan["created_at"]

    events = await history(client, agent, loan["id"])
    assert [e["action"] for e in events] == ["created", "edited"]
    assert events[1]["actor_id"] == agent.id
    assert events[1]["actor_role"] == "agent"
    changes = events[1]["changes"]
    assert changes["principal"] == {"from": "10000.00", "to": "20000.00"}
    assert changes["emi"]["to"] == "897.72"
    assert "loan_type" not in changes
    assert "annual_rate" not in changes
    assert "status" not in changes
    assert events[1]["snapshot"]["principal"] == "20000.00"
    assert events[1]["snapshot"]["total_payable"] == "21545.27"


async def test_edit_tenure_reprices(client, agent, customer):
    loan = await apply(
        client, customer, loan_type="personal_loan", principal=30000, tenure_months=12
    )
    edited = await edit(client, agent, loan["id"], {"tenure_months": 36})
    assert edited["tenure_months"] == 36
    assert edited["emi"] == "978.61"
    assert edited["total_payable"] == "35230.11"
    assert edited["total_interest"] == "5230.11"
    assert edited["version"] == 2


async def test_changing_loan_type_takes_the_new_products_current_rate(
    client, agent, customer, admin
):
    loan = await apply(client, customer, loan_type="car_loan", principal=100000, tenure_months=60)
    assert loan["annual_rate"] == "7.25"
    await set_rate(client, admin, "personal_loan", "14.70")
    edited = await edit(client, agent, loan["id"], {"loan_type": "personal_loan"})
    assert edited["loan_type"] == "personal_loan"
    assert edited["annual_rate"] == "14.70"
    assert edited["emi"] == "2363.27"
    assert edited["total_payable"] == "141796.60"
    assert edited["total_interest"] == "41796.60"
    events = await history(client, agent, loan["id"])
    assert events[-1]["changes"]["loan_type"] == {"from": "car_loan", "to": "personal_loan"}
    assert events[-1]["changes"]["annual_rate"] == {"from": "7.25", "to": "14.70"}


async def test_keeping_the_type_keeps_the_old_rate_after_a_product_change(
    client, agent, customer, admin
):
    loan = await apply(client, customer, loan_type="car_loan", principal=20000, tenure_months=12)
    await set_rate(client, admin, "car_loan", "9.00")
    edited = await edit(client, agent, loan["id"], {"tenure_months": 24})
    assert edited["annual_rate"] == "7.25"
    assert edited["emi"] == "897.72"
    assert edited["total_payable"] == "21545.27"
    same_type = await edit(
        client, agent, loan["id"], {"loan_type": "car_loan", "principal": "20000.00"}
    )
    assert same_type["version"] == edited["version"]
    assert same_type["annual_rate"] == "7.25"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"principal": "10000.00"},
        {"principal": 10000},
        {"tenure_months": 12},
        {"loan_type": "home_loan"},
        {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12},
    ],
)
async def test_patch_that_changes_nothing_writes_no_event(client, agent, customer, body):
    loan = await apply(client, customer)
    response = await patch(client, agent, loan["id"], body)
    assert response.status_code == 200, response.text
    assert response.json() == loan
    assert response.headers["etag"] == '"1"'
    assert len(await history(client, agent, loan["id"])) == 1
    assert await get_loan(client, agent, loan["id"]) == loan


async def test_edit_of_a_rejected_loan_returns_it_to_new(client, agent, customer, admin):
    loan = await apply(client, customer)
    rejected = await admin_decide(client, admin, loan["id"], "reject")
    assert rejected["status"] == "rejected"
    edited = await edit(client, agent, loan["id"], {"principal": "20000"})
    assert edited["status"] == "new"
    assert edited["version"] == 3
    assert edited["principal"] == "20000.00"
    events = await history(client, agent, loan["id"])
    assert [e["action"] for e in events] == ["created", "rejected", "edited"]
    assert events[2]["changes"]["status"] == {"from": "rejected", "to": "new"}
    assert events[2]["snapshot"]["status"] == "new"


async def test_edit_of_a_requested_loan_keeps_it_requested(client, agent, customer, new_agent):
    loan = await apply(client, customer)
    await request_loan(client, agent, loan["id"])
    other_agent = await new_agent("bella")
    refused = await patch(client, other_agent, loan["id"], {"tenure_months": 24})
    assert refused.status_code == 409, refused.text  # only the agent who requested it
    edited = await edit(client, agent, loan["id"], {"tenure_months": 24})
    assert edited["status"] == "requested"
    assert edited["agent_id"] == agent.id
    assert edited["tenure_months"] == 24
    assert edited["version"] == 3
    events = await history(client, agent, loan["id"])
    assert [e["action"] for e in events] == ["created", "requested", "edited"]
    assert events[2]["actor_id"] == agent.id
    assert "status" not in events[2]["changes"]


@pytest.mark.parametrize("final", ["approved", "withdrawn"])
async def test_edit_of_a_final_loan_is_409(client, agent, customer, admin, final):
    loan = await apply(client, customer)
    if final == "approved":
        await request_loan(client, agent, loan["id"])
        done = await admin_decide(client, admin, loan["id"], "approve")
    else:
        done = await withdraw(client, customer, loan["id"])
    assert done["status"] == final
    response = await patch(client, agent, loan["id"], {"principal": "20000"})
    body = assert_problem(response, 409)
    assert final in body["detail"]
    assert await get_loan(client, agent, loan["id"]) == done
    assert len(await history(client, agent, loan["id"])) == done["version"]


@pytest.mark.parametrize("field", ["principal", "tenure_months", "loan_type"])
async def test_patch_with_null_is_422(client, agent, customer, field):
    loan = await apply(client, customer)
    response = await patch(client, agent, loan["id"], {field: None})
    assert_problem(response, 422)
    assert await get_loan(client, agent, loan["id"]) == loan


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "approved"),
        ("annual_rate", "1.00"),
        ("emi", "1.00"),
        ("agent_id", 1),
        ("customer_id", 1),
        ("version", 9),
        ("nickname", "x"),
    ],
)
async def test_patch_with_unknown_field_is_422(client, agent, customer, field, value):
    loan = await apply(client, customer)
    response = await patch(client, agent, loan["id"], {"principal": "20000", field: value})
    assert_field_error(response, "body", field)
    assert await get_loan(client, agent, loan["id"]) == loan


@pytest.mark.parametrize(
    "body",
    [
        {"principal": 0},
        {"principal": "999.99"},
        {"principal": "10000000.01"},
        {"principal": "100.001"},
        {"principal": "NaN"},
        {"tenure_months": 0},
        {"tenure_months": 361},
        {"loan_type": "gold_loan"},
    ],
)
async def test_patch_with_invalid_terms_is_422(client, agent, customer, body):
    loan = await apply(client, customer)
    response = await patch(client, agent, loan["id"], body)
    assert_field_error(response, "body", next(iter(body)))
    assert await get_loan(client, agent, loan["id"]) == loan
    assert len(await history(client, agent, loan["id"])) == 1


async def test_patch_unknown_loan_is_404(client, agent):
    response = await patch(client, agent, 2**31 - 1, {"principal": "20000"})
    assert_problem(response, 404)


@pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"', "*"])
async def test_patch_with_matching_if_match(client, agent, customer, if_match):
    loan = await apply(client, customer)
    response = await patch(
        client, agent, loan["id"], {"principal": "20000"}, **{"If-Match": if_match}
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.json()["principal"] == "20000.00"
    assert response.headers["etag"] == '"2"'


async def test_patch_with_stale_if_match_is_412(client, agent, customer):
    loan = await apply(client, customer)
    await edit(client, agent, loan["id"], {"principal": "20000"})
    response = await patch(client, agent, loan["id"], {"principal": "30000"}, **{"If-Match": '"1"'})
    assert_problem(response, 412)
    current = await get_loan(client, agent, loan["id"])
    assert current["principal"] == "20000.00"
    assert current["version"] == 2
    assert len(await history(client, agent, loan["id"])) == 2


@pytest.mark.parametrize("if_match", ["abc", '"abc"', '"0"', '"-1"', '"1.5"', '""'])
async def test_patch_with_malformed_if_match_is_422(client, agent, customer, if_match):
    loan = await apply(client, customer)
    response = await patch(
        client, agent, loan["id"], {"principal": "20000"}, **{"If-Match": if_match}
    )
    assert_field_error(response, "header", "If-Match")
    assert await get_loan(client, agent, loan["id"]) == loan


async def test_etag_follows_every_version(client, agent, customer):
    loan = await apply(client, customer)
    etag = '"1"'
    for version, principal in enumerate(["11000", "12000", "13000"], start=2):
        response = await patch(
            client, agent, loan["id"], {"principal": principal}, **{"If-Match": etag}
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version
        etag = response.headers["etag"]
        assert etag == f'"{version}"'
    fetched = await client.get(f"{LOANS}/{loan['id']}", headers=agent.headers)
    assert fetched.headers["etag"] == '"4"'
    assert fetched.json()["principal"] == "13000.00"


# --- requesting -------------------------------------------------------------------------------


async def test_request_moves_new_to_requested_with_the_caller_as_agent(client, agent, customer):
    loan = await apply(client, customer)
    response = await client.post(f"{LOANS}/{loan['id']}/request", headers=agent.headers)
    assert response.status_code == 200, response.text
    requested = response.json()
    assert requested["status"] == "requested"
    assert requested["agent_id"] == agent.id
    assert requested["version"] == 2
    assert requested["emi"] == loan["emi"]
    assert response.headers["etag"] == '"2"'
    events = await history(client, agent, loan["id"])
    assert [e["action"] for e in events] == ["created", "requested"]
    assert events[1]["actor_id"] == agent.id
    assert events[1]["changes"] == {
        "status": {"from": "new", "to": "requested"},
        "agent_id": {"from": None, "to": agent.id},
    }


async def test_requesting_again_by_the_same_agent_is_a_no_op(client, agent, customer):
    loan = await apply(client, customer)
    first = await request_loan(client, agent, loan["id"])
    response = await client.post(f"{LOANS}/{loan['id']}/request", headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json() == first
    assert len(await history(client, agent, loan["id"])) == 2


async def test_requesting_a_loan_another_agent_requested_is_409(client, agent, customer, new_agent):
    loan = await apply(client, customer)
    first = await request_loan(client, agent, loan["id"])
    other = await new_agent("bella")
    response = await client.post(f"{LOANS}/{loan['id']}/request", headers=other.headers)
    assert_problem(response, 409)
    assert await get_loan(client, agent, loan["id"]) == first
    assert len(await history(client, agent, loan["id"])) == 2


@pytest.mark.parametrize("final", ["approved", "rejected", "withdrawn"])
async def test_requesting_a_decided_loan_is_409(client, agent, customer, admin, final):
    loan = await apply(client, customer)
    if final == "approved":
        await request_loan(client, agent, loan["id"])
        done = await admin_decide(client, admin, loan["id"], "approve")
    elif final == "rejected":
        done = await admin_decide(client, admin, loan["id"], "reject")
    else:
        done = await withdraw(client, customer, loan["id"])
    response = await client.post(f"{LOANS}/{loan['id']}/request", headers=agent.headers)
    assert_problem(response, 409)
    assert await get_loan(client, agent, loan["id"]) == done


async def test_request_unknown_loan_is_404(client, agent):
    response = await client.post(f"{LOANS}/{2**31 - 1}/request", headers=agent.headers)
    assert_problem(response, 404)


# --- rollback ---------------------------------------------------------------------------------


async def test_rollback_restores_terms_and_the_rate_of_that_version(client, agent, customer, admin):
    loan = await apply(client, customer, principal=10000, tenure_months=12)
    await set_rate(client, admin, "home_loan", "8.00")
    await edit(client, agent, loan["id"], {"loan_type": "car_loan", "principal": "20000"})
    second = await edit(client, agent, loan["id"], {"tenure_months": 24})
    assert second["version"] == 3
    assert second["emi"] == "897.72"

    response = await client.post(
        f"{LOANS}/{loan['id']}/rollback", json={"version": 1}, headers=agent.headers
    )
    assert response.status_code == 200, response.text
    rolled = response.json()
    assert rolled["version"] == 4
    assert response.headers["etag"] == '"4"'
    assert rolled["status"] == "new"
    assert rolled["loan_type"] == "home_loan"
    assert rolled["principal"] == "10000.00"
    assert rolled["tenure_months"] == 12
    assert rolled["annual_rate"] == "6.90"
    assert rolled["emi"] == "864.81"
    assert rolled["total_payable"] == "10377.67"
    assert rolled["total_interest"] == "377.67"

    events = await history(client, agent, loan["id"])
    assert [e["action"] for e in events] == ["created", "edited", "edited", "rolled_back"]
    assert events[3]["actor_id"] == agent.id
    assert events[3]["changes"]["loan_type"] == {"from": "car_loan", "to": "home_loan"}
    assert events[3]["changes"]["annual_rate"] == {"from": "7.25", "to": "6.90"}
    assert "status" not in events[3]["changes"]
    for key in ("loan_type", "principal", "annual_rate", "tenure_months", "emi", "status"):
        assert events[3]["snapshot"][key] == events[0]["snapshot"][key]


async def test_rollback_to_a_middle_version(client, agent, customer):
    loan = await apply(client, customer)
    await edit(client, agent, loan["id"], {"principal": "20000"})
    await edit(client, agent, loan["id"], {"principal": "30000"})
    response = await client.post(
        f"{LOANS}/{loan['id']}/rollback", json={"version": 2}, headers=agent.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["principal"] == "20000.00"
    assert response.json()["version"] == 4


@pytest.mark.parametrize("status", ["requested", "rejected"])
async def test_rollback_keeps_the_status(client, agent, customer, admin, status):
    loan = await apply(client, customer)
    await edit(client, agent, loan["id"], {"principal": "20000"})
    if status == "requested":
        await request_loan(client, agent, loan["id"])
    else:
        await admin_decide(client, admin, loan["id"], "reject")
    response = await client.post(
        f"{LOANS}/{loan['id']}/rollback", json={"version": 1}, headers=agent.headers
    )
    assert response.status_code == 200, response.text
    rolled = response.json()
    assert rolled["status"] == status
    assert rolled["agent_id"] == (agent.id if status == "requested" else None)
    assert rolled["principal"] == "10000.00"
    assert rolled["version"] == 4
    events = await history(client, agent, loan["id"])
    assert events[-1]["action"] == "rolled_back"
    assert events[-1]["snapshot"]["status"] == status


@pytest.mark.parametrize("target", ["current", "future"])
async def test_rollback_to_current_or_later_version_is_422(client, agent, customer, target):
    loan = await apply(client, customer)
    await edit(client, agent, loan["id"], {"principal": "20000"})
    version = 2 if target == "current" else 5
    response = await client.post(
        f"{LOANS}/{loan['id']}/rollback", json={"version": version}, headers=agent.headers
    )
    assert_field_error(response, "body", "version")
    assert (await get_loan(client, agent, loan["id"]))["version"] == 2
    assert len(await history(client, agent, loan["id"])) == 2


@pytest.mark.parametrize("final", ["approved", "withdrawn"])
async def test_rollback_of_a_final_loan_is_409(client, agent, customer, admin, final):
    loan = await apply(client, customer)
    await edit(client, agent, loan["id"], {"principal": "20000"})
    if final == "approved":
        await request_loan(client, agent, loan["id"])
        done = await admin_decide(client, admin, loan["id"], "approve")
    else:
        done = await withdraw(client, customer, loan["id"])
    response = await client.post(
        f"{LOANS}/{loan['id']}/rollback", json={"version": 1}, headers=agent.headers
    )
    assert_problem(response, 409)
    assert await get_loan(client, agent, loan["id"]) == done


@pytest.mark.parametrize(
    "body", [None, {}, {"version": 0}, {"version": "one"}, {"version": 1, "extra": True}]
)
async def test_rollback_with_a_bad_body_is_422(client, agent, customer, body):
    loan = await apply(client, customer)
    edited = await edit(client, agent, loan["id"], {"principal": "20000"})
    response = await client.post(f"{LOANS}/{loan['id']}/rollback", json=body, headers=agent.headers)
    assert_problem(response, 422)
    assert await get_loan(client, agent, loan["id"]) == edited


async def test_rollback_unknown_loan_is_404(client, agent):
    response = await client.post(
        f"{LOANS}/{2**31 - 1}/rollback", json={"version": 1}, headers=agent.headers
    )
    assert_problem(response, 404)


# --- history and requests ---------------------------------------------------------------------


async def test_agent_sees_the_history_of_any_loan(client, agent, customer, admin):
    loan = await apply(client, customer)
    await edit(client, agent, loan["id"], {"principal": "15000"})
    await request_loan(client, agent, loan["id"])
    await admin_decide(client, admin, loan["id"], "approve")
    events = await history(client, agent, loan["id"])
    assert [(e["action"], e["actor_role"]) for e in events] == [
        ("created", "customer"),
        ("edited", "agent"),
        ("requested", "agent"),
        ("approved", "admin"),
    ]
    customer_view = await client.get(
        f"/api/v1/customer/loans/{loan['id']}/history", headers=customer.headers
    )
    assert customer_view.status_code == 200, customer_view.text
    assert customer_view.json()["items"] == events


async def test_agent_history_of_unknown_loan_is_404(client, agent):
    response = await client.get(f"{LOANS}/{2**31 - 1}/history", headers=agent.headers)
    assert_problem(response, 404)


async def test_requests_lists_only_this_agents_requests(client, agent, customer, admin, new_agent):
    other = await new_agent("bella")
    mine_first = await apply(client, customer)
    theirs = await apply(client, customer)
    mine_second = await apply(client, customer, loan_type="car_loan")
    untouched = await apply(client, customer)
    await request_loan(client, agent, mine_first["id"])
    await request_loan(client, other, theirs["id"])
    await request_loan(client, agent, mine_second["id"])
    await admin_decide(client, admin, mine_first["id"], "approve")

    assert await list_ids(client, agent, f"{AGENT}/requests") == [
        mine_second["id"],
        mine_first["id"],
    ]
    assert await list_ids(client, other, f"{AGENT}/requests") == [theirs["id"]]
    assert await list_ids(client, agent, f"{AGENT}/requests", status="approved") == [
        mine_first["id"]
    ]
    assert await list_ids(client, agent, f"{AGENT}/requests", status="requested") == [
        mine_second["id"]
    ]
    assert await list_ids(client, agent, f"{AGENT}/requests", status="new") == []
    all_ids = await list_ids(client, agent, LOANS)
    assert untouched["id"] in all_ids


async def test_requests_is_empty_for_a_fresh_agent(client, agent, customer):
    await apply(client, customer)
    response = await client.get(f"{AGENT}/requests", headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


async def test_requests_with_invalid_status_is_422(client, agent):
    response = await client.get(f"{AGENT}/requests", params={"status": "x"}, headers=agent.headers)
    assert_field_error(response, "query", "status")


@pytest.mark.parametrize(("suffix", "body"), [("/request", None), ("/rollback", {"version": 1})])
async def test_stale_if_match_on_request_and_rollback_is_412(client, agent, customer, suffix, body):
    loan = await apply(client, customer)
    edited = await edit(client, agent, loan["id"], {"principal": "20000"})
    response = await client.post(
        f"{LOANS}/{loan['id']}{suffix}", json=body, headers={**agent.headers, "If-Match": '"1"'}
    )
    assert_problem(response, 412)
    assert await get_loan(client, agent, loan["id"]) == edited
    assert len(await history(client, agent, loan["id"])) == 2


@pytest.mark.parametrize(
    ("suffix", "body", "status"),
    [("/request", None, "requested"), ("/rollback", {"version": 1}, "new")],
)
async def test_matching_if_match_on_request_and_rollback(
    client, agent, customer, suffix, body, status
):
    loan = await apply(client, customer)
    await edit(client, agent, loan["id"], {"principal": "20000"})
    response = await client.post(
        f"{LOANS}/{loan['id']}{suffix}", json=body, headers={**agent.headers, "If-Match": '"2"'}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == status
    assert response.json()["version"] == 3
    assert response.headers["etag"] == '"3"'
