"""Events and webhooks (EVENTS.md), on both engines: the outbox written with every change, the
feed and its cursor, endpoints and their secrets, signed deliveries to a real local receiver,
retries, 410, the slow endpoint that must not hold up a fast one, and the URL checks."""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import resource
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select
from standardwebhooks import Webhook

from loanapi.clock import utcnow
from loanapi.jobs import deliverer
from loanapi.sql import current_txid
from loanapi.webhooks import delivery, outbox, service, urls
from loanapi.webhooks.delivery import Deliverer
from loanapi.webhooks.models import Event, WebhookDelivery
from tests.api.test_servicing import approved_loan, disburse, repay, set_late_fee
from tests.conftest import client_for
from tests.helpers import assert_field_error, assert_problem
from tests.webhook_receiver import Behaviour, running_receiver

V1 = "/api/v1"
LOCAL = {"webhook_allow_http": True, "webhook_allow_private": True}


@pytest.fixture
async def local_app(make_app):
    """The app with plain-HTTP loopback URLs allowed, for a receiver on this machine."""
    return await make_app(**LOCAL)


@pytest.fixture
async def local(local_app):
    async with client_for(local_app) as c:
        yield c


@pytest.fixture
async def receiver():
    async with running_receiver() as r:
        yield r


async def add_endpoint(client, admin, url, event_types=("*",), **extra):
    body = {"url": url, "event_types": list(event_types), **extra}
    response = await client.post(f"{V1}/admin/webhooks", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def feed(client, admin, after=None, **query):
    params = {k: v for k, v in {"after": after, **query}.items() if v is not None}
    response = await client.get(f"{V1}/admin/events", params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def whole_feed(client, admin, after=None, **query):
    items, cursor = [], after
    while True:
        page = await feed(client, admin, cursor, limit=200, **query)
        items += page["items"]
        if page["next_cursor"] == cursor or not page["items"]:
            return items, page["next_cursor"]
        cursor = page["next_cursor"]


def verify_independently(secret, headers, body):
    """The Standard Webhooks signature checked by hand: HMAC-SHA256 of id.timestamp.body."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")]
    return any(hmac.compare_digest(expected, g) for g in given)


# --- the outbox and the feed -----------------------------------------------------------------


async def closed_loan(client, customer, agent, admin):
    """A loan's whole story: applied, requested, approved, disbursed, paid off, closed."""
    await set_late_fee(client, admin)
    loan_id = await approved_loan(client, customer, agent, admin, principal="1200", months=1)
    assert (await disburse(client, admin, loan_id, disbursed_on="2025-01-15")).status_code == 200
    payoff = await client.get(
        f"{V1}/customer/loans/{loan_id}/payoff?on=2025-02-01", headers=customer.headers
    )
    paid = await repay(client, agent, loan_id, payoff.json()["total"], "2025-02-01")
    assert paid.status_code == 201, paid.text
    return loan_id


async def test_a_loans_story_is_in_the_feed_in_order(client, customer, agent, admin):
    loan_id = await closed_loan(client, customer, agent, admin)
    repayments = await client.get(f"{V1}/admin/repayments", headers=admin.headers)
    [paid] = repayments.json()["items"]

    items, _ = await whole_feed(client, admin, loan_id=loan_id)
    assert [e["type"] for e in items] == [
        "loan.applied",
        "loan.requested",
        "loan.approved",
        "loan.disbursed",
        "loan.repaid",
        "loan.closed",
    ]
    assert len({e["id"] for e in items}) == len(items)
    assert [e["data"]["version"] for e in items] == list(range(1, 7))
    for event in items:
        assert event["data"]["loan"]["version"] == event["data"]["version"]
        assert event["data"]["loan"]["id"] == loan_id
    assert [e["data"]["actor_id"] for e in items[:3]] == [customer.id, agent.id, admin.id]
    assert items[-1]["data"]["loan"]["status"] == "closed"
    assert items[4]["data"]["repayment"] == items[5]["data"]["repayment"] == paid  # it closed it
    assert all("repayment" not in e["data"] for e in items[:4])
    current = await client.get(f"{V1}/admin/loans/{loan_id}", headers=admin.headers)
    assert items[-1]["data"]["loan"] == current.json()


async def test_account_decisions_are_events_without_secrets(client, admin, new_agent, customer):
    agent = await new_agent("events-agent")  # registered, then approved by the admin
    await client.post(f"{V1}/admin/users/{customer.id}/disable", headers=admin.headers)
    await client.post(f"{V1}/admin/users/{customer.id}/enable", headers=admin.headers)
    items, _ = await whole_feed(client, admin)
    decisions = [(e["type"], e["data"]["user"]["id"]) for e in items]
    assert decisions == [
        ("agent.approved", agent.id),
        ("user.disabled", customer.id),
        ("user.enabled", customer.id),
    ]
    for event in items:
        assert event["data"]["actor_id"] == admin.id
        assert not {"password", "password_hash"} & set(event["data"]["user"])
        assert "$pbkdf2" not in json.dumps(event)


async def test_a_change_that_changes_nothing_writes_no_event(client, customer, agent, admin):
    loan_id = await approved_loan(client, customer, agent, admin)
    before, _ = await whole_feed(client, admin)
    refused = await client.post(f"{V1}/admin/loans/{loan_id}/approve", headers=admin.headers)
    assert refused.status_code == 409
    after, _ = await whole_feed(client, admin)
    assert after == before


async def test_no_change_without_its_event_and_no_event_without_its_change(
    app, client, customer, monkeypatch
):
    """A failure after the change, in its transaction: neither the change nor the event."""
    real = outbox.publish

    async def publish_then_fail(session, events):
        await real(session, events)
        raise RuntimeError("injected after the change and its event")

    monkeypatch.setattr(outbox, "publish", publish_then_fail)
    failed = await client.post(
        f"{V1}/customer/loans",
        json={"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12},
        headers=customer.headers,
    )
    assert failed.status_code == 500  # the injected failure, rendered as a problem
    monkeypatch.setattr(outbox, "publish", real)
    loans = await client.get(f"{V1}/customer/loans", headers=customer.headers)
    assert loans.json()["items"] == []
    async with app.state.sessions.read() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 0


async def test_the_feed_cursor_is_never_null_and_resumes(client, customer, admin):
    empty = await feed(client, admin)
    assert empty["items"] == []
    assert empty["next_cursor"]
    again = await feed(client, admin, empty["next_cursor"])
    assert again == empty
    for principal in ("5000", "6000", "7000"):
        await client.post(
            f"{V1}/customer/loans",
            json={"loan_type": "personal_loan", "principal": principal, "tenure_months": 12},
            headers=customer.headers,
        )
    first = await feed(client, admin, empty["next_cursor"], limit=2)
    rest = await feed(client, admin, first["next_cursor"])
    assert [e["data"]["loan"]["principal"] for e in first["items"] + rest["items"]] == [
        "5000.00",
        "6000.00",
        "7000.00",
    ]
    end = await feed(client, admin, rest["next_cursor"])
    assert end == {"items": [], "next_cursor": rest["next_cursor"]}
    only = await feed(client, admin, type="loan.applied", limit=1)
    assert [e["type"] for e in only["items"]] == ["loan.applied"]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "MTIz", "LTEuMg"])
async def test_a_cursor_we_did_not_issue_is_422(client, admin, cursor):
    response = await client.get(f"{V1}/admin/events?after={cursor}", headers=admin.headers)
    assert_field_error(response, "query", "after")


# --- endpoints ---------------------------------------------------------------------------------


async def test_endpoint_lifecycle_and_its_secret_shown_once(local, admin, receiver):
    created = await add_endpoint(local, admin, receiver.url(), ["loan.approved"], description="x")
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) >= 24
    assert created["active"] is True
    assert created["event_types"] == ["loan.approved"]
    listed = (await local.get(f"{V1}/admin/webhooks", headers=admin.headers)).json()
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]
    path = f"{V1}/admin/webhooks/{created['id']}"
    patched = await local.patch(
        path, json={"active": False, "event_types": ["*"]}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["active"], patched.json()["event_types"]) == (False, ["*"])
    assert "secret" not in patched.json()
    rotated = await local.post(f"{path}/rotate-secret", headers=admin.headers)
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (secret, None)
    assert (await local.delete(path, headers=admin.headers)).status_code == 204
    assert_problem(await local.delete(path, headers=admin.headers), 404)
    assert_problem(await local.patch(path, json={}, headers=admin.headers), 404)


