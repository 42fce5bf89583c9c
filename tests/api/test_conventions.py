"""Conventions a careful integrator expects (issue 17): unknown query parameters are errors, a
cursor belongs to the list and filters it was made for."""

import pytest

from tests.conftest import register
from tests.helpers import assert_field_error, assert_problem

V1 = "/api/v1"
APPLY = {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12}
WALK_IN = {"loan_type": "car_loan", "principal": "20000", "tenure_months": 24}


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


# --- 201 answers say where the new thing is (Location) ----------------------------------------


async def assert_located(client, response, headers) -> dict:
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert location.startswith(V1)
    there = await client.get(location, headers=headers)
    assert there.status_code == 200, there.text
    assert there.json()["id"] == response.json()["id"]
    return response.json()


async def test_every_201_carries_a_location_that_reads_it_back(client, admin, agent, customer):
    loan = await assert_located(
        client,
        await client.post(f"{V1}/customer/loans", json=APPLY, headers=customer.headers),
        customer.headers,
    )
    body = {"username": "located", "email": "located@example.com", "password": "s3cret-pass"}
    for role in ("customer", "agent"):
        body = {**body, "username": f"located_{role}", "email": f"{role}@located.example"}
        await assert_located(
            client, await client.post(f"{V1}/auth/register/{role}", json=body), admin.headers
        )
    hook = {"url": "https://hooks.example.invalid/x", "event_types": ["*"]}
    created = await client.post(f"{V1}/admin/webhooks", json=hook, headers=admin.headers)
    read = await assert_located(client, created, admin.headers)
    assert "secret" in read  # the create answer shows it once; the read below does not
    again = await client.get(created.headers["location"], headers=admin.headers)
    assert "secret" not in again.json()
    for step in ("approve",):
        await client.post(f"{V1}/agent/loans/{loan['id']}/request", headers=agent.headers)
        await client.post(f"{V1}/admin/loans/{loan['id']}/{step}", headers=admin.headers)
    await client.post(f"{V1}/admin/loans/{loan['id']}/disburse", headers=admin.headers)
    for caller, role in ((agent, "agent"), (admin, "admin")):
        paid = await client.post(
            f"{V1}/{role}/loans/{loan['id']}/repayments",
            json={"amount": "5.00"},
            headers=caller.headers,
        )
        repayment = await assert_located(client, paid, caller.headers)
        assert repayment["amount"] == "5.00"
    missing = await client.get(
        f"{V1}/admin/loans/{loan['id']}/repayments/999999", headers=admin.headers
    )
    assert_problem(missing, 404)


# --- an agent opens an application for a walk-in customer -------------------------------------


async def test_an_agent_opens_a_loan_for_a_walk_in_customer(client, agent, customer, admin):
    body = {**WALK_IN, "customer_id": customer.id}
    opened = await client.post(f"{V1}/agent/loans", json=body, headers=agent.headers)
    loan = await assert_located(client, opened, agent.headers)
    assert (loan["status"], loan["customer_id"], loan["agent_id"], loan["version"]) == (
        "new",
        customer.id,
        None,
        1,
    )
    assert loan["principal"] == "20000.00"
    own = await client.get(f"{V1}/customer/loans/{loan['id']}", headers=customer.headers)
    assert own.status_code == 200
    history = await client.get(
        f"{V1}/customer/loans/{loan['id']}/history", headers=customer.headers
    )
    created = history.json()["items"][0]
    assert created["action"] == "created"
    assert (created["actor_id"], created["actor_role"]) == (agent.id, "agent")
    # the agent works it on as any other loan
    requested = await client.post(f"{V1}/agent/loans/{loan['id']}/request", headers=agent.headers)
    assert requested.json()["status"] == "requested"


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"customer_id": 999999}, 404, "No customer with id 999999"),
        ({"customer_id": "agent"}, 404, "No customer"),
        ({"principal": "5"}, 422, "principal"),
        ({"customer_id": None}, 422, "customer_id"),
    ],
)
async def test_a_walk_in_loan_is_refused_for_anyone_but_an_active_customer(
    client, agent, customer, change, status, words
):
    body = {**WALK_IN, "customer_id": customer.id}
    if change.get("customer_id") == "agent":
        change = {"customer_id": agent.id}
    refused = await client.post(f"{V1}/agent/loans", json={**body, **change}, headers=agent.headers)
    problem = assert_problem(refused, status)
    assert words in problem["detail"]
    listed = await client.get(f"{V1}/customer/loans", headers=customer.headers)
    assert listed.json()["items"] == []


