"""The outbox: every change's integration events (EVENTS.md), written in the change's own
transaction. The worker follows them as the feed does and writes each endpoint's deliveries
(webhooks/queue.py), so a change costs one row per event however many endpoints there are.

The services call `publish` beside their own writes, so a change and its event commit together
or not at all. `data` is the loan or the user exactly as the API shows it after the change.
"""

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from loanapi.clock import utcnow
from loanapi.loans.records import LoanRecord, RepaymentRecord
from loanapi.sql import current_txid
from loanapi.users.records import UserRecord
from loanapi.users.schemas import UserRead
from loanapi.webhooks.models import Event

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


async def publish(session: AsyncSession, events: Sequence[dict[str, Any]]) -> None:
    """Write `events` (from loan_event / user_event) in `session`'s transaction. Their
    deliveries are the worker's to write (webhooks/queue.py), not the change's."""
    if not events:
        return
    now = utcnow()
    connection = await session.connection()
    rows = [{**event, "occurred_at": now} for event in events]
    await connection.execute(_INSERT, rows if len(rows) > 1 else rows[0])