async def test_a_change_writes_its_event_and_the_worker_its_deliveries(
    local_app, local, admin, receiver
):
    """The change's transaction writes the event only; the worker's round writes one delivery
    per endpoint of its types (here two of three) and moves each cursor past it."""
    everything = await add_endpoint(local, admin, receiver.url("/all"))
    edits = await add_endpoint(local, admin, receiver.url("/edits"), ["loan.edited"])
    await add_endpoint(local, admin, receiver.url("/users"), ["user.disabled"])
    async with local_app.state.sessions.write() as change:
        await outbox.publish(change, [{"type": "loan.edited", "loan_id": None, "data": {}}])
        await change.commit()
    async with local_app.state.sessions.read() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    work = deliverer(local_app.state.sessions, local_app.state.settings)
    assert await work.drain() == 2
    assert [len(receiver.at(p)) for p in ("/all", "/edits", "/users")] == [1, 1, 0]
    assert await work.drain() == 0  # the cursors moved: nothing is written twice
    for endpoint in (everything, edits):
        path = f"{V1}/admin/webhooks/{endpoint['id']}/deliveries"
        [item] = (await local.get(path, headers=admin.headers)).json()["items"]
        assert (item["status"], item["attempts"], item["event_type"]) == (
            "delivered",
            1,
            "loan.edited",
        )


