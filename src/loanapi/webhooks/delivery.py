"""Webhook delivery: claim due deliveries, POST them signed, record what happened.

The deliveries table is the queue. A worker claims a batch of due deliveries in one short
transaction (FOR UPDATE SKIP LOCKED on PostgreSQL, so workers never take the same one), and
writes those of the feed's new events that it claims too, as many as there is room for
(webhooks/queue.py); it sets a lease (`claimed_until`) on each; it then sends each one in
its own task, outside any transaction (loanapi.webhooks.sender), and records the outcome in
the next round's transaction, which claims again. A worker killed mid-attempt leaves the
lease to run out, and any worker takes the delivery again: delivery is at least once.

Each endpoint has at most `per_endpoint` attempts in flight per worker
(`LOANAPI_WEBHOOK_ENDPOINT_CONCURRENCY`), so a slow or dead endpoint (10 s timeout per attempt)
holds only its own slots; the others, and the API, go on.
Failures are retried on EVENTS.md's schedule, then marked `failed`; 410 Gone deactivates the
endpoint.
"""

import asyncio
import collections
import contextlib
import functools
import logging
import resource
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from standardwebhooks import Webhook

from loanapi.clock import utcnow
from loanapi.config import Settings
from loanapi.db import Sessions
from loanapi.webhooks import urls
from loanapi.webhooks.models import DeliveryStatus
from loanapi.webhooks.queue import Body, Queue, Record, queue
from loanapi.webhooks.sender import Sender

log = logging.getLogger("loanapi.webhooks")

TIMEOUT = 10.0  # seconds an endpoint has to answer
# After the first attempt fails, the next ones come after these delays; then `failed`.
RETRY_DELAYS = tuple(
    timedelta(seconds=s) for s in (5, 60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600, 12 * 3600)
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
ERROR_LENGTH = 500


def policy(settings: Settings) -> urls.Policy:
    return urls.Policy(settings.webhook_allow_http, settings.webhook_allow_private)


def signature(endpoint: Any, message_id: str, moment: datetime, body: str) -> str:
    """`webhook-signature`: the current secret's, and for 24 hours after a rotation the old
    one's beside it (space-separated, as the specification allows)."""
    secrets = [endpoint["secret"]]
    until = endpoint["previous_secret_until"]
    if endpoint["previous_secret"] and until is not None and moment < until:
        secrets.append(endpoint["previous_secret"])
    return " ".join(_signer(secret).sign(message_id, moment, body) for secret in secrets)


@functools.lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)  # decodes the secret once


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def next_state(delivery_id: int, attempts: int, outcome: Outcome, now: datetime) -> Record:
    """The delivery's state after its `attempts`-th attempt ended with `outcome`."""
    status, retry_at = DeliveryStatus.pending, None
    if outcome.delivered:
        status = DeliveryStatus.delivered
    elif outcome.status_code == 410 or attempts >= MAX_ATTEMPTS:
        status = DeliveryStatus.failed
    else:
        retry_at = now + RETRY_DELAYS[attempts - 1]
    return Record(
        delivery_id,
        status,
        last_status_code=outcome.status_code,
        last_error=outcome.error[:ERROR_LENGTH] if outcome.error else None,
        next_attempt_at=retry_at,
        delivered_at=now if outcome.delivered else None,
    )


# Files a process needs besides the attempts' sockets: its database connections, logs, the
# API's own sockets when `serve` delivers in-process.
OTHER_FILES = 512


