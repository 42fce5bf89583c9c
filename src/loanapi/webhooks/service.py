"""Webhook endpoints and their deliveries, as admins manage them (EVENTS.md "Webhooks")."""

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, case, cast, delete, func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from loanapi.clock import utcnow
from loanapi.db import WriteSession, fetch
from loanapi.errors import NotFound, Unprocessable
from loanapi.pagination import PageParams, keyset
from loanapi.webhooks import urls
from loanapi.webhooks.models import (
    BACKLOG_WRITTEN,
    FEED_HEAD,
    PAUSED,
    DeliveryStatus,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
    event_id,
)
from loanapi.webhooks.schemas import WebhookCreate, WebhookUpdate

OLD_SECRET_VALID = timedelta(hours=24)


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (the specification asks for 24 or more)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class EndpointNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("webhook endpoint not found")


class DeliveryNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("delivery not found")


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    id: int
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_at: datetime
    secret: str


def _record(endpoint: WebhookEndpoint) -> EndpointRecord:
    return EndpointRecord(
        endpoint.id,
        endpoint.url,
        list(endpoint.event_types),
        endpoint.description,
        endpoint.active,
        endpoint.created_at,
        endpoint.secret,
    )


async def _check_url(url: str, policy: urls.Policy) -> None:
    try:
        await urls.check_saved(url, policy)
    except urls.RefusedURL as exc:
        raise Unprocessable.field(("body", "url"), str(exc), "url_refused") from None


async def create(
    session: WriteSession, *, data: WebhookCreate, policy: urls.Policy
) -> EndpointRecord:
    await _check_url(data.url, policy)
    now = utcnow()
    endpoint = WebhookEndpoint(
        url=data.url,
        event_types=data.event_types,
        description=data.description,
        active=True,
        secret=new_secret(),
        created_at=now,
        updated_at=now,
        fanout_txid=FEED_HEAD[0],  # from the feed's head: no backfill
        fanout_id=FEED_HEAD[1],
    )
    session.add(endpoint)
    await session.flush()
    return _record(endpoint)


async def _endpoint(
    session: AsyncSession, endpoint_id: int, *, lock: bool = False
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if lock:
        query = query.with_for_update()
    endpoint = (await session.execute(query)).scalar_one_or_none()
    if endpoint is None:
        raise EndpointNotFound
    return endpoint


async def list_endpoints(session: AsyncSession) -> list[EndpointRecord]:
    rows = (await session.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.id))).scalars()
    return [_record(row) for row in rows]


async def get(session: AsyncSession, *, endpoint_id: int) -> EndpointRecord:
    return _record(await _endpoint(session, endpoint_id))


async def change(
    session: WriteSession, *, endpoint_id: int, data: WebhookUpdate, policy: urls.Policy
) -> EndpointRecord:
    endpoint = await _endpoint(session, endpoint_id, lock=True)
    values = data.model_dump(exclude_unset=True)
    for name in ("url", "event_types", "active"):
        if name in values and values[name] is None:
            raise Unprocessable.field(("body", name), "must not be null", "null_not_allowed")
    if "url" in values and values["url"] != endpoint.url:
        await _check_url(values["url"], policy)
    changed = {name: value for name, value in values.items() if getattr(endpoint, name) != value}
    if changed:
        if "active" in changed:
            await _move_cursor(session, endpoint_id, activated=changed["active"])
        for name, value in changed.items():
            setattr(endpoint, name, value)
        endpoint.updated_at = utcnow()
        await session.flush()
    return _record(endpoint)


_W = WebhookEndpoint


async def _move_cursor(session: WriteSession, endpoint_id: int, *, activated: bool) -> None:
    """Deactivated: the worker still writes the deliveries of the events up to the feed's
    head (`until`: created while it was active), none after. Activated: on from the head (no
    backfill); if the worker has not reached `until` yet, from the head once it has (`resume`).
    Deactivated again before that, the owed events run to the new head: the short pause's
    events too (rather delivered than lost)."""
    query = update(_W).where(_W.id == endpoint_id)
    written = BACKLOG_WRITTEN
    if activated:
        query = query.values(
            fanout_txid=case((written, FEED_HEAD[0]), else_=_W.fanout_txid),
            fanout_id=case((written, FEED_HEAD[1]), else_=_W.fanout_id),
            until_txid=case((written, None), else_=_W.until_txid),
            until_id=case((written, None), else_=_W.until_id),
            resume_txid=case((written, None), else_=FEED_HEAD[0]),
            resume_id=case((written, None), else_=FEED_HEAD[1]),
        )
    else:
        query = query.values(PAUSED)
    await session.execute(query, execution_options={"synchronize_session": False})


