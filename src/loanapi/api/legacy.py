"""The original Flask system's endpoints, as a thin adapter over the /api/v1 services.

Nothing here decides anything about loans or users: each endpoint maps the original request
onto one service call, and maps the result, or the service's error, onto the original's keys,
words and status codes (LEGACY.md). The rules live in the services and the state machine.
"""

from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from loanapi.api.deps import (
    AccountsDep,
    CodecDep,
    LoanId,
    SessionDep,
    UserId,
    bearer,
)
from loanapi.db import day_start, mark_read, mark_write
from loanapi.errors import ApiError, TooManyRequests
from loanapi.loans import service as loans
from loanapi.loans.models import LoanStatus, LoanType
from loanapi.loans.schemas import LoanCreate, LoanRead, LoanUpdate, MoneyIn, Tenure
from loanapi.loans.workflow import Action, LoanStateConflict
from loanapi.pagination import PageParams
from loanapi.users import service as users
from loanapi.users.models import Caller, Role, UserStatus
from loanapi.users.schemas import UserCreate

# The original returned whole tables; we return at most this many rows, newest first.
MAX_ROWS = 10_000
ALL = PageParams(limit=MAX_ROWS, after=None)

LOAN_TYPE_WORDS = {
    LoanType.home_loan: "Home_loan",
    LoanType.personal_loan: "Personal_loan",
    LoanType.car_loan: "Car_loan",
    LoanType.education_loan: "Educational_loan",
}
STATUS_WORDS = {
    LoanStatus.new: "New",
    LoanStatus.requested: "New",
    LoanStatus.approved: "Approved",
    LoanStatus.rejected: "Rejected",
    LoanStatus.withdrawn: "Withdrawn",
}

UNAUTHORISED = "Unauthorised Access"
NOT_AUTHORIZED_VIEW = "Not Authorized to view this page"
NOT_AUTHORISED_FILTER = "You are not authorised to view this page!"
ADMIN_ONLY = "You are not authorized to open this page"
NOT_APPROVED = "Your Application for agent is not approved by the admin."
IMMUTABLE = "This Loan has already been approved by the admin!! It is immutable now."


# --- errors: the original's shapes -----------------------------------------------------------


class LegacyError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        key: str = "Message",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.body, self.headers = status, {key: message}, headers

    def response(self) -> Response:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def _translate(exc: ApiError) -> LegacyError:
    """A service error in the original's words; status codes follow /api/v1."""
    if isinstance(exc, users.InvalidTokenError):
        return LegacyError(401, "Token is invalid!", key="message")
    if isinstance(exc, LoanStateConflict) and exc.loan_status is LoanStatus.approved:
        if exc.action in (Action.edit, Action.rollback):
            return LegacyError(409, IMMUTABLE)
    if isinstance(exc, TooManyRequests):
        return LegacyError(429, exc.detail or "Too many attempts", headers=exc.headers)
    status = 401 if exc.status == 403 else exc.status  # the original refused with 401
    return LegacyError(status, exc.detail or exc.title, headers=exc.headers)


