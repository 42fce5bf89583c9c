"""Lists as CSV downloads: every matching row, newest first, streamed a chunk at a time.

A list handler asks `wants_csv(request)` first; when it is false the handler does exactly what it
did before (the JSON lists are benchmarked: the only added work is two lookups in the request's
already parsed query and headers). When it is true the handler passes `csv_download` the table
(the JSON body's fields and how records serialize) and its own page query, run with pages of
CHUNK rows; the CSV then holds what walking every page of the JSON list would give.

Chunks are keyset pages read one after the other, each on a connection taken for that one
query: a slow client never holds a database connection, and memory stays that of one chunk at
any length (tests/process/test_exports_memory.py streams 100,000 rows). As with JSON pages, no
row is listed twice or missed; a row created after the first chunk was read is newer than it,
so it is not in the download, and each row is as it was when its chunk was read. The first chunk
is read in the request itself, so a refusal (an unknown agent: 404) is answered as usual, before
any byte of CSV; an error after that breaks the download off (no final chunk), so a client never
takes a cut CSV for a whole one.
"""

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol

from fastapi import Request
from pydantic import BaseModel, TypeAdapter
from starlette.responses import StreamingResponse

from loanapi.api.common import LOANS_JSON, REPAYMENTS_JSON
from loanapi.clock import utcnow
from loanapi.db import ReadSession, Sessions, release
from loanapi.errors import Unprocessable
from loanapi.loans.schemas import LoanRead, RepaymentRead
from loanapi.pagination import PageParams
from loanapi.users.schemas import UserRead

CSV = "text/csv"
CHUNK = 1000  # rows per query, and per piece of the response body
FORMATS = ("json", "csv")


class Keyed(Protocol):
    """A list's record: its keyset position is (created_at, id)."""

    @property
    def id(self) -> int: ...

    @property
    def created_at(self) -> datetime: ...


class Pages(Protocol):
    """A list's page query, e.g. `partial(loans.list_loans, filters=...)`: the rows of `page`,
    newest first, and one more when there are more."""

    def __call__(self, session: ReadSession, *, page: PageParams) -> Awaitable[Sequence[Keyed]]: ...


@dataclass(frozen=True)
class CsvTable:
    """How a list's records become CSV rows: the fields of its JSON body, in that order, each
    value the very string the JSON body holds (the same serializers)."""

    header: tuple[str, ...]
    dump: Callable[[Sequence[Any]], list[dict[str, Any]]]  # records -> JSON-mode dicts
    booleans: tuple[int, ...]  # columns written true/false, as in JSON

    @classmethod
    def of(
        cls, model: type[BaseModel], records: TypeAdapter[list[Any]] | None = None
    ) -> "CsvTable":
        """The table of `model` (the list's response item). `records`: an adapter that dumps the
        service's records as that body already (loans, repayments); without it each record is
        validated into `model` first, so only its fields can ever appear (users: never a hash)."""
        header = tuple(model.model_fields)
        if records is None:
            models = TypeAdapter(list[model])  # type: ignore[valid-type]

            def dump(rows: Sequence[Any]) -> list[dict[str, Any]]:
                items = models.validate_python(rows, from_attributes=True)
                dumped: list[dict[str, Any]] = models.dump_python(items, mode="json")
                return dumped
        else:
            adapter = records

            def dump(rows: Sequence[Any]) -> list[dict[str, Any]]:
                dumped: list[dict[str, Any]] = adapter.dump_python(list(rows), mode="json")
                return dumped

        booleans = tuple(
            i
            for i, field in enumerate(model.model_fields.values())
            if field.annotation in (bool, bool | None)
        )
        return cls(header, dump, booleans)

    def rows(self, records: Sequence[Any]) -> list[Sequence[Any]]:
        """CSV rows: None is written empty by the csv module; booleans as JSON writes them."""
        pick = itemgetter(*self.header)
        rows: list[Sequence[Any]] = [pick(item) for item in self.dump(records)]
        if self.booleans:
            rows = [_json_booleans(row, self.booleans) for row in rows]
        return rows