async def remove(session: WriteSession, *, endpoint_id: int) -> None:
    """The endpoint and all its deliveries. They have no foreign key (webhooks/models.py): the
    worker writes deliveries only for endpoints whose rows it holds locked (and passes over
    locked ones), so once this holds the endpoint's row, no delivery for it can appear."""
    await _endpoint(session, endpoint_id, lock=True)
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


async def rotate_secret(session: WriteSession, *, endpoint_id: int) -> EndpointRecord:
    """A new secret; the old one still signs deliveries, beside the new one, for 24 hours."""
    endpoint = await _endpoint(session, endpoint_id, lock=True)
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + OLD_SECRET_VALID
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    await session.flush()
    return _record(endpoint)


# The events an endpoint is owed whose deliveries the worker has not written yet (those of an
# active one wait in the feed while its share of attempts is full).
_POSITION = tuple_(Event.txid, Event.id)
_TYPES = cast(_W.event_types, String)
_UNWRITTEN: Any = (
    select(func.count(), func.min(Event.occurred_at))
    .select_from(_W)
    .join(
        Event,
        (_POSITION > tuple_(_W.fanout_txid, _W.fanout_id))
        & (_W.until_txid.is_(None) | (_POSITION <= tuple_(_W.until_txid, _W.until_id))),
    )
    .where(
        _W.active.is_(True) | ~BACKLOG_WRITTEN,
        _TYPES.like('%"*"%') | _TYPES.like(literal('%"') + Event.type + '"%'),
    )
)
_PENDING_SINCE: Any = select(func.min(WebhookDelivery.created_at)).where(
    WebhookDelivery.status == DeliveryStatus.pending
)
_BY_STATUS: Any = select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)


@dataclass(frozen=True, slots=True)
class QueueState:
    by_status: dict[str, int]  # deliveries
    depth: int  # pending deliveries, and the deliveries of events not yet written
    oldest: datetime | None  # the oldest event of those (a delivery's created_at is its event's)


async def queue_state(session: AsyncSession) -> QueueState:
    by_status = {status.value: count for status, count in (await session.execute(_BY_STATUS))}
    unwritten, unwritten_since = (await session.execute(_UNWRITTEN)).one()
    pending_since = await session.scalar(_PENDING_SINCE)
    since = [moment for moment in (unwritten_since, pending_since) if moment is not None]
    depth = by_status.get(DeliveryStatus.pending.value, 0) + unwritten
    return QueueState(by_status, depth, min(since) if since else None)


_DELIVERY_COLUMNS = (
    WebhookDelivery.id,
    WebhookDelivery.event_id,
    Event.type.label("event_type"),
    WebhookDelivery.status,
    WebhookDelivery.attempts,
    WebhookDelivery.last_status_code,
    WebhookDelivery.last_error,
    WebhookDelivery.next_attempt_at,
    WebhookDelivery.delivered_at,
    WebhookDelivery.created_at,
)


def _deliveries(by_status: bool, with_cursor: bool) -> Any:
    query: Any = (
        select(*_DELIVERY_COLUMNS)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == bindparam("endpoint_id"))
    )
    if by_status:
        query = query.where(WebhookDelivery.status == bindparam("status"))
    return keyset(query, with_cursor, WebhookDelivery.created_at, WebhookDelivery.id)


_ONE_DELIVERY: Any = (
    select(*_DELIVERY_COLUMNS)
    .join(Event, Event.id == WebhookDelivery.event_id)
    .where(WebhookDelivery.id == bindparam("delivery_id"))
)
_DELIVERY_LISTS = {(s, c): _deliveries(s, c) for s in (False, True) for c in (False, True)}


async def list_deliveries(
    session: AsyncSession,
    *,
    endpoint_id: int,
    status: DeliveryStatus | None,
    page: PageParams,
) -> list[dict[str, Any]]:
    """Newest first; the rows of a page (one more than asked, to see whether more exist)."""
    await _endpoint(session, endpoint_id)
    params = {"endpoint_id": endpoint_id, **page.binds()}
    if status is not None:
        params["status"] = status
    rows = await fetch(
        session, _DELIVERY_LISTS[(status is not None, page.after is not None)], params
    )
    return [{**row, "event_id": event_id(row["event_id"])} for row in rows]


async def retry(session: WriteSession, *, endpoint_id: int, delivery_id: int) -> dict[str, Any]:
    """The delivery pending again, its next attempt now (its attempts keep counting)."""
    await _endpoint(session, endpoint_id)
    now = utcnow()
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
        .values(status=DeliveryStatus.pending, next_attempt_at=now, claimed_until=None)
        .returning(WebhookDelivery.id)
    )
    if result.scalar_one_or_none() is None:
        raise DeliveryNotFound
    rows = await fetch(session, _ONE_DELIVERY, {"delivery_id": delivery_id})
    return {**rows[0], "event_id": event_id(rows[0]["event_id"])}