def _first_problem(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "Invalid request"
    where = ".".join(str(part) for part in errors[0].get("loc", ()) if part != "body")
    return f"{where}: {errors[0].get('msg', 'invalid')}" if where else str(errors[0].get("msg"))


class LegacyRoute(APIRoute):
    """Renders every failure of a legacy endpoint in the original's `{"Message": ...}` shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def legacy_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LegacyError as exc:
                return exc.response()
            except RequestValidationError as exc:
                return LegacyError(422, _first_problem(exc)).response()
            except HTTPException as exc:  # unparsable body, malformed Basic header, 413
                if exc.status_code == 401:
                    return _could_not_verify()
                if exc.status_code == 400:  # a body FastAPI could not decode: bad input, as 422
                    return LegacyError(422, "The request body could not be parsed").response()
                return LegacyError(exc.status_code, str(exc.detail)).response()
            except ApiError as exc:
                return _translate(exc).response()

        return legacy_handler


class CaseInsensitivePaths:
    """The original's clients spell paths in several cases (/all_Users, /all_users)."""

    def __init__(self, app: ASGIApp, *, router: APIRouter) -> None:
        self.app = app
        self.canonical = {
            head.lower(): head
            for route in router.routes
            if isinstance(route, APIRoute)
            for head in [route.path.strip("/").split("/")[0]]
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            head, slash, rest = scope["path"][1:].partition("/")
            canonical = self.canonical.get(head.lower())
            if canonical is not None and canonical != head:
                # In place, so the outer middleware sees the matched route for its access log.
                scope["path"] = f"/{canonical}{slash}{rest}"
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


# --- callers ---------------------------------------------------------------------------------

access_token = APIKeyHeader(
    name="x-access-token", auto_error=False, description="The token from /login"
)
basic = HTTPBasic(
    auto_error=False,
    realm="Login Required!",
    scheme_name="LegacyBasic",
    description="The original /login: username and password",
)


async def legacy_caller(
    request: Request,
    session: SessionDep,
    codec: CodecDep,
    header_token: Annotated[str | None, Depends(access_token)],
    bearer_token: Annotated[str | None, Depends(bearer)],
) -> Caller:
    token = header_token or bearer_token
    if not token:
        raise LegacyError(401, "Token is missing!", key="message")
    user = await users.user_from_token(session, token=token, codec=codec)
    request.state.user_id = user.id
    return user


def allowed(*roles: Role, refusal: str) -> Callable[[Caller], Awaitable[Caller]]:
    async def caller_in_roles(user: Annotated[Caller, Depends(legacy_caller)]) -> Caller:
        if user.role not in roles:
            raise LegacyError(401, refusal)
        return user

    return caller_in_roles


AnyCaller = Annotated[Caller, Depends(legacy_caller)]
Customer = Annotated[Caller, Depends(allowed(Role.customer, refusal=UNAUTHORISED))]
Agent = Annotated[Caller, Depends(allowed(Role.agent, refusal=UNAUTHORISED))]
RequestingAgent = Annotated[Caller, Depends(allowed(Role.agent, refusal=NOT_AUTHORIZED_VIEW))]
Staff = Annotated[Caller, Depends(allowed(Role.agent, Role.admin, refusal=UNAUTHORISED))]
Filterer = Annotated[
    Caller, Depends(allowed(Role.agent, Role.admin, refusal=NOT_AUTHORISED_FILTER))
]
Admin = Annotated[Caller, Depends(allowed(Role.admin, refusal=ADMIN_ONLY))]


# --- bodies ----------------------------------------------------------------------------------


def _loan_type(value: object) -> object:
    if isinstance(value, str):
        for loan_type, word in LOAN_TYPE_WORDS.items():
            if value.lower() in (word.lower(), loan_type.value):
                return loan_type
    return value


LegacyLoanType = Annotated[
    LoanType,
    BeforeValidator(_loan_type),
    WithJsonSchema({"type": "string", "enum": list(LOAN_TYPE_WORDS.values())}),
]


class LegacyLoanCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"loan_amount": 10000, "loan_type": "Home_loan", "duration": 12}]
        },
    )

    loan_amount: MoneyIn
    loan_type: LegacyLoanType
    duration: Tenure = Field(description="Months")


class LegacyLoanEdit(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"loan_amount": 12000, "duration": 24}]}
    )

    loan_amount: MoneyIn | None = None
    loan_type: LegacyLoanType | None = None
    duration: Tenure | None = None

    def update(self) -> LoanUpdate:
        sent = {
            "principal": self.loan_amount,
            "loan_type": self.loan_type,
            "tenure_months": self.duration,
        }
        return LoanUpdate(**{name: value for name, value in sent.items() if value is not None})


# --- responses -------------------------------------------------------------------------------


def _number(value: Decimal) -> float:
    # The original sent money as JSON numbers; two-place decimals survive the float exactly.
    return float(value)


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class Message(BaseModel):
    Message: str


class Refusal(BaseModel):
    """A 401: `message` for a missing or bad token, `Message` for a role refused (the original)."""

    message: str | None = None
    Message: str | None = None


