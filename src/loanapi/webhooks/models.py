"""Integration events (the outbox), webhook endpoints and their deliveries.

An event row is written in the same transaction as the change it reports. The worker then
writes one delivery row per endpoint that asked for its type, following the feed from each
endpoint's cursor (loanapi.webhooks.queue): the deliveries table is the queue the worker claims
from (FOR UPDATE SKIP LOCKED), and the history `GET .../deliveries` shows.
"""

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, text, tuple_
from sqlalchemy.orm import Mapped, mapped_column

from loanapi.clock import utcnow
from loanapi.loans.models import EventAction
from loanapi.orm import Base, UTCDateTime, checked_enum
from loanapi.sql import current_txid, head_event_id

# A loan event's type is its action's, under `loan.`; a new loan is `loan.applied`.
_LOAN_TYPES = {EventAction.created: "loan.applied"}
DELINQUENCY_CHANGED = "loan.delinquency_changed"  # a bucket changed at close of business
ACCOUNT_TYPES = ("agent.approved", "agent.rejected", "user.disabled", "user.enabled")


def loan_type(action: EventAction) -> str:
    return _LOAN_TYPES.get(action, f"loan.{action.value}")


EVENT_TYPES = (*(loan_type(a) for a in EventAction), DELINQUENCY_CHANGED, *ACCOUNT_TYPES)


def event_id(row_id: int) -> str:
    """An event's id as integrators see it: in the feed, in deliveries, as `webhook-id`."""
    return f"evt_{row_id}"


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class Event(Base):
    """One integration event; never updated.

    `txid` is the writing transaction's id on PostgreSQL (0 on SQLite, whose one writer commits
    in id order): the feed orders by (txid, id) and serves only transactions older than every
    one still running, so an event committed late is never passed over (webhooks/feed.py)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    loan_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_events_feed", "txid", "id"),
        Index("ix_events_type_feed", "type", "txid", "id"),
        Index("ix_events_loan_feed", "loan_id", "txid", "id"),
    )


class WebhookEndpoint(Base):
    """Where events go. `event_types` is a JSON list of types, or ["*"]; `previous_secret`
    still signs deliveries until `previous_secret_until` (24 hours after a rotation).

    Its cursor in the feed, (`fanout_txid`, `fanout_id`), is the position (txid, id) through
    which the worker has written its deliveries: set to the feed's head when the endpoint is
    created or activated (no backfill), moved by the worker. Deactivated, it still gets the
    events created while it was active: through `until`, the head when it was deactivated.
    Activated again before the worker got there, it goes on from `resume` (the head then) once
    it has (webhooks/service._move_cursor, webhooks/queue.py)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    fanout_txid: Mapped[int] = mapped_column(BigInteger, default=0)
    fanout_id: Mapped[int] = mapped_column(Integer, default=0)
    until_txid: Mapped[int | None] = mapped_column(BigInteger)
    until_id: Mapped[int | None] = mapped_column(Integer)
    resume_txid: Mapped[int | None] = mapped_column(BigInteger)
    resume_id: Mapped[int | None] = mapped_column(Integer)


# An endpoint whose cursor has reached its `until`, or that has none: no events owed it while it
# is inactive (for an active one, `until` is null).
BACKLOG_WRITTEN = WebhookEndpoint.until_txid.is_(None) | (
    tuple_(WebhookEndpoint.fanout_txid, WebhookEndpoint.fanout_id)
    >= tuple_(WebhookEndpoint.until_txid, WebhookEndpoint.until_id)
)


# The feed's head as the writing transaction sees it, (txid, id): every event of an older
# transaction is at or before it, every later one after (loanapi.sql).
FEED_HEAD = (current_txid(), head_event_id())
# Pausing an endpoint (PATCH, or its 410 Gone): the worker still writes the deliveries of the
# events up to the head (`until`: created while it was active), none after; a `resume` not
# reached yet is dropped (webhooks/service._move_cursor).
PAUSED: dict[str, Any] = {
    "until_txid": FEED_HEAD[0],
    "until_id": FEED_HEAD[1],
    "resume_txid": None,
    "resume_id": None,
}


class WebhookDelivery(Base):
    """One event for one endpoint: its attempts so far and what comes next.

    A worker claims a pending delivery by setting `claimed_until` (a lease); one killed
    mid-attempt leaves the lease to run out, and another worker takes the delivery again.

    No foreign keys: their checks are row triggers that cost as much as the rows themselves
    (docs/PERFORMANCE.md). The references hold by construction: the worker writes a delivery
    for an event it has just read (events are never deleted) and for an endpoint whose row it
    holds locked, and deleting an endpoint locks that row before it deletes the deliveries and
    the endpoint (webhooks/service.remove). `created_at` is its event's `occurred_at`."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[DeliveryStatus] = mapped_column(
        checked_enum(DeliveryStatus, "delivery_status", length=16), default=DeliveryStatus.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_endpoint_status", "endpoint_id", "status", "id"),
        # The worker's queue: each endpoint's pending deliveries by when they are due.
        Index(
            "ix_webhook_deliveries_due",
            "endpoint_id",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )
