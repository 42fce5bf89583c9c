"""Close of business by `loanapi cob` processes on PostgreSQL (issue 14): twice for one date, two
runs at once, a run killed halfway: each ends exactly where one run ends.

The book: twenty loans made through a real server's API (applied, requested, approved, disbursed
back-dated with late fees on their products, some repaid), stored as a replay gives them as of
an earlier day S (as tests/loans/test_close_of_business.py's `_rewind` does), then cloned with
SQL, their repayments and events with them, to ~12,000 active loans, several batches of
close_of_business.BATCH. Clones of consistent loans are consistent, and interleaved ids put
every kind of loan into every batch. Closing day D (yesterday) records new late fees and moves
buckets on many of them.

That book is the template of the databases the runs work on: A gets one run (the reference,
its originals checked against the ledger's replay, its clones against their originals) and then
a second one, B two runs at once, C a run killed halfway and then a full one. Each must end with
A's loans (every stored field close of business writes) and A's `penalty_charged` events.
A fourth copy holds one loan's row (as a servicing change does) while a run passes: the run
comes back for it and waits, so it too is closed for the day.
"""

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from loanapi.loans import ledger
from loanapi.loans.models import Loan
from loanapi.loans.records import LoanRecord
from loanapi.loans.servicing import _derived, repayments_of, terms_of
from tests.process.conftest import (
    ADMIN,
    API,
    CLI,
    Caller,
    PgDatabase,
    ServerFactory,
    _connect,
    apply_loan,
    client_for,
    login,
    new_agent,
    new_customer,
    report,
    require_postgres,
    server_env,
)

pytestmark = pytest.mark.process

ORIGINALS = 20  # made through the API
CLONES = 600  # copies of each: 12,020 active loans in all
STRIDE = 100  # clone g of loan i gets id g * STRIDE + i (the originals' ids are below STRIDE)
TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=1)  # the day closed
LAST_PAYMENT = TODAY - timedelta(days=70)  # no repayment after this
LATEST_S = TODAY - timedelta(days=40)  # loans are stored as of S in [last change, this]
RUN_TIMEOUT = 60
SUMMARY = re.compile(
    r"closed (\S+): (\d+) loans, (\d+) late fees recorded, (\d+) bucket changes, ([\d.]+) s"
)
# Every stored field close of business writes, per active loan.
STATE = (
    "SELECT id, version, penalty_outstanding, arrears, dpd, bucket, next_due_on, "
    "next_due_amount, fees_charged, fees_recorded, cob_date, serviced_on, "
    "principal_outstanding, interest_outstanding "
    "FROM loans WHERE status = 'active' ORDER BY id"
)
EVENTS = (
    "SELECT loan_id, version, actor_id, actor_role, changes, snapshot, reason FROM loan_events "
    "WHERE action = 'penalty_charged' ORDER BY loan_id, version"
)
# Loans whose events are not exactly versions 1..loans.version.
HOLES = """
SELECT l.id, l.version, e.n, e.low, e.high FROM loans l
LEFT JOIN (SELECT loan_id, count(*) AS n, min(version) AS low, max(version) AS high
           FROM loan_events GROUP BY loan_id) e ON e.loan_id = l.id
WHERE e.n IS DISTINCT FROM l.version OR e.low <> 1 OR e.high <> l.version
LIMIT 5
"""
PRODUCT_FEES = {  # late fee and grace days, set before any loan is disbursed
    "home_loan": ("25.00", 5),
    "personal_loan": ("7.35", 0),
    "car_loan": ("12.50", 3),
    "education_loan": ("25.00", 30),
}

State = dict[int, tuple[Any, ...]]
Event = tuple[Any, ...]


# --- the book ----------------------------------------------------------------------------------


async def _set_late_fees(client: httpx.AsyncClient, admin: Caller) -> dict[str, dict[str, Any]]:
    listed = await client.get(f"{API}/loan-products")
    assert listed.status_code == 200, listed.text
    products = {}
    for product in listed.json():
        fee, grace = PRODUCT_FEES[product["loan_type"]]
        body = {k: v for k, v in product.items() if k != "loan_type"}
        body |= {"late_fee": fee, "grace_days": grace}
        put = await client.put(
            f"{API}/admin/loan-products/{product['loan_type']}", json=body, headers=admin.headers
        )
        assert put.status_code == 200, put.text
        assert (put.json()["late_fee"], put.json()["grace_days"]) == (fee, grace)
        products[product["loan_type"]] = put.json()
    return products


