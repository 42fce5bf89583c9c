"""The deliveries table as the worker's queue: what one round of the worker does in one
transaction (loanapi.webhooks.delivery), on either engine.

A round records the outcomes of the attempts that ended (an UPDATE each row, only if still
pending), deactivates the endpoints that answered 410 Gone, reads the active endpoints, and
claims the due deliveries of each, up to the room the worker gives it (a lease and one more
attempt), with their events. Then it writes the deliveries of the events that arrived: it reads
the feed after each endpoint's cursor (as `GET /admin/events` does, so no late commit is passed
over: webhooks/feed.py), writes a delivery per event of the endpoint's types, already claimed,
up to the room left, and moves the cursor past the last one written, all in that transaction:
what does not fit waits in the feed for a later round, so a delivery is written once, when it is
first attempted (an inactive endpoint's, owed from while it was active, are written pending).
The endpoint's row is locked meanwhile and a locked one passed over, so two workers never write
the same deliveries. A change thus writes only its event, however many endpoints there are.
`SqlQueue` runs these through SQLAlchemy Core (SQLite).
`PgQueue` runs them on PostgreSQL straight on one asyncpg connection of its own: the outcomes in
one UPDATE over arrays, the claims of every endpoint in one statement with their events and the
new deliveries of every endpoint in another, so the worker's rounds cost the database and the
worker a few statements however many deliveries they carry (SQLAlchemy's execution layer cost
the worker more CPU than the statements).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import Text, bindparam, cast, insert, or_, select, tuple_, update

from loanapi.clock import utcnow
from loanapi.db import Sessions, asyncpg_connect_args
from loanapi.webhooks.models import (
    BACKLOG_WRITTEN,
    PAUSED,
    DeliveryStatus,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
    event_id,
)
from loanapi.webhooks.schemas import event_body

# The feed's events an endpoint's deliveries are written for in one round, at most.
FANOUT_BATCH = 1000

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
    events' bodies by event id; whether an endpoint's deliveries are behind the feed (a whole
    batch read, or its cursor moved on to `resume`)."""

    claims: Sequence[Any]
    endpoints: dict[int, Any]
    bodies: dict[int, Body]
    behind: bool = False  # deliveries of events already in the feed still to write (next round)


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
_W = WebhookEndpoint
# Deactivated, an endpoint still gets the events up to the feed's head (webhooks/models.py).
_DEACTIVATE = (
    update(_W)
    .where(_W.id.in_(bindparam("ids", expanding=True)), _W.active.is_(True))
    .values(active=False, updated_at=bindparam("now"), **PAUSED)
)
# An endpoint's place in the feed (webhooks/models.py), as _fan_out moves it.
_CURSOR = ("fanout_txid", "fanout_id", "until_txid", "until_id", "resume_txid", "resume_id")
# The endpoints whose deliveries the feed's new events need: the active ones, and those
# deactivated before their deliveries were written up to their `until`.
_OWED: Any = select(
    _W.id, _W.active, _W.event_types, *(getattr(_W, name) for name in _CURSOR)
).where(_W.active.is_(True) | ~BACKLOG_WRITTEN)
_AFTER = tuple_(Event.txid, Event.id) > tuple_(bindparam("after_txid"), bindparam("after_id"))
_SCAN: Any = (
    select(Event.id, Event.txid, Event.type, Event.occurred_at)
    .where(_AFTER)
    .order_by(Event.txid, Event.id)
    .limit(FANOUT_BATCH)
)
_SCAN_UNTIL: Any = _SCAN.where(
    tuple_(Event.txid, Event.id) <= tuple_(bindparam("until_txid"), bindparam("until_id"))
)
_ADD: Any = insert(_D).returning(_D.id, _D.endpoint_id, _D.event_id, _D.attempts, _D.claimed_until)
_MOVE = (
    update(_W)
    .where(_W.id == bindparam("endpoint"))
    .values({name: bindparam(f"new_{name}") for name in _CURSOR})
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
            behind = False
            if rooms is not None:
                rows = (await connection.execute(_ACTIVE)).mappings()
                endpoints = {row["id"]: row for row in rows}
                now = utcnow()
                wanted = rooms(list(endpoints))
                for endpoint_id, room in wanted:
                    params = {"endpoint": endpoint_id, "now": now, "lease": lease, "limit": room}
                    claims += (await connection.execute(_CLAIM, params)).mappings().all()
                left = _left(wanted, claims)
                for endpoint in (await connection.execute(_OWED)).mappings().all():
                    added, more = await _fan_out(connection, endpoint, left, now, lease)
                    claims += added
                    behind = behind or more
            bodies: dict[int, Body] = {}
            if claims:
                ids = sorted({claim["event_id"] for claim in claims})
                rows = (await connection.execute(_EVENTS, {"ids": ids})).mappings()
                bodies = {row["id"]: body(row) for row in rows}
            await session.commit()
        return Round(claims, endpoints, bodies, behind)

    async def close(self) -> None:
        pass


def _left(wanted: list[tuple[int, int]], claims: Sequence[Any]) -> dict[int, int]:
    """Each endpoint's room once its due deliveries are claimed."""
    left = dict(wanted)
    for claim in claims:
        left[claim["endpoint_id"]] -= 1
    return left


async def _fan_out(
    connection: Any, endpoint: Any, left: dict[int, int], now: datetime, lease: datetime
) -> tuple[list[Any], bool]:
    """The deliveries of the events after `endpoint`'s cursor (SQLite: one writer, so every
    event is committed in id order): an active endpoint's claimed, as many as its room; an
    inactive one's pending. Returns the claims, and whether it is still behind the feed."""
    room = left.get(endpoint["id"], 0)
    if endpoint["active"] and room <= 0:
        return [], False  # nothing it could take now: its events wait in the feed
    cursor = {"after_txid": endpoint["fanout_txid"], "after_id": endpoint["fanout_id"]}
    until = endpoint["until_txid"], endpoint["until_id"]
    if until[0] is None:
        events = (await connection.execute(_SCAN, cursor)).all()
    else:
        bound = {"until_txid": until[0], "until_id": until[1]}
        events = (await connection.execute(_SCAN_UNTIL, cursor | bound)).all()
    types = endpoint["event_types"]
    wanted = [event for event in events if "*" in types or event.type in types]
    stop = None  # the last event written when its room filled before the feed's end
    if endpoint["active"] and len(wanted) > room:
        wanted = wanted[:room]
        stop = wanted[-1]
    claimed = endpoint["active"]
    rows = [
        {
            "endpoint_id": endpoint["id"],
            "event_id": event.id,
            "status": DeliveryStatus.pending,
            "attempts": 1 if claimed else 0,
            "next_attempt_at": now,
            "claimed_until": lease if claimed else None,
            "created_at": event.occurred_at,
        }
        for event in wanted
    ]
    added = (await connection.execute(_ADD, rows)).mappings().all() if rows else []
    behind = stop is not None or len(events) == FANOUT_BATCH
    moved, jumped = _next_cursor(endpoint, stop or (events[-1] if events else None), behind)
    await connection.execute(_MOVE, moved | {"endpoint": endpoint["id"]})
    return [claim for claim in added if claim["claimed_until"] is not None], behind or jumped


def _next_cursor(endpoint: Any, last: Any, behind: bool) -> tuple[dict[str, Any], bool]:
    """`endpoint`'s cursor after a round wrote its deliveries through `last` (an event, or
    None): there, while it is behind or has no `until`; else at `until`, all it is owed, or on
    to `resume` when it was activated again (then True: the events after it are still to
    read)."""
    moved = {f"new_{name}": endpoint[name] for name in _CURSOR}
    until = endpoint["until_txid"], endpoint["until_id"]
    if behind or until[0] is None:
        if last is not None:
            moved |= {"new_fanout_txid": last.txid, "new_fanout_id": last.id}
        return moved, False
    if endpoint["resume_txid"] is None:
        return moved | {"new_fanout_txid": until[0], "new_fanout_id": until[1]}, False
    resume = {"new_fanout_txid": endpoint["resume_txid"], "new_fanout_id": endpoint["resume_id"]}
    return dict.fromkeys(moved) | resume, True


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
# models.PAUSED, as PostgreSQL compiles it
_PG_DEACTIVATE = """
UPDATE webhook_endpoints
SET active = false, updated_at = $2,
    until_txid = CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT), until_id = 0,
    resume_txid = NULL, resume_id = NULL
WHERE id = ANY($1::int[]) AND active
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


# The deliveries of the feed's new events, per endpoint owed them (_OWED's: an active one only
# while it has room), in one statement: the events after its cursor that the feed would serve
# (of transactions older than every one still running), at most $5; a delivery for each of its
# types, claimed, as many as its room ($1, $2) (an inactive endpoint's all, pending); the cursor
# moved to the last one written when its room filled, else to the last event read, or when
# fewer came, to the feed's bound (capped by `until`): nothing at or before it can still
# appear; at `until`, on to `resume` when it has one (webhooks/service._move_cursor). Returns
# the claims, and a row of nulls when an endpoint is still behind the feed (its room filled, a
# whole batch read, or moved on to `resume`).
_PG_FAN_OUT = """
WITH bound AS MATERIALIZED (
    SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT) AS xmin
), ep AS MATERIALIZED (
    SELECT e.id, e.active, CAST(e.event_types AS TEXT) AS types, e.fanout_txid, e.fanout_id,
        e.until_txid, e.until_id, e.resume_txid, e.resume_id, coalesce(r.room, 0) AS room
    FROM webhook_endpoints AS e
    LEFT JOIN unnest($1::int[], $2::int[]) AS r(endpoint_id, room) ON r.endpoint_id = e.id
    WHERE CASE WHEN e.active THEN r.room > 0 ELSE e.until_txid IS NOT NULL
        AND (e.fanout_txid, e.fanout_id) < (e.until_txid, e.until_id) END
    FOR NO KEY UPDATE OF e SKIP LOCKED
), scanned AS MATERIALIZED (
    SELECT ep.id AS endpoint_id, ev.id AS event_id, ev.txid, ev.type, ev.occurred_at
    FROM ep CROSS JOIN bound CROSS JOIN LATERAL (
        SELECT id, txid, type, occurred_at FROM events
        WHERE (txid, id) > (ep.fanout_txid, ep.fanout_id) AND txid < bound.xmin
            AND (ep.until_txid IS NULL OR (txid, id) <= (ep.until_txid, ep.until_id))
        ORDER BY txid, id
        LIMIT $5
    ) AS ev
), wanted AS (
    SELECT s.*, ep.room, ep.active,
        row_number() OVER (PARTITION BY s.endpoint_id ORDER BY s.txid, s.event_id) AS k,
        count(*) OVER (PARTITION BY s.endpoint_id) AS m
    FROM scanned AS s JOIN ep ON ep.id = s.endpoint_id
    WHERE ep.types LIKE '%"*"%' OR ep.types LIKE '%"' || s.type || '"%'
), added AS (
    INSERT INTO webhook_deliveries
        (endpoint_id, event_id, status, attempts, next_attempt_at, claimed_until, created_at)
    SELECT endpoint_id, event_id, 'pending', CASE WHEN active THEN 1 ELSE 0 END, $3,
        CASE WHEN active THEN $4::timestamptz END, occurred_at
    FROM wanted
    WHERE NOT active OR k <= room
    ORDER BY endpoint_id, txid, event_id
    RETURNING id, endpoint_id, event_id, attempts, claimed_until
), stop AS (
    SELECT endpoint_id, txid, event_id FROM wanted WHERE active AND k = room AND m > room
), last AS (
    SELECT DISTINCT ON (endpoint_id) endpoint_id, txid, event_id,
        count(*) OVER (PARTITION BY endpoint_id) AS n
    FROM scanned
    ORDER BY endpoint_id, txid DESC, event_id DESC
), target AS (
    SELECT ep.id, ep.fanout_txid, ep.fanout_id, ep.until_txid, ep.until_id, ep.resume_txid,
        ep.resume_id,
        CASE WHEN stop.endpoint_id IS NOT NULL THEN stop.txid
            WHEN last.n = $5 THEN last.txid
            WHEN (ep.until_txid, ep.until_id) < (bound.xmin, 0) THEN ep.until_txid
            ELSE bound.xmin END AS txid,
        CASE WHEN stop.endpoint_id IS NOT NULL THEN stop.event_id
            WHEN last.n = $5 THEN last.event_id
            WHEN (ep.until_txid, ep.until_id) < (bound.xmin, 0) THEN ep.until_id
            ELSE 0 END AS event_id
    FROM ep CROSS JOIN bound LEFT JOIN last ON last.endpoint_id = ep.id
        LEFT JOIN stop ON stop.endpoint_id = ep.id
), resumed AS (
    SELECT *, resume_txid IS NOT NULL AND (txid, event_id) >= (until_txid, until_id) AS jump
    FROM target
), moved AS (
    UPDATE webhook_endpoints AS e
    SET fanout_txid = CASE WHEN t.jump THEN t.resume_txid ELSE t.txid END,
        fanout_id = CASE WHEN t.jump THEN t.resume_id ELSE t.event_id END,
        until_txid = CASE WHEN t.jump THEN NULL ELSE t.until_txid END,
        until_id = CASE WHEN t.jump THEN NULL ELSE t.until_id END,
        resume_txid = CASE WHEN t.jump THEN NULL ELSE t.resume_txid END,
        resume_id = CASE WHEN t.jump THEN NULL ELSE t.resume_id END
    FROM resumed AS t
    WHERE e.id = t.id AND ((t.txid, t.event_id) > (t.fanout_txid, t.fanout_id) OR t.jump)
)
SELECT added.id, added.endpoint_id, added.event_id, added.attempts,
    events.type, events.occurred_at, events.data::text AS data
FROM added JOIN events ON events.id = added.event_id
WHERE added.claimed_until IS NOT NULL
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE EXISTS (SELECT FROM resumed WHERE jump) OR EXISTS (SELECT FROM last WHERE n = $5)
    OR EXISTS (SELECT FROM stop)
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
            behind = False
            if rooms is not None:
                endpoints = {row["id"]: row for row in await connection.fetch(_PG_ACTIVE)}
                wanted = rooms(list(endpoints))
                now = utcnow()
                if wanted:
                    ids, room = zip(*wanted, strict=True)
                    claims = await connection.fetch(_PG_CLAIM, ids, room, now, lease)
                left = _left(wanted, claims)
                rows = await connection.fetch(
                    _PG_FAN_OUT, list(left), list(left.values()), now, lease, FANOUT_BATCH
                )
                added = [row for row in rows if row["id"] is not None]
                claims += added
                behind = len(added) < len(rows)
        # each claim carries its event: one body per event, for every endpoint it goes to
        events = {c["event_id"]: c for c in claims}
        bodies = {
            key: body(
                {"id": key, "type": c["type"], "occurred_at": c["occurred_at"], "data": c["data"]}
            )
            for key, c in events.items()
        }
        return Round(claims, endpoints, bodies, behind)

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
