"""Counting attempts per subject in a sliding window, shared by every server process."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Index, String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from loanapi.clock import utcnow
from loanapi.db import WriteSession
from loanapi.errors import TooManyRequests
from loanapi.orm import Base, UTCDateTime


class RateEvent(Base):
    """One counted attempt (a failed login, a registration) for throttling.

    Kept in the database so that every server process sees the same counts.
    """

    __tablename__ = "rate_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_rate_events_scope_subject_at", "scope", "subject", "at"),)


@dataclass(frozen=True)
class Limit:
    scope: str
    cap: int
    window: timedelta
    refusal: str


class Throttled(TooManyRequests):
    pass


async def count(session: AsyncSession, limit: Limit, subject: str) -> int:
    """The attempts `subject` made in the window."""
    found, _ = await _window(session, limit, subject)
    return found


async def check(session: AsyncSession, limit: Limit, subject: str) -> None:
    """Refuse with 429 and Retry-After while `subject` has used up its window."""
    found, oldest = await _window(session, limit, subject)
    if found >= limit.cap:
        retry_after = int((oldest + limit.window - utcnow()).total_seconds()) + 1
        raise Throttled(limit.refusal, retry_after=retry_after)


async def _window(session: AsyncSession, limit: Limit, subject: str) -> tuple[int, datetime]:
    since = utcnow() - limit.window
    found, oldest = (
        await session.execute(
            select(func.count(), func.min(RateEvent.at)).where(
                RateEvent.scope == limit.scope,
                RateEvent.subject == _key(subject),
                RateEvent.at > since,
            )
        )
    ).one()
    return int(found), oldest


async def clear(session: AsyncSession, scope: str, subject: str, *, prefix: bool = False) -> int:
    """Forget `subject`'s attempts in `scope` (with `prefix`, every subject starting so);
    returns how many were forgotten."""
    key = _key(subject)
    matches = (
        RateEvent.subject.startswith(key, autoescape=True) if prefix else RateEvent.subject == key
    )
    result = await session.execute(delete(RateEvent).where(RateEvent.scope == scope, matches))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def record(session: WriteSession, *events: tuple[Limit, str]) -> None:
    """Count attempts in `session`'s transaction; rows older than the window are dropped."""
    now = utcnow()
    for limit, subject in events:
        session.add(RateEvent(scope=limit.scope, subject=_key(subject), at=now))
    oldest_needed = now - max(limit.window for limit, _ in events)
    scopes = {limit.scope for limit, _ in events}
    await session.execute(
        delete(RateEvent).where(RateEvent.scope.in_(scopes), RateEvent.at < oldest_needed)
    )


async def record_apart(
    writers: async_sessionmaker[WriteSession], *events: tuple[Limit, str]
) -> None:
    """Count attempts in a transaction of their own: they stick even when the request fails."""
    async with writers() as session, session.begin():
        await record(session, *events)


def _key(subject: str) -> str:
    return subject.lower()[:128]