async def _disbursed_loan(
    client: httpx.AsyncClient,
    customer: Caller,
    agent: Caller,
    admin: Caller,
    products: dict[str, dict[str, Any]],
    rng: random.Random,
) -> int:
    loan_type = rng.choice(sorted(products))
    product = products[loan_type]
    low = int(Decimal(product["min_principal"]))
    high = min(int(Decimal(product["max_principal"])), max(low, 60000))
    tenures = [
        t
        for t in (1, 2, 3, 6, 12, 18, 24, 36)
        if product["min_tenure_months"] <= t <= product["max_tenure_months"]
    ]
    loan = await apply_loan(
        client,
        customer,
        loan_type=loan_type,
        principal=str(rng.randrange(low, high + 1)),
        tenure_months=rng.choice(tenures),
    )
    loan_id = int(loan["id"])
    for path, caller in (("agent/loans/{}/request", agent), ("admin/loans/{}/approve", admin)):
        done = await client.post(f"{API}/{path.format(loan_id)}", headers=caller.headers)
        assert done.status_code == 200, done.text
    disbursed_on = TODAY - timedelta(days=rng.randrange(120, 800))
    recent = rng.random() < 0.2  # first due after D: current, no fees
    if recent:
        disbursed_on = LATEST_S - timedelta(days=rng.randrange(0, 15))
    elif rng.random() < 0.3:  # month ends, where the calendar arithmetic clamps
        month_end = date(disbursed_on.year, disbursed_on.month, 1) - timedelta(days=1)
        disbursed_on = month_end - timedelta(days=rng.randrange(0, 3))
    disbursement = {"disbursed_on": disbursed_on.isoformat()}
    if recent:
        disbursement["first_due_on"] = ledger.add_months(disbursed_on, 2).isoformat()
    elif rng.random() < 0.4:
        first = disbursed_on + timedelta(days=rng.randrange(1, 55))
        disbursement["first_due_on"] = min(first, ledger.add_months(disbursed_on, 2)).isoformat()
    disbursed = await client.post(
        f"{API}/admin/loans/{loan_id}/disburse", json=disbursement, headers=admin.headers
    )
    assert disbursed.status_code == 200, disbursed.text
    assert Decimal(disbursed.json()["late_fee"]) > 0, disbursed.json()
    paid_on = disbursed_on
    ahead = rng.random() < 0.2  # one large early repayment: ahead of schedule for a while
    for _ in range(rng.randrange(0, 7) if not ahead else 1):
        paid_on += timedelta(days=rng.randrange(0, 80))
        if paid_on > LAST_PAYMENT:
            break
        quote = await client.get(
            f"{API}/admin/loans/{loan_id}/payoff?on={paid_on.isoformat()}", headers=admin.headers
        )
        assert quote.status_code == 200, quote.text
        total = Decimal(quote.json()["total"])
        amount = min(total - Decimal("0.01"), Decimal(rng.randrange(100, 300000)) / 100)
        if ahead:
            amount = (total * Decimal("0.8")).quantize(Decimal("0.01"))
        if amount <= 0:
            break
        paid = await client.post(
            f"{API}/agent/loans/{loan_id}/repayments",
            json={"amount": str(amount), "paid_on": paid_on.isoformat()},
            headers=agent.headers,
        )
        assert paid.status_code == 201, paid.text
    return loan_id