async def test_a_round_writes_only_the_deliveries_it_claims(local_app, local, admin, receiver):
    """An endpoint with room for two of five new events: the round writes and claims two; the
    other three wait in the feed, past its cursor, and the next round with room takes them."""
    await add_endpoint(local, admin, receiver.url())
    sessions = local_app.state.sessions
    async with sessions.write() as change:
        await outbox.publish(change, [{"type": "loan.edited", "loan_id": None, "data": {}}] * 5)
        await change.commit()
    rounds = delivery.queue(sessions)
    lease = utcnow() + timedelta(minutes=1)

    def room(size):
        return lambda active: [(endpoint_id, size) for endpoint_id in active]

    try:
        first = await rounds.round([], [], room(2), lease)
        assert (len(first.claims), first.behind) == (2, True)
        async with sessions.read() as session:
            assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 2
        rest = await rounds.round([], [], room(10), lease)
        assert (len(rest.claims), rest.behind) == (3, False)
        events = [claim["event_id"] for claim in [*first.claims, *rest.claims]]
        assert events == sorted(set(events))  # each event once, in the feed's order
        assert (await rounds.round([], [], room(10), lease)).claims == []
    finally:
        await rounds.close()


async def test_an_endpoint_with_more_waiting_is_not_held_to_a_share_per_beat(
    local_app, local, admin, receiver
):
    """Twenty events for an endpoint with a share of two attempts in flight and a beat of
    30 s: a round comes as soon as half its share is free again, not a beat later."""
    await add_endpoint(local, admin, receiver.url())
    async with local_app.state.sessions.write() as change:
        await outbox.publish(change, [{"type": "loan.edited", "loan_id": None, "data": {}}] * 20)
        await change.commit()
    work = Deliverer(
        local_app.state.sessions,
        local_app.state.settings,
        per_endpoint=2,
        beat_seconds=30,
        poll_seconds=30,
    )
    worker = asyncio.create_task(work.run())
    try:
        await receiver.wait_for(20, "/hook", timeout=10)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def test_a_round_passes_over_an_endpoint_being_deleted(
    local_app, local, admin, receiver, database
):
    """Deliveries have no foreign keys (webhooks/models.py): while an endpoint's deletion is
    under way (its row locked, its deliveries deleted, not committed yet), a worker's round
    writes none for it and does not wait; once committed, nothing of it is left."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer: the round waits for the deletion to commit")
    endpoint = await add_endpoint(local, admin, receiver.url())
    async with local_app.state.sessions.write() as change:
        await outbox.publish(change, [{"type": "loan.edited", "loan_id": None, "data": {}}])
        await change.commit()
    removal = local_app.state.sessions.write()
    try:
        await service.remove(removal, endpoint_id=endpoint["id"])
        work = deliverer(local_app.state.sessions, local_app.state.settings)
        assert await asyncio.wait_for(work.drain(), timeout=5) == 0
        await removal.commit()
    finally:
        await removal.close()
    async with local_app.state.sessions.read() as session:
        left = select(func.count()).where(WebhookDelivery.endpoint_id == endpoint["id"])
        assert await session.scalar(left) == 0
    assert receiver.received == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/hook", "https"),
        ("https://127.0.0.1/hook", "not a public address"),
        ("https://10.1.2.3/hook", "not a public address"),
        ("https://192.168.0.10/hook", "not a public address"),
        ("https://[::1]/hook", "not a public address"),
        ("https://169.254.10.1/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[fd00:ec2::254]/", "metadata"),
        ("https://localhost/hook", "not a public address"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("ftp://example.com/", "https"),
    ],
)
async def test_internal_and_plain_http_urls_are_refused(client, admin, url, why):
    response = await client.post(
        f"{V1}/admin/webhooks", json={"url": url, "event_types": ["*"]}, headers=admin.headers
    )
    error = assert_field_error(response, "body", "url")
    assert why in json.dumps(error)
    listed = (await client.get(f"{V1}/admin/webhooks", headers=admin.headers)).json()
    assert listed["items"] == []


async def test_metadata_addresses_are_refused_even_when_relaxed(local, admin):
    for url in ("http://169.254.169.254/", "https://[fd00:ec2::254]/"):
        body = {"url": url, "event_types": ["*"]}
        response = await local.post(f"{V1}/admin/webhooks", json=body, headers=admin.headers)
        assert_field_error(response, "body", "url")


async def test_a_name_that_does_not_resolve_yet_is_accepted(client, admin):
    url = "https://hooks.not-yet-registered.invalid/loanapi"
    await add_endpoint(client, admin, url)


async def test_unknown_event_types_are_refused(client, admin):
    for types in (["loan.teleported"], [], ["*", "loan.approved"]):
        body = {"url": "https://example.com/h", "event_types": types}
        response = await client.post(f"{V1}/admin/webhooks", json=body, headers=admin.headers)
        assert_field_error(response, "body", "event_types")


# --- deliveries --------------------------------------------------------------------------------


async def test_every_event_is_delivered_signed_exactly_as_the_feed_lists_it(
    local_app, local, customer, agent, admin, receiver
):
    _, start = await whole_feed(local, admin)  # the agent's approval, before the endpoints
    endpoint = await add_endpoint(local, admin, receiver.url())
    only_approved = await add_endpoint(local, admin, receiver.url("/approved"), ["loan.approved"])
    loan_id = await closed_loan(local, customer, agent, admin)
    items, _ = await whole_feed(local, admin, after=start)
    assert [e["type"] for e in items][-3:] == ["loan.disbursed", "loan.repaid", "loan.closed"]
    await deliverer(local_app.state.sessions, local_app.state.settings).drain()

    assert sorted(r.event["id"] for r in receiver.at("/hook")) == sorted(e["id"] for e in items)
    for request in receiver.at("/hook"):
        listed = next(e for e in items if e["id"] == request.event["id"])
        assert request.event == listed
        assert request.headers["webhook-id"] == listed["id"]
        assert Webhook(endpoint["secret"]).verify(request.body, request.headers) == listed
        assert verify_independently(endpoint["secret"], request.headers, request.body)
        assert request.headers["content-type"] == "application/json"
    assert [r.event["type"] for r in receiver.at("/approved")] == ["loan.approved"]
    assert verify_independently(
        only_approved["secret"],
        receiver.at("/approved")[0].headers,
        receiver.at("/approved")[0].body,
    )
    deliveries = await local.get(
        f"{V1}/admin/webhooks/{endpoint['id']}/deliveries", headers=admin.headers
    )
    assert {d["status"] for d in deliveries.json()["items"]} == {"delivered"}
    assert all(d["attempts"] == 1 for d in deliveries.json()["items"])
    assert {d["event_id"] for d in deliveries.json()["items"]} == {e["id"] for e in items}
    assert loan_id


async def test_an_endpoint_gets_only_events_created_while_it_is_active(
    local_app, local, customer, admin, receiver
):
    apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
    await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)  # before
    endpoint = await add_endpoint(local, admin, receiver.url())
    path = f"{V1}/admin/webhooks/{endpoint['id']}"
    await local.patch(path, json={"active": False}, headers=admin.headers)
    await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)  # paused
    await local.patch(path, json={"active": True}, headers=admin.headers)
    third = await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
    await deliverer(local_app.state.sessions, local_app.state.settings).drain()
    assert [r.event["data"]["loan"]["id"] for r in receiver.received] == [third.json()["id"]]


async def test_a_paused_endpoint_still_gets_what_came_while_it_was_active(
    local_app, local, customer, admin, receiver
):
    """Paused before the worker wrote its deliveries: the events from while it was active
    still get theirs (waiting while it is paused), the paused moment's none."""
    apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
    endpoint = await add_endpoint(local, admin, receiver.url())
    path = f"{V1}/admin/webhooks/{endpoint['id']}"
    first = await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
    await local.patch(path, json={"active": False}, headers=admin.headers)
    await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)  # paused
    work = deliverer(local_app.state.sessions, local_app.state.settings)
    await work.drain()
    [waiting] = (await local.get(f"{path}/deliveries", headers=admin.headers)).json()["items"]
    assert (waiting["status"], waiting["attempts"]) == ("pending", 0)
    assert receiver.received == []
    await local.patch(path, json={"active": True}, headers=admin.headers)
    third = await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
    await work.drain()
    got = [r.event["data"]["loan"]["id"] for r in receiver.received]
    assert got == [first.json()["id"], third.json()["id"]]


