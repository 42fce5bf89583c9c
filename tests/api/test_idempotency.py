"""Idempotency-Key on POSTs: a repeat returns the first response and has no second effect."""

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from loanapi.clock import utcnow
from loanapi.idempotency import IdempotencyKey
from tests.conftest import register
from tests.helpers import assert_problem

LOANS = "/api/v1/customer/loans"
REPLAYED = "idempotent-replayed"
BODY = {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12}


def with_key(caller: Any, key: str) -> dict[str, str]:
    return {**caller.headers, "Idempotency-Key": key}


async def apply(client: Any, caller: Any, key: str | None = None, body: Any = None) -> Any:
    headers = with_key(caller, key) if key is not None else caller.headers
    return await client.post(LOANS, json=BODY if body is None else body, headers=headers)


async def my_loans(client: Any, caller: Any) -> list[dict[str, Any]]:
    response = await client.get(LOANS, headers=caller.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def history(client: Any, admin: Any, loan_id: Any) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/admin/loans/{loan_id}/history", headers=admin.headers)
    assert response.status_code == 200, response.text
    items = list(response.json()["items"])
    assert [event["version"] for event in items] == list(range(1, len(items) + 1))
    return items


async def get_loan(client: Any, admin: Any, loan_id: Any) -> dict[str, Any]:
    response = await client.get(f"/api/v1/admin/loans/{loan_id}", headers=admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def new_loan(client: Any, customer: Any) -> dict[str, Any]:
    response = await apply(client, customer)
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_replay_of(replay: Any, first: Any) -> None:
    assert replay.status_code == first.status_code, replay.text
    assert replay.json() == first.json()
    assert replay.headers[REPLAYED] == "true"
    assert REPLAYED not in first.headers
    # The first response's headers come back too: the loan's version for a later If-Match.
    assert replay.headers.get("etag") == first.headers.get("etag")


# --- applying ---------------------------------------------------------------------------------


async def test_repeat_with_the_same_key_and_body_replays_the_first_response(client, customer):
    first = await apply(client, customer, "k1")
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    second = await apply(client, customer, "k1")
    assert_replay_of(second, first)
    loans = await my_loans(client, customer)
    assert [loan["id"] for loan in loans] == [first.json()["id"]]


async def test_same_json_with_other_spacing_and_key_order_is_the_same_request(client, customer):
    first = await apply(client, customer, "k1")
    assert first.status_code == 201, first.text
    second = await client.post(
        LOANS,
        content=b'{ "tenure_months": 12,   "principal": "10000", "loan_type": "home_loan" }',
        headers={**with_key(customer, "k1"), "content-type": "application/json"},
    )
    assert_replay_of(second, first)
    assert len(await my_loans(client, customer)) == 1


async def test_same_key_with_a_different_body_is_409(client, customer):
    first = await apply(client, customer, "k1")
    assert first.status_code == 201, first.text
    response = await apply(client, customer, "k1", {**BODY, "principal": "20000"})
    assert_problem(response, 409)
    assert REPLAYED not in response.headers
    assert [loan["id"] for loan in await my_loans(client, customer)] == [first.json()["id"]]


async def test_same_key_on_another_endpoint_is_409(client, customer):
    first = await apply(client, customer, "k1")
    assert first.status_code == 201, first.text
    loan_id = first.json()["id"]
    response = await client.post(f"{LOANS}/{loan_id}/withdraw", headers=with_key(customer, "k1"))
    assert_problem(response, 409)
    loans = await my_loans(client, customer)
    assert [(loan["id"], loan["status"]) for loan in loans] == [(loan_id, "new")]


async def test_keys_belong_to_one_user(client, customer, new_customer):
    other = await new_customer("olivia")
    mine = await apply(client, customer, "shared-key")
    theirs = await apply(client, other, "shared-key")
    assert mine.status_code == 201, mine.text
    assert theirs.status_code == 201, theirs.text
    assert REPLAYED not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["customer_id"] == other.id
    assert [loan["id"] for loan in await my_loans(client, customer)] == [mine.json()["id"]]
    assert [loan["id"] for loan in await my_loans(client, other)] == [theirs.json()["id"]]
    again = await apply(client, other, "shared-key", {**BODY, "tenure_months": 24})
    assert_problem(again, 409)


async def test_without_a_key_each_post_creates_a_loan(client, customer):
    first = await apply(client, customer)
    second = await apply(client, customer)
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["id"] != second.json()["id"]
    assert REPLAYED not in second.headers
    assert len(await my_loans(client, customer)) == 2


async def test_different_keys_create_different_loans(client, customer):
    first = await apply(client, customer, "k1")
    second = await apply(client, customer, "k2")
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["id"] != second.json()["id"]
    assert len(await my_loans(client, customer)) == 2


# --- failures are not stored ------------------------------------------------------------------


async def test_a_422_is_not_stored(client, customer):
    invalid = {**BODY, "principal": "0"}
    first = await apply(client, customer, "k1", invalid)
    assert_problem(first, 422)
    second = await apply(client, customer, "k1", invalid)
    assert_problem(second, 422)
    assert REPLAYED not in second.headers
    assert await my_loans(client, customer) == []
    fixed = await apply(client, customer, "k1")
    assert fixed.status_code == 201, fixed.text
    assert REPLAYED not in fixed.headers
    assert [loan["id"] for loan in await my_loans(client, customer)] == [fixed.json()["id"]]


async def test_a_422_from_product_bounds_is_not_stored(client, customer):
    too_big = {**BODY, "principal": "10000000.01"}
    first = await apply(client, customer, "k1", too_big)
    assert_problem(first, 422)
    fixed = await apply(client, customer, "k1")
    assert fixed.status_code == 201, fixed.text
    assert len(await my_loans(client, customer)) == 1


async def test_a_409_is_not_stored(client, customer, admin):
    loan = await new_loan(client, customer)
    withdrawn = await client.post(f"{LOANS}/{loan['id']}/withdraw", headers=customer.headers)
    assert withdrawn.status_code == 200, withdrawn.text
    path = f"{LOANS}/{loan['id']}/withdraw"
    first = await client.post(path, headers=with_key(customer, "w1"))
    assert_problem(first, 409)
    second = await client.post(path, headers=with_key(customer, "w1"))
    assert_problem(second, 409)
    assert REPLAYED not in second.headers
    reused = await apply(client, customer, "w1")
    assert reused.status_code == 201, reused.text
    assert len(await my_loans(client, customer)) == 2
    assert len(await history(client, admin, loan["id"])) == 2


async def test_a_404_is_not_stored(client, customer):
    missing = await client.post(f"{LOANS}/{2**31 - 1}/withdraw", headers=with_key(customer, "k1"))
    assert_problem(missing, 404)
    created = await apply(client, customer, "k1")
    assert created.status_code == 201, created.text


# --- the other POSTs --------------------------------------------------------------------------


async def test_withdraw_replay(client, customer, admin):
    loan = await new_loan(client, customer)
    path = f"{LOANS}/{loan['id']}/withdraw"
    first = await client.post(path, headers=with_key(customer, "w1"))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "withdrawn"
    replay = await client.post(path, headers=with_key(customer, "w1"))
    assert_replay_of(replay, first)
    unkeyed = await client.post(path, headers=customer.headers)
    assert_problem(unkeyed, 409)
    assert len(await history(client, admin, loan["id"])) == 2


async def test_request_replay_after_the_loan_moved_on(client, customer, agent, admin):
    loan = await new_loan(client, customer)
    path = f"/api/v1/agent/loans/{loan['id']}/request"
    first = await client.post(path, headers=with_key(agent, "r1"))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "requested"
    approved = await client.post(f"/api/v1/admin/loans/{loan['id']}/approve", headers=admin.headers)
    assert approved.status_code == 200, approved.text
    replay = await client.post(path, headers=with_key(agent, "r1"))
    assert_replay_of(replay, first)
    assert replay.json()["status"] == "requested"
    assert (await get_loan(client, admin, loan["id"]))["status"] == "approved"
    assert len(await history(client, admin, loan["id"])) == 3


async def test_approve_replay(client, customer, agent, admin):
    loan = await new_loan(client, customer)
    requested = await client.post(
        f"/api/v1/agent/loans/{loan['id']}/request", headers=agent.headers
    )
    assert requested.status_code == 200, requested.text
    path = f"/api/v1/admin/loans/{loan['id']}/approve"
    first = await client.post(path, headers=with_key(admin, "a1"))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "approved"
    replay = await client.post(path, headers=with_key(admin, "a1"))
    assert_replay_of(replay, first)
    unkeyed = await client.post(path, headers=admin.headers)
    assert_problem(unkeyed, 409)
    assert [e["action"] for e in await history(client, admin, loan["id"])] == [
        "created",
        "requested",
        "approved",
    ]


async def test_reject_replay_after_the_loan_was_edited(client, customer, agent, admin):
    loan = await new_loan(client, customer)
    path = f"/api/v1/admin/loans/{loan['id']}/reject"
    first = await client.post(path, json={"reason": "docs"}, headers=with_key(admin, "j1"))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "rejected"
    edited = await client.patch(
        f"/api/v1/agent/loans/{loan['id']}", json={"principal": "20000"}, headers=agent.headers
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["status"] == "new"
    replay = await client.post(path, json={"reason": "docs"}, headers=with_key(admin, "j1"))
    assert_replay_of(replay, first)
    assert replay.json()["version"] == 2
    current = await get_loan(client, admin, loan["id"])
    assert current["status"] == "new"
    assert current["version"] == 3
    other_reason = await client.post(path, json={"reason": "other"}, headers=with_key(admin, "j1"))
    assert_problem(other_reason, 409)
    assert (await get_loan(client, admin, loan["id"]))["status"] == "new"
    assert len(await history(client, admin, loan["id"])) == 3


async def test_rollback_replay_after_a_later_edit(client, customer, agent, admin):
    loan = await new_loan(client, customer)
    edit_path = f"/api/v1/agent/loans/{loan['id']}"
    for principal in ("20000", "30000"):
        edited = await client.patch(edit_path, json={"principal": principal}, headers=agent.headers)
        assert edited.status_code == 200, edited.text
    path = f"{edit_path}/rollback"
    first = await client.post(path, json={"version": 1}, headers=with_key(agent, "b1"))
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 4
    assert first.json()["principal"] == "10000.00"
    edited = await client.patch(edit_path, json={"principal": "40000"}, headers=agent.headers)
    assert edited.status_code == 200, edited.text
    replay = await client.post(path, json={"version": 1}, headers=with_key(agent, "b1"))
    assert_replay_of(replay, first)
    current = await get_loan(client, admin, loan["id"])
    assert current["principal"] == "40000.00"
    assert current["version"] == 5
    assert [e["action"] for e in await history(client, admin, loan["id"])] == [
        "created",
        "edited",
        "edited",
        "rolled_back",
        "edited",
    ]


# --- concurrency and expiry -------------------------------------------------------------------


async def test_concurrent_repeats_create_one_loan(client, customer):
    responses = await asyncio.gather(*(apply(client, customer, "race") for _ in range(10)))
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    created = [response.json() for response in responses if response.status_code == 201]
    assert created
    assert len({loan["id"] for loan in created}) == 1
    assert all(loan == created[0] for loan in created)
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409)
    loans = await my_loans(client, customer)
    assert [loan["id"] for loan in loans] == [created[0]["id"]]


async def age_key(app: Any, user_id: Any, key: str, age: timedelta) -> None:
    async with app.state.sessions.write() as session:
        result = await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .values(created_at=utcnow() - age)
        )
        assert result.rowcount == 1
        await session.commit()


async def test_a_key_older_than_24_hours_has_expired(app, client, customer):
    first = await apply(client, customer, "old")
    assert first.status_code == 201, first.text
    await age_key(app, customer.id, "old", timedelta(hours=24, minutes=1))
    reused = await apply(client, customer, "old", {**BODY, "principal": "20000"})
    assert reused.status_code == 201, reused.text
    assert REPLAYED not in reused.headers
    assert reused.json()["id"] != first.json()["id"]
    assert reused.json()["principal"] == "20000.00"
    assert len(await my_loans(client, customer)) == 2
    replay = await apply(client, customer, "old", {**BODY, "principal": "20000"})
    assert_replay_of(replay, reused)


async def test_an_expired_key_with_the_same_body_is_a_new_request(app, client, customer):
    first = await apply(client, customer, "old")
    assert first.status_code == 201, first.text
    await age_key(app, customer.id, "old", timedelta(days=3))
    again = await apply(client, customer, "old")
    assert again.status_code == 201, again.text
    assert REPLAYED not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert len(await my_loans(client, customer)) == 2


async def test_a_key_is_kept_for_at_least_24_hours(app, client, customer):
    first = await apply(client, customer, "recent")
    assert first.status_code == 201, first.text
    await age_key(app, customer.id, "recent", timedelta(hours=23, minutes=59))
    replay = await apply(client, customer, "recent")
    assert_replay_of(replay, first)
    other_body = await apply(client, customer, "recent", {**BODY, "principal": "20000"})
    assert_problem(other_body, 409)
    assert len(await my_loans(client, customer)) == 1


# --- the admin's POSTs on accounts ------------------------------------------------------------


async def _user_in(client: Any, admin: Any, action: str) -> dict[str, Any]:
    """A user on whom `action` is allowed once: a pending agent, an active or disabled customer."""
    role = "agent" if action in ("approve", "reject") else "customer"
    user = await register(client, role, f"{action}-target")
    if action == "enable":
        disabled = await client.post(
            f"/api/v1/admin/users/{user['id']}/disable", headers=admin.headers
        )
        assert disabled.status_code == 200, disabled.text
    return user


@pytest.mark.parametrize(
    ("action", "path", "status"),
    [
        ("approve", "/api/v1/admin/agents/{id}/approve", "active"),
        ("reject", "/api/v1/admin/agents/{id}/reject", "rejected"),
        ("disable", "/api/v1/admin/users/{id}/disable", "disabled"),
        ("enable", "/api/v1/admin/users/{id}/enable", "active"),
    ],
)
async def test_admin_account_decisions_honour_the_key(client, admin, action, path, status):
    user = await _user_in(client, admin, action)
    url = path.format(id=user["id"])
    first = await client.post(url, headers=with_key(admin, f"{action}-1"))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == status
    replay = await client.post(url, headers=with_key(admin, f"{action}-1"))
    assert_replay_of(replay, first)
    unkeyed = await client.post(url, headers=admin.headers)
    assert_problem(unkeyed, 409)


async def test_a_role_refusal_comes_before_any_key_check(client, customer):
    first = await apply(client, customer, "shared-key")
    assert first.status_code == 201, first.text
    # The same key on an agent's endpoint: the role gate answers, not the key's 409.
    refused = await client.post(
        f"/api/v1/agent/loans/{first.json()['id']}/request",
        headers=with_key(customer, "shared-key"),
    )
    assert refused.status_code == 403, refused.text
