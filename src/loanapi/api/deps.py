"""Typed dependencies: the sessions, the caller, and the role gates."""

import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, Field

from loanapi.clock import day_end, day_start
from loanapi.config import Settings
from loanapi.db import ReadSession, WriteSession, release
from loanapi.errors import Forbidden, Unauthorized, Unprocessable
from loanapi.loans.ledger import Bucket
from loanapi.loans.models import LoanStatus, LoanType
from loanapi.loans.service import LoanFilters, customer_prefix
from loanapi.orm import MAX_ID
from loanapi.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams, decode_cursor, list_scope
from loanapi.security import Hasher, TokenCodec
from loanapi.users import service as users
from loanapi.users.models import Role
from loanapi.users.records import Caller, UserRecord
from loanapi.users.schemas import UserCreate

V1 = "/api/v1"
TOKEN_URL = f"{V1}/auth/token"


async def read_session(request: Request) -> AsyncIterator[ReadSession]:
    session = request.app.state.sessions.read()
    try:
        yield session
    finally:
        await release(session)


async def write_session(request: Request) -> AsyncIterator[WriteSession]:
    """The request's one transaction: committed when the handler returns, else rolled back."""
    session = request.app.state.sessions.write()
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        await release(session)


# scope="function": the transaction commits before the response is sent, so a client never
# sees a success for a change that then failed to commit.
ReadSessionDep = Annotated[ReadSession, Depends(read_session, scope="function")]
WriteSessionDep = Annotated[WriteSession, Depends(write_session, scope="function")]


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _hasher(request: Request) -> Hasher:
    hasher: Hasher = request.app.state.hasher
    return hasher


async def _codec(request: Request) -> TokenCodec:
    codec: TokenCodec = request.app.state.codec
    return codec


SettingsDep = Annotated[Settings, Depends(_settings)]
HasherDep = Annotated[Hasher, Depends(_hasher)]
CodecDep = Annotated[TokenCodec, Depends(_codec)]

bearer = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    description="Start here: your username and password give a token, sent as "
    "`Authorization: Bearer` with every /api/v1 call (and accepted by the legacy endpoints).",
)


BearerToken = Annotated[str | None, Depends(bearer)]


class Basic(HTTPBasic):
    """HTTP Basic credentials decoded as UTF-8 (RFC 7617; what browsers and curl send), and
    as latin-1 only when they are not UTF-8 (older clients): FastAPI's own takes ASCII alone,
    so a password with an accent worked on /auth/token and failed here."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "basic":
            if self.auto_error:
                raise self.make_not_authenticated_error()
            return None
        try:
            raw = base64.b64decode(param)
        except binascii.Error as exc:
            raise self.make_not_authenticated_error() from exc
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        username, separator, password = text.partition(":")
        if not separator:
            raise self.make_not_authenticated_error()
        return HTTPBasicCredentials(username=username, password=password)


async def current_user(request: Request, session: ReadSessionDep, token: BearerToken) -> Caller:
    return await _caller(request, session, token, changing_password=False)


async def _caller(
    request: Request, session: ReadSession, token: str | None, *, changing_password: bool
) -> Caller:
    # Loaded once per request: the role gates call this directly (not as a dependency, which
    # FastAPI would have cached), and other dependencies (Idempotency-Key) ask for it too.
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    if not token:
        raise Unauthorized("Not authenticated")
    caller = await users.user_from_token(
        session, token=token, codec=request.app.state.codec, changing_password=changing_password
    )
    # A write request's own transaction runs on another connection: give this one back now.
    await release(session)
    request.state.caller = caller
    request.state.user_id = caller.id  # for the access log
    return caller


CurrentUser = Annotated[Caller, Depends(current_user)]


async def token_holder(request: Request, session: ReadSessionDep, token: BearerToken) -> Caller:
    """The caller, also when an admin reset their password and they have not chosen a new one
    yet (the endpoints that let them: change the password, log out)."""
    return await _caller(request, session, token, changing_password=True)


TokenHolder = Annotated[Caller, Depends(token_holder)]


def require_role(role: Role) -> Callable[..., Awaitable[Caller]]:
    # Not a dependency on current_user: every level of dependencies costs CPU on each request.
    async def caller_with_role(
        request: Request, session: ReadSessionDep, token: BearerToken
    ) -> Caller:
        user = await current_user(request, session, token)
        if user.role is not role:
            raise Forbidden(f"This endpoint is for the {role.value} role")
        return user

    caller_with_role.__name__ = f"require_{role.value}"
    return caller_with_role


CustomerUser = Annotated[Caller, Depends(require_role(Role.customer))]
AgentUser = Annotated[Caller, Depends(require_role(Role.agent))]
AdminUser = Annotated[Caller, Depends(require_role(Role.admin))]


def id_path(description: str) -> object:
    return Path(ge=1, le=MAX_ID, description=description)


UserId = Annotated[int, id_path("A user's id")]
LoanId = Annotated[int, id_path("A loan's id")]
RepaymentId = Annotated[int, id_path("A repayment's id")]


async def if_match(
    value: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=64,
            description='The loan version you read, as its ETag: `"3"`. A stale one is a 412.',
        ),
    ] = None,
) -> int | None:
    if value is None or value.strip() == "*":
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise Unprocessable.field(
            ("header", "If-Match"), 'must be a loan version as an ETag, e.g. "3"', "value_error"
        )
    return int(raw)


IfMatch = Annotated[int | None, Depends(if_match)]


def _bound(value: str | None, name: str, *, upper: bool) -> datetime | None:
    """A bare date is that whole UTC day; a timestamp is exact. Upper bounds are exclusive."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return day_end(day) if upper else day_start(day)
        moment = datetime.fromisoformat(value)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment + timedelta(microseconds=1) if upper else moment
    except (ValueError, OverflowError):  # OverflowError: a day at the very end of the calendar
        raise Unprocessable.field(
            ("query", name),
            "must be a date YYYY-MM-DD or an ISO 8601 timestamp within the calendar",
            "datetime_parsing",
        ) from None