async def test_failures_are_retried_on_the_schedule_and_410_deactivates(
    local_app, local, customer, admin, receiver
):
    receiver.behaviours["/hook"] = Behaviour(statuses=[500, 503])
    receiver.behaviours["/gone"] = Behaviour(status=410)
    endpoint = await add_endpoint(local, admin, receiver.url())
    gone = await add_endpoint(local, admin, receiver.url("/gone"))
    apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
    await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
    work = deliverer(local_app.state.sessions, local_app.state.settings)
    started = utcnow()
    await work.drain()

    deliveries = f"{V1}/admin/webhooks/{endpoint['id']}/deliveries"
    [first] = (await local.get(deliveries, headers=admin.headers)).json()["items"]
    assert (first["status"], first["attempts"], first["last_status_code"]) == ("pending", 1, 500)
    next_at = first["next_attempt_at"]
    assert started + timedelta(seconds=4) < _at(next_at) < utcnow() + timedelta(seconds=6)
    await work.drain()  # not due yet: nothing is attempted
    assert len(receiver.at("/hook")) == 1

    retried = await local.post(f"{deliveries}/{first['id']}/retry", headers=admin.headers)
    assert retried.status_code == 202, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 1)
    await work.drain()
    [second] = (await local.get(deliveries, headers=admin.headers)).json()["items"]
    assert (second["attempts"], second["last_status_code"]) == (2, 503)
    assert _at(second["next_attempt_at"]) > utcnow() + timedelta(seconds=50)  # about a minute
    await local.post(f"{deliveries}/{first['id']}/retry", headers=admin.headers)
    await work.drain()
    [third] = (await local.get(deliveries, headers=admin.headers)).json()["items"]
    assert (third["status"], third["attempts"], third["last_status_code"]) == ("delivered", 3, 204)

    gone_list = f"{V1}/admin/webhooks/{gone['id']}/deliveries?status=failed"
    [failed] = (await local.get(gone_list, headers=admin.headers)).json()["items"]
    assert (failed["attempts"], failed["last_status_code"]) == (1, 410)
    endpoints = (await local.get(f"{V1}/admin/webhooks", headers=admin.headers)).json()["items"]
    assert {e["id"]: e["active"] for e in endpoints} == {endpoint["id"]: True, gone["id"]: False}
    assert_problem(await local.post(f"{deliveries}/999999/retry", headers=admin.headers), 404)


