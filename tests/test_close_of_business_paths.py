"""The CLI, the endpoint and the scheduled job give identical results (on both engines).

One deterministic book (15 loans: back-dated disbursements, first due dates given or not, a month
end, partial, late and same-day repayments, a payoff, a write-off, a loan disbursed today, fee
terms that differ by product, loans stored as of an earlier day as well as loans changed today)
is built in three fresh databases of the engine under test. The same past day D (yesterday, the
day the scheduled job closes) is then closed in each a different way:

1. POST /api/v1/admin/close-of-business {"date": D} through an app on the first;
2. `loanapi cob --date D` as a subprocess on the second;
3. the scheduled job on the third: on SQLite the in-process scheduler `loanapi serve` runs
   (`jobs.run_in_process`), on PostgreSQL a `loanapi worker` subprocess (Procrastinate), both on
   a schedule that fires every second.

Every loan row (timestamps aside) and every penalty_charged event (ids, times and actors aside)
must then be identical in the three, the three runs must report the same counts, and a second
run must find nothing left to do.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from loanapi import jobs, migrate
from loanapi.app import bootstrap_admin, close_databases, create_app
from loanapi.clock import day_start, utcnow
from loanapi.loans import ledger
from loanapi.loans.models import EventAction, Loan, LoanEvent, LoanStatus
from loanapi.loans.records import LoanRecord
from loanapi.loans.servicing import _derived, repayments_of, terms_of
from tests.conftest import (
    ADMIN,
    POSTGRES_URL,
    TEST_SECRET,
    Database,
    _create_postgres_database,
    bearer,
    client_for,
    make_settings,
    register,
    token_for,
)

CLI = Path(sys.executable).with_name("loanapi")
V1 = "/api/v1"
EVERY_SECOND = "* * * * * */1"  # the sixth field is seconds (croniter, Procrastinate)
JOB_TIMEOUT = 20.0
# Late fee and grace days per product; education loans keep the default (no fee).
FEES = {"personal_loan": ("25.00", 5), "home_loan": ("7.35", 0), "car_loan": ("10.00", 30)}
# Loan columns that record when a row was written, not what it holds.
WRITTEN_AT = {"created_at", "updated_at"}
# Event columns that may differ between two equivalent runs.
EVENT_NOISE = {"id", "at", "actor_id"}
# What a run reports (close_of_business.Result, seconds aside).
RESULT_KEYS = ("date", "loans", "penalties_charged", "bucket_changes")


@dataclass(frozen=True)
class Spec:
    """One loan of the book; days count back from today, or on from the disbursement."""

    loan_type: str
    principal: str
    tenure: int
    disbursed: int  # days before today
    first_due: int | None = None  # days after the disbursement
    month_end: bool = False  # disbursed on the last day of the month before `disbursed`
    # (days after the disbursement, installments to pay: "1", "0.5", ... or "payoff")
    payments: tuple[tuple[int, str], ...] = ()
    stored_as_of: int | None = None  # days before today: the last change was on that day
    write_off: bool = False


BOOK = (
    Spec("personal_loan", "12000", 12, 200, stored_as_of=60),  # never paid, many fees
    Spec("personal_loan", "5000", 6, 95, first_due=40, payments=((40, "1"),), stored_as_of=20),
    Spec("home_loan", "40000", 24, 400, payments=((45, "1"), (80, "1"), (130, "1"))),
    Spec("car_loan", "8000", 12, 70, payments=((28, "2"),), stored_as_of=10),  # paid ahead
    Spec("education_loan", "20000", 18, 150, stored_as_of=30),  # late, but no fee
    Spec("personal_loan", "3000", 3, 120, payments=((100, "payoff"),)),  # closed
    Spec("personal_loan", "6000", 12, 90, write_off=True),
    Spec("home_loan", "15000", 12, 0),  # disbursed today: not due for D
    Spec("personal_loan", "9000", 12, 1),  # disbursed on D itself
    Spec(
        "car_loan",
        "25000",
        36,
        300,
        first_due=55,
        payments=((60, "0.5"), (200, "0.5")),
        stored_as_of=80,
    ),
    Spec("personal_loan", "7000", 6, 95, month_end=True),  # day clamping at month ends
    Spec("home_loan", "50000", 12, 35, stored_as_of=3),  # first installment just missed
    Spec("personal_loan", "10000", 12, 38),
    Spec("car_loan", "12000", 12, 60, payments=((60, "1"),)),  # repaid today: after D
    Spec("personal_loan", "4000", 24, 250, payments=((120, "3"),), stored_as_of=45),
)


# --- three databases ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Database]]:
    """Three fresh, migrated databases of one engine."""
    drops: list[Any] = []
    made: list[Database] = []
    try:
        for n in range(3):
            if request.param == "sqlite":
                url = f"sqlite+aiosqlite:///{tmp_path / f'book{n}.db'}"
            else:
                if not POSTGRES_URL:
                    pytest.skip("PostgreSQL not available (set LOANAPI_TEST_POSTGRES_URL)")
                url, drop = _create_postgres_database()
                drops.append(drop)
            migrate.upgrade(url, configure_logging=False)
            made.append(Database(request.param, url, {}))
        yield made
    finally:
        for drop in drops:
            drop()


def process_env(url: str, **extra: str) -> dict[str, str]:
    """A `loanapi` subprocess's environment: ours minus any LOANAPI_* of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANAPI_")}
    env |= {
        "LOANAPI_DATABASE_URL": url,
        "LOANAPI_SECRET_KEY": TEST_SECRET,
        "LOANAPI_PBKDF2_ROUNDS": "1000",
        "LOANAPI_DB_POOL_SIZE": "2",
        "LOANAPI_LOG_LEVEL": "INFO",
        "LOANAPI_LOG_FORMAT": "json",
        **extra,
    }
    return env