def open_files_for(sockets: int) -> None:
    """Raises this process's soft limit of open files to leave room for `sockets` (a systemd
    service starts at 1,024), up to the hard limit; short of it, an attempt past the limit fails
    to connect (EMFILE) and is retried as any refused connection is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = sockets + OTHER_FILES
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    if raised < wanted:
        log.warning(
            "open files limited to %s: fewer than %s attempts can be in flight", hard, sockets
        )


Ended = tuple[Any, Outcome, datetime]  # a claim (a row of the queue's), its outcome, when it ended


@dataclass
class Deliverer:
    """One worker's deliveries: `run()` until cancelled, or `drain()` what is due (tests).

    The worker works in rounds: one short transaction records the attempts that ended since
    the last round and claims what is due; the claimed attempts then run, each in its own task.
    While attempts are running or being claimed, a round comes every `beat_seconds` (a round
    per ended attempt would cost more than the attempts); when idle, every `poll_seconds`. An
    endpoint that filled its share at its last claim has more waiting: the next round comes as
    soon as half its share is free again, so its deliveries are not held to a share per beat.
    """

    sessions: Sessions
    settings: Settings
    concurrency: int = 1024  # attempts in flight in this worker (each a coroutine, a socket)
    # of which for one endpoint (a slow one holds only these: 1/16 by default)
    per_endpoint: int = Settings.model_fields["webhook_endpoint_concurrency"].default
    poll_seconds: float = 0.2
    beat_seconds: float = 0.06
    lease: timedelta = timedelta(seconds=60)
    _in_flight: dict[int, int] = field(default_factory=dict)  # endpoint id -> attempts
    _tasks: set["asyncio.Task[None]"] = field(default_factory=set)
    _ended: list[Ended] = field(default_factory=list)
    _turn: int = 0
    _behind: bool = False  # the last round left deliveries of the feed's events to write
    _hungry: set[int] = field(default_factory=set)  # endpoints that filled their share
    _given: list[tuple[int, int]] = field(default_factory=list)  # the last round's rooms
    _wake: asyncio.Event = field(default_factory=asyncio.Event)  # a hungry one has room again
    _queue: Queue = field(init=False)

    async def run(self) -> None:
        """Deliver until cancelled; attempts cut short by the cancellation keep their lease,
        and are attempted again when it runs out (as after a crash). A round that fails (the
        database restarting, say) is logged and tried again after a poll."""
        async with self._client() as client:
            try:
                while True:
                    try:
                        claimed = await self._round(client)
                    except Exception:
                        log.exception("a webhook delivery round failed; trying again")
                        claimed = 0
                    busy = claimed or self._behind or self._tasks or self._ended
                    await self._pause(self.beat_seconds if busy else self.poll_seconds)
            finally:
                for task in self._tasks:
                    task.cancel()

    async def drain(self) -> int:
        """Attempt every delivery due now, once, and wait for the attempts (the tests)."""
        started = 0
        async with self._client() as client:
            while True:
                claimed = await self._round(client)
                started += claimed
                if not claimed and not self._behind:
                    if not self._tasks:
                        break
                    # an endpoint at its share of attempts in flight: its next ones after these
                    await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)
            await self._round(client, claim=False)
        return started

    async def _pause(self, seconds: float) -> None:
        """Until the next round: `seconds`, or less when a hungry endpoint has room again."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    @contextlib.asynccontextmanager
    async def _client(self) -> Any:
        """The sender of the attempts, and the queue of the rounds."""
        open_files_for(self.concurrency)
        sender, self._queue = Sender(policy(self.settings)), queue(self.sessions)
        try:
            yield sender
        finally:
            await sender.close()
            await self._queue.close()

    async def _round(self, client: Sender, claim: bool = True) -> int:
        """Record the attempts that ended and claim what is due, in one transaction; then
        start the claimed attempts. How many were claimed."""
        if claim and len(self._tasks) >= self.concurrency:
            await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)
        free = self.concurrency - len(self._tasks) if claim else 0
        ended, self._ended = self._ended, []
        records = [next_state(c["id"], c["attempts"], outcome, at) for c, outcome, at in ended]
        gone = sorted({c["endpoint_id"] for c, outcome, _ in ended if outcome.status_code == 410})
        rooms = functools.partial(self._rooms, free) if free else None
        self._given = []
        try:
            done = await self._queue.round(records, gone, rooms, utcnow() + self.lease)
        except BaseException:
            self._ended[:0] = ended  # recorded by the next round
            raise
        self._behind = done.behind
        self._note_hunger(done.claims, gone)
        for endpoint_id in gone:
            log.warning("webhook endpoint %s answered 410 Gone: deactivated", endpoint_id)
        for claimed in done.claims:
            endpoint_id = claimed["endpoint_id"]
            self._in_flight[endpoint_id] = self._in_flight.get(endpoint_id, 0) + 1
            endpoint, body = done.endpoints[endpoint_id], done.bodies[claimed["event_id"]]
            task = asyncio.create_task(self._attempt(client, claimed, endpoint, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(done.claims)

    def _note_hunger(self, claims: Sequence[Any], gone: list[int]) -> None:
        """The endpoints given room in this round that filled it have more waiting (hungry);
        those that did not, and those gone or no longer active, have not."""
        taken = collections.Counter(claim["endpoint_id"] for claim in claims)
        for endpoint_id, room in self._given:
            if taken[endpoint_id] >= room:
                self._hungry.add(endpoint_id)
            else:
                self._hungry.discard(endpoint_id)
        self._hungry.difference_update(gone)

    def _rooms(self, free: int, active: list[int]) -> list[tuple[int, int]]:
        """How many due deliveries to claim for each active endpoint: up to its free share of
        attempts in flight, `free` in all; the endpoints taken in turn, starting one further
        each round (none is always last)."""
        if not active:
            return []
        self._turn = (self._turn + 1) % len(active)
        rooms: list[tuple[int, int]] = []
        for endpoint_id in active[self._turn :] + active[: self._turn]:
            room = min(self.per_endpoint - self._in_flight.get(endpoint_id, 0), free)
            if room > 0:
                rooms.append((endpoint_id, room))
                free -= room
        self._hungry.intersection_update(active)
        self._given = rooms
        return rooms

    async def _attempt(self, client: Sender, claim: Any, endpoint: Any, event: Body) -> None:
        endpoint_id = claim["endpoint_id"]
        try:
            outcome = await self._send(client, endpoint, event)
            self._ended.append((claim, outcome, utcnow()))
        finally:
            self._in_flight[endpoint_id] -= 1
            left = self._in_flight[endpoint_id]
            if not left:
                del self._in_flight[endpoint_id]
            if endpoint_id in self._hungry and left <= self.per_endpoint // 2:
                self._wake.set()

    async def _send(self, client: Sender, endpoint: Any, event: Body) -> Outcome:
        public_id, body = event
        moment = utcnow()
        headers = {
            "content-type": "application/json",
            "user-agent": "loanapi-webhooks/1",
            "webhook-id": public_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature(endpoint, public_id, moment, body.decode()),
        }
        try:
            status = await client.post(endpoint["url"], body, headers, TIMEOUT)
        except urls.RefusedURL as exc:
            return Outcome(error=f"refused: {exc}")
        except TimeoutError:
            return Outcome(error=f"no answer within {TIMEOUT:.0f} s")
        except OSError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return Outcome(status_code=status)
