"""Webhook delivery: claim due deliveries, POST them signed, record what happened.

The deliveries table is the queue. A worker claims a batch of due deliveries in one short
transaction (FOR UPDATE SKIP LOCKED on PostgreSQL, so workers never take the same one) and sets
a lease (`claimed_until`) on each; it then sends each one in its own task, outside any
transaction, and records the outcome in another short one. A worker killed mid-attempt leaves
the lease to run out, and any worker takes the delivery again: delivery is at least once.

Each endpoint has at most `per_endpoint` attempts in flight per worker, so a slow or dead
endpoint (10 s timeout per attempt) holds only its own slots; the others, and the API, go on.
Failures are retried on EVENTS.md's schedule, then marked `failed`; 410 Gone deactivates the
endpoint.
"""

import asyncio
import contextlib
import functools
import logging
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import bindparam, or_, select, update
from standardwebhooks import Webhook

from loanapi.clock import utcnow
from loanapi.config import Settings
from loanapi.db import Sessions, fetch
from loanapi.webhooks import urls
from loanapi.webhooks.models import (
    DeliveryStatus,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
    event_id,
)
from loanapi.webhooks.schemas import event_json

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


def next_state(attempts: int, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """The delivery's fields after its `attempts`-th attempt ended with `outcome`."""
    values: dict[str, Any] = {
        "last_status_code": outcome.status_code,
        "last_error": outcome.error[:ERROR_LENGTH] if outcome.error else None,
        "claimed_until": None,
    }
    if outcome.delivered:
        return values | {
            "status": DeliveryStatus.delivered,
            "delivered_at": now,
            "next_attempt_at": None,
        }
    if outcome.status_code == 410 or attempts >= MAX_ATTEMPTS:
        return values | {"status": DeliveryStatus.failed, "next_attempt_at": None}
    return values | {"next_attempt_at": now + RETRY_DELAYS[attempts - 1]}


# --- the statements ------------------------------------------------------------------------------

_D = WebhookDelivery
_ACTIVE = select(WebhookEndpoint.id).where(WebhookEndpoint.active.is_(True))
_DUE = (
    select(_D.id)
    .where(
        _D.endpoint_id == bindparam("endpoint"),
        _D.status == DeliveryStatus.pending,
        _D.next_attempt_at <= bindparam("now"),
        or_(_D.claimed_until.is_(None), _D.claimed_until < bindparam("now")),
    )
    .order_by(_D.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
# One endpoint's due deliveries, at most `limit` (its free share), leased to this worker.
_CLAIM = (
    update(_D)
    .where(_D.id.in_(_DUE.scalar_subquery()))
    .values(claimed_until=bindparam("lease"), attempts=_D.attempts + 1)
    .returning(_D.id, _D.endpoint_id, _D.event_id, _D.attempts)
)
_EVENTS: Any = select(Event.id, Event.type, Event.occurred_at, Event.data).where(
    Event.id.in_(bindparam("ids", expanding=True))
)
_ENDPOINTS: Any = select(
    WebhookEndpoint.id,
    WebhookEndpoint.url,
    WebhookEndpoint.secret,
    WebhookEndpoint.previous_secret,
    WebhookEndpoint.previous_secret_until,
).where(WebhookEndpoint.id.in_(bindparam("ids", expanding=True)))
_DEACTIVATE = (
    update(WebhookEndpoint)
    .where(WebhookEndpoint.id == bindparam("endpoint_id"))
    .values(active=False, updated_at=bindparam("now"))
)


@dataclass
class Deliverer:
    """One worker's deliveries: `run()` until cancelled, or `drain()` what is due (tests)."""

    sessions: Sessions
    settings: Settings
    client: aiohttp.ClientSession | None = None
    concurrency: int = 256  # attempts in flight in this worker (each a coroutine)
    per_endpoint: int = 16  # of which for one endpoint (a slow one holds only these)
    poll_seconds: float = 0.2
    beat_seconds: float = 0.01
    lease: timedelta = timedelta(seconds=60)
    _in_flight: dict[int, int] = field(default_factory=dict)  # endpoint id -> attempts
    _tasks: set["asyncio.Task[None]"] = field(default_factory=set)
    _outcomes: list[tuple[dict[str, Any], Outcome, datetime]] = field(default_factory=list)
    _turn: int = 0

    async def run(self) -> None:
        """Claim and send until cancelled; attempts cut short by the cancellation keep their
        lease, and are attempted again when it runs out (as after a crash)."""
        async with self._client() as client:
            try:
                while True:
                    claimed = await self._claim_and_start(client)
                    await self._flush()
                    # Busy: claim again after a beat, when more attempts have ended (a claim
                    # round per ended attempt cost more than the attempts). Idle: poll.
                    await asyncio.sleep(self.beat_seconds if claimed else self.poll_seconds)
            finally:
                for task in self._tasks:
                    task.cancel()

    async def drain(self) -> int:
        """Attempt every delivery due now, once, and wait for the attempts (the tests)."""
        started = 0
        async with self._client() as client:
            while True:
                claimed = await self._claim_and_start(client)
                started += claimed
                if not claimed:
                    if not self._tasks:
                        break
                    # an endpoint at its share of attempts in flight: its next ones after these
                    await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)
        await self._flush()
        return started

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _client(self) -> Any:
        if self.client is not None:
            yield self.client
            return
        connector = aiohttp.TCPConnector(
            resolver=CheckedResolver(policy(self.settings)),
            use_dns_cache=False,  # every new connection resolves, and checks, again
            limit=self.concurrency,
            limit_per_host=0,  # endpoints may share a host: their share is counted per endpoint
        )
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False
        ) as client:
            yield client

    async def _claim_and_start(self, client: aiohttp.ClientSession) -> int:
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)
            return 1  # claim again at once
        async with self.sessions.write() as session:
            claims = await self._claim(session, free)
            if claims:
                events, endpoints = await self._load(session, claims)
            await session.commit()
        for claim in claims:
            endpoint_id = claim["endpoint_id"]
            self._in_flight[endpoint_id] = self._in_flight.get(endpoint_id, 0) + 1
            attempt = self._attempt(client, dict(claim), events[claim["event_id"]], endpoints)
            task = asyncio.create_task(attempt)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claims)

    async def _claim(self, session: Any, free: int) -> list[Any]:
        """Each active endpoint's due deliveries, up to its free share of attempts in flight;
        the endpoints taken in turn, starting one further each time (none is always last)."""
        connection = await session.connection()
        active = list((await connection.execute(_ACTIVE)).scalars())
        if not active:
            return []
        self._turn = (self._turn + 1) % len(active)
        now = utcnow()
        claims: list[Any] = []
        for endpoint_id in active[self._turn :] + active[: self._turn]:
            room = min(self.per_endpoint - self._in_flight.get(endpoint_id, 0), free - len(claims))
            if room <= 0:
                continue
            params = {"endpoint": endpoint_id, "now": now, "lease": now + self.lease}
            result = await connection.execute(_CLAIM, params | {"limit": room})
            claims += result.mappings().all()
            if len(claims) >= free:
                break
        return claims

    async def _load(self, session: Any, claims: Any) -> tuple[dict[int, Any], dict[int, Any]]:
        event_ids = sorted({claim["event_id"] for claim in claims})
        endpoint_ids = sorted({claim["endpoint_id"] for claim in claims})
        events = await fetch(session, _EVENTS, {"ids": event_ids})
        endpoints = await fetch(session, _ENDPOINTS, {"ids": endpoint_ids})
        return {row["id"]: row for row in events}, {row["id"]: row for row in endpoints}

    async def _attempt(
        self, client: aiohttp.ClientSession, claim: dict[str, Any], event: Any, endpoints: Any
    ) -> None:
        endpoint_id = claim["endpoint_id"]
        try:
            endpoint = endpoints.get(endpoint_id)
            if endpoint is not None:  # None: deleted meanwhile, its deliveries with it
                outcome = await self._send(client, endpoint, event)
                self._outcomes.append((claim, outcome, utcnow()))
        finally:
            self._in_flight[endpoint_id] -= 1
            if not self._in_flight[endpoint_id]:
                del self._in_flight[endpoint_id]

    async def _send(self, client: aiohttp.ClientSession, endpoint: Any, event: Any) -> Outcome:
        body = event_json(event)
        public_id = event_id(event["id"])
        moment = utcnow()
        headers = {
            "content-type": "application/json",
            "user-agent": "loanapi-webhooks/1",
            "webhook-id": public_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature(endpoint, public_id, moment, body),
        }
        try:
            urls.check_literal(endpoint["url"], policy(self.settings))
            async with client.post(
                endpoint["url"], data=body.encode(), headers=headers, allow_redirects=False
            ) as response:
                await response.read()
        except urls.RefusedURL as exc:
            return Outcome(error=f"refused: {exc}")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, Refused):
                return Outcome(error=f"refused: {exc.os_error}")
            return Outcome(error=f"{type(exc).__name__}: {exc}")
        except TimeoutError:
            return Outcome(error=f"no answer within {TIMEOUT:.0f} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return Outcome(status_code=response.status)

    async def _flush(self) -> None:
        """Record the attempts that ended since the last flush, in one transaction (one
        statement for all of them: at a busy API's rate, a transaction per delivery would cost
        the worker more than the sending)."""
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        rows = [
            {"delivery_id": claim["id"], **_bound(next_state(claim["attempts"], outcome, at))}
            for claim, outcome, at in batch
        ]
        gone = sorted({claim["endpoint_id"] for claim, o, _ in batch if o.status_code == 410})
        try:
            async with self.sessions.write() as session:
                connection = await session.connection()
                await connection.execute(_RECORD, rows)
                for endpoint_id in gone:
                    await connection.execute(
                        _DEACTIVATE, {"endpoint_id": endpoint_id, "now": utcnow()}
                    )
                    log.warning("webhook endpoint %s answered 410 Gone: deactivated", endpoint_id)
                await session.commit()
        except Exception:  # not recorded: their leases run out and they are attempted again
            log.exception("recording %d webhook attempts failed", len(batch))


_RECORDED = (
    "status",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "delivered_at",
    "claimed_until",
)
_RECORD = (
    update(_D)
    .where(_D.id == bindparam("delivery_id"), _D.status == DeliveryStatus.pending)
    .values({name: bindparam(f"new_{name}") for name in _RECORDED})
)


def _bound(values: dict[str, Any]) -> dict[str, Any]:
    """next_state's values as _RECORD's parameters (a pending delivery keeps its status and
    has no delivered_at)."""
    values = {"status": DeliveryStatus.pending, "delivered_at": None, **values}
    return {f"new_{name}": values[name] for name in _RECORDED}


class Refused(OSError):
    """An address a webhook may not connect to, found when its name was resolved."""


class CheckedResolver(aiohttp.abc.AbstractResolver):
    """The client's resolver: a host name's addresses, each checked (urls.addresses), are the
    only ones the connection may use, so the name cannot resolve to a public address for the
    check and a private one for the connection."""

    def __init__(self, policy: urls.Policy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        try:
            found = await urls.addresses(host, port, self.policy)
        except urls.RefusedURL as exc:
            raise Refused(str(exc)) from None
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in found
        ]

    async def close(self) -> None:
        return None