# --- the book ----------------------------------------------------------------------------------


async def _build(app: Any, today: date) -> list[int]:
    """The book of BOOK, loan ids in order; the same in every fresh database."""
    await bootstrap_admin(app)
    async with client_for(app) as client:
        admin = bearer(await token_for(client, ADMIN["username"], ADMIN["password"]))
        await register(client, "customer", "cora")
        customer = bearer(await token_for(client, "cora"))
        agent = await register(client, "agent", "abe")
        approved = await client.post(f"{V1}/admin/agents/{agent['id']}/approve", headers=admin)
        assert approved.status_code == 200, approved.text
        agent_headers = bearer(await token_for(client, "abe"))
        for product in (await client.get(f"{V1}/loan-products")).json():
            if product["loan_type"] in FEES:
                fee, grace = FEES[product["loan_type"]]
                body = {**product, "late_fee": fee, "grace_days": grace}
                put = await client.put(
                    f"{V1}/admin/loan-products/{product['loan_type']}", json=body, headers=admin
                )
                assert put.status_code == 200, put.text
        ids = []
        for spec in BOOK:
            ids.append(await _loan(app, client, spec, today, admin, customer, agent_headers))
    return ids


async def _loan(
    app: Any,
    client: httpx.AsyncClient,
    spec: Spec,
    today: date,
    admin: dict[str, str],
    customer: dict[str, str],
    agent: dict[str, str],
) -> int:
    body = {"loan_type": spec.loan_type, "principal": spec.principal, "tenure_months": spec.tenure}
    applied = await client.post(f"{V1}/customer/loans", json=body, headers=customer)
    assert applied.status_code == 201, applied.text
    loan_id = int(applied.json()["id"])
    for path, headers in (("agent/loans/{}/request", agent), ("admin/loans/{}/approve", admin)):
        moved = await client.post(f"{V1}/{path.format(loan_id)}", headers=headers)
        assert moved.status_code == 200, moved.text
    disbursed_on = today - timedelta(days=spec.disbursed)
    if spec.month_end:
        disbursed_on = disbursed_on.replace(day=1) - timedelta(days=1)
    disbursement = {"disbursed_on": disbursed_on.isoformat()}
    if spec.first_due is not None:
        disbursement["first_due_on"] = (disbursed_on + timedelta(days=spec.first_due)).isoformat()
    done = await client.post(
        f"{V1}/admin/loans/{loan_id}/disburse", json=disbursement, headers=admin
    )
    assert done.status_code == 200, done.text
    emi = Decimal(done.json()["emi"])
    for after, installments in spec.payments:
        paid_on = disbursed_on + timedelta(days=after)
        assert paid_on <= today, spec
        quote = await client.get(
            f"{V1}/admin/loans/{loan_id}/payoff?on={paid_on.isoformat()}", headers=admin
        )
        assert quote.status_code == 200, quote.text
        total = Decimal(quote.json()["total"])
        amount = total if installments == "payoff" else min(emi * Decimal(installments), total)
        paid = await client.post(
            f"{V1}/admin/loans/{loan_id}/repayments",
            json={"amount": f"{amount:.2f}", "paid_on": paid_on.isoformat()},
            headers=admin,
        )
        assert paid.status_code == 201, paid.text
    if spec.write_off:
        written = await client.post(
            f"{V1}/admin/loans/{loan_id}/write-off", json={"reason": "Fraud"}, headers=admin
        )
        assert written.status_code == 200, written.text
    if spec.stored_as_of is not None:
        await _store_as_of(app, loan_id, today - timedelta(days=spec.stored_as_of))
    return loan_id


