"""Users: registration, login, token holders, and the admin's decisions on accounts."""

import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loanapi import throttle
from loanapi.clock import utcnow
from loanapi.config import Settings
from loanapi.db import WriteSession, fetch
from loanapi.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from loanapi.orm import MAX_ID
from loanapi.pagination import PageParams, keyset, oldest_first
from loanapi.security import Hasher, InvalidToken, TokenCodec
from loanapi.users.models import Role, User, UserStatus
from loanapi.users.records import FIELDS, Caller, UserRecord
from loanapi.users.schemas import UserCreate
from loanapi.webhooks import outbox

log = logging.getLogger("loanapi")


class InvalidCredentials(Unauthorized):
    def __init__(self) -> None:
        super().__init__("Incorrect username or password")


class AgentNotApproved(Forbidden):
    def __init__(self) -> None:
        super().__init__("Your application as an agent has not been approved by an admin yet.")


class AccountDisabled(Forbidden):
    def __init__(self) -> None:
        super().__init__("This account is disabled.")


class AccountStateConflict(Conflict):
    """The account's status forbids the decision; adapters may word it their own way."""

    def __init__(self, detail: str, account_status: UserStatus) -> None:
        super().__init__(detail)
        self.account_status = account_status


class InvalidTokenError(Unauthorized):
    def __init__(self) -> None:
        super().__init__("The token is invalid or expired")


# --- registration -----------------------------------------------------------------------------


async def register(
    session: WriteSession,
    *,
    data: UserCreate,
    role: Role,
    hasher: Hasher,
    settings: Settings,
    address: str | None = None,
) -> UserRecord:
    """Create an account; with `address`, registrations per client address are throttled.

    Registrations that commit are counted; the expensive hash comes after the check.
    """
    if address is not None:
        limit = _register_limit(settings)
        await throttle.check(session, limit, address)
        await throttle.record(session, (limit, address))
    if len(data.password) < settings.password_min_length:
        raise Unprocessable.field(
            ("body", "password"),
            f"String should have at least {settings.password_min_length} characters",
            "string_too_short",
        )
    await _ensure_unique(session, data.username, data.email)
    password_hash = await hasher.hash(data.password)
    user = User(
        username=data.username,
        email=data.email,
        phone=data.phone,
        role=role,
        status=UserStatus.pending if role is Role.agent else UserStatus.active,
        password_hash=password_hash,
    )
    try:
        async with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict("That username or email is already registered") from exc
    return UserRecord.of_entity(user)


async def _ensure_unique(session: AsyncSession, username: str, email: str) -> None:
    taken = await session.scalar(
        select(User.username).where(func.lower(User.username) == username.lower())
    )
    if taken is not None:
        raise Conflict("That username is already taken")
    taken = await session.scalar(select(User.email).where(func.lower(User.email) == email.lower()))
    if taken is not None:
        raise Conflict("That email is already registered")


# --- login ------------------------------------------------------------------------------------


async def authenticate(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    address: str,
    hasher: Hasher,
    settings: Settings,
    writers: async_sessionmaker[WriteSession],
) -> UserRecord:
    """Check credentials; raise a typed error the API (and the legacy adapter) can translate.

    The request's transaction only reads: failed attempts and upgraded hashes are written
    through `writers`, in short transactions of their own, because a failed login rolls the
    request back and a slow hash must not hold a write lock.
    """
    if not username.isprintable():  # no such user can exist; some bytes PostgreSQL cannot store
        await hasher.dummy_verify(password)
        raise InvalidCredentials
    per_user, per_address = _login_limits(settings)
    await throttle.check(session, per_user, username)
    await throttle.check(session, per_address, address)
    failed = ((per_user, username), (per_address, address))
    user = await session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    # Give the connection back before the slow hash: a login storm must not hold the pool.
    await session.close()
    if user is None:
        await hasher.dummy_verify(password)
        await throttle.record_apart(writers, *failed)
        raise InvalidCredentials
    valid, new_hash = await hasher.verify(password, user.password_hash)
    if not valid:
        await throttle.record_apart(writers, *failed)
        raise InvalidCredentials
    if new_hash is not None:
        await _save_hash(writers, user_id=user.id, password_hash=new_hash)
    if user.status is UserStatus.disabled:
        raise AccountDisabled
    if user.status is not UserStatus.active:
        raise AgentNotApproved
    return UserRecord.of_entity(user)


