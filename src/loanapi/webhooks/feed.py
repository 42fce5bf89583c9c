"""The event feed, `GET /admin/events`: oldest first, and a cursor that never misses an event.

PostgreSQL gives ids at insert and transactions commit in any order, so "after id N" would pass
over an id below N whose transaction commits later. The feed orders by (txid, id) instead, the
writing transaction's id first, and serves only events of transactions older than every one still
running (the snapshot's xmin): every event that becomes visible later belongs to a transaction
at or above that bound, so it sorts after everything already served. An open transaction holds
the feed back (not its events: the ones before it), never makes it skip. On SQLite the one
writer commits in id order and txid is 0.
"""

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from loanapi.db import fetch
from loanapi.errors import Unprocessable
from loanapi.sql import oldest_running_txid
from loanapi.webhooks.models import Event

Position = tuple[int, int]  # (txid, id)
START: Position = (0, 0)


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: list[Any]  # rows: id, txid, type, occurred_at, data
    next_position: Position


def encode_position(position: Position) -> str:
    raw = f"{position[0]}.{position[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        txid, row_id = base64.urlsafe_b64decode(padded.encode("ascii")).decode().split(".")
        position = int(txid), int(row_id)
        if not (0 <= position[0] < 2**63 and 0 <= position[1] < 2**31):
            raise ValueError("out of range")
        return position
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise Unprocessable.field(
            ("query", "after"), "not a cursor this API issued", "cursor_invalid"
        ) from exc


def _feed(by_type: bool, by_loan: bool) -> Any:
    query = select(Event.id, Event.txid, Event.type, Event.occurred_at, Event.data).where(
        tuple_(Event.txid, Event.id)
        > tuple_(bindparam("after_txid", type_=Event.txid.type), bindparam("after_id")),
        Event.txid < oldest_running_txid(),
    )
    if by_type:
        query = query.where(Event.type == bindparam("type"))
    if by_loan:
        query = query.where(Event.loan_id == bindparam("loan_id"))
    return query.order_by(Event.txid, Event.id).limit(bindparam("limit", type_=Integer()))


_FEEDS = {(t, lo): _feed(t, lo) for t in (False, True) for lo in (False, True)}


async def list_events(
    session: AsyncSession,
    *,
    after: Position,
    limit: int,
    type_: str | None = None,
    loan_id: int | None = None,
) -> FeedPage:
    params: dict[str, Any] = {"after_txid": after[0], "after_id": after[1], "limit": limit}
    if type_ is not None:
        params["type"] = type_
    if loan_id is not None:
        params["loan_id"] = loan_id
    rows = await fetch(session, _FEEDS[(type_ is not None, loan_id is not None)], params)
    position = (rows[-1]["txid"], rows[-1]["id"]) if rows else after
    return FeedPage(list(rows), position)
