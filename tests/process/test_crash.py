"""Crash safety: SIGKILL the server in the middle of a write load, restart it, and prove that
every change acknowledged with a 2xx survived and that the history is still whole.

A 2xx is only sent after the request's transaction committed (see `WriteSessionDep`), and a loan
change and its event commit together, so after any crash: every acknowledged loan and edit
exists, every loan has its `created` event, and each loan's event versions are exactly
1..loans.version.
"""

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest

from tests.process.conftest import (
    ADMIN,
    API,
    Caller,
    PgDatabase,
    Server,
    ServerFactory,
    assert_no_holes,
    children_of,
    client_for,
    history,
    login,
    new_agent,
    new_customer,
    report,
    session_alive,
)

pytestmark = pytest.mark.process

WORKERS = 8
CYCLES = 3  # load, SIGKILL, restart, verify
LOAD_SECONDS = (1.2, 1.8)  # before each kill: ~4.5 s of load in all
API_SAMPLE = 25  # acknowledged loans whose history is also read through the API
TEST_TIMEOUT = 90


@dataclass
class Known:
    """What a worker last saw acknowledged for one of its loans."""

    version: int
    principal: Decimal


@dataclass
class Ledger:
    applied: dict[int, Decimal] = field(default_factory=dict)  # loan id -> principal at v1
    edits: dict[tuple[int, int], Decimal] = field(default_factory=dict)  # (loan, version)
    failures: Counter[str] = field(default_factory=Counter)  # transport errors by kind
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        return len(self.applied) + len(self.edits)