def _login_limits(settings: Settings) -> tuple[throttle.Limit, throttle.Limit]:
    window = timedelta(minutes=settings.login_window_minutes)
    return (
        throttle.Limit(
            "login_user",
            settings.login_max_failures,
            window,
            "Too many failed logins for this username; try again later.",
        ),
        throttle.Limit(
            "login_address",
            settings.login_max_failures_per_address,
            window,
            "Too many failed logins from this address; try again later.",
        ),
    )


def _register_limit(settings: Settings) -> throttle.Limit:
    return throttle.Limit(
        "register_address",
        settings.register_max_per_address,
        timedelta(minutes=settings.register_window_minutes),
        "Too many registrations from this address; try again later.",
    )


async def _save_hash(
    writers: async_sessionmaker[WriteSession], *, user_id: int, password_hash: str
) -> None:
    async with writers() as session, session.begin():
        await session.execute(
            update(User).where(User.id == user_id).values(password_hash=password_hash)
        )


_RECORD_COLUMNS = tuple(User.__table__.c[name] for name in FIELDS)
_CALLER_BY_ID = select(*_RECORD_COLUMNS).where(User.__table__.c.id == bindparam("id"))


async def user_from_token(session: AsyncSession, *, token: str, codec: TokenCodec) -> Caller:
    """The token's user, reloaded now: a disabled or rejected user's token stops working."""
    try:
        claims = codec.read(token)
    except InvalidToken as exc:
        raise InvalidTokenError from exc
    if not 1 <= claims.user_id <= MAX_ID:
        raise InvalidTokenError
    # A Core read, not session.get: this runs on every request, and the ORM's execution and
    # identity map cost more than the query. The caller is a detached User (read, never changed).
    rows = await fetch(session, _CALLER_BY_ID, {"id": claims.user_id})
    if not rows or rows[0]["status"] is not UserStatus.active:
        raise InvalidTokenError
    return UserRecord.of(rows[0])


# --- listing ----------------------------------------------------------------------------------


def _users_where(
    query: Select[Any],
    roles: Iterable[Role],
    statuses: Iterable[UserStatus],
    exclude_id: int | None,
) -> Select[Any]:
    if roles := list(roles):
        query = query.where(User.role.in_(roles))
    if statuses := list(statuses):
        query = query.where(User.status.in_(statuses))
    if exclude_id is not None:
        query = query.where(User.id != exclude_id)
    return query


async def list_users(
    session: AsyncSession,
    *,
    page: PageParams,
    roles: Iterable[Role] = (),
    statuses: Iterable[UserStatus] = (),
) -> list[UserRecord]:
    """A page of users, newest first, and one more when there are more (`make_page`)."""
    query = _users_where(select(*_RECORD_COLUMNS), roles, statuses, None)
    query = keyset(query, page.after is not None, User.created_at, User.id)
    rows = (await session.execute(query, page.binds())).mappings().all()
    return [UserRecord.of(row) for row in rows]


async def oldest_rows(
    session: AsyncSession,
    *,
    columns: tuple[Any, ...],
    limit: int,
    roles: Iterable[Role] = (),
    statuses: Iterable[UserStatus] = (),
    exclude_id: int | None = None,
) -> Sequence[Mapping[str, Any]]:
    """At most `limit` users, oldest first, as the given columns."""
    query = _users_where(select(*columns), roles, statuses, exclude_id)
    query = oldest_first(query, User.created_at, User.id)
    return list((await session.execute(query, {"limit": limit})).mappings().all())