async def test_a_disabled_customer_gets_no_walk_in_loan(client, admin, agent, customer):
    await client.post(f"{V1}/admin/users/{customer.id}/disable", headers=admin.headers)
    body = {**WALK_IN, "customer_id": customer.id}
    refused = await client.post(f"{V1}/agent/loans", json=body, headers=agent.headers)
    assert "disabled" in assert_problem(refused, 409)["detail"]


# --- error messages for people ------------------------------------------------------------------


async def test_error_messages_are_for_people(client, agent, customer):
    user = {"username": "bad name!", "email": "b@example.com", "password": "s3cret-pass"}
    named = await client.post(f"{V1}/auth/register/customer", json=user)
    problem = assert_field_error(named, "body", "username")
    assert problem["errors"][0]["msg"] == "3 to 64 letters, digits, _ . or -"
    assert "^" not in named.text
    phone = await client.post(
        f"{V1}/auth/register/customer", json={**user, "username": "okname", "phone": "12\n3"}
    )
    assert "no control characters" in assert_field_error(phone, "body", "phone")["detail"]
    broken = await client.post(
        f"{V1}/auth/register/customer",
        content=b'{"username": "x",, }',
        headers={"content-type": "application/json"},
    )
    problem = assert_field_error(broken, "body")
    assert problem["detail"].startswith("body: the body is not valid JSON at character 17")
    # a product's range is named
    small = {**APPLY, "principal": "5"}
    tiny = await client.post(f"{V1}/customer/loans", json=small, headers=customer.headers)
    assert "between 1000.00 and" in assert_field_error(tiny, "body", "principal")["detail"]
    # a null where none is allowed is reported on its field, without "Value error,"
    loan = (await client.post(f"{V1}/customer/loans", json=APPLY, headers=customer.headers)).json()
    null = await client.patch(
        f"{V1}/agent/loans/{loan['id']}", json={"principal": None}, headers=agent.headers
    )
    problem = assert_field_error(null, "body", "principal")
    assert problem["errors"][0]["msg"] == "may be left out, but not null"
    assert "Value error" not in null.text


# --- several statuses, and customers by name -----------------------------------------------------


