"""The deliveries table as the worker's queue: what one round of the worker does in one
transaction (loanapi.webhooks.delivery), on either engine.

A round records the outcomes of the attempts that ended (an UPDATE each row, only if still
pending), deactivates the endpoints that answered 410 Gone, reads the active endpoints, and
claims the due deliveries of each, up to the room the worker gives it (a lease and one more
attempt), with their events. `SqlQueue` runs these through SQLAlchemy Core (SQLite).
`PgQueue` runs them on PostgreSQL straight on one asyncpg connection of its own: the outcomes in
one UPDATE over arrays and the claims of every endpoint in one statement with their events, so
the worker's rounds cost the database and the worker a few statements however many deliveries
they carry (SQLAlchemy's execution layer cost the worker more CPU than the statements).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import Text, bindparam, cast, or_, select, update

from loanapi.clock import utcnow
from loanapi.db import Sessions, asyncpg_connect_args
from loanapi.webhooks.models import (
    DeliveryStatus,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
    event_id,
)
from loanapi.webhooks.schemas import event_body

Body = tuple[str, bytes]  # an event's public id, and its JSON as a delivery's body
# The active endpoints' ids, oldest first -> (endpoint id, how many to claim) in turn.
Rooms = Callable[[list[int]], list[tuple[int, int]]]


@dataclass(frozen=True, slots=True)
class Record:
    """An attempt's outcome as its delivery keeps it (delivery.next_state's values)."""

    delivery_id: int
    status: DeliveryStatus
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Round:
    """What a round claimed: each claim (id, endpoint_id, event_id, attempts), the active
    endpoints (id, url, secret, previous_secret, previous_secret_until) by id, the claimed
    events' bodies by event id."""

    claims: Sequence[Any]
    endpoints: dict[int, Any]
    bodies: dict[int, Body]


class Queue(Protocol):
    async def round(
        self, records: list[Record], gone: list[int], rooms: Rooms | None, lease: datetime
    ) -> Round:
        """In one transaction: keep `records`, deactivate the endpoints `gone`, and when `rooms`
        is given claim what it allows until `lease`."""
        ...

    async def close(self) -> None: ...


def queue(sessions: Sessions) -> Queue:
    return SqlQueue(sessions) if sessions.engine.dialect.name == "sqlite" else PgQueue(sessions)


# --- SQLAlchemy Core (SQLite) --------------------------------------------------------------------

_D = WebhookDelivery
_ACTIVE: Any = (
    select(
        WebhookEndpoint.id,
        WebhookEndpoint.url,
        WebhookEndpoint.secret,
        WebhookEndpoint.previous_secret,
        WebhookEndpoint.previous_secret_until,
    )
    .where(WebhookEndpoint.active.is_(True))
    .order_by(WebhookEndpoint.id)
)
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
_CLAIM = (
    update(_D)
    .where(_D.id.in_(_DUE.scalar_subquery()))
    .values(claimed_until=bindparam("lease"), attempts=_D.attempts + 1)
    .returning(_D.id, _D.endpoint_id, _D.event_id, _D.attempts)
)
# The claimed deliveries' events, their data as the JSON text stored (a delivery's body).
_EVENTS: Any = select(
    Event.id, Event.type, Event.occurred_at, cast(Event.data, Text).label("data")
).where(Event.id.in_(bindparam("ids", expanding=True)))
_DEACTIVATE = (
    update(WebhookEndpoint)
    .where(WebhookEndpoint.id.in_(bindparam("ids", expanding=True)))
    .values(active=False, updated_at=bindparam("now"))
)
_RECORDED = ("status", "last_status_code", "last_error", "next_attempt_at", "delivered_at")
_RECORD = (
    update(_D)
    .where(_D.id == bindparam("delivery_id"), _D.status == DeliveryStatus.pending)
    .values({name: bindparam(f"new_{name}") for name in _RECORDED} | {"claimed_until": None})
)


@dataclass
class SqlQueue:
    sessions: Sessions

    async def round(
        self, records: list[Record], gone: list[int], rooms: Rooms | None, lease: datetime
    ) -> Round:
        async with self.sessions.write() as session:
            connection = await session.connection()
            if records:
                await connection.execute(_RECORD, [_bound(record) for record in records])
            if gone:
                await connection.execute(_DEACTIVATE, {"ids": gone, "now": utcnow()})
            endpoints: dict[int, Any] = {}
            claims: list[Any] = []
            if rooms is not None:
                rows = (await connection.execute(_ACTIVE)).mappings()
                endpoints = {row["id"]: row for row in rows}
                now = utcnow()
                for endpoint_id, room in rooms(list(endpoints)):
                    params = {"endpoint": endpoint_id, "now": now, "lease": lease, "limit": room}
                    claims += (await connection.execute(_CLAIM, params)).mappings().all()
            bodies: dict[int, Body] = {}
            if claims:
                ids = sorted({claim["event_id"] for claim in claims})
                rows = (await connection.execute(_EVENTS, {"ids": ids})).mappings()
                bodies = {row["id"]: body(row) for row in rows}
            await session.commit()
        return Round(claims, endpoints, bodies)

    async def close(self) -> None:
        pass


