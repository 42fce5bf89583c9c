"""The outbox: every change's integration events (EVENTS.md), written in the change's own
transaction, with one pending delivery per active endpoint that asked for the event's type.

The services call `publish` beside their own writes, so a change and its event commit together
or not at all. `data` is the loan or the user exactly as the API shows it after the change.
"""

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import String, bindparam, cast, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loanapi.clock import utcnow
from loanapi.loans.records import LoanRecord, RepaymentRecord
from loanapi.sql import current_txid
from loanapi.users.records import UserRecord
from loanapi.users.schemas import UserRead
from loanapi.webhooks.models import DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint

_LOAN = TypeAdapter(LoanRecord)
_REPAYMENT = TypeAdapter(RepaymentRecord)


def loan_event(
    type_: str, loan: LoanRecord, actor_id: int, repayment: RepaymentRecord | None = None
) -> dict[str, Any]:
    """A loan's event: the loan after the change (its `version` too) and who made it."""
    data: dict[str, Any] = {
        "loan": _LOAN.dump_python(loan, mode="json"),
        "version": loan.version,
        "actor_id": actor_id,
    }
    if repayment is not None:
        data["repayment"] = _REPAYMENT.dump_python(repayment, mode="json")
    return {"type": type_, "loan_id": loan.id, "data": data}


def user_event(type_: str, user: UserRecord, actor_id: int) -> dict[str, Any]:
    user_json = UserRead.model_validate(user).model_dump(mode="json")
    return {"type": type_, "loan_id": None, "data": {"user": user_json, "actor_id": actor_id}}


_INSERT = insert(Event).values(
    txid=current_txid(),
    type=bindparam("type"),
    occurred_at=bindparam("occurred_at"),
    loan_id=bindparam("loan_id"),
    data=bindparam("data", type_=Event.data.type),
)


def _fan_out(events: Any, where: Any = None) -> Any:
    """One pending delivery per active endpoint subscribed to each of `events`' types (a JSON
    list of type names, plain identifiers, matched as text), due at once."""
    types = cast(WebhookEndpoint.event_types, String)
    subscribed = or_(types.like('%"*"%'), types.like(literal('%"') + events.c.type + '"%'))
    rows = (
        select(
            WebhookEndpoint.id,
            events.c.id,
            literal(DeliveryStatus.pending.value),
            literal(0),
            bindparam("occurred_at", type_=WebhookDelivery.next_attempt_at.type),
            bindparam("occurred_at", type_=WebhookDelivery.created_at.type),
        )
        .select_from(events)
        .join(WebhookEndpoint, WebhookEndpoint.active.is_(True) & subscribed)
    )
    columns = ["endpoint_id", "event_id", "status", "attempts", "next_attempt_at", "created_at"]
    return insert(WebhookDelivery).from_select(
        columns, rows if where is None else rows.where(where)
    )


# PostgreSQL: the event and its deliveries in one statement (a data-modifying CTE), run once
# per event. SQLite: the events, then their deliveries by id.
_PUBLISH = _fan_out(_INSERT.returning(Event.id, Event.type).cte("event"))
_INSERT_RETURNING = _INSERT.returning(Event.id)
_FAN_OUT = _fan_out(Event.__table__, Event.id.in_(bindparam("ids", expanding=True)))


async def publish(session: AsyncSession, events: Sequence[dict[str, Any]]) -> None:
    """Write `events` (from loan_event / user_event) and their deliveries, in `session`'s
    transaction."""
    if not events:
        return
    now = utcnow()
    connection = await session.connection()
    rows = [{**event, "occurred_at": now} for event in events]
    if connection.dialect.name == "postgresql":
        await connection.execute(_PUBLISH, rows if len(rows) > 1 else rows[0])
        return
    ids = list((await connection.execute(_INSERT_RETURNING, rows)).scalars())
    await connection.execute(_FAN_OUT, {"ids": ids, "occurred_at": now})