async def _rewind(session: AsyncSession, loan_id: int, rng: random.Random, index: int) -> None:
    """Store the loan as its replay gives it as of a day S after its last change and before D
    (nothing happened to it since), some of its fees not yet recorded, some never closed."""
    row = (await session.execute(select(Loan.__table__).where(Loan.id == loan_id))).mappings()
    loan = LoanRecord.of(row.one())
    repayments = await repayments_of(session, loan_id)
    assert loan.disbursed_on is not None
    start = max([loan.disbursed_on, *(r.paid_on for r in repayments)])
    served = start + timedelta(days=rng.randrange(0, (LATEST_S - start).days + 1))
    replayable = [ledger.Repayment(r.id, r.paid_on, r.amount, r.reversed) for r in repayments]
    book = ledger.replay(terms_of(loan), replayable, served)
    assert book.closed_on is None, (loan_id, served)
    values = _derived(book)
    values["fees_recorded"] = rng.randrange(0, len(book.fees) + 1)
    values["cob_date"] = None if index % 2 else served  # never closed, or last closed on S
    await session.execute(update(Loan).where(Loan.id == loan_id).values(values))


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = $1 AND column_name <> 'id' "
        "ORDER BY ordinal_position",
        table,
    )
    return [f'"{row["column_name"]}"' for row in rows]


async def _clone(conn: asyncpg.Connection) -> None:
    """CLONES copies of every original loan, with its repayments and events, in one
    transaction; the sequences then continue after the highest id."""
    loans = await _columns(conn, "loans")
    repayments = [c for c in await _columns(conn, "repayments") if c != '"loan_id"']
    events = [c for c in await _columns(conn, "loan_events") if c != '"loan_id"']
    series = f"generate_series(1, {CLONES}) AS g"
    async with conn.transaction():
        await conn.execute(
            f"INSERT INTO loans (id, {', '.join(loans)}) "
            f"SELECT g * {STRIDE} + o.id, {', '.join('o.' + c for c in loans)} "
            f"FROM loans o CROSS JOIN {series} WHERE o.id < {STRIDE} ORDER BY 1"
        )
        for table, columns in (("repayments", repayments), ("loan_events", events)):
            await conn.execute(
                f"INSERT INTO {table} (loan_id, {', '.join(columns)}) "
                f"SELECT g * {STRIDE} + o.loan_id, {', '.join('o.' + c for c in columns)} "
                f"FROM {table} o CROSS JOIN {series} WHERE o.loan_id < {STRIDE} "
                "ORDER BY g, o.id"
            )
        for table in ("loans", "repayments", "loan_events"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    await conn.execute("ANALYZE")


@dataclass
class Book:
    template: PgDatabase
    total: int  # active loans
    before: State  # every loan as stored before any run


async def _state(conn: asyncpg.Connection) -> State:
    return {row["id"]: tuple(row.values()) for row in await conn.fetch(STATE)}


async def _events(conn: asyncpg.Connection) -> list[Event]:
    rows = await conn.fetch(EVENTS)
    return [
        (r["loan_id"], r["version"], r["actor_id"], r["actor_role"])
        + (json.loads(r["changes"]), json.loads(r["snapshot"]), r["reason"])
        for r in rows
    ]


@pytest.fixture(scope="module")
async def book(start_server: ServerFactory, pg_database: PgDatabase) -> Book:
    began = time.monotonic()
    server = start_server("cob-book", migrate=True)
    rng = random.Random(int(os.environ.get("LOANAPI_COB_RUNS_SEED", "20261214")))
    async with client_for(server.base_url) as client:
        admin = await login(client, ADMIN["username"], ADMIN["password"])
        suffix = uuid.uuid4().hex[:8]
        customer = await new_customer(client, f"cob_c_{suffix}")
        agent = await new_agent(client, admin, f"cob_a_{suffix}")
        products = await _set_late_fees(client, admin)
        ids = [
            await _disbursed_loan(client, customer, agent, admin, products, rng)
            for _ in range(ORIGINALS)
        ]
    server.stop()  # a template database must have no other connections
    assert max(ids) < STRIDE, ids
    made = time.monotonic() - began

    engine = create_async_engine(pg_database.url)
    try:
        async with AsyncSession(engine) as session:
            for index, loan_id in enumerate(ids):
                await _rewind(session, loan_id, rng, index)
            await session.commit()
    finally:
        await engine.dispose()
    conn = await pg_database.connect()
    try:
        await _clone(conn)
        before = await _state(conn)
        assert await conn.fetch(HOLES) == []
    finally:
        await conn.close()
    total = len(before)
    assert total == ORIGINALS * (CLONES + 1)
    assert all(row[10] is None or row[10] < DAY for row in before.values())
    report(
        f"cob runs: book of {total} active loans ({ORIGINALS} through the API in {made:.1f} s, "
        f"cloned by SQL) in {time.monotonic() - began:.1f} s"
    )
    return Book(pg_database, total, before)


# --- copies of the book and runs on them -------------------------------------------------------


class Copies:
    """Databases made from the book's (CREATE DATABASE ... TEMPLATE), dropped at the end."""

    def __init__(self, template: PgDatabase) -> None:
        self.template = template
        self.made: dict[str, PgDatabase] = {}

    async def make(self, suffix: str) -> PgDatabase:
        name = f"{self.template.name}_{suffix}"
        url = make_url(self.template.url).set(database=name).render_as_string(hide_password=False)
        conn = await _connect(require_postgres())
        try:
            for attempt in range(50):  # the template's last connections may still be closing
                try:
                    await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template.name}"')
                    break
                except asyncpg.ObjectInUseError:
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.1)
        finally:
            await conn.close()
        self.made[suffix] = PgDatabase(name, url)
        return self.made[suffix]

    async def drop_all(self) -> None:
        conn = await _connect(require_postgres())
        try:
            for made in self.made.values():
                await conn.execute(f'DROP DATABASE IF EXISTS "{made.name}" WITH (FORCE)')
        finally:
            await conn.close()


