"""Users: registration, login, token holders, and the admin's decisions on accounts."""

import asyncio
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loanapi import throttle
from loanapi.clock import utcnow
from loanapi.config import Settings
from loanapi.db import WriteSession, fetch, release
from loanapi.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from loanapi.orm import MAX_ID
from loanapi.pagination import PageParams, keyset, oldest_first
from loanapi.security import ExpiredToken, Hasher, InvalidToken, TokenClaims, TokenCodec
from loanapi.users.models import RevokedToken, Role, User, UserStatus
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
    """RFC 6750's invalid_token, with a description that says why in a few words (expired,
    revoked, account disabled) and no more."""

    def __init__(self, detail: str = "The token is invalid") -> None:
        description = detail.replace("\\", "").replace('"', "")
        super().__init__(
            detail, scheme=f'Bearer error="invalid_token", error_description="{description}"'
        )


TOKEN_EXPIRED = "The token has expired"
TOKEN_REVOKED = "The token has been revoked"
ACCOUNT_DISABLED = "The account is disabled"
ACCOUNT_NOT_ACTIVE = "The account is not active"


class PasswordChangeRequired(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "Your password was reset by an admin: choose a new one with POST "
            "/api/v1/auth/password before anything else"
        )


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
    check_password(
        data.password, username=data.username, email=data.email, settings=settings, field="password"
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


# --- passwords --------------------------------------------------------------------------------

COMMON_PASSWORDS = 10_000  # refused: the most common passwords, as zxcvbn ranks them


def check_password(
    password: str, *, username: str, email: str, settings: Settings, field: str
) -> None:
    """Refuse, with a 422 on `field` that says why, a password that is too short, equal to
    the username or e-mail address, or one of the most common passwords."""

    def refuse(message: str, kind: str) -> Unprocessable:
        return Unprocessable.field(("body", field), message, kind)

    if len(password) < settings.password_min_length:
        raise refuse(
            f"String should have at least {settings.password_min_length} characters",
            "string_too_short",
        )
    lowered = password.casefold()
    if lowered in {username.casefold(), email.casefold(), email.casefold().partition("@")[0]}:
        raise refuse("The password must not be the username or e-mail address", "password_personal")
    if _common_rank(lowered) <= COMMON_PASSWORDS:
        raise refuse(
            f"This password is one of the {COMMON_PASSWORDS:,} most common passwords, the "
            "first ones an attacker tries: choose another",
            "password_common",
        )


def _common_rank(password: str) -> int:
    # zxcvbn's list of 30,000 passwords from breaches, ranked by frequency (imported on first
    # use: building its dictionaries takes ~30 ms).
    from zxcvbn.matching import RANKED_DICTIONARIES

    rank: int = RANKED_DICTIONARIES["passwords"].get(password, COMMON_PASSWORDS + 1)
    return rank


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
    per_pair, per_address, per_user = _login_limits(settings)
    pair = _pair(username, address)
    await throttle.check(session, per_pair, pair)
    await throttle.check(session, per_address, address)
    user_failures = await throttle.count(session, per_user, username)
    failed = ((per_pair, pair), (per_address, address), (per_user, username))
    user = await session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    # Give the connection back before the slow hash: a login storm must not hold the pool.
    await session.close()
    if delay := slowdown(user_failures, settings):
        await asyncio.sleep(delay)
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


MAX_SLOWDOWN = 10.0  # seconds


def slowdown(user_failures: int, settings: Settings) -> float:
    """Seconds each login attempt for a username waits once it has failed
    `login_slowdown_after` times in the window (from any addresses): half a second, doubling
    with every 10 more failures, at most 10 s. A delay, never a lock: the owner still gets in."""
    beyond = user_failures - settings.login_slowdown_after
    if beyond < 0:
        return 0.0
    return float(min(MAX_SLOWDOWN, 0.5 * 2 ** (beyond // 10)))


def _pair(username: str, address: str) -> str:
    return f"{username}|{address}"


def _login_limits(settings: Settings) -> tuple[throttle.Limit, throttle.Limit, throttle.Limit]:
    window = timedelta(minutes=settings.login_window_minutes)
    return (
        throttle.Limit(
            "login_pair",
            settings.login_max_failures,
            window,
            "Too many failed logins for this username from this address; try again later.",
        ),
        throttle.Limit(
            "login_address",
            settings.login_max_failures_per_address,
            window,
            "Too many failed logins from this address; try again later.",
        ),
        throttle.Limit("login_user", settings.login_slowdown_after, window, ""),
    )


async def id_of(session: AsyncSession, *, username: str) -> int:
    """The id of the user with this username (any case), else 404."""
    found = await session.scalar(
        select(User.id).where(func.lower(User.username) == username.lower())
    )
    if found is None:
        raise NotFound(f"No user named {username}")
    return int(found)


async def get_user(session: AsyncSession, *, user_id: int) -> UserRecord:
    rows = await fetch(session, _USER_BY_ID, {"id": user_id})
    if not rows:
        raise NotFound(f"No user with id {user_id}")
    return UserRecord.of(rows[0])


async def unlock(session: WriteSession, *, user_id: int) -> UserRecord:
    """Forget the failed logins of the username: its lockouts and slowdown end at once."""
    user = await get_user(session, user_id=user_id)
    await _clear_failures(session, user.username)
    return user


async def _clear_failures(session: WriteSession, username: str) -> None:
    await throttle.clear(session, "login_pair", _pair(username, ""), prefix=True)
    await throttle.clear(session, "login_user", username)


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
_USER_BY_ID = select(*_RECORD_COLUMNS).where(User.__table__.c.id == bindparam("id"))
# The token's user and whether the token still stands, in one statement (every request).
_CALLER_BY_ID = select(
    *_RECORD_COLUMNS,
    User.tokens_valid_after,
    User.kept_token,
    User.must_change_password,
    exists().where(RevokedToken.jti == bindparam("jti")).label("logged_out"),
).where(User.__table__.c.id == bindparam("id"))


async def user_from_token(
    session: AsyncSession, *, token: str, codec: TokenCodec, changing_password: bool = False
) -> Caller:
    """The token's user, reloaded now: a disabled or rejected user's token stops working, and
    so does a token logged out or issued before the password last changed. A user whose
    password an admin reset may only choose a new one (`changing_password`)."""
    claims = token_claims(token, codec)
    # A Core read, not session.get: this runs on every request, and the ORM's execution and
    # identity map cost more than the query. The caller is a detached User (read, never changed).
    rows = await fetch(session, _CALLER_BY_ID, {"id": claims.user_id, "jti": claims.jti})
    if not rows:
        raise InvalidTokenError
    row = rows[0]
    if row["status"] is UserStatus.disabled:
        raise InvalidTokenError(ACCOUNT_DISABLED)
    if row["status"] is not UserStatus.active:
        raise InvalidTokenError(ACCOUNT_NOT_ACTIVE)
    if row["logged_out"] or _superseded(claims, row["tokens_valid_after"], row["kept_token"]):
        raise InvalidTokenError(TOKEN_REVOKED)
    if row["must_change_password"] and not changing_password:
        raise PasswordChangeRequired
    return UserRecord.of(row)


def token_claims(token: str, codec: TokenCodec) -> TokenClaims:
    """The token's claims when its signature and expiry hold, else InvalidTokenError."""
    try:
        claims = codec.read(token)
    except ExpiredToken as exc:
        raise InvalidTokenError(TOKEN_EXPIRED) from exc
    except InvalidToken as exc:
        raise InvalidTokenError from exc
    if not 1 <= claims.user_id <= MAX_ID:
        raise InvalidTokenError
    return claims


def _superseded(claims: TokenClaims, valid_after: datetime | None, kept: str | None) -> bool:
    return valid_after is not None and claims.issued_at < valid_after and claims.jti != kept


# --- logout, password change and reset ---------------------------------------------------------


async def logout(session: WriteSession, *, claims: TokenClaims) -> None:
    """End this token now (kept until it would have expired; older entries dropped)."""
    await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
    revoked = RevokedToken(jti=claims.jti, user_id=claims.user_id, expires_at=claims.expires_at)
    try:
        async with session.begin_nested():
            session.add(revoked)
    except IntegrityError:
        pass  # the same token logged out by a concurrent request: revoked either way


async def change_password(
    session: WriteSession,
    *,
    caller: Caller,
    claims: TokenClaims,
    current_password: str,
    new_password: str,
    address: str,
    hasher: Hasher,
    settings: Settings,
    writers: async_sessionmaker[WriteSession],
) -> None:
    """Set a new password; every other token of the user stops working, this one goes on.

    A wrong current password counts as a failed login (the same lockout), so a stolen token
    cannot guess the password faster than the login form. No transaction is held during the
    hashes: the new hash is saved only if the stored one did not change meanwhile.
    """
    per_pair, _, per_user = _login_limits(settings)
    pair = _pair(caller.username, address)
    await throttle.check(session, per_pair, pair)
    stored = await session.scalar(select(User.password_hash).where(User.id == caller.id))
    await release(session)
    if stored is None:
        raise InvalidTokenError
    valid, _ = await hasher.verify(current_password, stored)
    if not valid:
        await throttle.record_apart(writers, (per_pair, pair), (per_user, caller.username))
        raise Unprocessable.field(
            ("body", "current_password"), "This is not your current password", "password_incorrect"
        )
    check_password(
        new_password,
        username=caller.username,
        email=caller.email,
        settings=settings,
        field="new_password",
    )
    if new_password == current_password:
        raise Unprocessable.field(
            ("body", "new_password"),
            "The new password must differ from the current one",
            "password_unchanged",
        )
    new_hash = await hasher.hash(new_password)
    values = {"password_hash": new_hash, "must_change_password": False, "kept_token": claims.jti}
    changed = await session.execute(
        update(User)
        .where(User.id == caller.id, User.password_hash == stored)
        .values(**values, tokens_valid_after=utcnow(), updated_at=utcnow())
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        raise Conflict("The password was changed meanwhile; log in again")


async def reset_password(
    session: WriteSession, *, user_id: int, hasher: Hasher
) -> tuple[UserRecord, str]:
    """A one-time temporary password for the user, who must choose a new one at once; their
    tokens stop working. Returns the user and the temporary password (shown once)."""
    temporary = secrets.token_urlsafe(12)
    new_hash = await hasher.hash(temporary)
    statement = (
        update(User)
        .where(User.id == user_id)
        .values(
            password_hash=new_hash,
            must_change_password=True,
            tokens_valid_after=utcnow(),
            kept_token=None,
            updated_at=utcnow(),
        )
        .returning(*_RECORD_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(statement)).mappings().first()
    if row is None:
        raise NotFound(f"No user with id {user_id}")
    await _clear_failures(session, str(row["username"]))
    return UserRecord.of(row), temporary


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