async def _store_as_of(app: Any, loan_id: int, day: date) -> None:
    """Store the loan as its last change on `day` would have left it (the API changes loans as
    of today only): what the ledger's replay gives as of then."""
    async with app.state.sessions.write() as session:
        row = (await session.execute(select(Loan.__table__).where(Loan.id == loan_id))).mappings()
        loan = LoanRecord.of(row.one())
        repayments = await repayments_of(session, loan_id)
        assert loan.disbursed_on is not None
        assert loan.disbursed_on <= day
        assert all(r.paid_on <= day for r in repayments), (loan_id, day)
        book = ledger.replay(
            terms_of(loan),
            [ledger.Repayment(r.id, r.paid_on, r.amount, r.reversed) for r in repayments],
            day,
        )
        await session.execute(update(Loan).where(Loan.id == loan_id).values(_derived(book)))
        await session.commit()


async def _state(app: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Every loan row (timestamps aside), every penalty_charged event (ids, times and actors
    aside), and how many events of any other kind there are."""
    async with app.state.engine.connect() as conn:
        loans = [
            {k: v for k, v in row.items() if k not in WRITTEN_AT}
            for row in (await conn.execute(select(Loan.__table__).order_by(Loan.id))).mappings()
        ]
        events = (
            await conn.execute(
                select(LoanEvent.__table__).order_by(LoanEvent.loan_id, LoanEvent.version)
            )
        ).mappings()
        penalties, others = [], 0
        for event in events:
            if event["action"] == EventAction.penalty_charged:
                assert event["actor_role"] == "admin", event
                penalties.append({k: v for k, v in event.items() if k not in EVENT_NOISE})
            else:
                others += 1
    return loans, penalties, others


# --- the three ways ----------------------------------------------------------------------------


async def _by_endpoint(app: Any, day: date) -> dict[str, Any]:
    async with client_for(app) as client:
        admin = bearer(await token_for(client, ADMIN["username"], ADMIN["password"]))
        closed = await client.post(
            f"{V1}/admin/close-of-business", json={"date": day.isoformat()}, headers=admin
        )
        assert closed.status_code == 200, closed.text
        again = await client.post(
            f"{V1}/admin/close-of-business", json={"date": day.isoformat()}, headers=admin
        )
        assert again.status_code == 200, again.text
    body, second = closed.json(), again.json()
    assert second["date"] == day.isoformat()
    assert (second["loans"], second["penalties_charged"], second["bucket_changes"]) == (0, 0, 0)
    return dict(body)


SUMMARY = re.compile(
    r"closed (?P<date>\d{4}-\d{2}-\d{2}): (?P<loans>\d+) loans, (?P<penalties_charged>\d+) late "
    r"fees recorded, (?P<bucket_changes>\d+) bucket changes, [0-9.]+ s"
)


async def _by_cli(url: str, day: date, workdir: Path) -> dict[str, Any]:
    ran = await asyncio.to_thread(
        subprocess.run,
        [str(CLI), "cob", "--date", day.isoformat()],
        env=process_env(url),
        cwd=workdir,  # no stray .env
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    found = SUMMARY.search(ran.stdout)
    assert found, ran.stdout + ran.stderr
    return {k: v if k == "date" else int(v) for k, v in found.groupdict().items()}


class _Runs(logging.Handler):
    """Collects the scheduled runs' log records: jobs.close_books logs each run's Result in the
    record's extra fields (whatever the message says)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.runs: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.failures.append(self.format(record))
        elif all(hasattr(record, key) for key in RESULT_KEYS):
            self.runs.append({k: getattr(record, k) for k in RESULT_KEYS})


async def _scheduled_in_process(app: Any) -> list[dict[str, Any]]:
    """SQLite: the scheduler `loanapi serve` starts, until it has run twice."""
    assert app.state.settings.cob_schedule == EVERY_SECOND
    logger = logging.getLogger("loanapi.jobs")
    runs, level = _Runs(), logger.level
    logger.addHandler(runs)
    logger.setLevel(logging.INFO)
    scheduler = asyncio.create_task(jobs.run_in_process(app.state.sessions, app.state.settings))
    try:
        deadline = time.monotonic() + JOB_TIMEOUT
        while len(runs.runs) < 2 and not runs.failures:
            assert time.monotonic() < deadline, f"the scheduler ran {runs.runs} only"
            assert not scheduler.done(), scheduler
            await asyncio.sleep(0.05)
    finally:
        scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler
        logger.removeHandler(runs)
        logger.setLevel(level)
    assert not runs.failures, runs.failures
    return runs.runs


async def _scheduled_by_worker(app: Any, url: str, workdir: Path) -> list[dict[str, Any]]:
    """PostgreSQL: a `loanapi worker` until two close_of_business jobs succeeded; SIGTERM."""
    log = workdir / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [str(CLI), "worker"],
            env=process_env(url, LOANAPI_COB_CRON=EVERY_SECOND),
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    succeeded = text(
        "SELECT count(*) FROM procrastinate_jobs "
        "WHERE task_name = 'close_of_business' AND status = 'succeeded'"
    )
    try:
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            assert worker.poll() is None, f"the worker exited: {log.read_text()[-3000:]}"
            async with app.state.engine.connect() as conn:
                if (await conn.execute(succeeded)).scalar_one() >= 2:
                    break
            assert time.monotonic() < deadline, f"no two jobs ran: {log.read_text()[-3000:]}"
            await asyncio.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(worker.wait, 15)
        assert returncode == 0, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)
    async with app.state.engine.connect() as conn:
        statuses = (
            await conn.execute(
                text(
                    "SELECT status::text, count(*) FROM procrastinate_jobs "
                    "WHERE task_name = 'close_of_business' GROUP BY status"
                )
            )
        ).all()
    assert {status for status, _ in statuses} <= {"succeeded", "todo"}, statuses
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert not [line for line in lines if line.get("level") in ("ERROR", "CRITICAL")], lines
    return [
        {k: line[k] for k in RESULT_KEYS}
        for line in lines
        if line.get("name") == "loanapi.jobs" and all(key in line for key in RESULT_KEYS)
    ]