async def test_a_delivery_that_keeps_failing_is_marked_failed_after_the_last_retry(
    local_app, local, customer, admin, receiver
):
    receiver.behaviours["/hook"] = Behaviour(status=500)
    endpoint = await add_endpoint(local, admin, receiver.url())
    apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
    await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
    work = deliverer(local_app.state.sessions, local_app.state.settings)
    deliveries = f"{V1}/admin/webhooks/{endpoint['id']}/deliveries"
    for _ in range(8):  # the first attempt and seven retries, each made due at once
        await work.drain()
        [item] = (await local.get(deliveries, headers=admin.headers)).json()["items"]
        if item["status"] == "pending":
            await local.post(f"{deliveries}/{item['id']}/retry", headers=admin.headers)
    assert (item["status"], item["attempts"], item["next_attempt_at"]) == ("failed", 8, None)
    assert len(receiver.at("/hook")) == 8


async def test_rotation_signs_with_both_secrets_for_a_day(
    local_app, local, customer, admin, receiver
):
    endpoint = await add_endpoint(local, admin, receiver.url())
    path = f"{V1}/admin/webhooks/{endpoint['id']}/rotate-secret"
    new = (await local.post(path, headers=admin.headers)).json()["secret"]
    apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
    await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
    await deliverer(local_app.state.sessions, local_app.state.settings).drain()
    [request] = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], new):
        assert verify_independently(secret, request.headers, request.body)
        Webhook(secret).verify(request.body, request.headers)


