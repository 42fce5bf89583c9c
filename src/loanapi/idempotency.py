"""Idempotency keys: a repeated POST gets the first response back and has no second effect.

The key row is inserted in the request's own transaction, before the change, and completed
with the response before that transaction commits: a key and its change land together or not
at all. A concurrent repeat waits on the key's unique index (PostgreSQL) or on the write lock
(SQLite), then finds the finished row and replays it. The HTTP side (the header, the route that
records every response) is `loanapi.api.idempotency`.
"""

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from loanapi.clock import utcnow
from loanapi.db import WriteSession
from loanapi.errors import Conflict
from loanapi.orm import Base, UTCDateTime

KEEP_FOR = timedelta(hours=24)
# Headers of the first response that a replay repeats (the loan's version, where it lives).
REPLAYED_HEADERS = ("etag", "location")


class IdempotencyKey(Base):
    """The first response to a POST carrying an Idempotency-Key, replayed for repeats."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    def record(self, status_code: int, body: bytes, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.body = body.decode()
        self.headers = {name: headers[name] for name in REPLAYED_HEADERS if name in headers}


class Replay(Exception):
    """Raised before the handler runs: answer with the stored response instead."""

    def __init__(self, status_code: int, body: str, headers: dict[str, str]) -> None:
        self.status_code, self.body, self.headers = status_code, body, headers


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    digest = hashlib.sha256()
    digest.update(method.encode())
    digest.update(path.encode())
    try:  # the same JSON sent with other spacing or key order is the same request
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        pass
    digest.update(body)
    return digest.digest()


async def _existing(session: WriteSession, user_id: int, key: str) -> IdempotencyKey | None:
    row = await session.get(IdempotencyKey, (user_id, key), populate_existing=True)
    if row is not None and row.created_at < utcnow() - KEEP_FOR:
        await session.delete(row)
        await session.flush()
        return None
    return row


def _replay_or_refuse(row: IdempotencyKey, print_: bytes) -> None:
    if row.fingerprint != print_:
        raise Conflict("This Idempotency-Key was already used with a different request")
    if row.status_code is None or row.body is None:
        raise Conflict("A request with this Idempotency-Key is still in progress")
    raise Replay(row.status_code, row.body, row.headers or {})


async def claim(session: WriteSession, *, user_id: int, key: str, print_: bytes) -> IdempotencyKey:
    """The key's new row, in the request's transaction; or Replay / Conflict for a repeat."""
    if (row := await _existing(session, user_id, key)) is not None:
        _replay_or_refuse(row, print_)
    row = IdempotencyKey(user_id=user_id, key=key, fingerprint=print_, created_at=utcnow())
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent request with the same key committed first.
        if (existing := await _existing(session, user_id, key)) is None:
            raise Conflict("A request with this Idempotency-Key is still in progress") from None
        _replay_or_refuse(existing, print_)
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.created_at < utcnow() - KEEP_FOR
        )
    )
    return row
