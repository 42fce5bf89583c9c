"""Servicing races across two real `loanapi serve` processes sharing one PostgreSQL database.

A servicing change locks the loan's row (SELECT ... FOR UPDATE) and then does the conditional
UPDATE on (id, version), so concurrent repayments, reversals and write-offs of one loan queue
behind each other wherever they land: each sees the loan as the previous one left it. Nothing is
lost or counted twice, the loan is never paid past its payoff, and no change answers a 5xx.

The loan of the repayment race is disbursed 400 days back, so all of its 12 installments are due
and its payoff today is all of its principal and interest: every accepted repayment lowers the
payoff by exactly its amount (no interest paid in advance, none waived). With
A = payoff / 10.5 (rounded down) and R = payoff - 10 A (so 0 < R < A), sixteen racers first pay
A each: in any order exactly ten fit and six are refused with 422 (the detail states R). Sixteen
racers then pay R each: exactly one closes the loan, the fifteen others find it closed (409).
"""

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
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

RACERS = 16  # split evenly across the two servers, all in flight together
TEST_TIMEOUT = 30
CENT = Decimal("0.01")


def repayer(cluster: Cluster, i: int) -> tuple[str, Caller]:
    """Racer i's role: agents and admins both post repayments, on both servers."""
    return ("agent", cluster.agent) if (i // 2) % 2 == 0 else ("admin", cluster.admin)


def money(value: Any) -> Decimal:
    return Decimal(str(value))


def utc_today() -> str:
    return datetime.now(UTC).date().isoformat()


async def active_loan(cluster: Cluster, *, disbursed_days_ago: int) -> dict[str, Any]:
    """A home loan of 10000 over 12 months, requested, approved and disbursed (back-dated)."""
    client, admin = cluster.clients[0], cluster.admin
    loan = await apply_loan(client, cluster.customer)
    requested = await cluster.clients[1].post(
        f"{API}/agent/loans/{loan['id']}/request", headers=cluster.agent.headers
    )
    assert requested.status_code == 200, requested.text
    approved = await client.post(f"{API}/admin/loans/{loan['id']}/approve", headers=admin.headers)
    assert approved.status_code == 200, approved.text
    disbursed_on = (datetime.now(UTC).date() - timedelta(days=disbursed_days_ago)).isoformat()
    disbursed = await client.post(
        f"{API}/admin/loans/{loan['id']}/disburse",
        json={"disbursed_on": disbursed_on},
        headers=admin.headers,
    )
    assert disbursed.status_code == 200, disbursed.text
    body = disbursed.json()
    assert (body["status"], body["version"], body["disbursed_on"]) == ("active", 4, disbursed_on)
    return dict(body)


async def get_loan(cluster: Cluster, loan_id: int) -> dict[str, Any]:
    response = await cluster.clients[1].get(
        f"{API}/admin/loans/{loan_id}", headers=cluster.admin.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def payoff_total(cluster: Cluster, loan_id: int) -> Decimal:
    response = await cluster.clients[0].get(
        f"{API}/admin/loans/{loan_id}/payoff", headers=cluster.admin.headers
    )
    assert response.status_code == 200, response.text
    return money(response.json()["total"])


async def stored_repayments(cluster: Cluster, loan_id: int) -> list[dict[str, Any]]:
    """Every repayment of the loan from the reconciliation list (all pages), reversed included."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"loan_id": loan_id, "limit": 50}
        if cursor:
            params["cursor"] = cursor
        response = await cluster.clients[1].get(
            f"{API}/admin/repayments", params=params, headers=cluster.admin.headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["items"])
        if not (cursor := page["next_cursor"]):
            return found


Racer = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def race(cluster: Cluster, racer: Racer) -> list[httpx.Response]:
    """Open RACERS/2 connections to each server first, then fire all requests at once."""
    warm = [client.get("/healthz") for client in cluster.clients for _ in range(RACERS // 2)]
    assert all(r.status_code == 200 for r in await asyncio.gather(*warm))
    responses = await asyncio.gather(*(racer(cluster.client(i), i) for i in range(RACERS)))
    server_errors = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert not server_errors, f"5xx under a race: {server_errors}"
    for response in responses:
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
    return list(responses)


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def repaid_ids(events: list[dict[str, Any]]) -> list[int]:
    return [e["changes"]["repayment"]["to"]["id"] for e in events if e["action"] == "repaid"]


async def test_concurrent_repayments_across_servers_never_overpay(cluster: Cluster) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        loan = await active_loan(cluster, disbursed_days_ago=400)
        loan_id, principal = loan["id"], money(loan["principal"])
        start_payoff = await payoff_total(cluster, loan_id)
        # Everything is due: the payoff is the whole schedule, principal and interest.
        assert start_payoff == money(loan["total_payable"]), (start_payoff, loan)
        big = (start_payoff / Decimal("10.5")).quantize(CENT, rounding=ROUND_DOWN)
        rest = start_payoff - 10 * big
        assert 0 < rest < big, (start_payoff, big, rest)

        def repay(amount: Decimal, tag: str) -> Racer:
            async def racer(c: httpx.AsyncClient, i: int) -> httpx.Response:
                role, caller = repayer(cluster, i)
                return await c.post(
                    f"{API}/{role}/loans/{loan_id}/repayments",
                    json={"amount": f"{amount:.2f}", "reference": f"{tag}-{i}"},
                    headers=caller.headers,
                )

            return racer

        # Round 1: sixteen of `big`. Whatever the order, ten fit; then only `rest` is left.
        first = await race(cluster, repay(big, "big"))
        assert statuses(first) == {201: 10, 422: RACERS - 10}, statuses(first)
        for refused in (r for r in first if r.status_code == 422):
            expected = f"exceeds the payoff amount on {utc_today()}: {rest:.2f}"
            assert expected in refused.text, refused.text
        middle = await get_loan(cluster, loan_id)
        assert middle["status"] == "active", middle
        assert await payoff_total(cluster, loan_id) == rest

        # Round 2: sixteen of `rest`. Exactly one closes the loan; the others find it closed.
        second = await race(cluster, repay(rest, "rest"))
        assert statuses(second) == {201: 1, 409: RACERS - 1}, statuses(second)
        for refused in (r for r in second if r.status_code == 409):
            assert "closed" in refused.json()["detail"], refused.text

        accepted = {
            (tag, i): r.json()
            for tag, responses in (("big", first), ("rest", second))
            for i, r in enumerate(responses)
            if r.status_code == 201
        }
        assert sum(money(body["amount"]) for body in accepted.values()) == start_payoff
        for (tag, i), body in accepted.items():
            assert (body["loan_id"], body["reference"], body["paid_on"], body["reversed"]) == (
                loan_id,
                f"{tag}-{i}",
                utc_today(),
                False,
            )
            assert money(body["amount"]) == (big if tag == "big" else rest)
            parts = money(body["principal"]) + money(body["interest"]) + money(body["penalty"])
            assert parts == money(body["amount"]), body
            assert body["actor_id"] == repayer(cluster, i)[1].id
        accepted_ids = sorted(body["id"] for body in accepted.values())

        # None lost, none duplicated: the stored repayments are exactly the 201s.
        stored = await stored_repayments(cluster, loan_id)
        assert not any(r["reversed"] for r in stored), stored
        assert sorted(r["id"] for r in stored) == accepted_ids
        assert sum(money(r["amount"]) for r in stored) == start_payoff
        # Never overpaid: the principal paid is the principal, and the loan is closed today.
        assert sum(money(r["principal"]) for r in stored) == principal
        current = await get_loan(cluster, loan_id)
        assert current["status"] == "closed", current
        assert (current["principal_outstanding"], current["closed_on"]) == ("0.00", utc_today())
        assert await payoff_total(cluster, loan_id) == 0

        # One `repaid` per 201, then the one `closed`; versions without a hole.
        events = await history(cluster.clients[0], cluster.admin, loan_id)
        assert_no_holes(events, current)
        actions = [e["action"] for e in events]
        assert actions == [
            "created",
            "requested",
            "approved",
            "disbursed",
            *["repaid"] * 11,
            "closed",
        ], actions
        assert sorted(repaid_ids(events)) == accepted_ids
        assert repaid_ids(events)[-1] == max(accepted_ids)  # the closing one, stored last
        assert events[-1]["snapshot"]["status"] == "closed"
        assert events[-1]["snapshot"]["principal_outstanding"] == "0.00"
        # Each repayment saw what the one before left: the outstanding principal only falls.
        outstanding = [
            money(e["snapshot"]["principal_outstanding"]) for e in events if e["action"] == "repaid"
        ]
        assert outstanding == sorted(outstanding, reverse=True), outstanding
        assert len(set(outstanding)) == len(outstanding), outstanding
    report(
        f"repayment race: 2 x {RACERS} repayments on one loan (payoff {start_payoff}): "
        f"{dict(statuses(first))} then {dict(statuses(second))}, closed"
    )


async def test_write_off_racing_repayments_keeps_what_was_paid_before_it(
    cluster: Cluster,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        loan = await active_loan(cluster, disbursed_days_ago=400)
        loan_id, principal = loan["id"], money(loan["principal"])
        writer = RACERS // 2  # on the first server, among the repayments

        async def racer(c: httpx.AsyncClient, i: int) -> httpx.Response:
            if i == writer:
                return await c.post(
                    f"{API}/admin/loans/{loan_id}/write-off",
                    json={"reason": "Customer unreachable"},
                    headers=cluster.admin.headers,
                )
            role, caller = repayer(cluster, i)
            return await c.post(
                f"{API}/{role}/loans/{loan_id}/repayments",
                json={"amount": "100.00", "reference": f"wo-race-{i}"},
                headers=caller.headers,
            )

        responses = await race(cluster, racer)
        assert responses[writer].status_code == 200, responses[writer].text
        repayments = [r for i, r in enumerate(responses) if i != writer]
        counts = statuses(repayments)
        assert set(counts) <= {201, 409}, counts
        for refused in (r for r in repayments if r.status_code == 409):
            assert "written_off" in refused.json()["detail"], refused.text
        accepted = [r.json() for r in repayments if r.status_code == 201]

        # Every accepted repayment is stored and came before the write-off; none after it.
        stored = await stored_repayments(cluster, loan_id)
        assert sorted(r["id"] for r in stored) == sorted(b["id"] for b in accepted)
        events = await history(cluster.clients[0], cluster.admin, loan_id)
        current = await get_loan(cluster, loan_id)
        assert_no_holes(events, current)
        actions = [e["action"] for e in events]
        assert actions == [
            "created",
            "requested",
            "approved",
            "disbursed",
            *["repaid"] * len(accepted),
            "written_off",
        ], actions
        assert sorted(repaid_ids(events)) == sorted(b["id"] for b in accepted)

        # The write-off kept exactly what the accepted repayments left outstanding.
        written_off = responses[writer].json()
        paid_principal = sum((money(r["principal"]) for r in stored), Decimal("0.00"))
        assert current["status"] == "written_off"
        assert current["version"] == written_off["version"] == len(events)
        assert money(current["written_off_principal"]) == principal - paid_principal
        assert current["written_off_principal"] == current["principal_outstanding"]
        assert current["written_off_on"] == utc_today()
        assert events[-1]["snapshot"]["written_off_principal"] == current["written_off_principal"]
    report(
        f"write-off race: 1 write-off against {RACERS - 1} repayments, "
        f"{len(accepted)} repayments before it, the rest 409"
    )


async def test_concurrent_reversals_of_a_closing_repayment_have_one_winner(
    cluster: Cluster,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        loan = await active_loan(cluster, disbursed_days_ago=400)
        loan_id = loan["id"]
        total = await payoff_total(cluster, loan_id)
        paid = await cluster.clients[1].post(
            f"{API}/agent/loans/{loan_id}/repayments",
            json={"amount": f"{total:.2f}"},
            headers=cluster.agent.headers,
        )
        assert paid.status_code == 201, paid.text
        repayment_id = paid.json()["id"]
        assert (await get_loan(cluster, loan_id))["status"] == "closed"

        async def reverse(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.post(
                f"{API}/admin/loans/{loan_id}/repayments/{repayment_id}/reverse",
                json={"reason": f"bounced ({i})"},
                headers=cluster.admin.headers,
            )

        responses = await race(cluster, reverse)
        assert statuses(responses) == {200: 1, 409: RACERS - 1}, statuses(responses)
        (index,) = [i for i, r in enumerate(responses) if r.status_code == 200]
        won = responses[index].json()
        assert (won["id"], won["reversed"], won["reason"]) == (
            repayment_id,
            True,
            f"bounced ({index})",
        )
        for lost in (r for r in responses if r.status_code == 409):
            assert "already reversed" in lost.json()["detail"], lost.text

        stored = await stored_repayments(cluster, loan_id)
        assert [(r["id"], r["reversed"], r["reason"]) for r in stored] == [
            (repayment_id, True, f"bounced ({index})")
        ]
        # Reopened: owed again exactly what the reversed repayment had paid.
        current = await get_loan(cluster, loan_id)
        assert (current["status"], current["closed_on"]) == ("active", None)
        assert current["principal_outstanding"] == loan["principal"]
        assert await payoff_total(cluster, loan_id) == total
        events = await history(cluster.clients[0], cluster.admin, loan_id)
        assert_no_holes(events, current)
        actions = [e["action"] for e in events]
        assert actions[4:] == ["repaid", "closed", "repayment_reversed", "reopened"], actions
        assert events[-2]["reason"] == f"bounced ({index})"
    report(f"reversal race: {RACERS} reversals of one closing repayment, one winner, reopened")
