"""Scheduled jobs (close of business every day) and webhook deliveries, wherever loanapi runs.

On PostgreSQL, `loanapi worker` runs the jobs on Procrastinate, a job queue kept in the same
database: every worker defers the day's periodic job, the database lets one deferral per
scheduled time through, and one worker takes the job (FOR UPDATE SKIP LOCKED), so any number of
workers on any number of machines run it once. Beside it, each worker claims and sends webhook
deliveries (loanapi.webhooks.delivery: the deliveries table is their queue, claimed the same
way). On the embedded SQLite default there is no worker: `loanapi serve` runs the same job
in-process at the same times, and delivers webhooks too. Every way of closing a day calls
`close_books` (the CLI, POST /admin/close-of-business), so all give the same result.
"""

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import procrastinate
from croniter import croniter
from sqlalchemy import select
from sqlalchemy.engine import make_url

from loanapi.clock import utcnow
from loanapi.config import Settings
from loanapi.db import Sessions, WriteSession, create_engine, create_sessions, fetch
from loanapi.loans import close_of_business
from loanapi.users.models import Role, User, UserStatus
from loanapi.webhooks.delivery import Deliverer

log = logging.getLogger("loanapi.jobs")

_FIRST_ADMIN = (
    select(User.id)
    .where(User.role == Role.admin, User.status == UserStatus.active)
    .order_by(User.id)
    .limit(1)
)


class NoAdmin(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "no active admin account to record close of business as: start `loanapi serve` "
            "once with LOANAPI_ADMIN_PASSWORD set, or run `loanapi create-admin`"
        )


async def system_actor(sessions: Sessions) -> int:
    """Who a scheduled or command-line run is recorded as: the first admin account."""
    async with sessions.write() as session:
        rows = await fetch(session, _FIRST_ADMIN)
    if not rows:
        raise NoAdmin
    return int(rows[0]["id"])


async def close_books(
    sessions: Sessions,
    day: date,
    *,
    actor_id: int | None = None,
    progress: close_of_business.Progress | None = None,
    within: WriteSession | None = None,
) -> close_of_business.Result:
    """Close of business for `day`, recorded as `actor_id` (default: the first admin); see
    `close_of_business.run` for `within`."""
    actor = actor_id if actor_id is not None else await system_actor(sessions)
    result = await close_of_business.run(
        sessions.writers, day=day, actor_id=actor, progress=progress, within=within
    )
    log.info(
        "close of business %s: %d loans, %d late fees recorded, %d bucket changes, %.1f s",
        day,
        result.loans,
        result.penalties_charged,
        result.bucket_changes,
        result.seconds,
        extra={
            "date": day.isoformat(),
            "loans": result.loans,
            "penalties_charged": result.penalties_charged,
            "bucket_changes": result.bucket_changes,
            "seconds": round(result.seconds, 3),
        },
    )
    return result


def day_closed_at(moment: datetime) -> date:
    """The day a run scheduled at `moment` closes: the one before (SERVICING.md)."""
    return moment.astimezone(UTC).date() - timedelta(days=1)


# --- in-process, on SQLite ---------------------------------------------------------------------


async def run_in_process(sessions: Sessions, settings: Settings) -> None:
    """The scheduler `loanapi serve` runs on SQLite: sleep until the next scheduled time, close
    the day before, repeat. A failed run is logged; the next scheduled time tries again (and
    finishes whatever the failed one left)."""
    schedule = croniter(settings.cob_schedule, utcnow())
    while True:
        due = schedule.get_next(datetime)
        await asyncio.sleep(max(0.0, (due - utcnow()).total_seconds()))
        try:
            await close_books(sessions, day_closed_at(due))
        except Exception:  # a job must not take the server down with it
            log.exception("close of business failed")


def deliverer(sessions: Sessions, settings: Settings) -> Deliverer:
    """Webhook deliveries (loanapi.webhooks.delivery), as the worker and `serve` run them."""
    return Deliverer(
        sessions,
        settings,
        per_endpoint=settings.webhook_endpoint_concurrency,
        lease=timedelta(seconds=settings.webhook_lease_seconds),
    )


# --- the worker, on PostgreSQL -----------------------------------------------------------------


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as libpq (psycopg) takes it: no `+asyncpg` driver part."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def queue(settings: Settings, sessions: Sessions) -> procrastinate.App:
    """The job queue and its tasks."""
    jobs = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=libpq_url(settings.database_url),
            kwargs={"application_name": "loanapi worker"},
        )
    )

    @jobs.periodic(cron=settings.cob_schedule, periodic_id="daily")
    # A failed run (the database restarting, say) is tried again; a run is safe to repeat.
    @jobs.task(
        name="close_of_business",
        queue="scheduled",
        queueing_lock="close_of_business",
        retry=procrastinate.RetryStrategy(max_attempts=6, exponential_wait=30),
    )
    async def close_of_business_job(timestamp: int) -> dict[str, Any]:
        day = day_closed_at(datetime.fromtimestamp(timestamp, UTC))
        result = await close_books(sessions, day)
        return {"date": day.isoformat(), "loans": result.loans}

    # A worker killed mid-job (SIGKILL, a lost machine) leaves its job "doing" with no heartbeat:
    # every minute, any worker puts such jobs back in the queue (Procrastinate's own recipe).
    @jobs.periodic(cron="* * * * *", periodic_id="stalled")
    @jobs.task(name="retry_stalled_jobs", queue="scheduled", queueing_lock="retry_stalled_jobs")
    async def retry_stalled_jobs(timestamp: int) -> int:
        stalled = list(await jobs.job_manager.get_stalled_jobs(seconds_since_heartbeat=60))
        for job in stalled:
            assert job.id is not None  # a job read from the database has its id
            log.warning("retrying a job whose worker stopped: %s", job.call_string)
            await jobs.job_manager.retry_job_by_id_async(job.id, retry_at=utcnow())
        return len(stalled)

    return jobs


async def work(settings: Settings, *, concurrency: int = 1) -> None:
    """`loanapi worker`: run the queue's jobs and deliver webhooks until stopped (SIGINT/SIGTERM
    finish the current job first; a delivery cut short is attempted again by whichever worker
    claims it when its lease runs out)."""
    engine = create_engine(settings)
    sessions = create_sessions(engine, settings)
    jobs = queue(settings, sessions)
    deliveries = asyncio.create_task(deliverer(sessions, settings).run())
    try:
        async with jobs.open_async():
            await jobs.run_worker_async(
                queues=["scheduled"], concurrency=concurrency, install_signal_handlers=True
            )
    finally:
        deliveries.cancel()
        if sessions.read_pool is not None:
            await sessions.read_pool.close()
        await engine.dispose()
