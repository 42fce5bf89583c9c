"""A customer's loans: applying, listing, reading, history, withdrawing and the schedule."""

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from tests.helpers import LOAN_KEYS, assert_problem

LOANS = "/api/v1/customer/loans"
MONEY_KEYS = ("principal", "annual_rate", "emi", "total_payable", "total_interest")
EVENT_KEYS = {"version", "action", "actor_id", "actor_role", "at", "changes", "snapshot"}
ROW_KEYS = {"installment", "payment", "principal", "interest", "balance"}
MONEY = re.compile(r"-?\d+\.\d{2}")
CENT = Decimal("0.01")


def assert_field_error(response: Any, *loc: str) -> dict[str, Any]:
    body = assert_problem(response, 422)
    assert isinstance(body["errors"], list)
    assert body["errors"]
    assert list(loc) in [error["loc"][: len(loc)] for error in body["errors"]], body
    return body


def assert_loan_shape(loan: dict[str, Any]) -> None:
    assert set(loan) == LOAN_KEYS
    for key in MONEY_KEYS:
        assert isinstance(loan[key], str), key
        assert MONEY.fullmatch(loan[key]), (key, loan[key])
    for key in ("created_at", "updated_at"):
        assert isinstance(loan[key], str)
        assert loan[key].endswith(("Z", "+00:00")), loan[key]
    assert isinstance(loan["version"], int)
    assert isinstance(loan["tenure_months"], int)


