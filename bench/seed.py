# ruff: noqa: T201  (a command-line tool: it prints)
"""Seed a dedicated PostgreSQL database with realistic loanapi data, in bulk (asyncpg COPY).

The database is created empty, migrated with `loanapi db upgrade` (so the schema is Alembic's),
then filled: admins, agents, customers (about 10 loans each, a heavy tail with many), loans in
every status over about two years, and each loan's events with consistent versions, changes and
snapshots. Every user shares ONE pbkdf2_sha256 hash, made once at the server's rounds, so that
the login scenario works for any user.

Disbursed (`active`) loans carry a repayment history: their repayments (with allocations), their
`disbursed` and `repaid` events and their stored servicing fields, all as loanapi's ledger
(`loans/ledger.py`) gives them. The ledger runs once per (product, principal, tenure, payment
pattern), not once per loan: payments are dated relative to due dates, within offsets for which
the calendar cannot change the replay's order of fees and payments, so one replay's allocations
and fees hold for every loan with that key; each loan's delinquency fields are then derived from
them with its own dates (`history`). A sample of the seeded loans is replayed afterwards and must
reproduce their stored fields, allocations and event snapshots (`check_servicing`).

A JSON marker in `COMMENT ON DATABASE` records what was seeded (loan count, highest ids). A later
run reuses the database when the marker and the seeded row count match, after deleting whatever a
previous run added above those ids and giving the seeded loans it changed their saved rows back
(`reset`, `save_rows`), so every run starts from the same data.

    .venv/bin/python bench/seed.py --loans 10000         # create or reuse loanapi_bench_10k
    .venv/bin/python bench/seed.py --loans 100000        # another size: loanapi_bench_100k
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
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
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


from loanapi.loans import ledger, pricing  # noqa: E402  (the server's own arithmetic)
from loanapi.loans.models import Loan, Repayment  # noqa: E402
from loanapi.loans.service import SNAPSHOT, json_value  # noqa: E402
from loanapi.loans.servicing import DERIVED, SERVICED  # noqa: E402

SEED_VERSION = 3
ROOT = Path(__file__).resolve().parent.parent

# The data covers two years before a fixed anchor, so filters and plans are repeatable.
END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - timedelta(days=730)
LAST_DAY = (END - timedelta(days=1)).date()  # the last day seeded money moves (2026-10-31)
# The day the bench closes (close of business), and the day after: the first days after the
# seeded history, so that what is late on them is what the payment patterns make late (not a
# month of payments missing since), whatever the date of the run.
COB_DAY = LAST_DAY + timedelta(days=1)
FILTER_FROM, FILTER_TO = "2026-02-01", "2026-04-30"  # the admin filtered-list window
FIXTURE_AT = datetime(2020, 1, 1, tzinfo=UTC)  # bench fixtures sort after every seeded loan
EARLY = datetime(2021, 6, 1, tzinfo=UTC)  # admins and agents join before the oldest loan

PASSWORD = "bench-password-1"  # every seeded user's password (one shared hash)
ADMINS = 3

# `active`: approved, disbursed (a few days after the approval) and repaid since; an active loan
# approved too late to be disbursed by LAST_DAY stays `approved`.
STATUS_WEIGHTS = {
    "new": 20,
    "requested": 10,
    "approved": 7,
    "active": 38,
    "rejected": 15,
    "withdrawn": 10,
}
# The products' late fee and grace days (set on loan_products too); a loan keeps its own copy.
LATE_FEES = {
    "home_loan": ("50.00", 10),
    "personal_loan": ("25.00", 5),
    "car_loan": ("35.00", 7),
    "education_loan": ("15.00", 10),
}
# How borrowers pay (see `pattern_payments`); every payment is dated `due date + offset`. As of
# COB_DAY about 12% of the active loans are late (dpd > 0): half of them loans whose term has run
# out (KEEP_UNPAID), the rest paying late, partly or skipping, or within the grace days of an
# installment due in the last days of October (on 10,000 loans: 455 of 3,834).
PATTERN_WEIGHTS = {"regular": 65, "early": 12, "grace": 10, "late": 6, "partial": 3, "skip": 4}
# Installments that can fall due between the earliest disbursement (START) and LAST_DAY, plus
# one: a plan covers that many, and each loan takes the payments dated by LAST_DAY.
MAX_ANCHORS = 26
# No plan pays into a loan's last installments: payments stay far below the payoff amount, so
# no seeded loan closes, and no day count (the payoff's pro-rated interest) can matter.
KEEP_UNPAID = 3
# The statement scenario's loans: the oldest ids, created in 2021 (before the two years of the
# other loans), home loans over 360 months, disbursed in October 2021 between these days, so that
# exactly 60 installments (one repayment each) fall due and are paid by LAST_DAY.
STATEMENT_LOANS, STATEMENT_REPAYMENTS, STATEMENT_TENURE = 200, 60, 360
STATEMENT_DISBURSED = (date(2021, 10, 4), date(2021, 10, 15))
STATEMENT_PATTERNS = {"regular": 70, "grace": 15, "late": 15}
CANONICAL_DISBURSED = date(2001, 1, 10)  # the dates a plan is replayed with (any would do)
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
REPAYMENT_COLUMNS = [column.name for column in Repayment.__table__.columns]
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


# --- repayment histories -----------------------------------------------------------------------


def pattern_payments(
    pattern: str, anchors: int, emi: Decimal, fee: Decimal, grace: int
) -> list[tuple[int, int, Decimal]]:
    """(installment, days after its due date, amount) of each payment, oldest first.

    regular: the emi on the due date; early: 3 days before; grace: within the grace days (no
    fee); late: 3 days after the grace days, the emi and the fee; partial: 60% of the emi on the
    due date (arrears and fees pile up); skip: every fourth installment is skipped and paid with
    the next one, 2 days after its due date, with the fee.

    Offsets stay within -10..17 days: for any month lengths (28..31 days) and grace days
    (0..17), payments then keep their order, and every fee falls on the same side of every
    payment (a fee is dated due + grace + 1), so the replay is the same for every calendar.
    """
    out: list[tuple[int, int, Decimal]] = []
    for a in range(1, anchors + 1):
        if pattern == "regular":
            out.append((a, 0, emi))
        elif pattern == "early":
            out.append((a, -3, emi))
        elif pattern == "grace":
            out.append((a, max(grace - 1, 0), emi))
        elif pattern == "late":
            out.append((a, grace + 3, emi + fee))
        elif pattern == "partial":
            out.append((a, 0, pricing.to_cents(emi * Decimal("0.6"))))
        elif pattern == "skip":
            if a % 4 == 0:
                continue
            out.append((a, 2, 2 * emi + fee) if a % 4 == 1 and a > 1 else (a, 0, emi))
        else:
            raise ValueError(pattern)
    if grace > 17 or any(not -10 <= d <= 17 for _, d, _ in out):
        raise ValueError(f"{pattern}: offsets outside -10..17 days (grace {grace})")
    return out


@dataclass(frozen=True, slots=True)
class Plan:
    """One replay by loanapi's ledger, shared by every loan with the same key."""

    payments: list[tuple[int, int, Decimal]]  # (installment, offset in days, amount)
    allocations: list[tuple[Decimal, Decimal, Decimal]]  # (penalty, interest, principal) each
    fees: list[int]  # installments charged a late fee (1-based, in date order)
    # due_total[m]: scheduled principal + interest of installments 1..m, as far as a history
    # looks (the installment after the last one paid, and the one after that)
    due_total: list[Decimal]
    installments: int
    principal: Decimal
    total_interest: Decimal  # scheduled interest of every installment
    fee: Decimal
    grace: int