def _json_booleans(row: Sequence[Any], columns: tuple[int, ...]) -> list[Any]:
    cells = list(row)
    for i in columns:
        if cells[i] is not None:
            cells[i] = "true" if cells[i] else "false"
    return cells


LOANS = CsvTable.of(LoanRead, LOANS_JSON)
REPAYMENTS = CsvTable.of(RepaymentRead, REPAYMENTS_JSON)
USERS = CsvTable.of(UserRead)


def wants_csv(request: Request) -> bool:
    """Whether the list is asked for as CSV: `?format=csv`, or, without `format`, an Accept
    header that prefers text/csv to application/json (`format=json`, the default, wins over
    any Accept). Any other `format` is a 422, and so is `limit` or `cursor` with CSV: a CSV
    download is the whole list, never a page of it."""
    query = request.query_params  # parsed and cached already, by the handler's dependencies
    chosen = query.get("format")
    if chosen is None:
        accept = request.headers.get("accept")
        as_csv = accept is not None and CSV in accept.lower() and prefers_csv(accept)
    elif chosen in FORMATS:
        as_csv = chosen == "csv"
    else:
        raise Unprocessable.field(("query", "format"), "must be json or csv", "enum")
    if as_csv:
        for name in ("limit", "cursor"):
            if name in query:
                raise Unprocessable.field(
                    ("query", name),
                    "a CSV download holds every matching row: leave out limit and cursor",
                    "csv_not_paged",
                )
    return as_csv


def prefers_csv(accept: str) -> bool:
    """text/csv has a higher quality than application/json in the Accept header (a tie, or a
    wildcard alone, keeps the default: JSON)."""
    quality = {CSV: 0.0, "application/json": 0.0}
    for media_range in accept.lower().split(","):
        kind, *params = (part.strip() for part in media_range.split(";"))
        if kind not in quality:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0  # an unreadable quality: not acceptable
        quality[kind] = max(quality[kind], q)
    return quality[CSV] > quality["application/json"]


async def csv_download(
    request: Request, session: ReadSession, name: str, table: CsvTable, pages: Pages
) -> StreamingResponse:
    """The whole list as `<name>-<UTC timestamp>.csv`, with a header row of the JSON fields."""
    first = await pages(session, page=PageParams(limit=CHUNK, after=None))
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        _csv(request.app.state.sessions, table, pages, first),
        media_type=CSV,  # Starlette adds "; charset=utf-8"
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"'},
    )


async def _csv(
    sessions: Sessions, table: CsvTable, pages: Pages, records: Sequence[Keyed]
) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF, quotes around commas, quotes and newlines
    writer.writerow(table.header)
    # The request's session was given back when the handler returned: chunks after the first
    # read on a session of their own, each on a connection held for that query only.
    session = sessions.read()
    try:
        while True:
            more = len(records) > CHUNK
            records = records[:CHUNK]
            writer.writerows(table.rows(records))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if not more:
                return
            after = (records[-1].created_at, records[-1].id)
            records = await pages(session, page=PageParams(limit=CHUNK, after=after))
            await release(session)
    finally:
        await release(session)


FORMAT_PARAMETER = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "`json` (default): a page. `csv`: a `text/csv` download of every matching "
    "row, newest first, with the same filters (also chosen by `Accept: text/csv` when no "
    "`format` is given); `limit` and `cursor` are then refused (422).",
    "schema": {"type": "string", "enum": list(FORMATS), "default": "json"},
}
CSV_OK = {
    200: {
        "description": "A page of the list (JSON), or the whole list as a CSV download: a "
        "header row of the JSON fields, then one row per item, every value as the JSON "
        "holds it (null empty, booleans true/false)",
        "content": {CSV: {"schema": {"type": "string"}}},
        "headers": {
            "Content-Disposition": {
                "description": 'CSV only: `attachment; filename="<list>-<UTC time>.csv"`',
                "schema": {"type": "string"},
            }
        },
    }
}


def csv_route(responses: dict[int | str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The route arguments that document a list's CSV download in /docs."""
    return {
        "responses": {**(responses or {}), **CSV_OK},
        "openapi_extra": {"parameters": [FORMAT_PARAMETER]},
    }