@dataclass(frozen=True)
class Summary:
    loans: int
    fees: int
    buckets: int
    seconds: float  # as the run reports it
    wall: float  # the whole process, start to exit


class Run:
    """One `loanapi cob --date DAY` process, in a session of its own, output to a file."""

    def __init__(self, database: PgDatabase, workdir: Path, name: str) -> None:
        self.name, self.output = name, workdir / f"{name}.out"
        self.began = time.monotonic()
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [str(CLI), "cob", "--date", DAY.isoformat()],
                env=server_env(database.url),
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    async def finish(self) -> Summary:
        deadline = self.began + RUN_TIMEOUT
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"{self.name} still running:\n{self.text()}"
            await asyncio.sleep(0.02)
        wall = time.monotonic() - self.began
        assert self.process.returncode == 0, f"{self.name} exited {self.process.returncode}:\n"
        found = SUMMARY.search(self.text())
        assert found, f"{self.name} printed no summary:\n{self.text()}"
        assert found[1] == DAY.isoformat(), self.text()
        return Summary(int(found[2]), int(found[3]), int(found[4]), float(found[5]), wall)

    def kill(self) -> None:
        """SIGKILL, no cleanup: its open transaction dies with its connection."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session, nobody else's
            self.process.wait(timeout=10)


class Runs:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Run] = []

    def __call__(self, database: PgDatabase, name: str) -> Run:
        run = Run(database, self.workdir, name)
        self.started.append(run)
        return run


@pytest.fixture(scope="module")
async def copies(book: Book) -> AsyncIterator[Copies]:
    made = Copies(book.template)
    try:
        yield made
    finally:
        await made.drop_all()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    started = Runs(tmp_path_factory.mktemp("cob"))
    try:
        yield started
    finally:
        for run in started.started:
            run.stop()


async def _others(conn: asyncpg.Connection) -> int:
    """Other sessions on this connection's database (a killed run's, until the server notices)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    )


# Sessions waiting for a lock the session $1 holds (asked from a third connection: a session
# sees pg_stat_activity as it was at the start of its transaction).
WAITING = "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))"


@dataclass
class Reference:
    summary: Summary
    state: State
    events: list[Event]


