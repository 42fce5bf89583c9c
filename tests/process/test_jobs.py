"""Two `loanapi worker` processes on one PostgreSQL: the daily job runs once.

Close of business is a Procrastinate periodic task (loanapi.jobs): every worker defers it at each
scheduled time, the database lets one deferral per time through (procrastinate_periodic_defers is
unique on it), and one worker takes the job (FOR UPDATE SKIP LOCKED). Here the schedule fires
every two seconds and two workers compete for ~7 s; Procrastinate's own tables and both workers'
logs must show one job per scheduled time, each run once and succeeded, and the overdue loans'
late fees recorded by one penalty_charged event each. On SQLite there is no worker: it says so.
"""

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.process.conftest import (
    ADMIN,
    API,
    CLI,
    PgDatabase,
    ServerFactory,
    apply_loan,
    client_for,
    history,
    login,
    new_agent,
    new_customer,
    report,
    server_env,
    session_alive,
    start_worker_process,
)

pytestmark = pytest.mark.process

EVERY_TWO_SECONDS = "* * * * * */2"  # the sixth field is seconds (croniter, Procrastinate)
PERIOD = 2
RUN_SECONDS = 7.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
OVERDUE = (200, 150, 95, 40)  # days since each seeded loan's disbursement


@dataclass
class Worker:
    name: str
    log: Path
    process: subprocess.Popen[bytes]

    def lines(self) -> list[dict[str, Any]]:
        """The worker's JSON log lines."""
        text = self.log.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_worker(name: str, database: PgDatabase, workdir: Path) -> Worker:
    # DEBUG: the losing worker's "already deferred" for a scheduled time is logged at DEBUG.
    env = {"LOANAPI_COB_CRON": EVERY_TWO_SECONDS, "LOANAPI_LOG_LEVEL": "DEBUG"}
    process, log = start_worker_process(name, database, workdir, env)
    return Worker(name, log, process)


def stop(worker: Worker) -> None:
    if worker.process.poll() is None:
        worker.process.kill()
        worker.process.wait(STOP_TIMEOUT)


def clear_of_midnight() -> date:
    """Today (UTC), with a minute at least before it ends: the day the job closes is fixed."""
    now = datetime.now(UTC)
    left = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC) - now
    if left < timedelta(minutes=1):
        time.sleep(left.total_seconds() + 1)
    return datetime.now(UTC).date()


async def seed_overdue_loans(base_url: str) -> list[int]:
    """Personal loans with a late fee, disbursed months ago and never repaid."""
    async with client_for(base_url) as client:
        admin = await login(client, ADMIN["username"], ADMIN["password"])
        customer = await new_customer(client, "jobs_customer")
        agent = await new_agent(client, admin, "jobs_agent")
        products = (await client.get(f"{API}/loan-products")).json()
        personal = next(p for p in products if p["loan_type"] == "personal_loan")
        put = await client.put(
            f"{API}/admin/loan-products/personal_loan",
            json={**personal, "late_fee": "25.00", "grace_days": 5},
            headers=admin.headers,
        )
        assert put.status_code == 200, put.text
        ids = []
        today = datetime.now(UTC).date()
        for days in OVERDUE:
            loan = await apply_loan(client, customer, loan_type="personal_loan")
            for path, caller in (
                ("agent/loans/{}/request", agent),
                ("admin/loans/{}/approve", admin),
            ):
                moved = await client.post(
                    f"{API}/{path.format(loan['id'])}", headers=caller.headers
                )
                assert moved.status_code == 200, moved.text
            disbursed = await client.post(
                f"{API}/admin/loans/{loan['id']}/disburse",
                json={"disbursed_on": (today - timedelta(days=days)).isoformat()},
                headers=admin.headers,
            )
            assert disbursed.status_code == 200, disbursed.text
            ids.append(int(loan["id"]))
    return ids


@dataclass
class Watched:
    most: int = 0  # workers registered at once, at most
    seen: set[int] = field(default_factory=set)  # every worker id registered
    together: float = 0.0  # seconds both were registered
    # procrastinate_periodic_defers keeps only the latest row of a task: every row seen
    defers: dict[int, set[int | None]] = field(default_factory=lambda: defaultdict(set))


async def watch(database: PgDatabase, workers: list[Worker]) -> Watched:
    """Until both workers are registered, then RUN_SECONDS more, polling the queue's tables."""
    conn = await database.connect()
    watched, both_since = Watched(), None
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            for worker in workers:
                assert worker.process.poll() is None, f"{worker.name} exited:\n{worker.tail()}"
            rows = await conn.fetch(
                "SELECT id FROM procrastinate_workers "
                "WHERE last_heartbeat > now() - interval '30 seconds'"
            )
            ids = {row["id"] for row in rows}
            watched.most, watched.seen = max(watched.most, len(ids)), watched.seen | ids
            for row in await conn.fetch(
                "SELECT task_name, periodic_id, defer_timestamp, job_id "
                "FROM procrastinate_periodic_defers WHERE task_name = 'close_of_business'"
            ):
                assert row["periodic_id"] == "daily"
                watched.defers[row["defer_timestamp"]].add(row["job_id"])
            now = time.monotonic()
            if len(ids) >= 2 and both_since is None:
                both_since = now
            if both_since is None:
                assert now < deadline, f"workers not registered: {[w.tail() for w in workers]}"
            elif now - both_since >= RUN_SECONDS:
                watched.together = now - both_since
                return watched
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


