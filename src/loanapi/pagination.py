"""Keyset pagination, newest first: (created_at desc, id desc), stable under concurrent inserts."""

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from loanapi.db import MAX_ID
from loanapi.errors import Unprocessable

T = TypeVar("T", bound=BaseModel)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int
    after: tuple[datetime, int] | None


def encode_cursor(created_at: datetime, row_id: int) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = base64.urlsafe_b64decode(padded.encode("ascii")).decode().split("|")
        when = datetime.fromisoformat(created).astimezone(UTC)
        if created[-6:] != "+00:00" or not 1 <= int(row_id) <= MAX_ID:
            raise ValueError("not a cursor this API issued")
        return when, int(row_id)
    except (ValueError, OverflowError, UnicodeError, binascii.Error) as exc:
        raise Unprocessable.field(
            ("query", "cursor"), "not a cursor this API issued", "cursor_invalid"
        ) from exc


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


def keyset(
    query: Select[Any],
    params: PageParams,
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[int],
) -> Select[Any]:
    """Order newest first and start after the cursor; fetch one extra row to see if more exist."""
    if params.after is not None:
        when, last_id = params.after
        # A row comparison, so the index on (created_at, id) seeks straight to the cursor and a
        # page deep in the list costs what the first one does.
        query = query.where(tuple_(created_at, row_id) < tuple_(when, last_id))
    return query.order_by(created_at.desc(), row_id.desc()).limit(params.limit + 1)


def make_page(rows: Sequence[Any], params: PageParams, item: type[T]) -> Page[T]:
    """Turn the rows of a `keyset` query into a page of `item`s with the next cursor."""
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more else None
    return Page[item](  # type: ignore[valid-type]
        items=[item.model_validate(row) for row in rows], next_cursor=next_cursor
    )
