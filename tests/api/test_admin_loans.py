"""Admins deciding loans, reading them and their history, and setting product rates."""

from typing import Any

import pytest

from tests.helpers import LOAN_KEYS, assert_field_error, assert_problem

ADMIN = "/api/v1/admin"
LOANS = f"{ADMIN}/loans"
DEFAULT_BOUNDS = {
    "min_principal": "1000.00",
    "max_principal": "10000000.00",
    "min_tenure_months": 1,
    "max_tenure_months": 360,
    "late_fee": "0.00",
    "grace_days": 5,
}


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


async def get_loan(client: Any, admin: Any, loan_id: Any) -> dict[str, Any]:
    response = await client.get(f"{LOANS}/{loan_id}", headers=admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def history(client: Any, admin: Any, loan_id: Any) -> list[dict[str, Any]]:
    """The loan's events, checking that versions run 1..N without a hole."""
    response = await client.get(f"{LOANS}/{loan_id}/history", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items"}
    items = list(response.json()["items"])
    assert [event["version"] for event in items] == list(range(1, len(items) + 1))
    return items


async def request_loan(client: Any, agent: Any, loan_id: Any) -> dict[str, Any]:
    response = await client.post(f"/api/v1/agent/loans/{loan_id}/request", headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "requested"
    return dict(response.json())


async def decide(client: Any, admin: Any, loan_id: Any, action: str, **kwargs: Any) -> Any:
    return await client.post(f"{LOANS}/{loan_id}/{action}", headers=admin.headers, **kwargs)


async def withdraw(client: Any, customer: Any, loan_id: Any) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/customer/loans/{loan_id}/withdraw", headers=customer.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def loan_in(client: Any, status: str, customer: Any, agent: Any, admin: Any) -> dict:
    loan = await apply(client, customer)
    if status == "new":
        return loan
    if status == "withdrawn":
        return await withdraw(client, customer, loan["id"])
    if status == "rejected":
        response = await decide(client, admin, loan["id"], "reject")
        assert response.status_code == 200, response.text
        return dict(response.json())
    requested = await request_loan(client, agent, loan["id"])
    if status == "requested":
        return requested
    response = await decide(client, admin, loan["id"], "approve")
    assert response.status_code == 200, response.text
    return dict(response.json())


def product_body(rate: str = "6.90", **overrides: Any) -> dict[str, Any]:
    return {"annual_rate": rate, **DEFAULT_BOUNDS, **overrides}


async def products(client: Any) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/loan-products")
    assert response.status_code == 200, response.text
    return {product["loan_type"]: product for product in response.json()}


# --- reading ----------------------------------------------------------------------------------


async def test_admin_lists_all_loans_newest_first(client, admin, customer, new_customer):
    other = await new_customer("olivia")
    first = await apply(client, customer)
    second = await apply(client, other, loan_type="education_loan")
    response = await client.get(LOANS, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [second, first], "next_cursor": None}
    for loan in response.json()["items"]:
        assert set(loan) == LOAN_KEYS


async def test_admin_reads_one_loan(client, admin, customer):
    loan = await apply(client, customer)
    response = await client.get(f"{LOANS}/{loan['id']}", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json() == loan
    assert response.headers["etag"] == '"1"'


@pytest.mark.parametrize("suffix", ["", "/history"])
async def test_unknown_loan_is_404(client, admin, suffix):
    response = await client.get(f"{LOANS}/{2**31 - 1}{suffix}", headers=admin.headers)
    assert_problem(response, 404)


@pytest.mark.parametrize("bad_id", ["0", str(2**31), "-1", "abc"])
async def test_loan_id_out_of_range_is_422(client, admin, bad_id):
    response = await client.get(f"{LOANS}/{bad_id}", headers=admin.headers)
    assert_field_error(response, "path", "loan_id")


async def test_history_shows_every_change_with_its_actor(client, admin, customer, agent):
    loan = await apply(client, customer)
    edited = await client.patch(
        f"/api/v1/agent/loans/{loan['id']}", json={"tenure_months": 24}, headers=agent.headers
    )
    assert edited.status_code == 200, edited.text
    await request_loan(client, agent, loan["id"])
    approved = await decide(client, admin, loan["id"], "approve")
    assert approved.status_code == 200, approved.text
    events = await history(client, admin, loan["id"])
    assert [(e["action"], e["actor_id"], e["actor_role"]) for e in events] == [
        ("created", customer.id, "customer"),
        ("edited", agent.id, "agent"),
        ("requested", agent.id, "agent"),
        ("approved", admin.id, "admin"),
    ]
    for event in events:
        assert {"version", "action", "actor_id", "actor_role", "at", "changes", "snapshot"} <= set(
            event
        )
        assert event["at"].endswith(("Z", "+00:00"))
    assert events[1]["changes"]["tenure_months"] == {"from": 12, "to": 24}
    assert events[3]["changes"] == {"status": {"from": "requested", "to": "approved"}}
    assert events[3]["snapshot"]["status"] == "approved"
    assert events[3]["snapshot"]["tenure_months"] == 24
    assert events[-1]["version"] == approved.json()["version"]


# --- approve ----------------------------------------------------------------------------------


async def test_approve_requested_loan(client, admin, customer, agent):
    loan = await apply(client, customer)
    requested = await request_loan(client, agent, loan["id"])
    response = await decide(client, admin, loan["id"], "approve")
    assert response.status_code == 200, response.text
    approved = response.json()
    assert approved["status"] == "approved"
    assert approved["version"] == 3
    assert approved["agent_id"] == agent.id
    assert response.headers["etag"] == '"3"'
    same = ("principal", "annual_rate", "emi", "total_payable", "loan_type", "created_at")
    assert {k: approved[k] for k in same} == {k: requested[k] for k in same}
    events = await history(client, admin, loan["id"])
    assert [e["action"] for e in events] == ["created", "requested", "approved"]
    assert events[2]["actor_id"] == admin.id
    assert await get_loan(client, admin, loan["id"]) == approved


@pytest.mark.parametrize("status", ["new", "approved", "rejected", "withdrawn"])
async def test_approve_is_409_unless_requested(client, admin, customer, agent, status):
    loan = await loan_in(client, status, customer, agent, admin)
    events = await history(client, admin, loan["id"])
    response = await decide(client, admin, loan["id"], "approve")
    body = assert_problem(response, 409)
    assert status in body["detail"]
    assert await get_loan(client, admin, loan["id"]) == loan
    assert await history(client, admin, loan["id"]) == events


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_deciding_unknown_loan_is_404(client, admin, action):
    response = await decide(client, admin, 2**31 - 1, action)
    assert_problem(response, 404)


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_deciding_with_stale_if_match_is_412(client, admin, customer, agent, action):
    loan = await apply(client, customer)
    requested = await request_loan(client, agent, loan["id"])
    response = await client.post(
        f"{LOANS}/{loan['id']}/{action}", headers={**admin.headers, "If-Match": '"1"'}
    )
    assert_problem(response, 412)
    assert await get_loan(client, admin, loan["id"]) == requested


# --- reject -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["new", "requested"])
async def test_reject_new_or_requested_loan(client, admin, customer, agent, status):
    loan = await loan_in(client, status, customer, agent, admin)
    response = await decide(client, admin, loan["id"], "reject")
    assert response.status_code == 200, response.text
    rejected = response.json()
    assert rejected["status"] == "rejected"
    assert rejected["version"] == loan["version"] + 1
    assert response.headers["etag"] == f'"{rejected["version"]}"'
    events = await history(client, admin, loan["id"])
    assert len(events) == rejected["version"]
    assert events[-1]["action"] == "rejected"
    assert events[-1]["actor_id"] == admin.id
    assert events[-1]["actor_role"] == "admin"
    assert events[-1]["changes"] == {"status": {"from": status, "to": "rejected"}}
    assert events[-1]["reason"] is None


async def test_reject_with_a_reason_records_it_on_the_event(client, admin, customer):
    loan = await apply(client, customer)
    response = await decide(client, admin, loan["id"], "reject", json={"reason": "No income proof"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    events = await history(client, admin, loan["id"])
    assert [e["action"] for e in events] == ["created", "rejected"]
    assert events[1]["reason"] == "No income proof"
    customer_view = await client.get(
        f"/api/v1/customer/loans/{loan['id']}/history", headers=customer.headers
    )
    assert customer_view.status_code == 200, customer_view.text
    assert customer_view.json()["items"][1]["reason"] == "No income proof"


@pytest.mark.parametrize("body", [{}, {"reason": None}])
async def test_reject_with_an_empty_body(client, admin, customer, body):
    loan = await apply(client, customer)
    response = await decide(client, admin, loan["id"], "reject", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    assert response.json()["version"] == 2


@pytest.mark.parametrize(
    "body", [{"reason": "x" * 501}, {"reason": 5}, {"reason": "ok", "status": "new"}, [1]]
)
async def test_reject_with_a_bad_body_is_422(client, admin, customer, body):
    loan = await apply(client, customer)
    response = await decide(client, admin, loan["id"], "reject", json=body)
    assert_problem(response, 422)
    assert await get_loan(client, admin, loan["id"]) == loan
    assert len(await history(client, admin, loan["id"])) == 1


@pytest.mark.parametrize("status", ["approved", "rejected", "withdrawn"])
async def test_reject_is_409_unless_new_or_requested(client, admin, customer, agent, status):
    loan = await loan_in(client, status, customer, agent, admin)
    events = await history(client, admin, loan["id"])
    response = await decide(client, admin, loan["id"], "reject", json={"reason": "late"})
    body = assert_problem(response, 409)
    assert status in body["detail"]
    assert await get_loan(client, admin, loan["id"]) == loan
    assert await history(client, admin, loan["id"]) == events


async def test_each_change_writes_exactly_one_event(client, admin, customer, agent):
    loan = await apply(client, customer)
    expected = ["created"]
    steps = [
        ("edited", "PATCH", f"/api/v1/agent/loans/{loan['id']}", {"principal": "12000"}, agent),
        ("rejected", "POST", f"{LOANS}/{loan['id']}/reject", None, admin),
        ("edited", "PATCH", f"/api/v1/agent/loans/{loan['id']}", {"principal": "13000"}, agent),
        ("requested", "POST", f"/api/v1/agent/loans/{loan['id']}/request", None, agent),
        (
            "rolled_back",
            "POST",
            f"/api/v1/agent/loans/{loan['id']}/rollback",
            {"version": 2},
            agent,
        ),
        ("approved", "POST", f"{LOANS}/{loan['id']}/approve", None, admin),
    ]
    for action, method, path, body, caller in steps:
        response = await client.request(method, path, json=body, headers=caller.headers)
        assert response.status_code == 200, response.text
        expected.append(action)
        assert response.json()["version"] == len(expected)
        events = await history(client, admin, loan["id"])
        assert [e["action"] for e in events] == expected
        assert events[-1]["snapshot"]["status"] == response.json()["status"]
    final = await get_loan(client, admin, loan["id"])
    assert final["status"] == "approved"
    assert final["principal"] == "12000.00"
    assert final["agent_id"] == agent.id


# --- an agent's requests ----------------------------------------------------------------------


async def test_agent_loan_requests_shows_only_that_agents_requests(
    client, admin, customer, agent, new_agent
):
    other = await new_agent("bella")
    first = await apply(client, customer)
    theirs = await apply(client, customer)
    second = await apply(client, customer, loan_type="car_loan")
    await apply(client, customer)
    await request_loan(client, agent, first["id"])
    await request_loan(client, other, theirs["id"])
    await request_loan(client, agent, second["id"])
    response = await client.get(f"{ADMIN}/agents/{agent.id}/loan-requests", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [loan["id"] for loan in body["items"]] == [second["id"], first["id"]]
    assert body["next_cursor"] is None
    assert all(loan["agent_id"] == agent.id for loan in body["items"])
    response = await client.get(f"{ADMIN}/agents/{other.id}/loan-requests", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert [loan["id"] for loan in response.json()["items"]] == [theirs["id"]]


async def test_agent_loan_requests_of_an_agent_without_requests_is_empty(client, admin, agent):
    response = await client.get(f"{ADMIN}/agents/{agent.id}/loan-requests", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


async def test_agent_loan_requests_of_unknown_agent_is_404(client, admin):
    response = await client.get(f"{ADMIN}/agents/{2**31 - 1}/loan-requests", headers=admin.headers)
    assert_problem(response, 404)


@pytest.mark.parametrize("who", ["customer", "admin"])
async def test_agent_loan_requests_of_a_non_agent_is_404(client, admin, customer, who):
    user_id = {"customer": customer.id, "admin": admin.id}[who]
    response = await client.get(f"{ADMIN}/agents/{user_id}/loan-requests", headers=admin.headers)
    assert_problem(response, 404)


@pytest.mark.parametrize("role", ["customer", "agent"])
async def test_agent_loan_requests_is_403_for_other_roles(client, customer, agent, role):
    caller = {"customer": customer, "agent": agent}[role]
    response = await client.get(f"{ADMIN}/agents/{agent.id}/loan-requests", headers=caller.headers)
    assert_problem(response, 403)


# --- who may call -----------------------------------------------------------------------------

ADMIN_LOAN_ENDPOINTS = [
    ("GET", "/loans", None),
    ("GET", "/loans/{id}", None),
    ("GET", "/loans/{id}/history", None),
    ("POST", "/loans/{id}/approve", None),
    ("POST", "/loans/{id}/reject", None),
    ("PUT", "/loan-products/home_loan", product_body("1.00")),
]


@pytest.mark.parametrize("role", ["customer", "agent"])
@pytest.mark.parametrize(("method", "suffix", "body"), ADMIN_LOAN_ENDPOINTS)
async def test_other_roles_get_403_on_admin_loan_endpoints(
    client, admin, customer, agent, role, method, suffix, body
):
    loan = await apply(client, customer)
    requested = await request_loan(client, agent, loan["id"])
    caller = {"customer": customer, "agent": agent}[role]
    response = await client.request(
        method, ADMIN + suffix.format(id=loan["id"]), json=body, headers=caller.headers
    )
    assert_problem(response, 403)
    assert await get_loan(client, admin, loan["id"]) == requested
    assert (await products(client))["home_loan"]["annual_rate"] == "6.90"


@pytest.mark.parametrize(("method", "suffix", "body"), ADMIN_LOAN_ENDPOINTS)
async def test_anonymous_gets_401_on_admin_loan_endpoints(
    client, admin, customer, method, suffix, body
):
    loan = await apply(client, customer)
    response = await client.request(method, ADMIN + suffix.format(id=loan["id"]), json=body)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert await get_loan(client, admin, loan["id"]) == loan
    assert (await products(client))["home_loan"]["annual_rate"] == "6.90"


# --- products ---------------------------------------------------------------------------------


async def test_update_product(client, admin):
    response = await client.put(
        f"{ADMIN}/loan-products/personal_loan",
        json={
            "annual_rate": 12.5,
            "min_principal": "2000",
            "max_principal": 500000,
            "min_tenure_months": 3,
            "max_tenure_months": 120,
            "late_fee": "25",
            "grace_days": 3,
        },
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    expected = {
        "loan_type": "personal_loan",
        "annual_rate": "12.50",
        "min_principal": "2000.00",
        "max_principal": "500000.00",
        "min_tenure_months": 3,
        "max_tenure_months": 120,
        "late_fee": "25.00",
        "grace_days": 3,
    }
    assert response.json() == expected
    listed = await products(client)
    assert listed["personal_loan"] == expected
    assert listed["home_loan"] == {
        "loan_type": "home_loan",
        "annual_rate": "6.90",
        **DEFAULT_BOUNDS,
    }


async def test_update_product_with_matching_loan_type_in_body(client, admin):
    response = await client.put(
        f"{ADMIN}/loan-products/car_loan",
        json={"loan_type": "car_loan", **product_body("8.00")},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"loan_type": "car_loan", "annual_rate": "8.00", **DEFAULT_BOUNDS}
    assert (await products(client))["car_loan"]["annual_rate"] == "8.00"


async def test_update_product_with_other_loan_type_in_body_is_422(client, admin):
    response = await client.put(
        f"{ADMIN}/loan-products/car_loan",
        json={"loan_type": "home_loan", **product_body("1.00")},
        headers=admin.headers,
    )
    assert_field_error(response, "body", "loan_type")
    listed = await products(client)
    assert listed["car_loan"]["annual_rate"] == "7.25"
    assert listed["home_loan"]["annual_rate"] == "6.90"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"min_principal": "5000", "max_principal": "4000"}, None),
        ({"min_tenure_months": 24, "max_tenure_months": 12}, None),
        ({"annual_rate": "-1.00"}, "annual_rate"),
        ({"annual_rate": "6.901"}, "annual_rate"),
        ({"annual_rate": "NaN"}, "annual_rate"),
        ({"min_principal": "0"}, "min_principal"),
        ({"max_tenure_months": 0}, "max_tenure_months"),
        ({"status": "x"}, "status"),
    ],
)
async def test_update_product_with_invalid_body_is_422(client, admin, overrides, field):
    response = await client.put(
        f"{ADMIN}/loan-products/home_loan",
        json=product_body("5.00", **overrides),
        headers=admin.headers,
    )
    if field is None:
        assert_problem(response, 422)
    else:
        assert_field_error(response, "body", field)
    assert (await products(client))["home_loan"] == {
        "loan_type": "home_loan",
        "annual_rate": "6.90",
        **DEFAULT_BOUNDS,
    }


@pytest.mark.parametrize("missing", ["annual_rate", "min_principal", "max_tenure_months"])
async def test_update_product_with_a_missing_field_is_422(client, admin, missing):
    body = product_body("5.00")
    del body[missing]
    response = await client.put(
        f"{ADMIN}/loan-products/home_loan", json=body, headers=admin.headers
    )
    assert_field_error(response, "body", missing)
    assert (await products(client))["home_loan"]["annual_rate"] == "6.90"


@pytest.mark.parametrize("loan_type", ["gold_loan", "HOME_LOAN", "1"])
async def test_update_unknown_product_is_422(client, admin, loan_type):
    response = await client.put(
        f"{ADMIN}/loan-products/{loan_type}", json=product_body("5.00"), headers=admin.headers
    )
    assert_field_error(response, "path", "loan_type")
    assert len(await products(client)) == 4


async def test_rate_change_applies_to_loans_priced_afterwards(client, admin, customer):
    earlier = await apply(
        client, customer, loan_type="education_loan", principal=100000, tenure_months=60
    )
    assert earlier["annual_rate"] == "14.70"
    assert earlier["emi"] == "2363.27"
    response = await client.put(
        f"{ADMIN}/loan-products/education_loan", json=product_body("10.75"), headers=admin.headers
    )
    assert response.status_code == 200, response.text
    later = await apply(
        client, customer, loan_type="education_loan", principal=30000, tenure_months=36
    )
    assert later["annual_rate"] == "10.75"
    assert later["emi"] == "978.61"
    assert later["total_payable"] == "35230.11"
    assert await get_loan(client, admin, earlier["id"]) == earlier
    assert len(await history(client, admin, earlier["id"])) == 1


async def test_product_bounds_apply_to_new_applications(client, admin, customer):
    response = await client.put(
        f"{ADMIN}/loan-products/car_loan",
        json=product_body("7.25", max_principal="50000", max_tenure_months=84),
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    too_big = await client.post(
        "/api/v1/customer/loans",
        json={"loan_type": "car_loan", "principal": "50000.01", "tenure_months": 24},
        headers=customer.headers,
    )
    assert_field_error(too_big, "body", "principal")
    too_long = await client.post(
        "/api/v1/customer/loans",
        json={"loan_type": "car_loan", "principal": "50000", "tenure_months": 85},
        headers=customer.headers,
    )
    assert_field_error(too_long, "body", "tenure_months")
    fits = await apply(client, customer, loan_type="car_loan", principal="50000", tenure_months=84)
    assert fits["principal"] == "50000.00"
    assert fits["tenure_months"] == 84