async def test_a_slow_endpoint_does_not_hold_up_a_fast_one(
    local_app, local, customer, admin, receiver
):
    """A slow endpoint (30 s per answer, so each attempt times out at 10 s) with a backlog older
    than everything the fast one has: the fast one still gets its events at once, and the API
    answers at its usual pace meanwhile."""
    receiver.behaviours["/slow"] = Behaviour(delay=30)
    apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
    await add_endpoint(local, admin, receiver.url("/slow"))
    for _ in range(12):  # the slow endpoint's backlog: older than anything below
        assert (
            await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
        ).is_success
    await add_endpoint(local, admin, receiver.url("/fast"))
    work = Deliverer(
        local_app.state.sessions, local_app.state.settings, concurrency=8, per_endpoint=4
    )
    worker = asyncio.create_task(work.run())
    try:
        started = asyncio.get_running_loop().time()
        for _ in range(12):
            response = await local.post(
                f"{V1}/customer/loans", json=apply, headers=customer.headers
            )
            assert response.status_code == 201
        answered = asyncio.get_running_loop().time() - started
        await receiver.wait_for(12, "/fast", timeout=5)
        waited = asyncio.get_running_loop().time() - started
        assert answered < 3  # twelve applications while the slow attempts hang
        assert waited < 5
        assert len(receiver.at("/slow")) == 0  # its attempts are still waiting for an answer
        assert receiver.started == 12 + 4  # the slow endpoint holds its share (4), no more
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def test_the_setting_caps_the_attempts_in_flight_to_one_endpoint(make_app, admin, receiver):
    """`webhook_endpoint_concurrency` is the worker's share per endpoint: with 2, a slow
    endpoint with five events waiting has two attempts open, no more."""
    app = await make_app(webhook_endpoint_concurrency=2, **LOCAL)
    receiver.behaviours["/hook"] = Behaviour(delay=30)
    async with client_for(app) as client:
        await add_endpoint(client, admin, receiver.url())
        async with app.state.sessions.write() as change:
            await outbox.publish(change, [{"type": "loan.edited", "loan_id": None, "data": {}}] * 5)
            await change.commit()
        worker = asyncio.create_task(deliverer(app.state.sessions, app.state.settings).run())
        try:
            await asyncio.sleep(1.5)
            assert receiver.started == 2
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker


async def test_a_failed_round_is_tried_again_and_its_outcomes_kept(
    local_app, local, customer, admin, receiver, monkeypatch, caplog
):
    """The database fails the round that records an attempt's outcome: the worker logs it and
    goes on, and the next round records that outcome (the delivery is not sent again)."""
    endpoint = await add_endpoint(local, admin, receiver.url())
    apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
    await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
    failed: list[int] = []
    make_queue = delivery.queue

    def flaky_queue(sessions):
        made = make_queue(sessions)
        real_round = made.round

        async def flaky(records, gone, rooms, lease):
            if records and not failed:
                failed.append(len(records))
                raise ConnectionResetError("the database went away")
            return await real_round(records, gone, rooms, lease)

        made.round = flaky
        return made

    monkeypatch.setattr(delivery, "queue", flaky_queue)
    work = Deliverer(
        local_app.state.sessions, local_app.state.settings, beat_seconds=0.01, poll_seconds=0.02
    )
    worker = asyncio.create_task(work.run())
    deliveries = f"{V1}/admin/webhooks/{endpoint['id']}/deliveries"
    try:
        async with asyncio.timeout(10):
            while True:
                items = (await local.get(deliveries, headers=admin.headers)).json()["items"]
                if items and items[0]["status"] == "delivered":
                    [item] = items
                    break
                await asyncio.sleep(0.02)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    assert failed == [1]
    assert "a webhook delivery round failed" in caplog.text
    assert (item["attempts"], item["last_status_code"]) == (1, 204)
    assert len(receiver.at("/hook")) == 1


