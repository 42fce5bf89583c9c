"""Races across two real `loanapi serve` processes sharing one PostgreSQL database.

Every change is a conditional UPDATE on (id, version), so of N identical concurrent changes
exactly one wins wherever it lands; the rest are 409 (state) or 412 (If-Match), never a 5xx,
never a second event, never a hole in the versions.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.process.conftest import (
    API,
    Caller,
    Cluster,
    apply_loan,
    assert_no_holes,
    history,
    report,
)

pytestmark = pytest.mark.process

ROUNDS = 3
RACERS = 32  # split evenly across the two servers, all in flight together
TEST_TIMEOUT = 60


Racer = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def race(cluster: Cluster, racer: Racer) -> list[httpx.Response]:
    """Open RACERS/2 connections to each server first, then fire all requests at once."""
    warm = [client.get("/healthz") for client in cluster.clients for _ in range(RACERS // 2)]
    assert all(r.status_code == 200 for r in await asyncio.gather(*warm))
    responses = await asyncio.gather(*(racer(cluster.clients[i % 2], i) for i in range(RACERS)))
    server_errors = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert not server_errors, f"5xx under a race: {server_errors}"
    return list(responses)


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def winner_server(responses: list[httpx.Response], ok: int) -> str:
    (index,) = [i for i, r in enumerate(responses) if r.status_code == ok]
    return "ab"[index % 2]


async def test_concurrent_approvals_across_servers_have_one_winner(cluster: Cluster) -> None:
    client = cluster.clients[0]
    winners: Counter[str] = Counter()
    async with asyncio.timeout(TEST_TIMEOUT):
        for _ in range(ROUNDS):
            loan = await apply_loan(client, cluster.customer)
            loan_id = loan["id"]
            requested = await cluster.clients[1].post(
                f"{API}/agent/loans/{loan_id}/request", headers=cluster.agent.headers
            )
            assert requested.status_code == 200, requested.text
            assert requested.json()["version"] == 2

            async def approve(c: httpx.AsyncClient, _i: int, loan_id: Any = loan_id) -> Any:
                return await c.post(
                    f"{API}/admin/loans/{loan_id}/approve", headers=cluster.admin.headers
                )

            responses = await race(cluster, approve)
            assert statuses(responses) == {200: 1, 409: RACERS - 1}, statuses(responses)
            winners[winner_server(responses, 200)] += 1
            (won,) = [r.json() for r in responses if r.status_code == 200]
            assert (won["status"], won["version"]) == ("approved", 3)
            for lost in (r for r in responses if r.status_code == 409):
                assert lost.headers["content-type"].startswith("application/problem+json")

            events = await history(client, cluster.admin, loan_id)
            current = (
                await client.get(f"{API}/admin/loans/{loan_id}", headers=cluster.admin.headers)
            ).json()
            assert_no_holes(events, current)
            assert [e["action"] for e in events] == ["created", "requested", "approved"]
            assert current["status"] == "approved"
    report(f"approval races: {ROUNDS} x {RACERS} requests, one winner each, won on {winners}")


async def test_concurrent_if_match_edits_across_servers_have_one_winner(cluster: Cluster) -> None:
    client, agent = cluster.clients[0], cluster.agent
    winners: Counter[str] = Counter()
    async with asyncio.timeout(TEST_TIMEOUT):
        for round_ in range(ROUNDS):
            loan = await apply_loan(client, cluster.customer)
            loan_id, version = loan["id"], loan["version"]
            for tenure in range(13, 13 + round_):  # race at versions 1, 2, 3, ...
                edited = await client.patch(
                    f"{API}/agent/loans/{loan_id}",
                    json={"tenure_months": tenure},
                    headers={**agent.headers, "If-Match": f'"{version}"'},
                )
                assert edited.status_code == 200, edited.text
                version = edited.json()["version"]
            before = await history(client, cluster.admin, loan_id)

            def principal_of(i: int) -> str:
                return f"{20000 + 1000 * i}.00"  # each racer a different principal, none 10000

            async def edit(
                c: httpx.AsyncClient, i: int, loan_id: Any = loan_id, version: Any = version
            ) -> httpx.Response:
                return await c.patch(
                    f"{API}/agent/loans/{loan_id}",
                    json={"principal": principal_of(i)},
                    headers={**agent.headers, "If-Match": f'"{version}"'},
                )

            responses = await race(cluster, edit)
            assert statuses(responses) == {200: 1, 412: RACERS - 1}, statuses(responses)
            winners[winner_server(responses, 200)] += 1
            (index,) = [i for i, r in enumerate(responses) if r.status_code == 200]
            won = responses[index].json()
            assert won["principal"] == principal_of(index)
            assert won["version"] == version + 1
            assert responses[index].headers["etag"] == f'"{version + 1}"'

            current = (
                await client.get(f"{API}/agent/loans/{loan_id}", headers=agent.headers)
            ).json()
            assert current["principal"] == principal_of(index)
            assert current["version"] == version + 1
            events = await history(client, cluster.admin, loan_id)
            assert_no_holes(events, current)
            assert events[: len(before)] == before
            new_events = events[len(before) :]
            assert [(e["version"], e["action"]) for e in new_events] == [(version + 1, "edited")]
            assert new_events[0]["snapshot"]["principal"] == principal_of(index)
            assert new_events[0]["changes"]["principal"] == {
                "from": "10000.00",
                "to": principal_of(index),
            }
    report(f"If-Match edit races: {ROUNDS} x {RACERS} requests, one winner each, won on {winners}")


async def test_concurrent_idempotent_applications_across_servers_create_one_loan(
    cluster: Cluster,
) -> None:
    client, customer = cluster.clients[0], cluster.customer
    outcomes: Counter[int] = Counter()
    async with asyncio.timeout(TEST_TIMEOUT):
        for round_ in range(ROUNDS):
            key = f"race-{round_}-{uuid.uuid4()}"
            body = {"loan_type": "car_loan", "principal": f"{15000 + round_}", "tenure_months": 24}
            before = await own_loan_ids(client, customer)

            async def apply(
                c: httpx.AsyncClient, _i: int, key: str = key, body: Any = body
            ) -> httpx.Response:
                return await c.post(
                    f"{API}/customer/loans",
                    json=body,
                    headers={**customer.headers, "Idempotency-Key": key},
                )

            responses = await race(cluster, apply)
            counts = statuses(responses)
            outcomes.update(counts)
            assert set(counts) <= {201, 409}, counts
            assert counts[201] >= 1, counts
            ids = {r.json()["id"] for r in responses if r.status_code == 201}
            assert len(ids) == 1, f"one Idempotency-Key created several loans: {ids}"
            for busy in (r for r in responses if r.status_code == 409):
                assert "in progress" in busy.json()["detail"], busy.text

            created = (await own_loan_ids(client, customer)) - before
            assert created == ids, (created, ids)
            (loan_id,) = ids
            # A later repeat replays the first response and creates nothing.
            again = await apply(cluster.clients[1], 0)
            assert again.status_code == 201, again.text
            assert again.json()["id"] == loan_id
            assert again.headers.get("idempotent-replayed") == "true"
            assert await own_loan_ids(client, customer) - before == ids
            events = await history(client, cluster.admin, loan_id)
            assert [(e["version"], e["action"]) for e in events] == [(1, "created")]
    report(f"idempotency races: {ROUNDS} x {RACERS} requests, one loan each, statuses {outcomes}")


async def own_loan_ids(client: httpx.AsyncClient, customer: Caller) -> set[int]:
    ids: set[int] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            f"{API}/customer/loans", params=params, headers=customer.headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        ids.update(item["id"] for item in page["items"])
        if not (cursor := page["next_cursor"]):
            return ids
