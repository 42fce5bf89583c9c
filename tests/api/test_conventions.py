"""Conventions a careful integrator expects (issue 17): unknown query parameters are errors, a
cursor belongs to the list and filters it was made for."""

import pytest

from tests.conftest import register
from tests.helpers import assert_field_error, assert_problem

V1 = "/api/v1"
APPLY = {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12}


async def apply(client, customer, n: int) -> list[int]:
    ids = []
    for _ in range(n):
        created = await client.post(f"{V1}/customer/loans", json=APPLY, headers=customer.headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/admin/loans?stauts=approved", "admin"),
        ("/agent/loans?status=new&loan_tpye=home_loan", "agent"),
        ("/admin/users?rolee=admin", "admin"),
        ("/customer/loans?customer_id=1", "customer"),
        ("/loan-products?all=true", "customer"),
        ("/auth/me?verbose=1", "customer"),
    ],
)
async def test_unknown_query_parameters_are_named_in_a_422(
    client, admin, agent, customer, path, role
):
    caller = {"admin": admin, "agent": agent, "customer": customer}[role]
    response = await client.get(V1 + path, headers=caller.headers)
    body = assert_problem(response, 422)
    unknown = {error["loc"][1] for error in body["errors"]}
    expected = {part.split("=")[0] for part in path.split("?")[1].split("&")} & {
        "stauts",
        "loan_tpye",
        "rolee",
        "customer_id",
        "all",
        "verbose",
    }
    assert unknown == expected
    assert all(error["type"] == "extra_forbidden" for error in body["errors"])
    assert "unknown query parameter" in body["detail"]
    assert "this endpoint takes" in body["detail"]


async def test_the_known_parameters_are_listed_and_credentials_come_first(client, admin):
    listed = assert_problem(
        await client.get(f"{V1}/admin/loans?stauts=new", headers=admin.headers), 422
    )
    assert "status" in listed["detail"]
    assert "bucket" in listed["detail"]
    assert_problem(await client.get(f"{V1}/admin/loans?stauts=new"), 401)
    # CSV downloads take `format`; the old system's endpoints keep ignoring what they do not know
    csv = await client.get(f"{V1}/admin/loans?format=csv", headers=admin.headers)
    assert csv.status_code == 200
    legacy = await client.get(
        "/all_users?whatever=1", headers={"x-access-token": admin.headers["Authorization"][7:]}
    )
    assert legacy.status_code == 200


async def test_a_cursor_belongs_to_its_list_and_filters(client, admin, customer):
    await apply(client, customer, 3)
    first = await client.get(f"{V1}/admin/loans?status=new&limit=1", headers=admin.headers)
    cursor = first.json()["next_cursor"]
    assert cursor
    same = await client.get(
        f"{V1}/admin/loans?limit=1&status=new&cursor={cursor}", headers=admin.headers
    )
    assert same.status_code == 200, same.text
    assert same.json()["items"][0]["id"] < first.json()["items"][0]["id"]
    # another page size is the same list
    wider = await client.get(
        f"{V1}/admin/loans?status=new&limit=5&cursor={cursor}", headers=admin.headers
    )
    assert wider.status_code == 200
    for other in ("status=requested", "status=new&loan_type=car_loan", ""):
        moved = await client.get(f"{V1}/admin/loans?{other}&cursor={cursor}", headers=admin.headers)
        problem = assert_field_error(moved, "query", "cursor")
        assert "another list or to other filters" in problem["detail"]
    users = await client.get(f"{V1}/admin/users?limit=1", headers=admin.headers)
    user_cursor = users.json()["next_cursor"]
    await register(client, "customer", "spare_one")
    elsewhere = await client.get(
        f"{V1}/admin/customers?cursor={user_cursor}", headers=admin.headers
    )
    assert_field_error(elsewhere, "query", "cursor")
