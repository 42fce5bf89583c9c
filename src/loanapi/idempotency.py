"""Idempotency-Key for POSTs: a repeat returns the first response and has no second effect.

The key row is inserted in the request's own transaction, before the change, and completed
with the response before that transaction commits: a key and its change land together or not
at all. A concurrent repeat waits on the key's unique index (PostgreSQL) or on the write lock
(SQLite), then finds the finished row and replays it.
"""

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from loanapi.api.deps import CurrentUser, SessionDep
from loanapi.db import utcnow
from loanapi.errors import Conflict
from loanapi.loans.models import IdempotencyKey

KEEP_FOR = timedelta(hours=24)
REPLAYED_HEADER = "Idempotent-Replayed"


class Replay(Exception):
    """Raised before the handler runs: answer with the stored response instead."""

    def __init__(self, status_code: int, body: str) -> None:
        self.status_code = status_code
        self.body = body


async def replay_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replay)
    return Response(
        exc.body,
        status_code=exc.status_code,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"},
    )


class Idempotency:
    def __init__(self, row: IdempotencyKey | None = None) -> None:
        self._row = row

    def record(self, response: Response) -> Response:
        """Store the response the handler is about to return; returns it unchanged."""
        if self._row is not None:
            self._row.status_code = response.status_code
            self._row.body = bytes(response.body).decode()
        return response


async def _fingerprint(request: Request) -> bytes:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.url.path.encode())
    body = await request.body()
    try:  # the same JSON sent with other spacing or key order is the same request
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        pass
    digest.update(body)
    return digest.digest()


async def _existing(session: AsyncSession, user_id: int, key: str) -> IdempotencyKey | None:
    row = await session.get(IdempotencyKey, (user_id, key), populate_existing=True)
    if row is not None and row.created_at < utcnow() - KEEP_FOR:
        await session.delete(row)
        await session.flush()
        return None
    return row


def _replay_or_refuse(row: IdempotencyKey, fingerprint: bytes) -> None:
    if row.fingerprint != fingerprint:
        raise Conflict("This Idempotency-Key was already used with a different request")
    if row.status_code is None or row.body is None:
        raise Conflict("A request with this Idempotency-Key is still in progress")
    raise Replay(row.status_code, row.body)


async def idempotency(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Repeat a POST safely: the same key and body returns the first response",
        ),
    ] = None,
) -> AsyncIterator[Idempotency]:
    if key is None:
        yield Idempotency()
        return
    fingerprint = await _fingerprint(request)
    if (row := await _existing(session, user.id, key)) is not None:
        _replay_or_refuse(row, fingerprint)
    row = IdempotencyKey(user_id=user.id, key=key, fingerprint=fingerprint, created_at=utcnow())
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent request with the same key committed first.
        if (existing := await _existing(session, user.id, key)) is None:
            raise Conflict("A request with this Idempotency-Key is still in progress") from None
        _replay_or_refuse(existing, fingerprint)
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user.id, IdempotencyKey.created_at < utcnow() - KEEP_FOR
        )
    )
    yield Idempotency(row)
    if row.status_code is None:
        raise RuntimeError("the handler did not record its idempotent response")


IdempotencyDep = Annotated[Idempotency, Depends(idempotency, scope="function")]
