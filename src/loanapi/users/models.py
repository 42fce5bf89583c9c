import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from loanapi.clock import utcnow
from loanapi.orm import Base, UTCDateTime, checked_enum


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
    # Tokens issued before this moment are revoked (a password change or reset), except the
    # one that changed the password (`kept_token`, its jti).
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    kept_token: Mapped[str | None] = mapped_column(String(64))
    # Set by an admin's reset: the user must choose a password before anything else.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )

    __table_args__ = (
        Index("uq_users_username_lower", func.lower(username), unique=True),
        Index("uq_users_email_lower", func.lower(email), unique=True),
        # Prefix searches (`q` of the loan lists: LIKE 'abc%'), whatever the collation.
        Index(
            "ix_users_username_prefix",
            func.lower(username).label("username_lower"),
            postgresql_ops={"username_lower": "text_pattern_ops"},
        ),
        Index(
            "ix_users_email_prefix",
            func.lower(email).label("email_lower"),
            postgresql_ops={"email_lower": "text_pattern_ops"},
        ),
        Index("ix_users_role_status_created", "role", "status", "created_at", "id"),
        Index("ix_users_created", "created_at", "id"),
    )


class RevokedToken(Base):
    """A token ended by its holder (`POST /auth/logout`), kept until it would have expired."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_revoked_tokens_expires_at", "expires_at"),)