async def test_queue_metrics(local_app, local, customer, admin, receiver):
    """The queue's depth counts the deliveries the worker has yet to write (new events) and
    the pending ones (a failed attempt waiting for its retry) alike."""
    receiver.behaviours["/hook"] = Behaviour(status=500)
    await add_endpoint(local, admin, receiver.url())
    await add_endpoint(local, admin, receiver.url("/users"), ["user.disabled"])
    apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
    await local.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)

    def gauge(metrics, name):
        [line] = [line for line in metrics.splitlines() if line.startswith(name + " ")]
        return float(line.split()[1])

    written_yet = (await local.get("/metrics")).text
    assert 'loanapi_webhook_deliveries{status="pending"} 0.0' in written_yet
    assert gauge(written_yet, "loanapi_webhook_queue_depth") == 1
    assert gauge(written_yet, "loanapi_webhook_oldest_pending_seconds") > 0
    await deliverer(local_app.state.sessions, local_app.state.settings).drain()
    retrying = (await local.get("/metrics")).text
    assert 'loanapi_webhook_deliveries{status="pending"} 1.0' in retrying
    assert gauge(retrying, "loanapi_webhook_queue_depth") == 1
    assert gauge(retrying, "loanapi_webhook_oldest_pending_seconds") > 0
    async with local_app.state.sessions.read() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def _at(text):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_addresses_are_checked_again_at_each_connection(
    app, client, customer, admin, monkeypatch
):
    """A name that did not resolve when saved, and resolves to a private address when the
    delivery connects (DNS rebinding): refused, nothing sent, the reason in the delivery."""
    endpoint = await add_endpoint(client, admin, "https://hooks.rebinding.invalid/loanapi")

    async def private(host, port):
        return [ipaddress.ip_address("10.0.0.7")]

    monkeypatch.setattr(urls, "_resolve", private)
    apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
    await client.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
    await deliverer(app.state.sessions, app.state.settings).drain()
    deliveries = f"{V1}/admin/webhooks/{endpoint['id']}/deliveries"
    [item] = (await client.get(deliveries, headers=admin.headers)).json()["items"]
    assert (item["status"], item["attempts"], item["last_status_code"]) == ("pending", 1, None)
    assert "10.0.0.7 is not a public address" in item["last_error"]


async def test_the_feed_never_skips_an_event_committed_late(app, database, client, customer, admin):
    """PostgreSQL gives ids at insert and commits in any order: an event of a transaction still
    open holds the feed back (the later, committed ones wait), and none is ever passed over."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer: transactions commit in the order they write")
    start = (await feed(client, admin))["next_cursor"]
    late = app.state.sessions.write()
    try:
        await late.execute(
            insert(Event).values(
                txid=current_txid(), type="loan.edited", occurred_at=utcnow(), data={"late": 1}
            )
        )
        apply = {"loan_type": "personal_loan", "principal": "5000", "tenure_months": 12}
        applied = await client.post(f"{V1}/customer/loans", json=apply, headers=customer.headers)
        assert applied.status_code == 201
        held = await feed(client, admin, start)
        assert held == {"items": [], "next_cursor": start}
        await late.commit()
    finally:
        await late.close()
    after = await feed(client, admin, start)
    assert [e["type"] for e in after["items"]] == ["loan.edited", "loan.applied"]
    assert after["items"][0]["data"] == {"late": 1}
    assert (await feed(client, admin, after["next_cursor"]))["items"] == []


def test_the_worker_makes_room_for_its_sockets():
    """A systemd service starts with 1,024 open files; the deliverer's attempts in flight (a
    socket each) need more: the soft limit is raised, up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1024 + delivery.OTHER_FILES
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard limit here ({hard}) is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        delivery.open_files_for(1024)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (wanted, hard)
        delivery.open_files_for(8)  # never lowered
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (wanted, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