class Plans:
    """Repayment plans by (loan type, principal, tenure, pattern, installments covered)."""

    def __init__(self, rates: dict[str, str]) -> None:
        self.rates = rates
        self.plans: dict[tuple[str, int, int, str, int], Plan] = {}
        self.replays = 0

    def get(self, loan_type: str, principal: int, tenure: int, pattern: str, anchors: int) -> Plan:
        key = (loan_type, principal, tenure, pattern, anchors)
        found = self.plans.get(key)
        if found is None:
            found = self.plans[key] = self._replay(*key)
        return found

    def _replay(
        self, loan_type: str, principal: int, tenure: int, pattern: str, anchors: int
    ) -> Plan:
        fee, grace = Decimal(LATE_FEES[loan_type][0]), LATE_FEES[loan_type][1]
        rate = self.rates[loan_type]
        terms = ledger.LoanTerms(
            Decimal(principal), Decimal(rate), tenure, CANONICAL_DISBURSED, None, fee, grace
        )
        emi = priced(principal, rate, tenure)[0]
        payments = pattern_payments(pattern, min(anchors, tenure - KEEP_UNPAID), emi, fee, grace)
        repayments = [
            ledger.Repayment(i, terms.due_on(a) + timedelta(days=d), amount)
            for i, (a, d, amount) in enumerate(payments, start=1)
        ]
        book = ledger.replay(terms, repayments, repayments[-1].paid_on)
        self.replays += 1
        if book.closed_on is not None:
            raise RuntimeError(f"plan {loan_type} {principal} {tenure} {pattern} closes the loan")
        allocations = book.allocations
        due_total = [Decimal(0)]
        for row in book.installments[: payments[-1][0] + 3]:
            due_total.append(due_total[-1] + row.principal + row.interest)
        return Plan(
            payments=payments,
            allocations=[
                (x.penalty, x.interest, x.principal)
                for x in (allocations[r.id] for r in repayments)
            ],
            fees=[f.installment for f in book.fees],
            due_total=due_total,
            installments=tenure,
            principal=Decimal(principal),
            total_interest=sum((row.interest for row in book.installments), Decimal(0)),
            fee=fee,
            grace=grace,
        )