COB = "task_name = 'close_of_business'"


async def queue_tables(database: PgDatabase) -> dict[str, list[dict[str, Any]]]:
    conn = await database.connect()
    try:
        queries = {
            # Only close of business: the workers also run the stalled-job sweep every minute.
            "jobs": "SELECT id, task_name, status::text AS status, attempts, args "
            f"FROM procrastinate_jobs WHERE {COB} ORDER BY id",
            "defers": "SELECT task_name, periodic_id, defer_timestamp, job_id "
            f"FROM procrastinate_periodic_defers WHERE {COB} ORDER BY defer_timestamp",
            "events": "SELECT job_id, type::text AS type FROM procrastinate_events WHERE job_id "
            f"IN (SELECT id FROM procrastinate_jobs WHERE {COB}) ORDER BY id",
            "workers": "SELECT id FROM procrastinate_workers",
        }
        return {name: [dict(row) for row in await conn.fetch(sql)] for name, sql in queries.items()}
    finally:
        await conn.close()


async def loans_after(base_url: str, ids: list[int]) -> dict[int, tuple[dict, list[dict]]]:
    async with client_for(base_url) as client:
        admin = await login(client, ADMIN["username"], ADMIN["password"])
        found = {}
        for loan_id in ids:
            loan = await client.get(f"{API}/admin/loans/{loan_id}", headers=admin.headers)
            assert loan.status_code == 200, loan.text
            found[loan_id] = (loan.json(), await history(client, admin, loan_id))
        return found