class Worker:
    """Applies as a customer and edits its own loans as an agent, with If-Match."""

    def __init__(self, index: int, customer: Caller, agent: Caller, ledger: Ledger) -> None:
        self.customer, self.agent, self.ledger = customer, agent, ledger
        self.rng = random.Random(index)
        self.own: dict[int, Known] = {}

    async def run(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """Write until stopped or until the server goes away (the first transport error)."""
        while not stop.is_set():
            try:
                if not self.own or self.rng.random() < 0.35:
                    await self.apply(client)
                else:
                    await self.edit(client)
            except httpx.TransportError as exc:
                # In flight when the server died (or refused after it): expected, tolerated.
                kind = "refused" if isinstance(exc, httpx.ConnectError) else "in_flight"
                self.ledger.failures[kind] += 1
                return

    def _check(self, response: httpx.Response, what: str) -> bool:
        self.ledger.statuses[f"{what} {response.status_code}"] += 1
        if response.status_code >= 500:
            self.ledger.server_errors.append(f"{what}: {response.status_code} {response.text}")
        return response.is_success

    async def apply(self, client: httpx.AsyncClient) -> None:
        principal = Decimal(self.rng.randrange(1000, 900000))
        body = {"loan_type": "personal_loan", "principal": str(principal), "tenure_months": 36}
        response = await client.post(
            f"{API}/customer/loans", json=body, headers=self.customer.headers
        )
        if self._check(response, "apply"):
            loan = response.json()
            assert loan["version"] == 1, loan
            self.ledger.applied[loan["id"]] = Decimal(loan["principal"])
            self.own[loan["id"]] = Known(1, Decimal(loan["principal"]))
        elif response.status_code != 201:
            self.ledger.unexpected.append(f"apply: {response.status_code} {response.text}")

    async def edit(self, client: httpx.AsyncClient) -> None:
        loan_id = self.rng.choice(list(self.own))
        known = self.own[loan_id]
        principal = known.principal
        while principal == known.principal:  # a real change, never a no-op PATCH
            principal = Decimal(self.rng.randrange(1000, 900000))
        response = await client.patch(
            f"{API}/agent/loans/{loan_id}",
            json={"principal": str(principal)},
            headers={**self.agent.headers, "If-Match": f'"{known.version}"'},
        )
        if self._check(response, "edit"):
            loan = response.json()
            assert loan["version"] == known.version + 1, (known, loan)
            self.ledger.edits[(loan_id, loan["version"])] = Decimal(loan["principal"])
            self.own[loan_id] = Known(loan["version"], Decimal(loan["principal"]))
        elif response.status_code == 412:
            # An edit in flight at the crash committed unacknowledged: read the loan again.
            current = await client.get(f"{API}/agent/loans/{loan_id}", headers=self.agent.headers)
            assert current.status_code == 200, current.text
            loan = current.json()
            assert loan["version"] > known.version, (known, loan)
            self.own[loan_id] = Known(loan["version"], Decimal(loan["principal"]))
        else:
            self.ledger.unexpected.append(f"edit: {response.status_code} {response.text}")


@dataclass
class Checked:
    loans: int
    events: int
    unacknowledged_loans: int  # committed, but the client never heard back
    unacknowledged_events: int


async def verify_database(database: PgDatabase, ledger: Ledger) -> Checked:
    """Every acknowledged write exists; no loan lacks its `created` event; no version holes."""
    conn = await database.connect()
    try:
        loans = {r["id"]: r for r in await conn.fetch("SELECT id, version, principal FROM loans")}
        events = {
            (r["loan_id"], r["version"]): r
            for r in await conn.fetch(
                "SELECT loan_id, version, action, snapshot::text AS snapshot FROM loan_events"
            )
        }
        without_created = await conn.fetch(
            """
            SELECT l.id FROM loans l
            LEFT JOIN loan_events e
              ON e.loan_id = l.id AND e.version = 1 AND e.action = 'created'
            WHERE e.id IS NULL
            """
        )
        holes = await conn.fetch(
            """
            SELECT l.id, l.version, count(e.id) AS events,
                   min(e.version) AS first, max(e.version) AS last
            FROM loans l LEFT JOIN loan_events e ON e.loan_id = l.id
            GROUP BY l.id, l.version
            HAVING count(e.id) <> l.version OR min(e.version) <> 1 OR max(e.version) <> l.version
                OR count(DISTINCT e.version) <> count(e.id)
            """
        )
        orphans = await conn.fetch(
            "SELECT e.loan_id, e.version FROM loan_events e "
            "LEFT JOIN loans l ON l.id = e.loan_id WHERE l.id IS NULL"
        )
    finally:
        await conn.close()

    lost_loans = sorted(set(ledger.applied) - set(loans))
    assert not lost_loans, f"acknowledged applications lost after a crash: {lost_loans}"
    assert not [dict(r) for r in without_created], (
        f"loans without a created event: {without_created}"
    )
    assert not [dict(r) for r in holes], f"version holes: {[dict(r) for r in holes]}"
    assert not orphans, f"events of missing loans: {orphans}"

    for loan_id, principal in ledger.applied.items():
        created = events[(loan_id, 1)]
        assert created["action"] == "created"
        assert Decimal(json.loads(created["snapshot"])["principal"]) == principal, loan_id
    lost_edits = sorted(key for key in ledger.edits if key not in events)
    assert not lost_edits, f"acknowledged edits lost after a crash: {lost_edits}"
    latest: dict[int, tuple[int, Decimal]] = {}
    for (loan_id, version), principal in ledger.edits.items():
        event = events[(loan_id, version)]
        assert event["action"] == "edited", (loan_id, version, event["action"])
        assert Decimal(json.loads(event["snapshot"])["principal"]) == principal, (loan_id, version)
        if version > latest.get(loan_id, (0, principal))[0]:
            latest[loan_id] = (version, principal)
    for loan_id, (version, principal) in latest.items():
        row = loans[loan_id]
        assert row["version"] >= version, (loan_id, row["version"], version)
        if row["version"] == version:  # nothing committed after the acknowledged edit
            assert row["principal"] == principal, (loan_id, row["principal"], principal)

    acknowledged_events = len(ledger.applied) + len(ledger.edits)
    return Checked(
        loans=len(loans),
        events=len(events),
        unacknowledged_loans=len(set(loans) - set(ledger.applied)),
        unacknowledged_events=len(events) - acknowledged_events,
    )


async def verify_api(client: httpx.AsyncClient, admin: Caller, ledger: Ledger) -> int:
    """The same through the API, for a sample of acknowledged loans: histories are whole."""
    edited = sorted({loan_id for loan_id, _ in ledger.edits})
    sample = edited[-API_SAMPLE:] + sorted(ledger.applied)[:5]
    for loan_id in sample:
        loan = await client.get(f"{API}/admin/loans/{loan_id}", headers=admin.headers)
        assert loan.status_code == 200, loan.text
        events = await history(client, admin, loan_id)
        assert_no_holes(events, loan.json())
        for event in events:
            if (loan_id, event["version"]) in ledger.edits:
                assert event["action"] == "edited", event
                principal = ledger.edits[(loan_id, event["version"])]
                assert Decimal(event["snapshot"]["principal"]) == principal
    return len(sample)


async def setup_users(server: Server) -> tuple[Caller, list[Caller], list[Caller]]:
    async with client_for(server.base_url) as client:
        admin = await login(client, ADMIN["username"], ADMIN["password"])
        suffix = uuid.uuid4().hex[:6]
        customers = [await new_customer(client, f"crash_c{i}_{suffix}") for i in range(4)]
        agents = [await new_agent(client, admin, f"crash_a{i}_{suffix}") for i in range(2)]
    return admin, customers, agents


def connection_refused(server: Server) -> bool:
    try:
        httpx.get(f"{server.base_url}/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    return False


async def test_sigkill_mid_load_loses_no_acknowledged_write(start_server: ServerFactory) -> None:
    started = time.monotonic()
    server = start_server("crash", migrate=True)
    database = server.database
    admin, customers, agents = await setup_users(server)
    ledger = Ledger()
    workers = [
        Worker(i, customers[i % len(customers)], agents[i % len(agents)], ledger)
        for i in range(WORKERS)
    ]
    rng = random.Random(1234)
    killed: list[int] = []
    checked = Checked(0, 0, 0, 0)
    api_checked = 0
    async with asyncio.timeout(TEST_TIMEOUT):
        for cycle in range(CYCLES):
            stop = asyncio.Event()
            async with client_for(server.base_url, timeout=10) as client:
                tasks = [asyncio.create_task(w.run(client, stop)) for w in workers]
                try:
                    await asyncio.sleep(rng.uniform(*LOAD_SECONDS))
                    done = [t.exception() for t in tasks if t.done()]
                    assert not done, f"workers stopped before the kill: {done}"
                    # --workers 1: uvicorn serves in the `loanapi serve` process itself.
                    assert children_of(server.pid) == []
                    killed.append(server.sigkill())
                    # Each worker stops at its first transport error: the server is gone.
                    async with asyncio.timeout(15):
                        await asyncio.gather(*tasks)
                finally:
                    stop.set()
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
            assert connection_refused(server), "something still serves after SIGKILL"
            # Nothing of the killed server's session survived (no orphaned worker).
            assert session_alive(killed[-1]) == [], session_alive(killed[-1])

            # Restart on the same database; alternately with and without migrating first.
            server.start(migrate=cycle % 2 == 1)
            checked = await verify_database(database, ledger)
            async with client_for(server.base_url) as client:
                api_checked += await verify_api(client, admin, ledger)
                assert (await client.get("/readyz")).status_code == 200

    assert not ledger.server_errors, f"5xx under load: {ledger.server_errors[:5]}"
    assert not ledger.unexpected, f"unexpected answers: {ledger.unexpected[:5]}"
    assert ledger.applied, ledger.statuses
    assert ledger.edits, ledger.statuses
    assert ledger.failures["in_flight"] >= 1, "no request was in flight at any kill"
    report(
        f"crash safety: {len(killed)} SIGKILLs survived (pids {killed}) in "
        f"{time.monotonic() - started:.1f}s (server starts: "
        f"{', '.join(f'{s:.1f}s' for s in server.start_seconds)}); "
        f"acknowledged writes {ledger.acknowledged} "
        f"({len(ledger.applied)} applications, {len(ledger.edits)} edits), all verified; "
        f"transport failures {dict(ledger.failures)}; answers {dict(ledger.statuses)}; "
        f"after the last restart: {checked.loans} loans and {checked.events} events checked "
        f"({checked.unacknowledged_loans} loans and {checked.unacknowledged_events} events "
        f"committed but never acknowledged); {api_checked} histories read through the API"
    )