def history(
    plan: Plan, disbursed_on: date, last_day: date
) -> tuple[list[date], list[dict[str, Any]]]:
    """The payment dates of a loan disbursed on `disbursed_on` (those by `last_day`), and its
    derived servicing fields (servicing.DERIVED, and the day they are as of and the number of
    late fees charged by then, which loans store as `serviced_on` and `fees_charged` where the
    schema has them) at disbursement and after each payment, each as of its own day, as
    `ledger.replay` gives them (check_servicing replays a sample).

    Allocations and fees are the plan's; what the calendar decides (which installments are due
    before the day, days past due, the next due date) is counted here with this loan's dates:
    the installments fully paid are those whose cumulative dues, fees charged so far included,
    the cumulative payments cover (the replay pays the oldest installment first)."""
    n = plan.installments
    after_grace = timedelta(days=plan.grace + 1)
    dues = [disbursed_on]

    def due(m: int) -> date:  # installment m's due date (m = 0: the disbursement)
        while len(dues) <= m:
            dues.append(ledger.add_months(disbursed_on, len(dues)))
        return dues[m]

    first = plan.due_total[1]
    states = [
        {
            "principal_outstanding": plan.principal,
            "interest_outstanding": plan.total_interest,
            "penalty_outstanding": Decimal("0.00"),
            "arrears": Decimal("0.00"),
            "dpd": 0,
            "bucket": ledger.Bucket.current,
            "next_due_on": due(1),
            "next_due_amount": first,
            "closed_on": None,
            "serviced_on": disbursed_on,
            "fees_charged": 0,
        }
    ]
    dates: list[date] = []
    paid = penalty = interest = principal = Decimal("0.00")
    fees = cursor = 0  # fees charged so far (plan.fees[:fees]); installments fully paid
    overdue_until = 0  # installments due before the day
    for (a, d, amount), (p_penalty, p_interest, p_principal) in zip(
        plan.payments, plan.allocations, strict=True
    ):
        day = due(a) + timedelta(days=d)
        if day > last_day:
            break
        dates.append(day)
        while fees < len(plan.fees) and due(plan.fees[fees]) + after_grace <= day:
            fees += 1
        paid += amount
        penalty += p_penalty
        interest += p_interest
        principal += p_principal

        def owed(m: int, fees: int = fees) -> Decimal:  # dues of installments 1..m, with fees
            return plan.due_total[m] + plan.fee * bisect_right(plan.fees, m, 0, fees)

        while cursor < n and owed(cursor + 1) <= paid:
            cursor += 1
        while overdue_until < n and due(overdue_until + 1) < day:
            overdue_until += 1
        oldest = cursor + 1  # the oldest installment not fully paid
        late = oldest <= overdue_until
        arrears = owed(overdue_until) - paid if late else Decimal("0.00")
        upcoming = max(oldest, overdue_until + 1)
        next_amount = arrears
        if upcoming <= n:
            next_amount += owed(upcoming) - max(paid, owed(upcoming - 1))
        dpd = (day - due(oldest)).days if late else 0
        states.append(
            {
                "principal_outstanding": plan.principal - principal,
                "interest_outstanding": plan.total_interest - interest,
                "penalty_outstanding": plan.fee * fees - penalty,
                "arrears": arrears,
                "dpd": dpd,
                "bucket": ledger.bucket_of(dpd),
                "next_due_on": due(upcoming) if upcoming <= n else None,
                "next_due_amount": next_amount,
                "closed_on": None,
                "serviced_on": day,
                "fees_charged": fees,
            }
        )
    return dates, states


def at_time(rng: random.Random, day: date) -> datetime:
    """A moment of office hours on `day` (UTC)."""
    return datetime.combine(day, clock(8), UTC) + timedelta(seconds=rng.uniform(0, 9 * 3600))