def _bound(record: Record) -> dict[str, Any]:
    return {"delivery_id": record.delivery_id} | {
        f"new_{name}": getattr(record, name) for name in _RECORDED
    }


def body(event: Any) -> Body:
    return event_id(event["id"]), event_body(event)


# --- PostgreSQL, straight on asyncpg -------------------------------------------------------------

# Only a delivery still pending takes an outcome. Said as "neither delivered nor failed": with
# "status = 'pending'" the planner, sure that few rows are pending, walked the whole queue index
# (and its dead entries) for every round instead of looking each delivery up by id.
_PG_RECORD = """
UPDATE webhook_deliveries AS d
SET status = r.status, last_status_code = r.last_status_code, last_error = r.last_error,
    next_attempt_at = r.next_attempt_at, delivered_at = r.delivered_at, claimed_until = NULL
FROM unnest($1::int[], $2::text[], $3::int[], $4::text[], $5::timestamptz[], $6::timestamptz[])
    AS r(id, status, last_status_code, last_error, next_attempt_at, delivered_at)
WHERE d.id = r.id AND d.status NOT IN ('delivered', 'failed')
"""
_PG_DEACTIVATE = """
UPDATE webhook_endpoints SET active = false, updated_at = $2 WHERE id = ANY($1::int[])
"""
_PG_ACTIVE = """
SELECT id, url, secret, previous_secret, previous_secret_until
FROM webhook_endpoints WHERE active ORDER BY id
"""
# Each endpoint's due deliveries, oldest due first, at most its room; leased, with their events.
_PG_CLAIM = """
WITH due AS (
    SELECT d.id
    FROM unnest($1::int[], $2::int[]) AS e(endpoint_id, room)
    CROSS JOIN LATERAL (
        SELECT id FROM webhook_deliveries
        WHERE endpoint_id = e.endpoint_id AND status = 'pending' AND next_attempt_at <= $3
            AND (claimed_until IS NULL OR claimed_until < $3)
        ORDER BY next_attempt_at
        LIMIT e.room
        FOR UPDATE SKIP LOCKED
    ) AS d
), claimed AS (
    UPDATE webhook_deliveries SET claimed_until = $4, attempts = attempts + 1
    WHERE id IN (SELECT id FROM due)
    RETURNING id, endpoint_id, event_id, attempts
)
SELECT claimed.*, events.type, events.occurred_at, events.data::text AS data
FROM claimed JOIN events ON events.id = claimed.event_id
"""


class PgQueue:
    """The rounds on one asyncpg connection, opened at the first round and again after one
    that failed with it closed."""

    def __init__(self, sessions: Sessions) -> None:
        self._connect = asyncpg_connect_args(sessions.engine)
        self._connection: asyncpg.Connection | None = None

    async def round(
        self, records: list[Record], gone: list[int], rooms: Rooms | None, lease: datetime
    ) -> Round:
        connection = await self._open()
        async with connection.transaction():
            if records:
                await connection.execute(_PG_RECORD, *_columns(records))
            if gone:
                await connection.execute(_PG_DEACTIVATE, gone, utcnow())
            endpoints: dict[int, Any] = {}
            claims: list[Any] = []
            if rooms is not None:
                endpoints = {row["id"]: row for row in await connection.fetch(_PG_ACTIVE)}
                wanted = rooms(list(endpoints))
                if wanted:
                    ids, room = zip(*wanted, strict=True)
                    claims = await connection.fetch(_PG_CLAIM, ids, room, utcnow(), lease)
        # each claim carries its event: one body per event, for every endpoint it goes to
        events = {c["event_id"]: c for c in claims}
        bodies = {
            key: body(
                {"id": key, "type": c["type"], "occurred_at": c["occurred_at"], "data": c["data"]}
            )
            for key, c in events.items()
        }
        return Round(claims, endpoints, bodies)

    async def _open(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            args, kwargs = self._connect
            settings = {"server_settings": kwargs.get("server_settings", {}) | _PLANS}
            self._connection = await asyncpg.connect(*args, **kwargs | settings)
        return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


# The round's statements are prepared (asyncpg caches them) and planned once: left to choose,
# PostgreSQL plans the claim afresh at each round (its arrays of parameters), which cost more
# than running it.
_PLANS = {"plan_cache_mode": "force_generic_plan"}


def _columns(records: list[Record]) -> list[list[Any]]:
    """`records` as _PG_RECORD's arrays, one per column."""
    return [
        [r.delivery_id for r in records],
        [r.status.value for r in records],
        [r.last_status_code for r in records],
        [r.last_error for r in records],
        [r.next_attempt_at for r in records],
        [r.delivered_at for r in records],
    ]
