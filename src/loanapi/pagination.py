"""Keyset pagination, newest first: (created_at desc, id desc), stable under concurrent inserts."""

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter
from sqlalchemy import Integer, Select, bindparam, tuple_

from loanapi.errors import Unprocessable
from loanapi.orm import MAX_ID

T = TypeVar("T", bound=BaseModel)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def _page_example(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A page's example: its item's example, and a cursor to the next page."""
    args = model.__pydantic_generic_metadata__["args"]
    item = args[0] if args else None
    extra = item.model_config.get("json_schema_extra") if item is not None else None
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if examples:
        cursor = encode_cursor(datetime(2026, 11, 30, 9, 15, 2, tzinfo=UTC), 42, "Yk3Xq0aF")
        schema["examples"] = [{"items": examples[:1], "next_cursor": cursor}]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_example)

    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int
    after: tuple[datetime, int] | None
    # The list and filters this page's cursors are bound to (`list_scope`); "" binds to none.
    scope: str = ""

    def binds(self) -> dict[str, Any]:
        """The values of a `keyset` statement's bindparams."""
        binds: dict[str, Any] = {"limit": self.limit + 1}
        if self.after is not None:
            binds["cursor_at"], binds["cursor_id"] = self.after
        return binds


# Query parameters that do not choose the rows: a cursor stays good when they change.
UNBOUND = frozenset({"cursor", "limit", "format"})


def list_scope(path: str, query: Iterable[tuple[str, str]]) -> str:
    """A short digest of the list (its path) and its filters (the query but UNBOUND), which its
    cursors carry: a cursor is a position in one list, meaningless in another."""
    filters = sorted((key, value) for key, value in query if key not in UNBOUND)
    digest = hashlib.sha256(repr((path, filters)).encode()).digest()[:6]
    return base64.urlsafe_b64encode(digest).decode()


def encode_cursor(created_at: datetime, row_id: int, scope: str = "") -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{row_id}|{scope}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str = "") -> tuple[datetime, int]:
    """The position in a cursor made for the list and filters `scope` names, else 422."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id, *bound = (
            base64.urlsafe_b64decode(padded.encode("ascii")).decode().split("|")
        )
        when = datetime.fromisoformat(created).astimezone(UTC)
        if created[-6:] != "+00:00" or not 1 <= int(row_id) <= MAX_ID or len(bound) > 1:
            raise ValueError("not a cursor this API issued")
    except (ValueError, OverflowError, UnicodeError, binascii.Error) as exc:
        raise Unprocessable.field(
            ("query", "cursor"), "not a cursor this API issued", "cursor_invalid"
        ) from exc
    if bound and bound[0] != scope:  # (a cursor from before scopes has none: still good)
        raise Unprocessable.field(
            ("query", "cursor"),
            "this cursor belongs to another list or to other filters: send the same filters "
            "as for the page that gave it, or start again without a cursor",
            "cursor_mismatch",
        )
    return when, int(row_id)


def keyset(
    query: Select[Any],
    with_cursor: bool,
    created_at: Any,
    row_id: Any,
) -> Select[Any]:
    """Order newest first and, `with_cursor`, start after it; fetch one extra row to see if more
    exist. The cursor and limit are bindparams: run it with `PageParams.binds()`."""
    if with_cursor:
        # A row comparison, so the index on (created_at, id) seeks straight to the cursor and a
        # page deep in the list costs what the first one does.
        cursor = tuple_(
            bindparam("cursor_at", type_=created_at.type), bindparam("cursor_id", type_=row_id.type)
        )
        query = query.where(tuple_(created_at, row_id) < cursor)
    limit = bindparam("limit", type_=Integer())
    return query.order_by(created_at.desc(), row_id.desc()).limit(limit)


def oldest_first(query: Select[Any], created_at: Any, row_id: Any) -> Select[Any]:
    """Order oldest first and stop at the bindparam `limit` (whole lists, the legacy endpoints)."""
    return query.order_by(created_at.asc(), row_id.asc()).limit(bindparam("limit", type_=Integer()))


def page_json(items: TypeAdapter[list[Any]], rows: Sequence[Any], params: PageParams) -> bytes:
    """The JSON of `make_page`, from rows that serialize as the page's items without being
    validated again (the loan records)."""
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    cursor = (
        f'"{encode_cursor(*_key(rows[-1]), params.scope)}"' if more else "null"
    )  # base64url: no escapes
    return b'{"items":' + items.dump_json(list(rows)) + b',"next_cursor":' + cursor.encode() + b"}"


def make_page(rows: Sequence[Any], params: PageParams, item: type[T]) -> Page[T]:
    """Turn the rows (mappings or objects) of a `keyset` query into a page of `item`s."""
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = encode_cursor(*_key(rows[-1]), params.scope) if more else None
    return Page[item].model_validate(  # type: ignore[valid-type]
        {"items": rows, "next_cursor": next_cursor}, from_attributes=True
    )


def _key(row: Any) -> tuple[datetime, int]:
    if isinstance(row, Mapping):
        return row["created_at"], row["id"]
    return row.created_at, row.id
