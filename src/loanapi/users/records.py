"""What the user services return: one frozen, typed record per user (never a password hash)."""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self

from loanapi.users.models import Role, User, UserStatus


@dataclass(frozen=True, slots=True)
class UserRecord:
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

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> Self:
        return cls(**row)

    @classmethod
    def of_entity(cls, user: User) -> Self:
        return cls(**{name: getattr(user, name) for name in FIELDS})


FIELDS = tuple(field.name for field in fields(UserRecord))
# The user a request's token names, as loaded for that request: read, never changed.
Caller = UserRecord