async def apply(
    client: Any,
    caller: Any,
    loan_type: str = "home_loan",
    principal: Any = "10000",
    tenure_months: int = 12,
) -> dict[str, Any]:
    response = await client.post(
        LOANS,
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


async def history(client: Any, caller: Any, loan_id: Any) -> list[dict[str, Any]]:
    response = await client.get(f"{LOANS}/{loan_id}/history", headers=caller.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items"}
    items = list(body["items"])
    assert [event["version"] for event in items] == list(range(1, len(items) + 1))
    return items


async def my_loan_ids(client: Any, caller: Any, **params: Any) -> list[Any]:
    response = await client.get(LOANS, params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    return [loan["id"] for loan in body["items"]]


async def request_loan(client: Any, agent: Any, loan_id: Any) -> dict[str, Any]:
    response = await client.post(f"/api/v1/agent/loans/{loan_id}/request", headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "requested"
    return dict(response.json())


# --- applying ---------------------------------------------------------------------------------


async def test_apply_returns_a_new_loan_with_every_key(client, customer):
    response = await client.post(
        LOANS,
        json={"loan_type": "home_loan", "principal": 10000, "tenure_months": 12},
        headers=customer.headers,
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    loan = response.json()
    assert_loan_shape(loan)
    assert loan["customer_id"] == customer.id
    assert loan["agent_id"] is None
    assert loan["loan_type"] == "home_loan"
    assert loan["principal"] == "10000.00"
    assert loan["annual_rate"] == "6.90"
    assert loan["tenure_months"] == 12
    assert loan["emi"] == "864.81"
    assert loan["total_payable"] == "10377.67"
    assert loan["total_interest"] == "377.67"
    assert loan["status"] == "new"
    assert loan["version"] == 1
    assert response.headers["etag"] == '"1"'

    fetched = await client.get(f"{LOANS}/{loan['id']}", headers=customer.headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == loan

    events = await history(client, customer, loan["id"])
    assert len(events) == 1
    created = events[0]
    assert EVENT_KEYS <= set(created)
    assert created["action"] == "created"
    assert created["actor_id"] == customer.id
    assert created["actor_role"] == "customer"
    assert created["at"].endswith(("Z", "+00:00"))
    assert created["snapshot"]["status"] == "new"
    assert created["snapshot"]["principal"] == "10000.00"
    assert created["snapshot"]["emi"] == "864.81"


@pytest.mark.parametrize(
    ("principal", "stored"),
    [
        (10000, "10000.00"),
        ("10000", "10000.00"),
        ("10000.00", "10000.00"),
        (10000.5, "10000.50"),
        (10000.1, "10000.10"),
        (1234.56, "1234.56"),
        ("10000.5", "10000.50"),
        (1000, "1000.00"),
        ("1000.00", "1000.00"),
        (10000000, "10000000.00"),
        ("10000000.00", "10000000.00"),
    ],
)
async def test_principal_as_number_or_string_is_accepted(client, customer, principal, stored):
    loan = await apply(client, customer, principal=principal)
    assert_loan_shape(loan)
    assert loan["principal"] == stored
    assert loan["status"] == "new"


@pytest.mark.parametrize("tenure", [1, 360])
async def test_tenure_bounds_are_inclusive(client, customer, tenure):
    loan = await apply(client, customer, tenure_months=tenure)
    assert loan["tenure_months"] == tenure
    assert loan["version"] == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("loan_type", "gold_loan"),
        ("loan_type", "HOME_LOAN"),
        ("loan_type", ""),
        ("loan_type", None),
        ("principal", 0),
        ("principal", "0"),
        ("principal", "0.00"),
        ("principal", -1),
        ("principal", "-5000.00"),
        ("principal", "10000.123"),
        ("principal", 10000.125),
        ("principal", "NaN"),
        ("principal", "nan"),
        ("principal", "Infinity"),
        ("principal", "-Infinity"),
        ("principal", "1e400"),
        ("principal", "10000000.01"),
        ("principal", 10000001),
        ("principal", "999.99"),
        ("principal", 999),
        ("principal", "ten thousand"),
        ("principal", ""),
        ("principal", None),
        ("principal", [10000]),
        ("tenure_months", 0),
        ("tenure_months", 361),
        ("tenure_months", -12),
        ("tenure_months", 12.5),
        ("tenure_months", "twelve"),
        ("tenure_months", None),
    ],
)
async def test_invalid_field_is_422(client, customer, field, value):
    body = {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12, field: value}
    response = await client.post(LOANS, json=body, headers=customer.headers)
    assert_field_error(response, "body", field)
    assert await my_loan_ids(client, customer) == []


async def test_principal_too_large_for_a_float_is_422(client, customer):
    response = await client.post(
        LOANS,
        content=b'{"loan_type": "home_loan", "principal": 1e400, "tenure_months": 12}',
        headers={**customer.headers, "content-type": "application/json"},
    )
    assert_field_error(response, "body", "principal")
    assert await my_loan_ids(client, customer) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "approved"),
        ("annual_rate", "0.00"),
        ("emi", "1.00"),
        ("total_payable", "1.00"),
        ("agent_id", 1),
        ("customer_id", 1),
        ("version", 7),
        ("id", 99),
    ],
)
async def test_mass_assignment_is_422(client, customer, field, value):
    body = {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12, field: value}
    response = await client.post(LOANS, json=body, headers=customer.headers)
    assert_field_error(response, "body", field)
    assert await my_loan_ids(client, customer) == []


@pytest.mark.parametrize("missing", ["loan_type", "principal", "tenure_months"])
async def test_missing_field_is_422(client, customer, missing):
    body = {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12}
    del body[missing]
    response = await client.post(LOANS, json=body, headers=customer.headers)
    assert_field_error(response, "body", missing)
    assert await my_loan_ids(client, customer) == []


async def test_empty_object_lists_every_missing_field(client, customer):
    response = await client.post(LOANS, json={}, headers=customer.headers)
    body = assert_problem(response, 422)
    locations = {tuple(error["loc"]) for error in body["errors"]}
    assert {("body", "loan_type"), ("body", "principal"), ("body", "tenure_months")} <= locations


@pytest.mark.parametrize(
    "content", [b'{"loan_type": "home_loan", ', b"not json", b"[1, 2]", b"null", b""]
)
async def test_malformed_or_non_object_body_is_422(client, customer, content):
    response = await client.post(
        LOANS, content=content, headers={**customer.headers, "content-type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert isinstance(body["errors"], list)
    assert body["errors"]
    assert await my_loan_ids(client, customer) == []


# --- who may call -----------------------------------------------------------------------------

CUSTOMER_ENDPOINTS = [
    ("POST", "", {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12}),
    ("GET", "", None),
    ("GET", "/{id}", None),
    ("GET", "/{id}/history", None),
    ("POST", "/{id}/withdraw", None),
    ("GET", "/{id}/schedule", None),
]


@pytest.mark.parametrize("role", ["agent", "admin"])
@pytest.mark.parametrize(("method", "suffix", "body"), CUSTOMER_ENDPOINTS)
async def test_other_roles_get_403_on_customer_endpoints(
    client, customer, agent, admin, role, method, suffix, body
):
    loan = await apply(client, customer)
    caller = {"agent": agent, "admin": admin}[role]
    path = LOANS + suffix.format(id=loan["id"])
    response = await client.request(method, path, json=body, headers=caller.headers)
    assert_problem(response, 403)
    unchanged = await client.get(f"{LOANS}/{loan['id']}", headers=customer.headers)
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json() == loan
    assert await my_loan_ids(client, customer) == [loan["id"]]


@pytest.mark.parametrize(("method", "suffix", "body"), CUSTOMER_ENDPOINTS)
async def test_anonymous_gets_401_on_customer_endpoints(client, customer, method, suffix, body):
    loan = await apply(client, customer)
    path = LOANS + suffix.format(id=loan["id"])
    response = await client.request(method, path, json=body)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert await my_loan_ids(client, customer) == [loan["id"]]


# --- listing and reading ----------------------------------------------------------------------


async def test_list_shows_only_own_loans_newest_first(client, customer, new_customer):
    other = await new_customer("olivia")
    mine = [await apply(client, customer, principal=str(1000 * (i + 2))) for i in range(3)]
    theirs = await apply(client, other)
    response = await client.get(LOANS, headers=customer.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    assert body["items"] == list(reversed(mine))
    for loan in body["items"]:
        assert_loan_shape(loan)
        assert loan["customer_id"] == customer.id
    assert await my_loan_ids(client, other) == [theirs["id"]]


async def test_list_is_empty_for_a_customer_without_loans(client, customer, new_customer):
    other = await new_customer("olivia")
    await apply(client, other)
    response = await client.get(LOANS, headers=customer.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


async def test_list_filters_by_status(client, customer, agent, new_customer):
    other = await new_customer("olivia")
    fresh = await apply(client, customer)
    requested = await apply(client, customer, loan_type="car_loan")
    withdrawn = await apply(client, customer, loan_type="personal_loan")
    await request_loan(client, agent, requested["id"])
    response = await client.post(f"{LOANS}/{withdrawn['id']}/withdraw", headers=customer.headers)
    assert response.status_code == 200, response.text
    others_new = await apply(client, other)

    assert await my_loan_ids(client, customer, status="new") == [fresh["id"]]
    assert await my_loan_ids(client, customer, status="requested") == [requested["id"]]
    assert await my_loan_ids(client, customer, status="withdrawn") == [withdrawn["id"]]
    assert await my_loan_ids(client, customer, status="approved") == []
    assert await my_loan_ids(client, other, status="new") == [others_new["id"]]


@pytest.mark.parametrize("status", ["NEW", "pending", "bogus", ""])
async def test_list_with_invalid_status_is_422(client, customer, status):
    await apply(client, customer)
    response = await client.get(LOANS, params={"status": status}, headers=customer.headers)
    assert_field_error(response, "query", "status")


async def test_another_customers_loan_is_404_like_a_missing_one(client, customer, new_customer):
    other = await new_customer("olivia")
    theirs = await apply(client, other)
    response = await client.get(f"{LOANS}/{theirs['id']}", headers=customer.headers)
    hidden = assert_problem(response, 404)
    missing = assert_problem(
        await client.get(f"{LOANS}/{2**31 - 1}", headers=customer.headers), 404
    )
    assert hidden["title"] == missing["title"]
    assert hidden["detail"] == missing["detail"].replace(str(2**31 - 1), str(theirs["id"]))
    still_theirs = await client.get(f"{LOANS}/{theirs['id']}", headers=other.headers)
    assert still_theirs.status_code == 200, still_theirs.text
    assert still_theirs.json() == theirs


@pytest.mark.parametrize("suffix", ["", "/history", "/schedule"])
@pytest.mark.parametrize("bad_id", ["0", "-1", str(2**31), "abc", "1.5"])
async def test_out_of_range_loan_id_is_422(client, customer, suffix, bad_id):
    response = await client.get(f"{LOANS}/{bad_id}{suffix}", headers=customer.headers)
    assert_field_error(response, "path", "loan_id")


@pytest.mark.parametrize("suffix", ["", "/history", "/schedule"])
async def test_nonexistent_loan_is_404(client, customer, suffix):
    loan = await apply(client, customer)
    response = await client.get(f"{LOANS}/{2**31 - 1}{suffix}", headers=customer.headers)
    assert_problem(response, 404)
    assert await my_loan_ids(client, customer) == [loan["id"]]


# --- history ----------------------------------------------------------------------------------


async def test_history_of_own_loan_is_oldest_first(client, customer, agent):
    loan = await apply(client, customer)
    await request_loan(client, agent, loan["id"])
    withdrawn = await client.post(f"{LOANS}/{loan['id']}/withdraw", headers=customer.headers)
    assert withdrawn.status_code == 200, withdrawn.text
    events = await history(client, customer, loan["id"])
    assert [(e["action"], e["actor_id"], e["actor_role"]) for e in events] == [
        ("created", customer.id, "customer"),
        ("requested", agent.id, "agent"),
        ("withdrawn", customer.id, "customer"),
    ]
    for event in events:
        assert EVENT_KEYS <= set(event)
    assert events[1]["changes"]["status"] == {"from": "new", "to": "requested"}
    assert events[1]["changes"]["agent_id"] == {"from": None, "to": agent.id}
    assert events[2]["changes"] == {"status": {"from": "requested", "to": "withdrawn"}}
    assert events[2]["snapshot"]["status"] == "withdrawn"


async def test_history_of_another_customers_loan_is_404(client, customer, new_customer):
    other = await new_customer("olivia")
    theirs = await apply(client, other)
    response = await client.get(f"{LOANS}/{theirs['id']}/history", headers=customer.headers)
    assert_problem(response, 404)
    assert len(await history(client, other, theirs["id"])) == 1


# --- withdrawing ------------------------------------------------------------------------------


async def test_withdraw_new_loan(client, customer):
    loan = await apply(client, customer)
    response = await client.post(f"{LOANS}/{loan['id']}/withdraw", headers=customer.headers)
    assert response.status_code == 200, response.text
    withdrawn = response.json()
    assert_loan_shape(withdrawn)
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["version"] == 2
    assert response.headers["etag"] == '"2"'
    unchanged = {k: v for k, v in loan.items() if k not in ("status", "version", "updated_at")}
    assert {k: withdrawn[k] for k in unchanged} == unchanged

    events = await history(client, customer, loan["id"])
    assert [e["action"] for e in events] == ["created", "withdrawn"]
    assert events[1]["actor_id"] == customer.id
    assert events[1]["actor_role"] == "customer"
    assert events[1]["changes"] == {"status": {"from": "new", "to": "withdrawn"}}
    fetched = await client.get(f"{LOANS}/{loan['id']}", headers=customer.headers)
    assert fetched.json() == withdrawn


async def test_withdraw_requested_loan(client, customer, agent):
    loan = await apply(client, customer)
    await request_loan(client, agent, loan["id"])
    response = await client.post(f"{LOANS}/{loan['id']}/withdraw", headers=customer.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn"
    assert response.json()["version"] == 3
    assert response.json()["agent_id"] == agent.id
    events = await history(client, customer, loan["id"])
    assert [e["action"] for e in events] == ["created", "requested", "withdrawn"]


async def _loan_in_status(client, customer, agent, admin, status: str) -> dict[str, Any]:
    loan = await apply(client, customer)
    path = f"/api/v1/admin/loans/{loan['id']}"
    if status == "approved":
        await request_loan(client, agent, loan["id"])
        response = await client.post(f"{path}/approve", headers=admin.headers)
    elif status == "rejected":
        response = await client.post(f"{path}/reject", headers=admin.headers)
    else:
        response = await client.post(f"{LOANS}/{loan['id']}/withdraw", headers=customer.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == status
    return dict(response.json())


@pytest.mark.parametrize("status", ["approved", "rejected", "withdrawn"])
async def test_withdraw_is_409_unless_new_or_requested(client, customer, agent, admin, status):
    loan = await _loan_in_status(client, customer, agent, admin, status)
    before = await history(client, customer, loan["id"])
    response = await client.post(f"{LOANS}/{loan['id']}/withdraw", headers=customer.headers)
    body = assert_problem(response, 409)
    assert status in body["detail"]
    fetched = await client.get(f"{LOANS}/{loan['id']}", headers=customer.headers)
    assert fetched.json() == loan
    assert await history(client, customer, loan["id"]) == before


async def test_withdraw_another_customers_loan_is_404(client, customer, new_customer):
    other = await new_customer("olivia")
    theirs = await apply(client, other)
    response = await client.post(f"{LOANS}/{theirs['id']}/withdraw", headers=customer.headers)
    assert_problem(response, 404)
    fetched = await client.get(f"{LOANS}/{theirs['id']}", headers=other.headers)
    assert fetched.json() == theirs
    assert len(await history(client, other, theirs["id"])) == 1


async def test_withdraw_nonexistent_loan_is_404(client, customer):
    response = await client.post(f"{LOANS}/{2**31 - 1}/withdraw", headers=customer.headers)
    assert_problem(response, 404)


# --- schedule ---------------------------------------------------------------------------------


def assert_schedule_is_consistent(schedule: dict[str, Any], principal: str, rate: str) -> None:
    """Every row follows API.md's rule, independently of how the app computes it."""
    monthly = Decimal(rate) / Decimal(1200)
    emi = Decimal(schedule["emi"])
    balance = Decimal(principal)
    rows = schedule["rows"]
    for number, row in enumerate(rows, start=1):
        assert set(row) == ROW_KEYS
        assert row["installment"] == number
        for key in ROW_KEYS - {"installment"}:
            assert MONEY.fullmatch(row[key]), (key, row[key])
        interest = (balance * monthly).quantize(CENT, rounding=ROUND_HALF_UP)
        assert Decimal(row["interest"]) == interest, number
        if number < len(rows):
            assert Decimal(row["payment"]) == emi
            assert Decimal(row["principal"]) == emi - interest
        else:
            assert Decimal(row["principal"]) == balance
            assert Decimal(row["payment"]) == balance + interest
        balance -= Decimal(row["principal"])
        assert Decimal(row["balance"]) == balance
    assert rows[-1]["balance"] == "0.00"
    total = sum((Decimal(row["payment"]) for row in rows), Decimal(0))
    assert Decimal(schedule["total_payable"]) == total
    assert Decimal(schedule["total_interest"]) == total - Decimal(principal)


async def test_schedule_for_the_home_loan_example(client, customer):
    loan = await apply(client, customer, principal=10000, tenure_months=12)
    response = await client.get(f"{LOANS}/{loan['id']}/schedule", headers=customer.headers)
    assert response.status_code == 200, response.text
    schedule = response.json()
    assert set(schedule) == {"emi", "total_payable", "total_interest", "rows"}
    assert schedule["emi"] == "864.81"
    assert schedule["total_payable"] == "10377.67"
    assert schedule["total_interest"] == "377.67"
    assert len(schedule["rows"]) == 12
    assert schedule["rows"][0] == {
        "installment": 1,
        "payment": "864.81",
        "principal": "807.31",
        "interest": "57.50",
        "balance": "9192.69",
    }
    assert schedule["rows"][-1]["installment"] == 12
    assert schedule["rows"][-1]["payment"] == "864.76"
    assert schedule["rows"][-1]["balance"] == "0.00"
    assert_schedule_is_consistent(schedule, "10000.00", "6.90")


@pytest.mark.parametrize(
    ("loan_type", "rate", "principal", "tenure", "emi", "last", "total"),
    [
        ("home_loan", None, "10000", 12, "864.81", "864.76", "10377.67"),
        ("car_loan", None, "20000", 24, "897.72", "897.71", "21545.27"),
        ("personal_loan", None, "30000", 36, "978.61", "978.76", "35230.11"),
        ("education_loan", None, "100000", 60, "2363.27", "2363.67", "141796.60"),
        ("car_loan", "7.25", "20000", 24, "897.72", "897.71", "21545.27"),
        ("home_loan", "14.70", "100000", 60, "2363.27", "2363.67", "141796.60"),
        ("education_loan", "10.75", "30000", 36, "978.61", "978.76", "35230.11"),
        ("personal_loan", "0.00", "5000", 7, "714.29", "714.26", "5000.00"),
    ],
)
async def test_arithmetic_table_of_the_contract(
    client, customer, admin, loan_type, rate, principal, tenure, emi, last, total
):
    if rate is not None:
        await set_rate(client, admin, loan_type, rate)
    loan = await apply(client, customer, loan_type, principal, tenure)
    expected_rate = (
        rate
        or {
            "home_loan": "6.90",
            "car_loan": "7.25",
            "personal_loan": "10.75",
            "education_loan": "14.70",
        }[loan_type]
    )
    interest = str(Decimal(total) - Decimal(principal))
    assert loan["annual_rate"] == expected_rate
    assert loan["emi"] == emi
    assert loan["total_payable"] == total
    assert loan["total_interest"] == interest

    response = await client.get(f"{LOANS}/{loan['id']}/schedule", headers=customer.headers)
    assert response.status_code == 200, response.text
    schedule = response.json()
    assert schedule["emi"] == emi
    assert schedule["total_payable"] == total
    assert schedule["total_interest"] == interest
    assert len(schedule["rows"]) == tenure
    assert schedule["rows"][-1]["payment"] == last
    assert schedule["rows"][-1]["balance"] == "0.00"
    assert_schedule_is_consistent(schedule, f"{Decimal(principal):.2f}", expected_rate)


async def test_schedule_follows_the_loan_after_an_edit(client, customer, agent):
    loan = await apply(client, customer, principal=10000, tenure_months=12)
    edited = await client.patch(
        f"/api/v1/agent/loans/{loan['id']}",
        json={"principal": 20000, "tenure_months": 24, "loan_type": "car_loan"},
        headers=agent.headers,
    )
    assert edited.status_code == 200, edited.text
    response = await client.get(f"{LOANS}/{loan['id']}/schedule", headers=customer.headers)
    assert response.status_code == 200, response.text
    assert response.json()["emi"] == "897.72"
    assert response.json()["total_payable"] == "21545.27"
    assert len(response.json()["rows"]) == 24


async def test_schedule_of_another_customers_loan_is_404(client, customer, new_customer):
    other = await new_customer("olivia")
    theirs = await apply(client, other)
    response = await client.get(f"{LOANS}/{theirs['id']}/schedule", headers=customer.headers)
    assert_problem(response, 404)
    own = await client.get(f"{LOANS}/{theirs['id']}/schedule", headers=other.headers)
    assert own.status_code == 200, own.text
    assert own.json()["emi"] == "864.81"


async def test_withdraw_with_if_match(client, customer, agent):
    loan = await apply(client, customer)
    requested = await request_loan(client, agent, loan["id"])
    path = f"{LOANS}/{loan['id']}/withdraw"
    stale = await client.post(path, headers={**customer.headers, "If-Match": '"1"'})
    assert_problem(stale, 412)
    fetched = await client.get(f"{LOANS}/{loan['id']}", headers=customer.headers)
    assert fetched.json() == requested
    current = await client.post(path, headers={**customer.headers, "If-Match": '"2"'})
    assert current.status_code == 200, current.text
    assert current.json()["status"] == "withdrawn"
    assert current.json()["version"] == 3
    assert current.headers["etag"] == '"3"'
