"""What the user services return: one frozen, typed record per user (never a password hash)."""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Self

from loanapi.records import Record
from loanapi.users.models import Role, User, UserStatus


@dataclass(frozen=True, slots=True)
class UserRecord(Record):
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
    def of_entity(cls, user: User) -> Self:
        return cls.of({name: getattr(user, name) for name in FIELDS})


FIELDS = tuple(field.name for field in fields(UserRecord))
# The user a request's token names, as loaded for that request: read, never changed.
Caller = UserRecord
