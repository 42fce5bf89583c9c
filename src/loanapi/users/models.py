import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from loanapi.db import Base, UTCDateTime, checked_enum, utcnow


class Role(enum.StrEnum):
    customer = "customer"
    agent = "agent"
    admin = "admin"


class UserStatus(enum.StrEnum):
    active = "active"
    pending = "pending"
    rejected = "rejected"
    disabled = "disabled"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A hyphenated UUID, as the original system sent it.
    public_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    username: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(checked_enum(Role, "user_role"))
    status: Mapped[UserStatus] = mapped_column(checked_enum(UserStatus, "user_status"))
    # Set when an admin approves an agent; re-enabling a disabled agent checks it.
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("uq_users_username_lower", func.lower(username), unique=True),
        Index("uq_users_email_lower", func.lower(email), unique=True),
        Index("ix_users_role_status_created", "role", "status", "created_at", "id"),
        Index("ix_users_created", "created_at", "id"),
    )


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a request's token names, as loaded for that request: read, never changed.

    Not a `User` entity: building one costs more than the query that loads it, and a caller
    has no business carrying its password hash around.
    """

    id: int
    public_id: str
    username: str
    email: str
    phone: str | None
    role: Role
    status: UserStatus
    approved_at: datetime | None
    created_at: datetime
    updated_at: datetime


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