class Generator:
    """Builds users, loans, events and repayments as COPY records; deterministic for a size."""

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
        self.repayment_id = 0
        self.plans = Plans(rates)
        self.statuses: dict[str, int] = {}
        self.with_repayments = 0
        # the statement scenario's loans: the first ids, one per customer
        self.n_statement = min(STATEMENT_LOANS, n_loans // 20)
        self.statement_owners = rng.sample(
            range(self.first_customer, self.first_customer + self.n_customers),
            min(self.n_statement, self.n_customers),
        )

    def customer(self) -> int:
        total = self.cum_weights[-1]
        return self.first_customer + bisect_left(self.cum_weights, self.rng.random() * total)

    def created_times(self) -> list[datetime]:
        """Loan creation times: the statement loans' in 2021 (a month or so before their
        disbursement), then the others' over two years, busier lately (growth); sorted, as ids
        are."""
        rng = self.rng
        first, last = STATEMENT_DISBURSED
        spread = (last - first).days
        self.statement_disbursed = sorted(
            first + timedelta(days=rng.randint(0, spread)) for _ in range(self.n_statement)
        )
        early = [
            datetime.combine(day, clock(8), UTC) - timedelta(days=45) + timedelta(minutes=i)
            for i, day in enumerate(self.statement_disbursed)
        ]
        span = (END - START).total_seconds()
        offsets = sorted(span * rng.random() ** 0.7 for _ in range(self.n_loans - len(early)))
        return early + [START + timedelta(seconds=s) for s in offsets]

    def loan(self, loan_id: int, created_at: datetime) -> tuple[tuple, list[tuple], list[tuple]]:
        rng = self.rng
        statement = loan_id <= self.n_statement
        if statement:
            customer = self.statement_owners[(loan_id - 1) % len(self.statement_owners)]
            status, loan_type = "active", "home_loan"
            principal, tenure = pick_terms(rng, loan_type)[0], STATEMENT_TENURE
        else:
            customer = self.customer()
            status = weighted(rng, STATUS_WEIGHTS)
            loan_type = weighted(rng, TYPE_WEIGHTS)
            principal, tenure = pick_terms(rng, loan_type)
        self.loans_of[customer] = self.loans_of.get(customer, 0) + 1
        if customer not in self.first_loan_at:
            self.first_loan_at[customer] = created_at
        rate = self.rates[loan_type]
        agent = rng.choice(self.active_agents)
        admin = rng.randint(1, ADMINS)

        steps: list[tuple[str, int, str]] = [("created", customer, "customer")]
        edited = status != "withdrawn" and not statement and rng.random() < 0.3
        if edited:
            steps.append(("edited", agent, "agent"))
        requested = status in ("requested", "approved", "active") or (
            status in ("rejected", "withdrawn") and rng.random() < 0.5
        )
        if requested:
            steps.append(("requested", agent, "agent"))
        if status in ("approved", "rejected", "active"):
            steps.append(("approved" if status == "active" else status, admin, "admin"))
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
                principal, tenure = new_principal, new_tenure
                state.update(self.terms(loan_type, principal, rate, tenure))
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
        loan: dict[str, Any] = {
            "id": loan_id,
            "customer_id": customer,
            "agent_id": state["agent_id"],
            "loan_type": loan_type,
            "principal": Decimal(state["principal"]),
            "annual_rate": Decimal(rate),
            "tenure_months": state["tenure_months"],
            "emi": Decimal(state["emi"]),
            "total_payable": Decimal(state["total_payable"]),
            "total_interest": Decimal(state["total_interest"]),
            "status": state["status"],
            "version": len(steps),
            "created_at": created_at,
            "updated_at": at,
        }
        repayments: list[tuple] = []
        if status == "active":
            if statement:
                disbursed_on = self.statement_disbursed[loan_id - 1]
                pattern = weighted(rng, STATEMENT_PATTERNS)
                anchors = STATEMENT_REPAYMENTS
            else:
                disbursed_on = at.date() + timedelta(days=rng.randint(1, 10))
                pattern = weighted(rng, PATTERN_WEIGHTS)
                anchors = MAX_ANCHORS
            if disbursed_on <= LAST_DAY:
                self.service(loan, state, events, repayments, disbursed_on, pattern, anchors, admin)
            if statement and len(repayments) != STATEMENT_REPAYMENTS:
                raise RuntimeError(f"statement loan {loan_id}: {len(repayments)} repayments")
        self.statuses[loan["status"]] = self.statuses.get(loan["status"], 0) + 1
        return tuple(loan.get(name) for name in LOAN_COLUMNS), events, repayments

    def service(
        self,
        loan: dict[str, Any],
        state: dict[str, Any],
        events: list[tuple],
        repayments: list[tuple],
        disbursed_on: date,
        pattern: str,
        anchors: int,
        admin: int,
    ) -> None:
        """Disburse an approved loan on `disbursed_on` and post its repayments up to LAST_DAY:
        the `disbursed` and `repaid` events (loanapi's snapshots: servicing.SERVICED, each as of
        its day), the repayments with their allocations, the loan's stored fields."""
        rng = self.rng
        loan_type, tenure = loan["loan_type"], loan["tenure_months"]
        plan = self.plans.get(loan_type, int(loan["principal"]), tenure, pattern, anchors)
        dates, derived = history(plan, disbursed_on, LAST_DAY)
        if anchors == MAX_ANCHORS and dates and plan.payments[len(dates) - 1][0] == anchors:
            raise RuntimeError(f"loan {loan['id']}: MAX_ANCHORS too small for its plan")
        agent = loan["agent_id"]
        loan_id = loan["id"]
        fixed = {
            "status": "active",
            "disbursed_on": disbursed_on,
            "first_due_on": ledger.add_months(disbursed_on, 1),
            "first_due_given": False,
            "late_fee": plan.fee,
            "grace_days": plan.grace,
            "fees_recorded": 0,  # no `penalty_charged` event: close of business never ran
        }
        before = {name: json_value(loan.get(name)) for name in SERVICED}
        version = loan["version"]
        at = at_time(rng, disbursed_on)
        for i, values in enumerate(derived):
            # after the disbursement only the derived fields change (DERIVED is in SERVICED's
            # order, so the changes list them in the order loanapi's events do)
            names = SERVICED if i == 0 else DERIVED
            now = {**fixed, **values} if i == 0 else values
            after = dict(before)
            for name in names:
                if name in now:
                    after[name] = json_value(now[name])
            changes = {
                name: {"from": before[name], "to": after[name]}
                for name in names
                if before[name] != after[name]
            }
            self.event_id += 1
            version += 1
            if i == 0:
                action, actor, role = "disbursed", admin, "admin"
            else:
                at = at_time(rng, dates[i - 1])
                self.repayment_id += 1
                amount = plan.payments[i - 1][2]
                p_penalty, p_interest, p_principal = plan.allocations[i - 1]
                reference = f"BANK-{self.repayment_id:09d}" if rng.random() < 0.8 else None
                repayments.append(
                    (
                        self.repayment_id,
                        loan_id,
                        amount,
                        dates[i - 1],
                        reference,
                        p_principal,
                        p_interest,
                        p_penalty,
                        False,
                        None,
                        None,
                        agent,
                        at,
                    )
                )
                changes["repayment"] = {
                    "from": None,
                    "to": {
                        "id": self.repayment_id,
                        "amount": money(amount),
                        "paid_on": dates[i - 1].isoformat(),
                        "reference": reference,
                    },
                }
                action, actor, role = "repaid", agent, "agent"
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
                    dumps(after),
                    None,
                )
            )
            before = after
        loan.update(fixed)
        loan.update(derived[-1])
        loan["bucket"] = loan["bucket"].value
        loan["version"] = version
        loan["updated_at"] = at
        if dates:
            self.with_repayments += 1

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
            rows.append(user(uid, name, "admin", "active", EARLY))
        for i, status in enumerate(self.agent_status):
            uid = self.first_agent + i
            name = "bench_agent" if i == 0 else f"agent{uid}"
            rows.append(user(uid, name, "agent", status, EARLY))
        for i in range(self.n_customers):
            uid = self.first_customer + i
            first = self.first_loan_at.get(uid, END)  # a customer joins before their first loan
            created = first - timedelta(days=rng.uniform(0, 30))
            rows.append(user(uid, f"customer{uid}", "customer", "active", created))
        rows.append(user(self.fixture_customer, "bench_fixture", "customer", "active", EARLY))
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
        # the products' late fees (a disbursed loan keeps a copy of its product's)
        for loan_type, (fee, grace) in LATE_FEES.items():
            await conn.execute(
                "UPDATE loan_products SET late_fee = $1, grace_days = $2 WHERE loan_type = $3",
                Decimal(fee),
                grace,
                loan_type,
            )
        gen = Generator(n_loans, rates, make_hash(rounds))
        indexes = await _loose_indexes(conn, ("loans", "loan_events", "repayments"))
        # Foreign keys are checked by triggers; the data is consistent by construction.
        await conn.execute("SET session_replication_role = replica")
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        times = gen.created_times()
        bar = tqdm(total=n_loans, desc=f"seeding {database}", unit="loan")
        began = time.monotonic()
        for begin in range(0, n_loans, chunk):
            loans, events, repayments = [], [], []
            for offset in range(begin, min(begin + chunk, n_loans)):
                loan, loan_events, loan_repayments = gen.loan(offset + 1, times[offset])
                loans.append(loan)
                events.extend(loan_events)
                repayments.extend(loan_repayments)
            await conn.copy_records_to_table("loans", records=loans, columns=LOAN_COLUMNS)
            await conn.copy_records_to_table("loan_events", records=events, columns=EVENT_COLUMNS)
            await conn.copy_records_to_table(
                "repayments", records=repayments, columns=REPAYMENT_COLUMNS
            )
            bar.update(len(loans))
        bar.close()
        generated = round(time.monotonic() - began, 1)
        users = gen.users()
        await conn.copy_records_to_table("users", records=users, columns=USER_COLUMNS)
        print(f"recreating {len(indexes)} indexes ...", file=sys.stderr, flush=True)
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            await conn.execute(definition)
        await conn.execute("SET session_replication_role = DEFAULT")
        for table in ("users", "loans", "loan_events", "repayments"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        dangling = await conn.fetchval(
            "SELECT count(*) FROM loans l LEFT JOIN users u ON u.id = l.customer_id "
            "WHERE u.id IS NULL"
        )
        if dangling:
            raise RuntimeError(f"{dangling} loans without their customer")
        print("VACUUM ANALYZE ...", file=sys.stderr, flush=True)
        await conn.execute("VACUUM ANALYZE")
        print("checking a sample of the repayment histories ...", file=sys.stderr, flush=True)
        checked = await check_servicing(conn, gen.n_statement)
        counts = sorted(gen.loans_of.values(), reverse=True)
        return {
            "seed_version": SEED_VERSION,
            "loans": n_loans,
            "events": gen.event_id,
            "repayments": gen.repayment_id,
            "max_repayment_id": gen.repayment_id,
            "statuses": dict(sorted(gen.statuses.items())),
            "active_with_repayments": gen.with_repayments,
            # the statement scenario's loans: ids 1..statement_loans (360 months, 60 repayments)
            "statement_loans": gen.n_statement,
            "statement_repayments": STATEMENT_REPAYMENTS,
            "repayment_plans": gen.plans.replays,
            "generate_seconds": generated,
            "servicing_check": checked,
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


async def check_servicing(
    conn: asyncpg.Connection,
    n_statement: int,
    sample: int = 200,
    deep: int = 20,
    loan_ids: list[int] | None = None,
) -> dict[str, Any]:
    """Replay a sample of the seeded active loans with loanapi's ledger: the loan's stored
    servicing fields (as of its last change, the day of its last event), each repayment's
    allocation, the versions of its events and the last event's snapshot must be what the
    replay gives; for `deep` of them, every event's snapshot too (replayed as of its day).
    Raises RuntimeError at the first difference."""
    from loanapi.loans import servicing

    if loan_ids is None:
        rng = random.Random(13)
        active = [r["id"] for r in await conn.fetch("SELECT id FROM loans WHERE status = 'active'")]
        picked = rng.sample(active, min(sample, len(active)))
        picked += list(range(1, min(n_statement, 3) + 1))
    else:
        picked = loan_ids
    events_checked = 0
    for number, loan_id in enumerate(picked):
        loan = await conn.fetchrow("SELECT * FROM loans WHERE id = $1", loan_id)
        rows = await conn.fetch(
            "SELECT * FROM repayments WHERE loan_id = $1 ORDER BY paid_on, id", loan_id
        )
        events = await conn.fetch(
            "SELECT version, action, at, changes, snapshot FROM loan_events WHERE loan_id = $1 "
            "ORDER BY version",
            loan_id,
        )
        terms = ledger.LoanTerms(
            principal=loan["principal"],
            annual_rate=loan["annual_rate"],
            tenure_months=loan["tenure_months"],
            disbursed_on=loan["disbursed_on"],
            first_due_on=loan["first_due_on"] if loan["first_due_given"] else None,
            late_fee=loan["late_fee"],
            grace_days=loan["grace_days"],
        )
        repayments = [ledger.Repayment(r["id"], r["paid_on"], r["amount"]) for r in rows]

        def fail(what: str, loan_id: int = loan_id) -> RuntimeError:
            return RuntimeError(f"seeded loan {loan_id}: {what}")

        book = ledger.replay(terms, repayments, loan["updated_at"].astimezone(UTC).date())
        for name, value in servicing._derived(book).items():
            if name not in loan:
                raise fail(f"the replay gives {name}, which loans have no column for")
            if json_value(value) != json_value(loan[name]):
                raise fail(f"{name} stored {loan[name]!r}, replay {value!r}")
        allocations = book.allocations
        for r in rows:
            got = allocations[r["id"]]
            if (got.principal, got.interest, got.penalty) != (
                r["principal"],
                r["interest"],
                r["penalty"],
            ):
                raise fail(f"repayment {r['id']} allocated {r}, replay {got}")
        if [e["version"] for e in events] != list(range(1, loan["version"] + 1)):
            raise fail("event versions are not 1..version")
        if json.loads(events[-1]["snapshot"]) != {n: json_value(loan[n]) for n in SERVICED}:
            raise fail("the last event's snapshot is not the loan")
        if number >= deep and loan_id > n_statement:
            continue
        for event in events:
            if event["action"] not in ("disbursed", "repaid"):
                continue
            day = event["at"].astimezone(UTC).date()
            if event["action"] == "repaid":
                last = json.loads(event["changes"])["repayment"]["to"]["id"]
                position = next(i for i, r in enumerate(repayments) if r.id == last)
                prefix = repayments[: position + 1]
            else:
                prefix = []
            derived = servicing._derived(ledger.replay(terms, prefix, day))
            snapshot = json.loads(event["snapshot"])
            for name, value in derived.items():
                if name in SERVICED and json_value(value) != snapshot[name]:
                    raise fail(f"version {event['version']} {name}: {snapshot[name]!r}, {value!r}")
            events_checked += 1
    return {"loans": len(picked), "events": events_checked, "ok": True}


# The rows of the seeded loans a run changes (repay's), as they were when it started.
SAVED_LOANS = "bench_saved_loans"


async def save_rows(database: str, ids: list[int]) -> None:
    """Keep a copy of these loans' rows (every column, whatever the schema has gained), for
    `reset` to give them back. Called when a run starts, after its reset: the rows are the
    seeded ones (and what migrations since made of them)."""
    conn = await asyncpg.connect(dsn(database))
    try:
        async with conn.transaction():
            await conn.execute(f"DROP TABLE IF EXISTS {SAVED_LOANS}")
            await conn.execute(f"CREATE TABLE {SAVED_LOANS} (LIKE loans)")
            await conn.execute(
                f"INSERT INTO {SAVED_LOANS} SELECT * FROM loans WHERE id = ANY($1::int[])", ids
            )
    finally:
        await conn.close()


async def _common_columns(conn: asyncpg.Connection, table: str) -> list[str]:
    """The columns of loans (but id) that a saved copy has too, in the loans table's order."""
    return [
        r["attname"]
        for r in await conn.fetch(
            "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = 'loans'::regclass "
            "AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'id' AND EXISTS "
            "(SELECT 1 FROM pg_attribute b WHERE b.attrelid = $1::regclass "
            "AND b.attname = a.attname AND NOT b.attisdropped) ORDER BY a.attnum",
            table,
        )
    ]


async def _restore_saved(conn: asyncpg.Connection, ids: list[int]) -> set[int]:
    """Give these loans their saved rows back (the columns both tables have); the ids done."""
    if not ids or not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", SAVED_LOANS):
        return set()
    columns = await _common_columns(conn, SAVED_LOANS)
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(f's."{c}"' for c in columns)
    done = await conn.fetch(
        f"UPDATE loans AS l SET ({names}) = ({values}) FROM {SAVED_LOANS} AS s "
        "WHERE l.id = s.id AND l.id = ANY($1::int[]) RETURNING l.id",
        ids,
    )
    return {r["id"] for r in done}


# The seeded active loans as they were before the close-of-business steps (run.py): close of
# business may change every one of them (cob_date, serviced_on, fees, dpd, bucket, version...).
# Unlogged (no WAL for ~40% of the table): lost if PostgreSQL crashes, and then `reset` finds
# seeded loans with a cob_date and has the database seeded again.
SAVED_ACTIVE = "bench_saved_active"


async def save_active(database: str) -> int:
    """Keep a copy of every seeded active loan's row (every column), for `reset` (and
    `restore_active`) to give back whatever close of business changed. Called right after a
    reset, so the rows are the seeded ones. Returns how many were saved."""
    conn = await asyncpg.connect(dsn(database))
    try:
        async with conn.transaction():
            await conn.execute(f"DROP TABLE IF EXISTS {SAVED_ACTIVE}")
            await conn.execute(f"CREATE UNLOGGED TABLE {SAVED_ACTIVE} (LIKE loans)")
            return int(
                (
                    await conn.execute(
                        f"INSERT INTO {SAVED_ACTIVE} SELECT * FROM loans WHERE status = 'active'"
                    )
                ).split()[-1]
            )
    finally:
        await conn.close()


async def _restore_active(conn: asyncpg.Connection, *, drop: bool) -> set[int]:
    """Give the saved active loans (`save_active`) that differ from their copy their saved row
    back, in one UPDATE (rows that did not change are not written); the ids restored."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", SAVED_ACTIVE):
        return set()
    columns = await _common_columns(conn, SAVED_ACTIVE)
    names = ", ".join(f'"{c}"' for c in columns)
    mine = ", ".join(f'l."{c}"' for c in columns)
    saved = ", ".join(f's."{c}"' for c in columns)
    done = await conn.fetch(
        f"UPDATE loans AS l SET ({names}) = ({saved}) FROM {SAVED_ACTIVE} AS s "
        f"WHERE l.id = s.id AND ({mine}) IS DISTINCT FROM ({saved}) RETURNING l.id"
    )
    if drop:
        await conn.execute(f"DROP TABLE {SAVED_ACTIVE}")
    return {r["id"] for r in done}


async def restore_active(database: str) -> int:
    """Give the active loans their saved rows back (keeping the copy for later), then VACUUM
    ANALYZE loans, so that what runs next meets the table as a fresh seed leaves it. Returns
    how many rows were restored."""
    conn = await asyncpg.connect(dsn(database))
    try:
        async with conn.transaction():
            done = await _restore_active(conn, drop=False)
        await conn.execute("VACUUM ANALYZE loans")
        return len(done)
    finally:
        await conn.close()


async def loans_hash(database: str, max_loan_id: int) -> str:
    """md5 over every seeded loan's row (text form, in id order): equal before and after a
    step means the step's changes were all undone."""
    conn = await asyncpg.connect(dsn(database))
    try:
        return await conn.fetchval(
            "SELECT md5(string_agg(md5(l::text), '' ORDER BY l.id)) FROM loans AS l "
            "WHERE l.id <= $1",
            max_loan_id,
        )
    finally:
        await conn.close()


class Unrestorable(RuntimeError):
    """Seeded loans were changed that no saved row can give back (see `reset`)."""


async def reset(database: str, marker: dict[str, Any]) -> int:
    """Delete what runs added above the seeded ids (fixtures, applied loans, their events,
    repayments, close of business's `penalty_charged` events), and give the seeded loans a run
    changed their saved rows back: the active loans close of business changed (`save_active`;
    that copy is then dropped), then repay's (`save_rows`). Raises Unrestorable (and changes
    nothing) when a seeded loan was changed (an event of it deleted) that has no saved row, or
    a seeded loan still has a cob_date (close of business ran without a saved copy)."""
    conn = await asyncpg.connect(dsn(database))
    try:
        async with conn.transaction():
            touched = await conn.fetch(
                "DELETE FROM loan_events WHERE id > $1 OR loan_id > $2 RETURNING loan_id",
                marker["max_event_id"],
                marker["max_loan_id"],
            )
            gone = len(touched)
            gone += await conn.fetchval(
                "WITH r AS (DELETE FROM repayments WHERE id > $1 OR loan_id > $2 RETURNING 1)"
                " SELECT count(*) FROM r",
                marker.get("max_repayment_id", 0),
                marker["max_loan_id"],
            )
            gone += await conn.fetchval(
                "WITH l AS (DELETE FROM loans WHERE id > $1 RETURNING 1) SELECT count(*) FROM l",
                marker["max_loan_id"],
            )
            seeded = sorted(
                {r["loan_id"] for r in touched if r["loan_id"] <= marker["max_loan_id"]}
            )
            # close of business's changes first, then repay's (both copies are seeded rows)
            done = await _restore_active(conn, drop=True)
            restored = len(done)
            done |= await _restore_saved(conn, seeded)
            rest = sorted(set(seeded) - done)
            if rest:
                raise Unrestorable(
                    f"{len(rest)} seeded loans were changed outside the saved ones "
                    f"(e.g. {rest[:5]}): the database must be seeded again"
                )
            closed = await conn.fetchval(
                "SELECT count(*) FROM loans WHERE id <= $1 AND cob_date IS NOT NULL",
                marker["max_loan_id"],
            )
            if closed:
                raise Unrestorable(
                    f"{closed} seeded loans have a cob_date (close of business ran on them "
                    "without a saved copy): the database must be seeded again"
                )
            await conn.execute("DELETE FROM idempotency_keys")
            # Integration events and webhooks (migration 0010): the seed writes none.
            if await conn.fetchval("SELECT to_regclass('events') IS NOT NULL"):
                gone += await conn.fetchval(
                    "WITH d AS (DELETE FROM webhook_deliveries RETURNING 1), "
                    "w AS (DELETE FROM webhook_endpoints RETURNING 1) "
                    "SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM w)"
                )
                gone += await conn.fetchval(
                    "WITH e AS (DELETE FROM events RETURNING 1) SELECT count(*) FROM e"
                )
            await conn.execute("DELETE FROM rate_events")
            await conn.execute(
                "DELETE FROM users WHERE id > $1 AND NOT EXISTS "
                "(SELECT 1 FROM loans WHERE customer_id = users.id OR agent_id = users.id)",
                marker["max_user_id"],
            )
        if gone or restored:
            await conn.execute("VACUUM ANALYZE loans, loan_events, repayments")
        return int(gone) + restored
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
            try:
                removed = await reset(database, marker)
            except Unrestorable as exc:
                print(f"{database}: {exc}", file=sys.stderr)
            else:
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
