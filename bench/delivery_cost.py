"""What one webhook delivery costs the machine: the worker, its database backends, the receiver.

The `events` step of bench/run.py measures what deliveries take from the API's throughput, a
ratio that moves by several percent between runs on a shared VM; this measures their cost
directly, so that a change to the worker can be judged on its own. Events are written
straight into a scratch database (`loanapi_bench_delivery`, created and migrated here, emptied
at each run) at a steady rate, a `loanapi worker` writes their deliveries to two endpoints and
delivers them to bench/receiver.py, and each process's CPU is read from /proc from the first
event until every delivery is made.

    .venv/bin/python bench/delivery_cost.py [--rate 600] [--seconds 12] [--runs 3]
    .venv/bin/python bench/delivery_cost.py --backlog 20000

Prints one line per run: microseconds of CPU per delivery of the worker, of its database
backends (every connection of the scratch database but the feeder's) and of the receiver.
With `--backlog N`, N events are written before the worker starts instead, and the line says
how long it took to deliver them (a worker catching up after an outage).
"""

import argparse
import asyncio
import datetime
import json
import signal
import subprocess
import time

import asyncpg
import seed
from load import HOST
from run import BENCH, cpu_seconds, free_port, start_receiver, worker_env

DATABASE = "loanapi_bench_delivery"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # an endpoint's (the receiver checks nothing)
# an event's data about the size of a loan's (the body of an `apply` delivery is ~1 KB)
DATA = json.dumps({"loan": {"id": 1, "status": "requested", "notes": "x" * 600}, "version": 1})
# events as a change writes them; the worker writes their deliveries (loanapi.webhooks.queue)
PUBLISH = """
INSERT INTO events (txid, type, occurred_at, loan_id, data)
SELECT CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT), 'loan.applied', $1, 1, $2::json
FROM generate_series(1, $3)
"""


async def scratch_database() -> None:
    admin = await asyncpg.connect(seed.dsn("postgres"))
    try:
        found = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if not found:
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    seed.migrate(DATABASE)


async def run(
    rate: int, seconds: int, receiver: subprocess.Popen[bytes], port: int, backlog: int = 0
) -> str:
    """One run: its deliveries and their CPU, per delivery, by process; with a `backlog`, the
    seconds its worker took to deliver that many events written before it started."""
    conn = await asyncpg.connect(seed.dsn(DATABASE))
    await conn.execute("TRUNCATE webhook_deliveries, events, webhook_endpoints RESTART IDENTITY")
    for name in ("a", "b"):
        await conn.execute(
            "INSERT INTO webhook_endpoints (url, event_types, active, secret, created_at, "
            "updated_at) VALUES ($1, '[\"*\"]', true, $2, now(), now())",
            f"http://{HOST}:{port}/{name}",
            SECRET,
        )
    if backlog:
        now = datetime.datetime.now(datetime.UTC)
        await conn.execute(PUBLISH, now, DATA, backlog)
        return await catch_up(conn, backlog)
    worker = subprocess.Popen([seed.loanapi_bin(), "worker"], env=worker_env(DATABASE))
    try:
        await asyncio.sleep(4)  # started, connected, polling
        backends = [
            row["pid"]
            for row in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                DATABASE,
            )
        ]
        before = [cpu_seconds(pids) for pids in ([worker.pid], backends, [receiver.pid])]
        sent, began, per_tick = 0, time.monotonic(), max(rate // 20, 1)
        while time.monotonic() - began < seconds:
            now = datetime.datetime.now(datetime.UTC)
            await conn.execute(PUBLISH, now, DATA, per_tick)
            sent += per_tick
            await asyncio.sleep(max(0.0, began + sent / rate - time.monotonic()))
        await wait_for(conn, 2 * sent)
        after = [cpu_seconds(pids) for pids in ([worker.pid], backends, [receiver.pid])]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
        await conn.close()
    deliveries = 2 * sent
    worker_us, backend_us, receiver_us = (
        1e6 * (b - a) / deliveries for a, b in zip(before, after, strict=True)
    )
    return (
        f"{deliveries} deliveries: worker {worker_us:.1f} us each, its backends "
        f"{backend_us:.1f}, the receiver {receiver_us:.1f}"
    )


DELIVERED = "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"


async def wait_for(conn: asyncpg.Connection, deliveries: int) -> None:
    while await conn.fetchval(DELIVERED) < deliveries:
        await asyncio.sleep(0.1)


async def catch_up(conn: asyncpg.Connection, events: int) -> str:
    """A worker started on `events` waiting in the feed: seconds until all are delivered."""
    began = time.monotonic()
    worker = subprocess.Popen([seed.loanapi_bin(), "worker"], env=worker_env(DATABASE))
    try:
        await wait_for(conn, 2 * events)
        took = time.monotonic() - began
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
        await conn.close()
    return f"{2 * events} deliveries of a backlog: all made {took:.1f} s after the worker began"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rate", type=int, default=600, help="events per second (two deliveries each)"
    )
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=0, help="events written before the worker")
    args = parser.parse_args()
    await scratch_database()
    port = free_port()
    receiver = start_receiver(port, BENCH / "results" / "tmp" / "delivery-cost-arrivals.jsonl")
    try:
        for _ in range(args.runs):
            line = await run(args.rate, args.seconds, receiver, port, args.backlog)
            print(line, flush=True)  # noqa: T201
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(15)


if __name__ == "__main__":
    asyncio.run(main())