# --- the test ----------------------------------------------------------------------------------


def _wait_past_midnight() -> date:
    """Today (UTC), far enough from midnight that yesterday stays yesterday for the test."""
    now = utcnow()
    left = day_start(now.date() + timedelta(days=1)) - now
    if left.total_seconds() < 90:
        time.sleep(left.total_seconds() + 1)
    return utcnow().date()


async def test_endpoint_cli_and_scheduled_job_close_a_day_identically(
    databases: list[Database], tmp_path: Path
) -> None:
    started = time.monotonic()
    today = _wait_past_midnight()
    day = today - timedelta(days=1)  # what the scheduled job closes
    engine = databases[0].name
    apps = [
        create_app(make_settings(databases[0], db_pool_size=4)),
        create_app(make_settings(databases[1], db_pool_size=4)),
        create_app(make_settings(databases[2], db_pool_size=4, cob_cron=EVERY_SECOND)),
    ]
    try:
        ids = [await _build(app, today) for app in apps]
        assert ids[0] == ids[1] == ids[2]
        before = [await _state(app) for app in apps]
        assert before[0] == before[1] == before[2], "the three books differ before closing"
        loans_before = {loan["id"]: loan for loan in before[0][0]}
        due = [
            loan
            for loan in before[0][0]
            if loan["status"] == LoanStatus.active and loan["disbursed_on"] <= day
        ]
        # Both ways of closing a loan are exercised: stored as of D or before (set-based SQL),
        # and changed after D (the ledger's replay).
        assert {loan["serviced_on"] <= day for loan in due} == {True, False}

        built = time.monotonic()
        results = [await _by_endpoint(apps[0], day), await _by_cli(databases[1].url, day, tmp_path)]
        if engine == "sqlite":
            scheduled = await _scheduled_in_process(apps[2])
        else:
            scheduled = await _scheduled_by_worker(apps[2], databases[2].url, tmp_path)
        closed = time.monotonic()

        # The scheduled job closed D, once: every later run found nothing left.
        assert len(scheduled) >= 2, scheduled
        assert all(run["date"] == day.isoformat() for run in scheduled), scheduled
        assert [run["loans"] for run in scheduled[1:]] == [0] * (len(scheduled) - 1), scheduled
        assert [run["penalties_charged"] for run in scheduled[1:]] == [0] * (len(scheduled) - 1)
        results.append(scheduled[0])

        counts = [{k: result[k] for k in RESULT_KEYS} for result in results]
        assert counts[0] == counts[1] == counts[2], counts
        assert counts[0]["date"] == day.isoformat()
        assert counts[0]["loans"] == len(due)
        assert counts[0]["penalties_charged"] > 0
        assert counts[0]["bucket_changes"] > 0

        after = [await _state(app) for app in apps]
        for n in (1, 2):
            for mine, theirs in zip(after[0][0], after[n][0], strict=True):
                assert mine == theirs, f"loan {mine['id']}: endpoint vs path {n + 1}"
            assert after[0][1] == after[n][1], f"penalty events: endpoint vs path {n + 1}"
            assert after[0][2] == after[n][2], f"other events: endpoint vs path {n + 1}"

        loans, penalties, others = after[0]
        assert others == before[0][2]  # close of business writes nothing but penalty events
        assert (
            sum(e["changes"]["late_fees"]["to"]["count"] for e in penalties)
            == counts[0]["penalties_charged"]
        )
        assert len({e["loan_id"] for e in penalties}) == len(penalties)  # one per loan
        due_ids = {loan["id"] for loan in due}
        for loan in loans:
            if loan["id"] in due_ids:
                assert loan["cob_date"] == day, loan
                assert loan["fees_recorded"] == loan["fees_charged"], loan
            else:  # closed, written off, disbursed after D: untouched
                assert loan == loans_before[loan["id"]], loan
        print(  # noqa: T201
            f"\n{engine}: {len(loans)} loans, {counts[0]}; built in {built - started:.1f} s, "
            f"closed three ways in {closed - built:.1f} s, {time.monotonic() - started:.1f} s "
            "in all"
        )
    finally:
        for app in apps:
            await close_databases(app)