# --- account decisions ------------------------------------------------------------------------


async def _change_status(
    session: WriteSession,
    *,
    user_id: int,
    role: Role | None,
    allowed_from: Iterable[UserStatus],
    values: dict[str, object],
    refusal: str,
) -> UserRecord:
    """Conditional update: the status changes only if it is still one it may change from."""
    condition = [User.id == user_id, User.status.in_(list(allowed_from))]
    if role is not None:
        condition.append(User.role == role)
    statement = (
        update(User)
        .where(*condition)
        .values(**values, updated_at=utcnow())
        .returning(*_RECORD_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    changed = (await session.execute(statement)).mappings().first()
    if changed is not None:
        return UserRecord.of(changed)
    current = await session.get(User, user_id)
    if current is None or (role is not None and current.role is not role):
        raise NotFound(f"No {role.value if role else 'user'} with id {user_id}")
    raise AccountStateConflict(refusal.format(status=current.status.value), current.status)


async def _published(
    type_: str, user: UserRecord, actor: Caller, session: WriteSession
) -> UserRecord:
    await outbox.publish(session, [outbox.user_event(type_, user, actor.id)])
    return user


async def approve_agent(session: WriteSession, *, agent_id: int, actor: Caller) -> UserRecord:
    agent = await _change_status(
        session,
        user_id=agent_id,
        role=Role.agent,
        allowed_from=(UserStatus.pending, UserStatus.rejected),
        values={"status": UserStatus.active, "approved_at": utcnow()},
        refusal="Only a pending or rejected agent can be approved; this one is {status}",
    )
    return await _published("agent.approved", agent, actor, session)


async def reject_agent(session: WriteSession, *, agent_id: int, actor: Caller) -> UserRecord:
    agent = await _change_status(
        session,
        user_id=agent_id,
        role=Role.agent,
        allowed_from=(UserStatus.pending,),
        values={"status": UserStatus.rejected},
        refusal="Only a pending agent can be rejected; this one is {status}",
    )
    return await _published("agent.rejected", agent, actor, session)


async def disable_user(session: WriteSession, *, user_id: int, actor: Caller) -> UserRecord:
    if user_id == actor.id:
        raise Conflict("You cannot disable your own account")
    user = await _change_status(
        session,
        user_id=user_id,
        role=None,
        allowed_from=(UserStatus.active, UserStatus.pending, UserStatus.rejected),
        values={"status": UserStatus.disabled},
        refusal="This user is already {status}",
    )
    return await _published("user.disabled", user, actor, session)


async def enable_user(session: WriteSession, *, user_id: int, actor: Caller) -> UserRecord:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}")
    # An agent who was never approved goes back to the queue rather than straight to active.
    never_approved = user.role is Role.agent and user.approved_at is None
    enabled = await _change_status(
        session,
        user_id=user_id,
        role=None,
        allowed_from=(UserStatus.disabled,),
        values={"status": UserStatus.pending if never_approved else UserStatus.active},
        refusal="Only a disabled user can be enabled; this one is {status}",
    )
    return await _published("user.enabled", enabled, actor, session)


# --- bootstrap --------------------------------------------------------------------------------


async def ensure_admin(session: WriteSession, *, settings: Settings, hasher: Hasher) -> str | None:
    """Create the first admin when none exists.

    Uses LOANAPI_ADMIN_* when set; otherwise generates a password and returns it so the caller
    can print it once. Returns None when an admin already existed.
    """
    exists = await session.scalar(select(User.id).where(User.role == Role.admin).limit(1))
    if exists is not None:
        return None
    password = settings.admin_password or secrets.token_urlsafe(16)
    admin = User(
        username=settings.admin_username or "admin",
        email=settings.admin_email or "admin@example.com",
        role=Role.admin,
        status=UserStatus.active,
        password_hash=await hasher.hash(password),
    )
    session.add(admin)
    await session.flush()
    return None if settings.admin_password else password