def _replay_fields(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """penalty_outstanding, arrears, dpd, bucket, next_due_on, next_due_amount, fees_charged"""
    return row[2:9]


async def _replayed(database: PgDatabase, ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """What the ledger's replay as of DAY gives these loans."""
    engine = create_async_engine(database.url)
    found = {}
    try:
        async with AsyncSession(engine) as session:
            for loan_id in ids:
                query = select(Loan.__table__).where(Loan.id == loan_id)
                loan = LoanRecord.of((await session.execute(query)).mappings().one())
                records = await repayments_of(session, loan_id)
                repaid = [ledger.Repayment(r.id, r.paid_on, r.amount, r.reversed) for r in records]
                derived = _derived(ledger.replay(terms_of(loan), repaid, DAY))
                names = ("penalty_outstanding", "arrears", "dpd", "bucket", "next_due_on")
                values = [derived[name] for name in names]
                values[3] = values[3].value
                found[loan_id] = (*values, derived["next_due_amount"], derived["fees_charged"])
    finally:
        await engine.dispose()
    return found


def _differences(got: State, expected: State, limit: int = 3) -> list[str]:
    keys = sorted(set(got) | set(expected))
    wrong = [k for k in keys if got.get(k) != expected.get(k)]
    return [f"{len(wrong)} loans differ"] + [
        f"loan {k}: {got.get(k)} != {expected.get(k)}" for k in wrong[:limit]
    ]


@pytest.fixture(scope="module")
async def reference(book: Book, copies: Copies, runs: Runs) -> Reference:
    """One run on copy A: what every other way of closing DAY must end with."""
    database = await copies.make("a")
    summary = await runs(database, "a-first").finish()
    conn = await database.connect()
    try:
        state, events = await _state(conn), await _events(conn)
        assert await conn.fetch(HOLES) == []
    finally:
        await conn.close()
    assert summary.loans == book.total
    assert set(state) == set(book.before)
    assert all(row[10] == DAY and row[11] == DAY for row in state.values())
    fees = {
        k: row[9] - book.before[k][9] for k, row in state.items() if row[9] != book.before[k][9]
    }
    assert summary.fees == sum(fees.values()) > 0
    assert [e[0] for e in events] == sorted(fees)  # one event per loan that had fees
    assert {e[0]: e[4]["late_fees"]["to"]["count"] for e in events} == fees
    moved = sum(row[5] != book.before[k][5] for k, row in state.items())
    assert summary.buckets == moved > 0
    # The originals as their replay as of DAY has them; every clone as its original.
    replayed = await _replayed(database, sorted(k for k in state if k < STRIDE))
    assert {k: _replay_fields(state[k]) for k in replayed} == replayed
    clones = [k for k in state if k >= STRIDE]
    assert [state[k][1:] for k in clones] == [state[k % STRIDE][1:] for k in clones]
    report(
        f"cob runs: one run closed {summary.loans} loans, {summary.fees} late fees on "
        f"{len(events)} loans, {summary.buckets} bucket changes: {summary.seconds:.1f} s "
        f"({summary.wall:.1f} s with process start)"
    )
    return Reference(summary, state, events)


async def _assert_like_reference(database: PgDatabase, reference: Reference) -> None:
    conn = await database.connect()
    try:
        state, events = await _state(conn), await _events(conn)
        assert await conn.fetch(HOLES) == []
    finally:
        await conn.close()
    assert state == reference.state, _differences(state, reference.state)
    assert events == reference.events
    per_loan = Counter(e[0] for e in events)
    assert set(per_loan.values()) == {1}, per_loan.most_common(3)


# --- the tests -----------------------------------------------------------------------------------


async def test_a_second_run_for_the_same_day_changes_nothing(
    copies: Copies, runs: Runs, reference: Reference
) -> None:
    database = copies.made["a"]  # where the reference run closed the day
    again = await runs(database, "a-again").finish()
    assert (again.loans, again.fees, again.buckets) == (0, 0, 0)
    await _assert_like_reference(database, reference)
    report(f"cob runs: a second run for the same day: 0 loans, {again.seconds:.1f} s")


async def test_two_runs_at_once_do_the_work_once(
    book: Book, copies: Copies, runs: Runs, reference: Reference
) -> None:
    """Both processes are held at the door (the test holds an EXCLUSIVE lock on loans, which
    their first SELECT ... FOR UPDATE waits for) and let in together."""
    database = await copies.make("b")
    gate, watch = await database.connect(), await database.connect()
    try:
        held = gate.transaction()
        await held.start()
        await gate.execute("LOCK TABLE loans IN EXCLUSIVE MODE")
        gate_pid = gate.get_server_pid()
        both = (runs(database, "b-one"), runs(database, "b-two"))
        deadline = time.monotonic() + RUN_TIMEOUT
        # From another connection: pg_stat_activity is read once per transaction.
        while await watch.fetchval(WAITING, gate_pid) < 2:
            for run in both:
                assert run.process.poll() is None, f"{run.name} exited early:\n{run.text()}"
            assert time.monotonic() < deadline, "the two runs never both reached the loans"
            await asyncio.sleep(0.02)
        released = time.monotonic()
        await held.commit()
        one, two = [await run.finish() for run in both]
        wall = time.monotonic() - released
    finally:
        await gate.close()
        await watch.close()
    assert one.loans + two.loans == book.total, (one, two)
    assert one.loans > 0, (one, two)  # they did split the work
    assert two.loans > 0, (one, two)
    assert one.fees + two.fees == reference.summary.fees
    assert one.buckets + two.buckets == reference.summary.buckets
    await _assert_like_reference(database, reference)
    report(
        f"cob runs: two runs at once split {book.total} loans {one.loans} + {two.loans}: "
        f"{one.seconds:.1f} s and {two.seconds:.1f} s, {wall:.1f} s from the gate to both done"
    )


async def test_a_run_killed_halfway_leaves_loans_done_or_not_and_the_next_finishes(
    book: Book, copies: Copies, runs: Runs, reference: Reference
) -> None:
    database = await copies.make("c")
    conn = await database.connect()
    try:
        killed = runs(database, "c-killed")
        while True:
            done = await conn.fetchval("SELECT count(*) FROM loans WHERE cob_date = $1", DAY)
            if 0 < done < book.total:
                in_flight = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                )
                killed.kill()
                break
            assert killed.process.poll() is None, (
                f"the run ended before it could be killed halfway ({done} of {book.total} "
                f"closed): make the book bigger\n{killed.text()}"
            )
            await asyncio.sleep(0.005)
        deadline = time.monotonic() + 10
        while await _others(conn):  # its connection gone, its open batch rolled back
            assert time.monotonic() < deadline, "the killed run's session is still there"
            await asyncio.sleep(0.02)
        state, events = await _state(conn), await _events(conn)
        assert await conn.fetch(HOLES) == []
    finally:
        await conn.close()

    closed = {k for k, row in state.items() if row[10] == DAY}
    assert 0 < len(closed) < book.total
    for loan_id, row in state.items():
        expected = reference.state if loan_id in closed else book.before
        assert row == expected[loan_id], (loan_id in closed, row, expected[loan_id])
    assert events == [e for e in reference.events if e[0] in closed]

    rest = await runs(database, "c-rest").finish()
    assert rest.loans == book.total - len(closed)
    await _assert_like_reference(database, reference)
    report(
        f"cob runs: killed with {len(closed)} of {book.total} loans closed "
        f"({in_flight} transaction(s) open at the kill); the next run closed the "
        f"{rest.loans} others in {rest.seconds:.1f} s"
    )


async def test_a_loan_locked_by_a_servicing_change_during_the_run_is_closed_too(
    book: Book, copies: Copies, runs: Runs, reference: Reference
) -> None:
    """A repayment, reversal or write-off holds its loan's row (SELECT ... FOR UPDATE,
    servicing._locked) for its transaction. A run meanwhile must still close that loan for the
    day (wait for it, or come back to it), as SERVICING.md says of every active loan."""
    database = await copies.make("locked")
    loan_id = reference.events[0][0]  # one with late fees to record
    holder, watch = await database.connect(), await database.connect()
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT id FROM loans WHERE id = $1 FOR UPDATE", loan_id)
        run = runs(database, "locked")
        deadline = time.monotonic() + RUN_TIMEOUT
        while run.process.poll() is None and not await watch.fetchval(
            WAITING, holder.get_server_pid()
        ):
            assert time.monotonic() < deadline, run.text()
            await asyncio.sleep(0.02)
        await held.rollback()  # the servicing change gives up; the run, if waiting, goes on
        summary = await run.finish()
        closed_on = await holder.fetchval("SELECT cob_date FROM loans WHERE id = $1", loan_id)
    finally:
        await holder.close()
        await watch.close()
    report(
        f"cob runs: a run while loan {loan_id} was locked by another transaction closed "
        f"{summary.loans} of {book.total} loans; loan {loan_id} cob_date {closed_on}"
    )
    assert (summary.loans, closed_on) == (book.total, DAY)
    await _assert_like_reference(database, reference)