async def test_loan_lists_take_several_statuses_and_a_customer_prefix(
    client, admin, agent, customer, new_customer
):
    other = await new_customer("Zed_Other")
    mine = await apply(client, customer, 3)
    theirs = await apply(client, other, 1)
    await client.post(f"{V1}/agent/loans/{mine[0]}/request", headers=agent.headers)
    await client.post(f"{V1}/customer/loans/{mine[1]}/withdraw", headers=customer.headers)

    async def ids(path: str, caller=admin) -> list[int]:
        response = await client.get(f"{V1}{path}", headers=caller.headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids("/admin/loans?status=new,requested") == [theirs[0], mine[2], mine[0]]
    assert await ids("/agent/loans?status=requested,withdrawn", agent) == [mine[1], mine[0]]
    assert await ids("/customer/loans?status=new,withdrawn", customer) == [mine[2], mine[1]]
    assert await ids("/admin/loans?status=new") == [theirs[0], mine[2]]
    # q: the customer's username or e-mail, a prefix, any case
    assert await ids("/admin/loans?q=zed_") == theirs
    assert await ids("/admin/loans?q=ZED_OTHER@EXAMPLE.COM") == theirs
    assert await ids(f"/agent/loans?q={customer.username[:3].upper()}&status=new", agent) == [
        mine[2]
    ]
    assert await ids("/admin/loans?q=%25") == []  # % and _ are letters here, not wildcards
    assert await ids("/admin/loans?q=nobody") == []
    bad = await client.get(f"{V1}/admin/loans?status=new,pending", headers=admin.headers)
    problem = assert_field_error(bad, "query", "status")
    assert "unknown status 'pending'" in problem["detail"]
    assert "new, requested" in problem["detail"]
    # the lists of an agent's requests too
    await client.post(f"{V1}/agent/loans/{mine[2]}/request", headers=agent.headers)
    await client.post(f"{V1}/admin/loans/{mine[2]}/approve", headers=admin.headers)
    assert await ids("/agent/requests?status=requested,approved", agent) == [mine[2], mine[0]]
    assert await ids("/agent/requests?status=approved", agent) == [mine[2]]
    by_agent = f"/admin/agents/{agent.id}/loan-requests?status="
    assert await ids(f"{by_agent}approved,rejected") == [mine[2]]
    assert await ids(f"{by_agent}new,requested") == [mine[0]]
    bad = await client.get(f"{V1}/agent/requests?status=nope", headers=agent.headers)
    assert "unknown status 'nope'" in assert_field_error(bad, "query", "status")["detail"]


# --- a rejected loan says why; a rollback says what it restored --------------------------------


async def test_a_rejected_loan_carries_its_reason_until_it_is_edited(
    client, admin, agent, customer
):
    [loan_id] = await apply(client, customer, 1)
    reason = {"reason": "Income could not be verified"}
    rejected = await client.post(
        f"{V1}/admin/loans/{loan_id}/reject", json=reason, headers=admin.headers
    )
    assert rejected.json()["rejection_reason"] == "Income could not be verified"
    own = await client.get(f"{V1}/customer/loans/{loan_id}", headers=customer.headers)
    assert own.json()["rejection_reason"] == "Income could not be verified"
    listed = await client.get(f"{V1}/admin/loans?status=rejected", headers=admin.headers)
    assert listed.json()["items"][0]["rejection_reason"] == "Income could not be verified"
    # a rollback keeps it rejected, and the reason with it; an edit makes it new, without
    await client.patch(
        f"{V1}/agent/loans/{loan_id}", json={"tenure_months": 36}, headers=agent.headers
    )
    await client.post(f"{V1}/admin/loans/{loan_id}/reject", json=reason, headers=admin.headers)
    rolled = await client.post(
        f"{V1}/agent/loans/{loan_id}/rollback", json={"version": 1}, headers=agent.headers
    )
    assert (rolled.json()["status"], rolled.json()["rejection_reason"]) == (
        "rejected",
        reason["reason"],
    )
    await client.patch(
        f"{V1}/agent/loans/{loan_id}", json={"tenure_months": 24}, headers=agent.headers
    )
    edited = (await client.get(f"{V1}/agent/loans/{loan_id}", headers=agent.headers)).json()
    assert (edited["status"], edited["rejection_reason"]) == ("new", None)
    # rejected again without a reason: null, not the old one
    again = await client.post(f"{V1}/admin/loans/{loan_id}/reject", headers=admin.headers)
    assert (again.json()["status"], again.json()["rejection_reason"]) == ("rejected", None)


async def test_a_rollback_event_says_which_version_it_restored(client, agent, customer):
    [loan_id] = await apply(client, customer, 1)
    for months in (24, 36):
        await client.patch(
            f"{V1}/agent/loans/{loan_id}", json={"tenure_months": months}, headers=agent.headers
        )
    restored = await client.post(
        f"{V1}/agent/loans/{loan_id}/rollback", json={"version": 1}, headers=agent.headers
    )
    assert restored.json()["tenure_months"] == 12
    history = (
        await client.get(f"{V1}/agent/loans/{loan_id}/history", headers=agent.headers)
    ).json()
    assert [(item["action"], item["restored_version"]) for item in history["items"]] == [
        ("created", None),
        ("edited", None),
        ("edited", None),
        ("rolled_back", 1),
    ]
    # each item names who acted beside the id
    actors = [(item["actor_id"], item["actor_username"]) for item in history["items"]]
    assert actors == [(customer.id, customer.username)] + [(agent.id, agent.username)] * 3


async def test_loans_name_their_customer_and_agent_beside_the_ids(client, admin, agent, customer):
    [loan_id] = await apply(client, customer, 1)
    fresh = (await client.get(f"{V1}/customer/loans/{loan_id}", headers=customer.headers)).json()
    assert (fresh["customer_username"], fresh["agent_username"]) == (customer.username, None)
    await client.post(f"{V1}/agent/loans/{loan_id}/request", headers=agent.headers)
    listed = (await client.get(f"{V1}/admin/loans", headers=admin.headers)).json()["items"][0]
    assert (listed["customer_username"], listed["agent_username"]) == (
        customer.username,
        agent.username,
    )
    walk_in = {**WALK_IN, "customer_id": customer.id}
    opened = (await client.post(f"{V1}/agent/loans", json=walk_in, headers=agent.headers)).json()
    assert opened["customer_username"] == customer.username  # the customer's, not the agent's
