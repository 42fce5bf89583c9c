"""Webhook delivery by `loanapi worker` processes on one PostgreSQL: at least once, across a
crash. A worker delivers to a receiver on this machine that takes a while to answer and is
SIGKILLed while attempts are in flight; a second worker starts. Every event of the feed must
still reach the receiver with a valid signature, every delivery end `delivered`, and a repeat
of an event only come from a retry, with the same id and body."""

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from tests.process.conftest import (
    ADMIN,
    API,
    PgDatabase,
    ServerFactory,
    apply_loan,
    client_for,
    login,
    new_customer,
    report,
    start_worker_process,
)
from tests.webhook_receiver import Behaviour, running_receiver

pytestmark = pytest.mark.process

LOCAL = {
    "LOANAPI_WEBHOOK_ALLOW_HTTP": "true",
    "LOANAPI_WEBHOOK_ALLOW_PRIVATE": "true",
    "LOANAPI_WEBHOOK_LEASE_SECONDS": "12",
}
EVENTS = 24


def start_worker(name: str, database: PgDatabase, workdir: Path) -> subprocess.Popen[bytes]:
    return start_worker_process(name, database, workdir, LOCAL)[0]


async def test_a_worker_killed_mid_delivery_loses_no_event(
    pg_database: PgDatabase, start_server: ServerFactory, tmp_path: Path
) -> None:
    server = start_server("webhooks", migrate=True, env=LOCAL)
    async with running_receiver() as receiver, client_for(server.base_url) as client:
        receiver.behaviours["/hook"] = Behaviour(delay=1.5)
        admin = await login(client, ADMIN["username"], ADMIN["password"])
        created = await client.post(
            f"{API}/admin/webhooks",
            json={"url": receiver.url(), "event_types": ["*"]},
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        customer = await new_customer(client, "webhook_customer")
        for _ in range(EVENTS):
            await apply_loan(client, customer)
        # Worker A alone, killed while its first attempts wait for their answers; then B.
        workers = [start_worker("worker-a", pg_database, tmp_path)]
        try:
            began = time.monotonic()
            while not receiver.started:  # attempts are in flight
                await asyncio.sleep(0.02)
                assert time.monotonic() - began < 30, "worker A did not start delivering"
            workers[0].kill()
            workers[0].wait(10)
            killed_at = time.monotonic()
            cut_short = receiver.started
            workers.append(start_worker("worker-b", pg_database, tmp_path))
            deliveries = f"{API}/admin/webhooks/{endpoint['id']}/deliveries?limit=200"
            while True:
                items = (await client.get(deliveries, headers=admin.headers)).json()["items"]
                if len(items) == EVENTS and all(d["status"] == "delivered" for d in items):
                    break
                assert time.monotonic() - killed_at < 60, items
                await asyncio.sleep(0.5)
            recovered = time.monotonic() - killed_at
            feed = (await client.get(f"{API}/admin/events?limit=200", headers=admin.headers)).json()
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
                    worker.wait(15)

    listed = {event["id"]: event for event in feed["items"]}
    assert len(listed) == EVENTS  # one loan.applied each (registering is not an event)
    got = receiver.at("/hook")
    assert {r.event["id"] for r in got} == set(listed)
    for request in got:
        assert request.event == listed[request.event["id"]]
        Webhook(endpoint["secret"]).verify(request.body, request.headers)
    repeats = len(got) - len(listed)
    # What A had in flight went again, once its lease ran out, through B: the same events.
    assert repeats >= 1, "the kill cut no attempt short: the test proved nothing"
    assert recovered >= 10  # B waited for the leases (12 s from the claims) to run out
    report(
        f"webhook workers: {len(listed)} events; worker A killed with {cut_short} attempts "
        f"begun; {len(got)} requests ({repeats} repeated by worker B), all delivered "
        f"{recovered:.1f} s after the kill"
    )