DateText = Annotated[
    str | None,
    Field(max_length=40, description="YYYY-MM-DD (the whole UTC day) or an ISO 8601 timestamp"),
]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[
    str | None, Field(max_length=200, description="`next_cursor` of the previous page")
]


StatusText = Annotated[
    str | None,
    Field(
        max_length=200,
        description="One status, or several separated by commas (any of them): "
        + ", ".join(LoanStatus),
        examples=["requested", "new,requested"],
    ),
]


def statuses_of(text: str | None) -> tuple[LoanStatus, ...]:
    """`status=new` or `status=new,requested`: the statuses named (none without the query)."""
    if text is None:
        return ()
    names = list(dict.fromkeys(name.strip() for name in text.split(",")))
    unknown = [name for name in names if name not in LoanStatus.__members__]
    if unknown:
        raise Unprocessable.field(
            ("query", "status"),
            f"unknown status {', '.join(map(repr, unknown))}; one or more of "
            f"{', '.join(LoanStatus)}, separated by commas",
            "enum",
        )
    return tuple(LoanStatus(name) for name in names)


class LoanListQuery(BaseModel):
    """The query of the agent's and admin's loan lists: filters (AND) and the page.

    One model, validated at once: FastAPI handles each separately declared query parameter on
    its own, which costs a list about 70 us more."""

    status: StatusText = None
    loan_type: Annotated[LoanType | None, Field(description="Loans of this product")] = None
    customer_id: Annotated[
        int | None, Field(ge=1, le=MAX_ID, description="Loans of this customer (a user id)")
    ] = None
    q: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=320,
            description="Loans of customers whose username or e-mail starts with this, any case",
        ),
    ] = None
    created_from: DateText = None
    created_to: DateText = None
    updated_from: DateText = None
    updated_to: DateText = None
    dpd_min: Annotated[
        int | None, Field(ge=0, le=MAX_ID, description="Days past due, at least")
    ] = None
    dpd_max: Annotated[int | None, Field(ge=0, le=MAX_ID, description="Days past due, at most")] = (
        None
    )
    bucket: Annotated[
        Bucket | None, Field(description="Delinquency bucket as stored on the loan (see `dpd`)")
    ] = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


@dataclass(frozen=True)
class LoanList:
    filters: LoanFilters
    page: PageParams


async def loan_list(request: Request, query: Annotated[LoanListQuery, Query()]) -> LoanList:
    filters = LoanFilters(
        statuses=statuses_of(query.status),
        customer_like=customer_prefix(query.q) if query.q else None,
        loan_type=query.loan_type,
        customer_id=query.customer_id,
        created_from=_bound(query.created_from, "created_from", upper=False),
        created_before=_bound(query.created_to, "created_to", upper=True),
        updated_from=_bound(query.updated_from, "updated_from", upper=False),
        updated_before=_bound(query.updated_to, "updated_to", upper=True),
        dpd_min=query.dpd_min,
        dpd_max=query.dpd_max,
        bucket=query.bucket,
    )
    if query.dpd_min is not None and query.dpd_max is not None and query.dpd_max < query.dpd_min:
        raise Unprocessable.field(("query", "dpd_max"), "must not be below dpd_min", "value_error")
    for start, end, name in (
        (filters.created_from, filters.created_before, "created_to"),
        (filters.updated_from, filters.updated_before, "updated_to"),
    ):
        if start is not None and end is not None and end <= start:
            raise Unprocessable.field(
                ("query", name), "must not be before the start", "value_error"
            )
    return LoanList(filters, page_of(request, query.limit, query.cursor))


LoanListDep = Annotated[LoanList, Depends(loan_list)]


def page_of(request: Request, limit: int, cursor: str | None) -> PageParams:
    """The page asked for; its cursors are bound to this list and these filters."""
    scope = list_scope(request.url.path, request.query_params.multi_items())
    after = decode_cursor(cursor, scope) if cursor else None
    return PageParams(limit=limit, after=after, scope=scope)


async def page_params(
    request: Request,
    limit: Annotated[Limit, Query()] = DEFAULT_LIMIT,
    cursor: Annotated[Cursor, Query()] = None,
) -> PageParams:
    return page_of(request, limit, cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def register_user(
    request: Request, session: WriteSession, data: UserCreate, role: Role
) -> UserRecord:
    """Register with the app's hasher and settings, throttled by the client's address."""
    state = request.app.state
    return await users.register(
        session,
        data=data,
        role=role,
        hasher=state.hasher,
        settings=state.settings,
        address=client_address(request),
    )


async def authenticate_user(
    request: Request, session: ReadSession, username: str, password: str
) -> UserRecord:
    """Check credentials; failed attempts are counted in write transactions of their own."""
    state = request.app.state
    return await users.authenticate(
        session,
        username=username,
        password=password,
        address=client_address(request),
        hasher=state.hasher,
        settings=state.settings,
        writers=state.sessions.writers,
    )