async def test_two_workers_run_each_scheduled_close_of_business_once(
    start_server: ServerFactory, pg_database: PgDatabase, tmp_path: Path
) -> None:
    began = time.monotonic()
    yesterday = clear_of_midnight() - timedelta(days=1)  # the day every run closes
    server = start_server("serve-jobs", migrate=True)
    loan_ids = await seed_overdue_loans(server.base_url)
    before = await loans_after(server.base_url, loan_ids)
    assert all(e["action"] != "penalty_charged" for _, events in before.values() for e in events), (
        "penalty events before any close of business"
    )

    workers = [start_worker(name, pg_database, tmp_path) for name in ("worker-a", "worker-b")]
    try:
        watched = await watch(pg_database, workers)
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            code = await asyncio.to_thread(worker.process.wait, STOP_TIMEOUT)
            assert code == 0, f"{worker.name} exited with {code}:\n{worker.tail()}"
            assert session_alive(worker.process.pid) == [], f"{worker.name} left processes"
    finally:
        for worker in workers:
            stop(worker)
    stopped = time.monotonic()

    # Both workers were up together, and both unregistered on the way out.
    assert watched.most == 2, watched
    assert len(watched.seen) == 2, watched
    tables = await queue_tables(pg_database)
    assert tables["workers"] == [], "a worker did not unregister on SIGTERM"
    logs = {worker.name: worker.lines() for worker in workers}
    for name, lines in logs.items():
        actions = [line.get("action") for line in lines]
        assert "start_worker" in actions, f"{name} never started:\n{lines[:5]}"
        registered = {
            line["worker"]["worker_id"] for line in lines if line.get("action") == "start_worker"
        }
        assert len(registered) == 1, registered
        assert registered <= watched.seen, (name, registered, watched)
        assert "stop_worker" in actions, f"{name} did not stop gracefully"
        errors = [line for line in lines if line.get("level") in ("ERROR", "CRITICAL")]
        assert errors == [], f"{name}: {errors}"

    # One job per scheduled time: each time (on the 2-second grid) in exactly one job's
    # arguments, and the deferral row of each time pointing at that job.
    jobs = {job["id"]: job for job in tables["jobs"]}
    assert {job["task_name"] for job in jobs.values()} == {"close_of_business"}
    stamp_of = {job_id: json.loads(job["args"])["timestamp"] for job_id, job in jobs.items()}
    per_stamp = Counter(stamp_of.values())
    assert set(per_stamp.values()) == {1}, per_stamp
    stamps = sorted(per_stamp)
    assert len(stamps) >= int(RUN_SECONDS // PERIOD), stamps
    assert all(stamp % PERIOD == 0 for stamp in stamps), stamps
    defers = dict(watched.defers)
    for row in tables["defers"]:
        defers.setdefault(row["defer_timestamp"], set()).add(row["job_id"])
    assert set(defers) <= set(stamps), (defers, stamps)
    for stamp, job_ids in defers.items():
        assert len(job_ids) == 1, (stamp, job_ids)
        (job_id,) = job_ids
        assert job_id is not None, stamp
        assert stamp_of[job_id] == stamp, (stamp, job_id)

    # Both deferrers tried the scheduled times; the database let one deferral each through.
    tried: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, lines in logs.items():
        for line in lines:
            if line.get("task_name") == "close_of_business" and "defer_timestamp" in line:
                tried[line["defer_timestamp"]][name].append(line["action"])
    window = set(range(stamps[0], stamps[-1] + 1, PERIOD))
    assert window <= set(tried), (sorted(window), dict(tried))  # no scheduled time was missed
    contested = [stamp for stamp, by in tried.items() if len(by) == len(workers)]
    assert contested, f"the two workers never tried the same scheduled time: {dict(tried)}"
    for stamp, by in tried.items():
        outcomes = [action for actions in by.values() for action in actions]
        in_table = per_stamp[stamp]
        assert outcomes.count("periodic_task_deferred") == in_table <= 1, (stamp, by)
        if not in_table:  # the previous time's job was still waiting: the queueing lock held
            assert "skip_periodic_task_queueing_lock" in outcomes, (stamp, by)

    # Each job ran once, by one worker, and succeeded (one still waiting at the stop is fine).
    events: dict[int, Counter[str]] = defaultdict(Counter)
    for event in tables["events"]:
        events[event["job_id"]][event["type"]] += 1
    started = Counter(
        line["job"]["id"]
        for lines in logs.values()
        for line in lines
        if line.get("action") == "start_job"
    )
    successes = [
        (line["job"]["id"], name)
        for name, lines in logs.items()
        for line in lines
        if line.get("action") == "job_success"
    ]
    runners = dict(successes)
    assert len(runners) == len(successes), successes  # no job succeeded in both workers
    succeeded = [job for job in jobs.values() if job["status"] == "succeeded"]
    assert len(succeeded) >= 2, jobs
    for job in jobs.values():
        kinds = events[job["id"]]
        if job["status"] == "succeeded":
            assert kinds == Counter(deferred=1, started=1, succeeded=1), (job, kinds)
            assert job["attempts"] == 1, job
            assert started[job["id"]] == 1, (job, started)
            assert job["id"] in runners, job
        else:
            assert job["status"] == "todo", job
            assert kinds == Counter(deferred=1), (job, kinds)
            assert started[job["id"]] == 0, job

    # The first run closed yesterday for every loan; every later one found nothing to do.
    runs = sorted(
        (
            line
            for lines in logs.values()
            for line in lines
            # jobs.close_books logs each run's Result in extra fields (whatever the message says)
            if line.get("name") == "loanapi.jobs" and "penalties_charged" in line
        ),
        key=lambda line: str(line["time"]),
    )
    assert len(runs) == len(succeeded), (runs, succeeded)
    first, *later = runs
    assert [line for line in runs if line["loans"]] == [first], runs
    assert first["date"] == yesterday.isoformat(), first
    assert first["loans"] == len(loan_ids), first
    assert first["penalties_charged"] > 0, first
    assert [(r["date"], r["loans"], r["penalties_charged"]) for r in later] == [
        (yesterday.isoformat(), 0, 0)
    ] * len(later), later

    # The late fees were recorded once: one penalty_charged event per loan, fees as stored.
    after = await loans_after(server.base_url, loan_ids)
    recorded = 0
    for loan_id, (loan, events_of_loan) in after.items():
        charged = [e for e in events_of_loan if e["action"] == "penalty_charged"]
        assert len(charged) == 1, (loan_id, charged)
        assert len(events_of_loan) == len(before[loan_id][1]) + 1, loan_id
        assert loan["cob_date"] == yesterday.isoformat(), loan
        assert loan["version"] == before[loan_id][0]["version"] + 1, loan
        recorded += charged[0]["changes"]["late_fees"]["to"]["count"]
    assert recorded == first["penalties_charged"], (recorded, first)

    report(
        f"jobs: 2 workers for {watched.together:.1f} s, {len(stamps)} scheduled times, "
        f"{len(succeeded)} jobs run once each ({dict(Counter(runners.values()))}), "
        f"{len(contested)} times raced, {recorded} late fees recorded once; "
        f"{stopped - began:.1f} s"
    )


def test_a_worker_on_sqlite_points_to_serve(tmp_path: Path) -> None:
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    ran = subprocess.run(
        [str(CLI), "worker"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "loanapi serve" in ran.stderr, ran.stderr
    assert "PostgreSQL" in ran.stderr, ran.stderr
    assert not (tmp_path / "jobs.db").exists(), "the worker touched the SQLite file"
