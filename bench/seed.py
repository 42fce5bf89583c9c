# ruff: noqa: T201  (a command-line tool: it prints)
"""Seed a dedicated PostgreSQL database with realistic loanapi data, in bulk (asyncpg COPY).

The database is created empty, migrated with `loanapi db upgrade` (so the schema is Alembic's),
then filled: admins, agents, customers (about 10 loans each, a heavy tail with many), loans in
every status over about two years, and each loan's events with consistent versions, changes and
snapshots. Every user shares ONE pbkdf2_sha256 hash, made once at the server's rounds, so that
the login scenario works for any user.

A JSON marker in `COMMENT ON DATABASE` records what was seeded (loan count, highest ids). A later
run reuses the database when the marker and the seeded row count match, after deleting whatever a
previous run added above those ids (`reset`), so every run starts from the same data.

    .venv/bin/python bench/seed.py --loans 10000         # create or reuse loanapi_bench_10k
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any

import asyncpg

try:
    import orjson

    def dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

except ImportError:  # pragma: no cover - orjson is in the bench extra

    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))


try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - a plain progress line instead

    class tqdm:  # type: ignore[no-redef]
        def __init__(self, total: int, desc: str = "", unit: str = "", **_: Any) -> None:
            self.total, self.desc, self.n, self.last = total, desc, 0, 0.0

        def update(self, n: int) -> None:
            self.n += n
            if time.monotonic() - self.last > 2 or self.n >= self.total:
                self.last = time.monotonic()
                print(f"{self.desc}: {self.n}/{self.total}", file=sys.stderr, flush=True)

        def close(self) -> None:
            pass


from loanapi.loans import pricing  # noqa: E402  (the server's own arithmetic)
from loanapi.loans.models import Loan  # noqa: E402
from loanapi.loans.service import SNAPSHOT  # noqa: E402

SEED_VERSION = 1
ROOT = Path(__file__).resolve().parent.parent

# The data covers two years before a fixed anchor, so filters and plans are repeatable.
END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - timedelta(days=730)
FILTER_FROM, FILTER_TO = "2026-02-01", "2026-04-30"  # the admin filtered-list window
FIXTURE_AT = datetime(2020, 1, 1, tzinfo=UTC)  # bench fixtures sort after every seeded loan

PASSWORD = "bench-password-1"  # every seeded user's password (one shared hash)
ADMINS = 3

STATUS_WEIGHTS = {"new": 30, "requested": 15, "approved": 30, "rejected": 15, "withdrawn": 10}
TYPE_WEIGHTS = {"home_loan": 30, "personal_loan": 35, "car_loan": 20, "education_loan": 15}
# principal grid (start, stop, step) and tenures per type: a finite set of terms, priced once each
TERMS = {
    "home_loan": ((50_000, 5_000_000, 50_000), (120, 180, 240, 300, 360)),
    "personal_loan": ((1_000, 50_000, 1_000), (12, 24, 36, 48, 60)),
    "car_loan": ((5_000, 100_000, 2_500), (12, 24, 36, 48, 60, 72, 84)),
    "education_loan": ((5_000, 200_000, 5_000), (12, 24, 36, 48, 60, 84, 120)),
}
# The loans table's columns in order (COPY); SNAPSHOT, an event's fields, is loanapi's too.
LOAN_COLUMNS = [column.name for column in Loan.__table__.columns]
EVENT_COLUMNS = [
    "id",
    "loan_id",
    "version",
    "action",
    "actor_id",
    "actor_role",
    "at",
    "changes",
    "snapshot",
    "reason",
]
USER_COLUMNS = [
    "id",
    "public_id",
    "username",
    "email",
    "phone",
    "password_hash",
    "role",
    "status",
    "approved_at",
    "created_at",
    "updated_at",
]


# --- connection helpers ------------------------------------------------------------------------


def pg_server() -> str:
    """user@host:port of the PostgreSQL server; only a loopback address is accepted."""
    server = os.environ.get("BENCH_PG", "postgres@127.0.0.1:5432")
    host = server.rpartition("@")[2].rpartition(":")[0] or server.rpartition("@")[2]
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise SystemExit(f"BENCH_PG must point at this machine (127.0.0.1), not {host!r}")
    return server


def dsn(database: str) -> str:
    return f"postgresql://{pg_server()}/{database}"


def sqlalchemy_url(database: str) -> str:
    return f"postgresql+asyncpg://{pg_server()}/{database}"


def database_name(loans: int) -> str:
    if loans % 1_000_000 == 0:
        return f"loanapi_bench_{loans // 1_000_000}m"
    if loans % 1_000 == 0:
        return f"loanapi_bench_{loans // 1_000}k"
    return f"loanapi_bench_{loans}"


def loanapi_bin() -> str:
    here = Path(sys.executable).parent / "loanapi"
    found = str(here) if here.exists() else shutil.which("loanapi")
    if not found:
        raise SystemExit("the `loanapi` console script is not installed (make bench installs it)")
    return found


def migrate(database: str) -> None:
    env = {**os.environ, "LOANAPI_DATABASE_URL": sqlalchemy_url(database)}
    subprocess.run(
        [loanapi_bin(), "db", "upgrade"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def read_marker(database: str) -> dict[str, Any] | None:
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        text = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            database,
        )
    finally:
        await conn.close()
    if not text:
        return None
    try:
        marker = json.loads(text)
    except ValueError:
        return None
    return marker if isinstance(marker, dict) else None


async def write_marker(database: str, marker: dict[str, Any]) -> None:
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        comment = json.dumps(marker).replace("'", "''")
        await conn.execute(f"COMMENT ON DATABASE \"{database}\" IS '{comment}'")
    finally:
        await conn.close()


async def database_exists(database: str) -> bool:
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))
    finally:
        await conn.close()


# --- data generation ---------------------------------------------------------------------------


@cache
def priced(principal: int, rate: str, tenure: int) -> tuple[Decimal, Decimal, Decimal]:
    terms = pricing.price(Decimal(principal), Decimal(rate), tenure)
    return terms.emi, terms.total_payable, terms.total_interest


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def pick_terms(rng: random.Random, loan_type: str) -> tuple[int, int]:
    (lo, hi, step), tenures = TERMS[loan_type]
    # smaller loans are more common: skew the grid index towards the low end
    steps = (hi - lo) // step
    principal = lo + step * int(steps * rng.random() ** 2)
    return principal, rng.choice(tenures)


def weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


class Generator:
    """Builds users, loans and events as COPY records; deterministic for a given size."""

    def __init__(self, n_loans: int, rates: dict[str, str], password_hash: str) -> None:
        self.rng = random.Random(20261126 + n_loans)
        self.n_loans = n_loans
        self.rates = rates
        self.password_hash = password_hash
        self.n_agents = max(10, n_loans // 500)
        self.n_customers = max(10, n_loans // 10)
        self.first_agent = ADMINS + 1
        self.first_customer = self.first_agent + self.n_agents
        self.fixture_customer = self.first_customer + self.n_customers
        rng = self.rng
        self.agent_status = ["active"] + [
            rng.choices(["active", "pending", "rejected"], [90, 5, 5])[0]
            for _ in range(self.n_agents - 1)
        ]
        self.active_agents = [
            self.first_agent + i for i, s in enumerate(self.agent_status) if s == "active"
        ]
        # heavy-tailed loans per customer: Pareto weights, capped
        weights = [min(rng.paretovariate(1.3), 60.0) for _ in range(self.n_customers)]
        self.cum_weights = list(accumulate(weights))
        self.first_loan_at: dict[int, datetime] = {}
        self.loans_of: dict[int, int] = {}
        self.event_id = 0

    def customer(self) -> int:
        total = self.cum_weights[-1]
        return self.first_customer + bisect_left(self.cum_weights, self.rng.random() * total)

    def created_times(self) -> list[datetime]:
        """Loan creation times over two years, busier lately (growth); sorted, as ids are."""
        span = (END - START).total_seconds()
        rng = self.rng
        offsets = sorted(span * rng.random() ** 0.7 for _ in range(self.n_loans))
        return [START + timedelta(seconds=s) for s in offsets]

    def loan(self, loan_id: int, created_at: datetime) -> tuple[tuple, list[tuple]]:
        rng = self.rng
        customer = self.customer()
        self.loans_of[customer] = self.loans_of.get(customer, 0) + 1
        if customer not in self.first_loan_at:
            self.first_loan_at[customer] = created_at
        status = weighted(rng, STATUS_WEIGHTS)
        loan_type = weighted(rng, TYPE_WEIGHTS)
        principal, tenure = pick_terms(rng, loan_type)
        rate = self.rates[loan_type]
        agent = rng.choice(self.active_agents)
        admin = rng.randint(1, ADMINS)

        steps: list[tuple[str, int, str]] = [("created", customer, "customer")]
        edited = status != "withdrawn" and rng.random() < 0.3
        if edited:
            steps.append(("edited", agent, "agent"))
        requested = status in ("requested", "approved") or (
            status in ("rejected", "withdrawn") and rng.random() < 0.5
        )
        if requested:
            steps.append(("requested", agent, "agent"))
        if status in ("approved", "rejected"):
            steps.append((status, admin, "admin"))
        elif status == "withdrawn":
            steps.append(("withdrawn", customer, "customer"))

        state: dict[str, Any] = {}
        events = []
        at = created_at
        for version, (action, actor, role) in enumerate(steps, start=1):
            before = dict(state)
            if action == "created":
                state = {"loan_type": loan_type, "status": "new", "agent_id": None}
                state.update(self.terms(loan_type, principal, rate, tenure))
            elif action == "edited":
                new_principal, new_tenure = pick_terms(rng, loan_type)
                while (new_principal, new_tenure) == (principal, tenure):
                    new_principal, new_tenure = pick_terms(rng, loan_type)
                state.update(self.terms(loan_type, new_principal, rate, new_tenure))
            elif action == "requested":
                state.update(status="requested", agent_id=agent)
            else:
                state["status"] = action
            if version > 1:
                at = min(at + timedelta(hours=rng.uniform(1, 24 * 7)), END)
            changes = {
                name: {"from": before.get(name), "to": state[name]}
                for name in SNAPSHOT
                if not before or before[name] != state[name]
            }
            self.event_id += 1
            reason = "Income not verified" if action == "rejected" and rng.random() < 0.5 else None
            events.append(
                (
                    self.event_id,
                    loan_id,
                    version,
                    action,
                    actor,
                    role,
                    at,
                    dumps(changes),
                    dumps({name: state[name] for name in SNAPSHOT}),
                    reason,
                )
            )
        loan = (
            loan_id,
            customer,
            state["agent_id"],
            loan_type,
            Decimal(state["principal"]),
            Decimal(rate),
            state["tenure_months"],
            Decimal(state["emi"]),
            Decimal(state["total_payable"]),
            Decimal(state["total_interest"]),
            state["status"],
            len(steps),
            created_at,
            at,
        )
        return loan, events

    def terms(self, loan_type: str, principal: int, rate: str, tenure: int) -> dict[str, Any]:
        emi, total, interest = priced(principal, rate, tenure)
        return {
            "principal": money(Decimal(principal)),
            "annual_rate": rate,
            "tenure_months": tenure,
            "emi": money(emi),
            "total_payable": money(total),
            "total_interest": money(interest),
        }

    def users(self) -> list[tuple]:
        rng = self.rng
        early = START - timedelta(days=60)
        rows = []

        def user(uid: int, name: str, role: str, status: str, created: datetime) -> tuple:
            approved = (
                created + timedelta(days=1) if role == "agent" and status == "active" else None
            )
            phone = f"+1555{uid:07d}" if rng.random() < 0.6 else None
            return (
                uid,
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                name,
                f"{name}@example.com",
                phone,
                self.password_hash,
                role,
                status,
                approved,
                created,
                approved or created,
            )

        names = ["bench_admin"] + [f"bench_admin{i}" for i in range(2, ADMINS + 1)]
        for uid, name in enumerate(names, start=1):
            rows.append(user(uid, name, "admin", "active", early))
        for i, status in enumerate(self.agent_status):
            uid = self.first_agent + i
            name = "bench_agent" if i == 0 else f"agent{uid}"
            rows.append(user(uid, name, "agent", status, early))
        for i in range(self.n_customers):
            uid = self.first_customer + i
            first = self.first_loan_at.get(uid, END)
            created = max(early, first - timedelta(days=rng.uniform(0, 30)))
            rows.append(user(uid, f"customer{uid}", "customer", "active", created))
        rows.append(user(self.fixture_customer, "bench_fixture", "customer", "active", early))
        return rows


# --- loading -----------------------------------------------------------------------------------


async def _loose_indexes(conn: asyncpg.Connection, tables: tuple[str, ...]) -> list[tuple]:
    """Indexes of `tables` that back no constraint: dropped for the load, recreated as they were."""
    return await conn.fetch(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        JOIN pg_class c ON c.relname = i.indexname
        WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)
        """,
        list(tables),
    )