class LegacyUser(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: int
    username: str
    public_id: str
    email: str
    phone: str | None
    created_at: datetime = Field(alias="Created On")


class LegacyLoan(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    loan_amount: float = Field(alias="Loan Amount")
    loan_type: str = Field(alias="Loan Type")
    rate: float = Field(alias="Rate of interest")
    duration: int = Field(alias="Duration")
    emi: float = Field(alias="EMI")
    status: str = Field(alias="Status")
    total_payable: float = Field(alias="Total Payable amount")
    customer_id: int = Field(alias="Customer Id")
    agent_id: int | None = Field(alias="Agent Id")
    created_on: str = Field(alias="Created On")
    updated_on: str = Field(alias="Updated On")

    @classmethod
    def of(cls, loan: LoanRead) -> "LegacyLoan":
        return cls(
            id=loan.id,
            loan_amount=_number(loan.principal),
            loan_type=LOAN_TYPE_WORDS[loan.loan_type],
            rate=_number(loan.annual_rate),
            duration=loan.tenure_months,
            emi=_number(loan.emi),
            status=STATUS_WORDS[loan.status],
            total_payable=_number(loan.total_payable),
            customer_id=loan.customer_id,
            agent_id=loan.agent_id,
            created_on=_time(loan.created_at),
            updated_on=_time(loan.updated_at),
        )


class LegacyLoanData(BaseModel):
    """The `data` object of /new_loan and /edit_loan."""

    model_config = ConfigDict(populate_by_name=True)

    loan_amount: float = Field(alias="Loan amount")
    duration: int = Field(alias="Duration")
    rate: float = Field(alias="Rate of Interest")
    emi: float = Field(alias="EMI")
    total: float = Field(alias="Total amount to be paid")
    loan_type: str = Field(alias="Loan Type")
    created_on: str = Field(alias="Created on ")

    @classmethod
    def of(cls, loan: LoanRead) -> "LegacyLoanData":
        return cls(
            loan_amount=_number(loan.principal),
            duration=loan.tenure_months,
            rate=_number(loan.annual_rate),
            emi=_number(loan.emi),
            total=_number(loan.total_payable),
            loan_type=LOAN_TYPE_WORDS[loan.loan_type],
            created_on=_time(loan.created_at),
        )


class LoanWithData(BaseModel):
    Message: str
    data: LegacyLoanData


class LegacyHistoryEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    version: int = Field(alias="Version")
    action: str = Field(alias="Action")
    actor_id: int = Field(alias="Modified By")
    at: str = Field(alias="Modified On")
    changes: dict[str, dict[str, Any]] = Field(alias="Changes")
    loan_amount: float = Field(alias="Loan Amount")
    loan_type: str = Field(alias="Loan Type")
    rate: float = Field(alias="Rate of interest")
    duration: int = Field(alias="Duration")
    emi: float = Field(alias="EMI")
    status: str = Field(alias="Status")
    total_payable: float = Field(alias="Total Payable amount")
    agent_id: int | None = Field(alias="Agent Id")


def _body(**lists: list[BaseModel]) -> dict[str, Any]:
    return {
        key: [item.model_dump(by_alias=True, mode="json") for item in items]
        for key, items in lists.items()
    }


def _listing(key: str, items: list[BaseModel], empty: str) -> dict[str, Any]:
    """The original answered an empty list with a message instead."""
    return _body(**{key: items}) if items else {"Message": empty}


def _loans(key: str, page_items: list[LoanRead], empty: str) -> dict[str, Any]:
    return _listing(key, [LegacyLoan.of(loan) for loan in page_items], empty)


def _with_data(message: str, loan: Any) -> dict[str, Any]:
    read = LoanRead.model_validate(loan)
    return {"Message": message, "data": LegacyLoanData.of(read).model_dump(by_alias=True)}


def _list_of(key: str, model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """Documents `{key: [model]}`, or the Message the original sent for an empty list."""
    name = "Legacy" + "".join(part.title() for part in key.replace("_", " ").split())
    listed = create_model(name, **{key: (list[model], ...)})  # type: ignore[call-overload,valid-type]
    return {200: {"model": listed | Message, "description": "The list, or a Message when empty"}}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documents the original's `{"Message": ...}` error bodies."""
    return {
        status: {
            "model": Refusal if status == 401 else Message,
            "description": HTTPStatus(status).phrase,
        }
        for status in statuses
    }


router = APIRouter(
    tags=["legacy"], deprecated=True, route_class=LegacyRoute, responses=_errors(401, 422)
)


def both(path: str, *, documented: str, operation_id: str, **kwargs: Any) -> Any:
    """GET and POST on one path (the original accepted both); the second gets its own id."""
    other = "POST" if documented == "GET" else "GET"

    def register(endpoint: Any) -> Any:
        for method, name in (
            (documented, operation_id),
            (other, f"{operation_id}_{other.lower()}"),
        ):
            router.add_api_route(path, endpoint, methods=[method], operation_id=name, **kwargs)
        return endpoint

    return register


WRITE = [Depends(mark_write)]


# --- accounts --------------------------------------------------------------------------------


@router.post(
    "/register_Customer",
    response_model=Message,
    operation_id="legacy_register_customer",
    summary="Register a customer (original shape)",
    responses=_errors(409, 429),
)
async def register_customer(data: UserCreate, accounts: AccountsDep) -> dict[str, str]:
    await accounts.register(data, Role.customer)
    return {"Message": "Your Account has been added successfully !"}


@router.post(
    "/register_Agent",
    response_model=Message,
    operation_id="legacy_register_agent",
    summary="Apply as an agent (original shape)",
    responses=_errors(409, 429),
)
async def register_agent(data: UserCreate, accounts: AccountsDep) -> dict[str, str]:
    await accounts.register(data, Role.agent)
    return {
        "Message": "Your request has been sent successfully! You will be able to login after "
        "Admin approves your request!"
    }


class LegacyToken(BaseModel):
    token: str


def _could_not_verify() -> Response:
    return PlainTextResponse(
        "Could not verify",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="Login Required!"'},
    )


@both(
    "/login",
    documented="POST",
    response_model=LegacyToken,
    operation_id="legacy_login",
    dependencies=[Depends(mark_read)],
    summary="Log in with HTTP Basic; returns {token}",
    responses={
        401: {
            "description": "`Could not verify` (text), or a Message for an agent not approved",
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/Message"}},
            },
        },
        **_errors(429),
    },
)
async def login(
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    accounts: AccountsDep,
    codec: CodecDep,
) -> Any:
    if credentials is None:
        return _could_not_verify()
    try:
        user = await accounts.authenticate(credentials.username, credentials.password)
    except users.InvalidCredentials:
        return _could_not_verify()
    except users.AgentNotApproved:
        raise LegacyError(401, NOT_APPROVED) from None
    return JSONResponse(
        {"token": codec.issue(user_id=user.id, role=user.role.value)},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get(
    "/all_Customers",
    operation_id="legacy_all_customers",
    responses=_list_of("Customers", LegacyUser),
    summary="Every customer",
)
async def all_customers(caller: Staff, session: SessionDep) -> dict[str, Any]:
    page = await users.list_users(session, page=ALL, roles=[Role.customer], item=LegacyUser)
    return _listing("Customers", list(page.items), "No customers found!")


@router.get(
    "/all_users",
    operation_id="legacy_all_users",
    responses=_list_of("Users", LegacyUser),
    summary="Every user but the caller",
)
async def all_users(caller: Admin, session: SessionDep) -> dict[str, Any]:
    page = await users.list_users(session, page=ALL, exclude_id=caller.id, item=LegacyUser)
    return _listing("Users", list(page.items), "No users found!")


@router.get(
    "/all_agents",
    operation_id="legacy_all_agents",
    responses=_list_of("approved_agents", LegacyUser),
    summary="Approved agents",
)
async def all_agents(caller: Admin, session: SessionDep) -> dict[str, Any]:
    page = await users.list_users(
        session, page=ALL, roles=[Role.agent], statuses=[UserStatus.active], item=LegacyUser
    )
    return _listing("approved_agents", list(page.items), "No approved agents found!")


@router.get(
    "/all_Agent_applications",
    operation_id="legacy_agent_applications",
    responses=_list_of("Unapproved_agents", LegacyUser),
    summary="Agents waiting for approval",
)
async def agent_applications(caller: Admin, session: SessionDep) -> dict[str, Any]:
    page = await users.list_users(
        session, page=ALL, roles=[Role.agent], statuses=[UserStatus.pending], item=LegacyUser
    )
    return _listing("Unapproved_agents", list(page.items), "No agent applications found!")


@both(
    "/approve_agent/{agent_id}",
    documented="GET",
    response_model=Message,
    operation_id="legacy_approve_agent",
    dependencies=WRITE,
    summary="Approve an agent",
    responses=_errors(404, 409),
)
async def approve_agent(agent_id: UserId, caller: Admin, session: SessionDep) -> dict[str, str]:
    await users.approve_agent(session, agent_id=agent_id)
    return {"Message": "The agent has been successfully approved!!"}


# --- loans -----------------------------------------------------------------------------------


@router.post(
    "/new_loan",
    response_model=LoanWithData,
    operation_id="legacy_new_loan",
    summary="Apply for a loan (original shape)",
)
async def new_loan(data: LegacyLoanCreate, caller: Customer, session: SessionDep) -> dict[str, Any]:
    loan = await loans.apply(
        session,
        customer=caller,
        data=LoanCreate(
            loan_type=data.loan_type, principal=data.loan_amount, tenure_months=data.duration
        ),
    )
    return _with_data("Your Loan Application has been successfully created", loan)


@router.get(
    "/getloans",
    operation_id="legacy_get_loans",
    responses=_list_of("Loans", LegacyLoan),
    summary="Loans (a customer's own); ?status=New|Approved|Rejected|Withdrawn",
)
async def get_loans(
    caller: AnyCaller, session: SessionDep, status: str | None = None
) -> dict[str, Any]:
    wanted = _statuses(status)
    filters = loans.LoanFilters(
        any_status=wanted,
        customer_id=caller.id if caller.role is Role.customer else None,
    )
    page = await loans.list_loans(session, filters=filters, page=ALL)
    return _loans("Loans", list(page.items), "No loans found!")


def _statuses(word: str | None) -> tuple[LoanStatus, ...]:
    if word is None:
        return ()
    found = tuple(status for status, name in STATUS_WORDS.items() if name.lower() == word.lower())
    if not found:
        raise LegacyError(422, "status must be one of New, Approved, Rejected, Withdrawn")
    return found


@router.post(
    "/edit_loan/{loan_id}",
    response_model=LoanWithData,
    operation_id="legacy_edit_loan",
    summary="Change a loan's amount, duration or type",
    responses=_errors(404, 409),
)
async def edit_loan(
    loan_id: LoanId, data: LegacyLoanEdit, caller: Agent, session: SessionDep
) -> dict[str, Any]:
    loan = await loans.edit(
        session, loan_id=loan_id, actor=caller, data=data.update(), expected_version=None
    )
    return _with_data("Your Loan Application has been successfully Modified", loan)


@both(
    "/request_loan/{loan_id}",
    documented="GET",
    response_model=Message,
    operation_id="legacy_request_loan",
    dependencies=WRITE,
    summary="Forward a loan to the admin",
    responses=_errors(404, 409),
)
async def request_loan(loan_id: LoanId, caller: Agent, session: SessionDep) -> dict[str, str]:
    await loans.request(session, loan_id=loan_id, agent=caller, expected_version=None)
    return {"Message": "Request to Admin on behalf of this customer is successfully made by you."}


@router.get(
    "/loan_Requests_by_agent",
    operation_id="legacy_loan_requests_by_agent",
    responses=_list_of("Loan Requests", LegacyLoan),
    summary="The caller's requests",
)
async def loan_requests_by_agent(caller: RequestingAgent, session: SessionDep) -> dict[str, Any]:
    page = await loans.agent_requests(session, agent_id=caller.id, status=None, page=ALL)
    return _loans("Loan Requests", list(page.items), "No loan requests found!")


@router.get(
    "/Agent_loan_requests/{agent_id}",
    operation_id="legacy_agent_loan_requests",
    responses={**_list_of("Agent_loanRequests", LegacyLoan), **_errors(404)},
    summary="One agent's requests",
)
async def agent_loan_requests(
    agent_id: UserId, caller: Admin, session: SessionDep
) -> dict[str, Any]:
    page = await loans.agent_requests(session, agent_id=agent_id, status=None, page=ALL)
    return _loans("Agent_loanRequests", list(page.items), "No loan requests found for this agent!")


@router.get(
    "/view_loan_history/{loan_id}",
    operation_id="legacy_view_loan_history",
    responses={200: {"model": dict[str, list[LegacyHistoryEntry]] | Message}, **_errors(404)},
    summary="Every change of a loan (a customer: own loans only)",
)
async def view_loan_history(
    loan_id: LoanId, caller: AnyCaller, session: SessionDep
) -> dict[str, Any]:
    customer_id = caller.id if caller.role is Role.customer else None
    events = await loans.history(session, loan_id, customer_id=customer_id)
    changes = [event for event in events if event.version > 1]
    if not changes:
        return {"Message": "No changes have been done on this loan object!"}
    entries = [
        LegacyHistoryEntry(
            version=event.version,
            action=event.action.value,
            actor_id=event.actor_id,
            at=_time(event.at),
            changes=event.changes,
            loan_amount=float(event.snapshot["principal"]),
            loan_type=LOAN_TYPE_WORDS[LoanType(event.snapshot["loan_type"])],
            rate=float(event.snapshot["annual_rate"]),
            duration=int(event.snapshot["tenure_months"]),
            emi=float(event.snapshot["emi"]),
            status=STATUS_WORDS[LoanStatus(event.snapshot["status"])],
            total_payable=float(event.snapshot["total_payable"]),
            agent_id=event.snapshot["agent_id"],
        )
        for event in changes
    ]
    return _body(History=entries)  # type: ignore[arg-type]


async def _between(
    session: SessionDep, start_date: date, end_date: date, *, on: str
) -> dict[str, Any]:
    if end_date < start_date:
        raise LegacyError(422, "end_date must not be before start_date")
    try:
        start, end = day_start(start_date), day_start(end_date) + timedelta(days=1)
    except OverflowError:
        raise LegacyError(422, "end_date is past the end of the calendar") from None
    filters = (
        loans.LoanFilters(created_from=start, created_before=end)
        if on == "created"
        else loans.LoanFilters(updated_from=start, updated_before=end)
    )
    page = await loans.list_loans(session, filters=filters, page=ALL)
    key = f"Loans between {start_date.isoformat()} and {end_date.isoformat()}"
    return _loans(key, list(page.items), f"No loans found between {start_date} and {end_date}!")


@router.get(
    "/filter-by-create-date",
    operation_id="legacy_filter_by_create_date",
    responses={200: {"model": dict[str, list[LegacyLoan]] | Message}},
    summary="Loans created between two dates (whole UTC days)",
)
async def filter_by_create_date(
    caller: Filterer, session: SessionDep, start_date: date, end_date: date
) -> dict[str, Any]:
    return await _between(session, start_date, end_date, on="created")


@router.get(
    "/filter-by-update-date",
    operation_id="legacy_filter_by_update_date",
    responses={200: {"model": dict[str, list[LegacyLoan]] | Message}},
    summary="Loans last updated between two dates (whole UTC days)",
)
async def filter_by_update_date(
    caller: Filterer, session: SessionDep, start_date: date, end_date: date
) -> dict[str, Any]:
    return await _between(session, start_date, end_date, on="updated")


@both(
    "/approve_loan/{loan_id}",
    documented="GET",
    response_model=Message,
    operation_id="legacy_approve_loan",
    dependencies=WRITE,
    summary="Approve a requested loan",
    responses=_errors(404, 409),
)
async def approve_loan(loan_id: LoanId, caller: Admin, session: SessionDep) -> dict[str, str]:
    try:
        await loans.decide(
            session, loan_id=loan_id, actor=caller, action=Action.approve, expected_version=None
        )
    except LoanStateConflict as exc:
        raise LegacyError(
            409,
            f"This Loan cannot be approved: it is {exc.loan_status.value}. "
            "Only a loan requested by an agent can be approved.",
        ) from None
    return {"Message": "The Loan has been successfully approved!!"}


@both(
    "/reject_loan/{loan_id}",
    documented="GET",
    response_model=Message,
    operation_id="legacy_reject_loan",
    dependencies=WRITE,
    summary="Reject a new or requested loan",
    responses=_errors(404, 409),
)
async def reject_loan(loan_id: LoanId, caller: Admin, session: SessionDep) -> dict[str, str]:
    await loans.decide(
        session, loan_id=loan_id, actor=caller, action=Action.reject, expected_version=None
    )
    return {"Message": "The Loan has been successfully Rejected!!"}