def make_hash(rounds: int) -> str:
    from passlib.hash import pbkdf2_sha256

    return pbkdf2_sha256.using(rounds=rounds, salt_size=16).hash(PASSWORD)


async def fill(database: str, n_loans: int, rounds: int, chunk: int = 20_000) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn(database))
    try:
        rates = {
            r["loan_type"]: f"{r['annual_rate']:.2f}"
            for r in await conn.fetch("SELECT loan_type, annual_rate FROM loan_products")
        }
        gen = Generator(n_loans, rates, make_hash(rounds))
        indexes = await _loose_indexes(conn, ("loans", "loan_events"))
        # Foreign keys are checked by triggers; the data is consistent by construction.
        await conn.execute("SET session_replication_role = replica")
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        times = gen.created_times()
        bar = tqdm(total=n_loans, desc=f"seeding {database}", unit="loan")
        for begin in range(0, n_loans, chunk):
            loans, events = [], []
            for offset in range(begin, min(begin + chunk, n_loans)):
                loan, loan_events = gen.loan(offset + 1, times[offset])
                loans.append(loan)
                events.extend(loan_events)
            await conn.copy_records_to_table("loans", records=loans, columns=LOAN_COLUMNS)
            await conn.copy_records_to_table("loan_events", records=events, columns=EVENT_COLUMNS)
            bar.update(len(loans))
        bar.close()
        users = gen.users()
        await conn.copy_records_to_table("users", records=users, columns=USER_COLUMNS)
        print(f"recreating {len(indexes)} indexes ...", file=sys.stderr, flush=True)
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            await conn.execute(definition)
        await conn.execute("SET session_replication_role = DEFAULT")
        for table in ("users", "loans", "loan_events"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        dangling = await conn.fetchval(
            "SELECT count(*) FROM loans l LEFT JOIN users u ON u.id = l.customer_id "
            "WHERE u.id IS NULL"
        )
        if dangling:
            raise RuntimeError(f"{dangling} loans without their customer")
        print("VACUUM ANALYZE ...", file=sys.stderr, flush=True)
        await conn.execute("VACUUM ANALYZE")
        counts = sorted(gen.loans_of.values(), reverse=True)
        return {
            "seed_version": SEED_VERSION,
            "loans": n_loans,
            "events": gen.event_id,
            "users": len(users),
            "max_user_id": len(users),
            "max_loan_id": n_loans,
            "max_event_id": gen.event_id,
            "admins": ADMINS,
            "agents": gen.n_agents,
            "customers": gen.n_customers,
            "first_customer_id": gen.first_customer,
            "fixture_customer_id": gen.fixture_customer,
            "bench_agent_id": gen.first_agent,
            "max_loans_per_customer": counts[0] if counts else 0,
            "customers_with_loans": len(counts),
            "pbkdf2_rounds": rounds,
            "filter_from": FILTER_FROM,
            "filter_to": FILTER_TO,
            "seeded_at": datetime.now(UTC).isoformat(),
        }
    finally:
        await conn.close()


async def reset(database: str, marker: dict[str, Any]) -> int:
    """Delete what runs added above the seeded ids (fixtures, applied loans, their events)."""
    conn = await asyncpg.connect(dsn(database))
    try:
        async with conn.transaction():
            gone = await conn.fetchval(
                "WITH e AS (DELETE FROM loan_events WHERE id > $1 OR loan_id > $2 RETURNING 1)"
                " SELECT count(*) FROM e",
                marker["max_event_id"],
                marker["max_loan_id"],
            )
            gone += await conn.fetchval(
                "WITH l AS (DELETE FROM loans WHERE id > $1 RETURNING 1) SELECT count(*) FROM l",
                marker["max_loan_id"],
            )
            await conn.execute("DELETE FROM idempotency_keys")
            await conn.execute("DELETE FROM rate_events")
            await conn.execute(
                "DELETE FROM users WHERE id > $1 AND NOT EXISTS "
                "(SELECT 1 FROM loans WHERE customer_id = users.id OR agent_id = users.id)",
                marker["max_user_id"],
            )
        if gone:
            await conn.execute("VACUUM ANALYZE loans, loan_events")
        return int(gone)
    finally:
        await conn.close()


async def ensure(n_loans: int, rounds: int, *, create: bool = True) -> dict[str, Any] | None:
    """The seeded database for `n_loans` (created when missing or stale): its marker."""
    database = database_name(n_loans)
    marker = await read_marker(database) if await database_exists(database) else None
    if marker and marker.get("seed_version") == SEED_VERSION and marker.get("loans") == n_loans:
        conn = await asyncpg.connect(dsn(database))
        try:
            seeded = await conn.fetchval(
                "SELECT count(*) FROM loans WHERE id <= $1", marker["max_loan_id"]
            )
            if seeded == n_loans and marker.get("pbkdf2_rounds") != rounds:
                # other rounds: one new shared hash, so logins do not rehash (and write)
                await conn.execute("UPDATE users SET password_hash = $1", make_hash(rounds))
                marker["pbkdf2_rounds"] = rounds
                await write_marker(database, marker)
        finally:
            await conn.close()
        if seeded == n_loans:
            migrate(database)  # new migrations apply to the seeded data, as in production
            removed = await reset(database, marker)
            print(
                f"reusing {database} ({n_loans} loans; removed {removed} rows of earlier runs)",
                file=sys.stderr,
            )
            return {**marker, "database": database, "reused": True}
    if not create:
        return None
    began = time.monotonic()
    admin = await asyncpg.connect(dsn("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    migrate(database)
    marker = await fill(database, n_loans, rounds)
    marker["seed_seconds"] = round(time.monotonic() - began, 1)
    await write_marker(database, marker)
    print(f"seeded {database} in {marker['seed_seconds']} s", file=sys.stderr)
    return {**marker, "database": database, "reused": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=10_000)
    parser.add_argument(
        "--rounds", type=int, default=int(os.environ.get("LOANAPI_PBKDF2_ROUNDS", "600000"))
    )
    args = parser.parse_args()
    marker = asyncio.run(ensure(args.loans, args.rounds))
    print(json.dumps(marker, indent=2))


if __name__ == "__main__":
    main()
