"""The original Flask system's endpoints, as a thin adapter over the /api/v1 services.

Nothing here decides anything about loans or users: each endpoint maps the original request
onto one service call, and maps the result, or the service's error, onto the original's keys,
words and status codes (LEGACY.md). The rules live in the services and the state machine.
"""

from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPBasicCredentials
from starlette.responses import Response, StreamingResponse

from loanapi.api.deps import (
    CodecDep,
    LoanId,
    ReadSessionDep,
    UserId,
    WriteSessionDep,
    authenticate_user,
    register_user,
)
from loanapi.api.legacy import fields
from loanapi.api.legacy.deps import (
    Admin,
    Agent,
    AnyCaller,
    Customer,
    Filterer,
    RequestingAgent,
    Staff,
    basic,
    body_of,
    documented_body,
)
from loanapi.api.legacy.errors import LegacyError, LegacyJSON, LegacyRoute, login_refusal
from loanapi.api.legacy.schemas import (
    LegacyDatedLoan,
    LegacyHistoryEntry,
    LegacyLoan,
    LegacyLoanCreate,
    LegacyLoanEdit,
    LegacyToken,
    LegacyUser,
    LegacyUserCreate,
    LoanWithData,
    Message,
    errors,
    list_of,
)
from loanapi.clock import day_end, day_start, utcnow
from loanapi.loans import service as loans
from loanapi.loans.models import EventAction, LoanStatus
from loanapi.loans.records import LoanRecord
from loanapi.loans.schemas import IsoDate, LoanCreate, LoanUpdate
from loanapi.loans.workflow import Action, LoanStateConflict
from loanapi.users import service as users
from loanapi.users.models import Role, UserStatus

Rows = Sequence[Mapping[str, Any]]
# The original returned whole tables; a list here holds at most the oldest this many rows.
MAX_ROWS = 10_000
STREAM_FROM = 1_000  # a list of at least this many rows is encoded and sent in chunks
CHUNK = 1_000
SORTED = orjson.OPT_SORT_KEYS
# The original's default start of /filter-by-* (a missing start is unbounded here).
EARLIEST = "1985-01-17"
TERM_CHANGES = (EventAction.edited, EventAction.rolled_back)

# The key of a dated list names its range: `{"Loans between 2026-01-01 and 2026-01-31": [...]}`.
DATED_LIST: dict[int | str, dict[str, Any]] = {
    200: {
        "model": dict[str, list[LegacyDatedLoan]] | Message,  # type: ignore[valid-type]
        "description": "The list under `Loans between <start_date> and <end_date>`, "
        "or a Message when empty",
    }
}

Endpoint = Callable[..., Coroutine[Any, Any, Response]]

router = APIRouter(
    tags=["legacy"], deprecated=True, route_class=LegacyRoute, responses=errors(401, 422)
)


def both(
    path: str, *, documented: str, operation_id: str, **kwargs: Any
) -> Callable[[Endpoint], Endpoint]:
    """GET and POST on one path (the original accepted both); the second gets its own id."""
    other = "POST" if documented == "GET" else "GET"

    def register(endpoint: Endpoint) -> Endpoint:
        for method, name in (
            (documented, operation_id),
            (other, f"{operation_id}_{other.lower()}"),
        ):
            router.add_api_route(path, endpoint, methods=[method], operation_id=name, **kwargs)
        return endpoint

    return register


def message(text: str) -> Response:
    return LegacyJSON({"Message": text})


# --- lists -------------------------------------------------------------------------------------


def listing(key: str, rows: Sequence[Mapping[str, Any]], empty: str) -> Response:
    """`{key: [rows]}` with the rows as the database gave them, or the original's Message."""
    if not rows:
        return message(empty)
    plain = rows if isinstance(rows[0], dict) else [dict(row) for row in rows]
    if len(plain) < STREAM_FROM:
        return LegacyJSON({key: plain})
    return StreamingResponse(_chunks(key, plain), media_type="application/json")


async def _chunks(key: str, rows: Sequence[Any]) -> AsyncIterator[bytes]:
    """The same bytes as one orjson.dumps of `{key: rows}`, a thousand rows at a time."""
    yield b"{" + orjson.dumps(key) + b":["
    for start in range(0, len(rows), CHUNK):
        part = orjson.dumps(rows[start : start + CHUNK], option=SORTED)[1:-1]
        yield part if start == 0 else b"," + part
    yield b"]}"


async def _loans(session: ReadSessionDep, filters: loans.LoanFilters) -> Rows:
    return await loans.oldest_rows(
        session, filters=filters, columns=fields.LOAN_COLUMNS, limit=MAX_ROWS
    )


async def _users(session: ReadSessionDep, **filters: Any) -> Rows:
    return await users.oldest_rows(session, columns=fields.USER_COLUMNS, limit=MAX_ROWS, **filters)


def _with_data(text: str, loan: LoanRecord) -> Response:
    return LegacyJSON({"Message": text, "data": fields.item(fields.LOAN_DATA, loan)})


# --- accounts ----------------------------------------------------------------------------------


@router.post(
    "/register_Customer",
    response_model=Message,
    operation_id="legacy_register_customer",
    summary="Register a customer (original shape)",
    description="Kept for clients of the original service; new clients use "
    "`POST /api/v1/auth/register/customer`, whose rules apply (422 for a bad username, e-mail or "
    "password, 409 for a taken one, 429 when one address registers too often). No token needed; "
    "unknown keys in the body are ignored, and the answer is a 200 `Message`, not the account.",
    responses=errors(409, 429),
)
async def register_customer(
    data: LegacyUserCreate, request: Request, session: WriteSessionDep
) -> Response:
    await register_user(request, session, data, Role.customer)
    return message("Your Account has been added successfully !")


@router.post(
    "/register_Agent",
    response_model=Message,
    operation_id="legacy_register_agent",
    summary="Apply as an agent (original shape)",
    description="Kept for clients of the original service; new clients use "
    "`POST /api/v1/auth/register/agent`, whose rules apply (422, 409, 429). No token needed; the "
    "agent is `pending`, and `/login` refuses them until an admin approves.",
    responses=errors(409, 429),
)
async def register_agent(
    data: LegacyUserCreate, request: Request, session: WriteSessionDep
) -> Response:
    await register_user(request, session, data, Role.agent)
    return message(
        "Your request has been sent successfully! You will be able to login after "
        "Admin approves your request!"
    )


@both(
    "/login",
    documented="POST",
    response_model=LegacyToken,
    operation_id="legacy_login",
    summary="Log in with HTTP Basic; returns {token}",
    description="Kept for clients of the original service; new clients use "
    "`POST /api/v1/auth/token`. Takes `Authorization: Basic` credentials, by POST or GET, and "
    "answers the same token as /api/v1 (one hour by default), to send as `x-access-token`. Wrong "
    "or missing credentials and an agent not yet approved get a text (not JSON) 401 with a "
    "`WWW-Authenticate: Basic` challenge; repeated failures a 429 with `Retry-After`.",
    responses={
        401: {
            "description": "`Could not verify`, or that an agent is not approved yet (text)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **errors(429),
    },
)
async def login(
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    request: Request,
    session: ReadSessionDep,
    codec: CodecDep,
) -> Response:
    if credentials is None:
        return login_refusal("Could not verify")
    try:
        user = await authenticate_user(request, session, credentials.username, credentials.password)
    except users.InvalidCredentials:
        return login_refusal("Could not verify")
    except users.AgentNotApproved:
        return login_refusal("Your Application for agent is not approved by the admin.")
    return LegacyJSON(
        {"token": codec.issue(user_id=user.id, role=user.role.value)},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get(
    "/all_Customers",
    operation_id="legacy_all_customers",
    responses=list_of("Customers", LegacyUser),
    summary="Every customer, oldest first",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/agent/customers` or `GET /api/v1/admin/customers`, which paginate. Agents and "
    "admins, token in `x-access-token` (or `Authorization: Bearer`); a customer gets a 401. At "
    "most the 10,000 oldest, whatever their status.",
)
async def all_customers(caller: Staff, session: ReadSessionDep) -> Response:
    rows = await _users(session, roles=[Role.customer])
    return listing("Customers", rows, "No Customers in the system!")


@router.get(
    "/all_users",
    operation_id="legacy_all_users",
    responses=list_of("Users", LegacyUser),
    summary="Every user but the caller, oldest first",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/admin/users`. Admins only, token in `x-access-token` (or "
    "`Authorization: Bearer`); other roles get a 401. Every role and status, at most the 10,000 "
    "oldest, and no password hashes (the original sent them).",
)
async def all_users(caller: Admin, session: ReadSessionDep) -> Response:
    rows = await _users(session, exclude_id=caller.id)
    return listing("Users", rows, "No Users in the system!")


@router.get(
    "/all_agents",
    operation_id="legacy_all_agents",
    responses=list_of("approved_agents", LegacyUser),
    summary="Approved agents, oldest first",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/admin/agents?status=active`. Admins only, token in `x-access-token` (or "
    "`Authorization: Bearer`); other roles get a 401. Only `active` agents: pending, rejected and "
    "disabled ones are left out.",
)
async def all_agents(caller: Admin, session: ReadSessionDep) -> Response:
    rows = await _users(session, roles=[Role.agent], statuses=[UserStatus.active])
    return listing("approved_agents", rows, "No agents in the system!")


@router.get(
    "/all_Agent_applications",
    operation_id="legacy_agent_applications",
    responses=list_of("Unapproved_agents", LegacyUser),
    summary="Agents waiting for approval, oldest first",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/admin/agent-applications`. Admins only, token in `x-access-token` (or "
    "`Authorization: Bearer`); other roles get a 401. Only `pending` agents: rejected ones are "
    "left out.",
)
async def agent_applications(caller: Admin, session: ReadSessionDep) -> Response:
    rows = await _users(session, roles=[Role.agent], statuses=[UserStatus.pending])
    return listing("Unapproved_agents", rows, "No pending agent applications  in the system!")


@both(
    "/approve_agent/{agent_id}",
    documented="GET",
    response_model=Message,
    operation_id="legacy_approve_agent",
    summary="Approve an agent (again: a 200 saying so)",
    description="Kept for clients of the original service; new clients use "
    "`POST /api/v1/admin/agents/{agent_id}/approve`. Admins only, by GET or POST, token in "
    "`x-access-token` (or `Authorization: Bearer`). A `pending` or `rejected` agent becomes "
    "`active`; a disabled one is a 409, and an id that is no agent's a 404.",
    responses=errors(404, 409),
)
async def approve_agent(agent_id: UserId, caller: Admin, session: WriteSessionDep) -> Response:
    try:
        await users.approve_agent(session, agent_id=agent_id, actor=caller)
    except users.AccountStateConflict as exc:
        if exc.account_status is not UserStatus.active:
            raise
        return message("The agent has already been approved by the admin!")
    return message("The agent has been successfully approved!!")


# --- loans -------------------------------------------------------------------------------------


@router.post(
    "/new_loan",
    response_model=LoanWithData,
    operation_id="legacy_new_loan",
    summary="Apply for a loan (original shape)",
    description="Kept for clients of the original service; new clients use "
    "`POST /api/v1/customer/loans`. Customers only, token in `x-access-token` (or "
    "`Authorization: Bearer`); other roles get a 401. The product's bounds and current rate apply "
    "as in /api/v1; no body is the original's 401 `Data should be passed for loan`.",
    openapi_extra=documented_body(LegacyLoanCreate),
)
async def new_loan(
    caller: Customer,
    session: WriteSessionDep,
    data: Annotated[LegacyLoanCreate | None, Depends(body_of(LegacyLoanCreate))],
) -> Response:
    if data is None:
        raise LegacyError(401, "Data should be passed for loan", key="message")
    loan = await loans.apply(
        session,
        customer=caller,
        data=LoanCreate(
            loan_type=data.loan_type, principal=data.loan_amount, tenure_months=data.duration
        ),
    )
    return _with_data("Your Loan Application has been successfully created", loan)


def _statuses(word: str | None) -> tuple[str, tuple[LoanStatus, ...]]:
    """The original's status word (case aside) and the statuses it stands for; none is all."""
    if word is None or word.lower() == "all":
        return "all", ()
    for name in fields.STATE_NUMBERS:
        if name.lower() == word.lower():
            found = tuple(s for s, w in fields.STATUS_WORDS.items() if w == name)
            return name, found
    raise LegacyError(422, "status must be one of New, Approved, Rejected, Withdrawn")


@router.get(
    "/getloans",
    operation_id="legacy_get_loans",
    responses=list_of("Loans", LegacyLoan),
    summary="Loans, oldest first (a customer's own); ?status=New|Approved|Rejected|Withdrawn",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/customer/loans`, `GET /api/v1/agent/loans` or `GET /api/v1/admin/loans`. Any "
    "role, token in `x-access-token` (or `Authorization: Bearer`). `New` covers `new` and "
    "`requested` loans, `Approved` also disbursed, closed and written-off ones; no `status` (or "
    "`all`) lists every loan, at most the 10,000 oldest.",
)
async def get_loans(
    caller: AnyCaller,
    session: ReadSessionDep,
    status: Annotated[
        str | None,
        Query(
            description="`New`, `Approved`, `Rejected`, `Withdrawn` or `all` (default), any case"
        ),
    ] = None,
) -> Response:
    word, statuses = _statuses(status)
    customer_id = caller.id if caller.role is Role.customer else None
    rows = await _loans(session, loans.LoanFilters(statuses=statuses, customer_id=customer_id))
    return listing("Loans", rows, f"No {word} Loans found !")


@router.post(
    "/edit_loan/{loan_id}",
    response_model=LoanWithData,
    operation_id="legacy_edit_loan",
    summary="Change a loan's amount, duration or type",
    description="Kept for clients of the original service; new clients use "
    "`PATCH /api/v1/agent/loans/{loan_id}`. Agents only, token in `x-access-token` (or "
    "`Authorization: Bearer`). The /api/v1 rules apply: a new `loan_type` re-prices the loan, a "
    "rejected loan goes back to `new`, an approved or withdrawn one (or one another agent "
    "requested) is a 409; no body is the original's 401 "
    "`Loan appllication data should be passed for loan`.",
    responses=errors(404, 409),
    openapi_extra=documented_body(LegacyLoanEdit),
)
async def edit_loan(
    loan_id: LoanId,
    caller: Agent,
    session: WriteSessionDep,
    data: Annotated[LegacyLoanEdit | None, Depends(body_of(LegacyLoanEdit))],
) -> Response:
    # No body: the loan's own refusals first (404, 409), through an edit that changes nothing.
    update = data.update() if data is not None else LoanUpdate()
    loan = await loans.edit(
        session, loan_id=loan_id, actor=caller, data=update, expected_version=None
    )
    if data is None:
        raise LegacyError(401, "Loan appllication data should be passed for loan", key="message")
    return _with_data("Your Loan Application has been successfully Modified", loan)


@both(
    "/request_loan/{loan_id}",
    documented="GET",
    response_model=Message,
    operation_id="legacy_request_loan",
    summary="Forward a loan to the admin",
    description="Kept for clients of the original service; new clients use "
    "`POST /api/v1/agent/loans/{loan_id}/request`. Agents only, by GET or POST, token in "
    "`x-access-token` (or `Authorization: Bearer`). A `new` loan becomes `requested` with the "
    "caller as its agent; asking again is a 200, while a loan another agent requested, or one in "
    "any other status, is a 409.",
    responses=errors(404, 409),
)
async def request_loan(loan_id: LoanId, caller: Agent, session: WriteSessionDep) -> Response:
    await loans.request(session, loan_id=loan_id, agent=caller, expected_version=None)
    return message("Request to Admin on behalf of this customer is successfully made by you.")


@router.get(
    "/loan_Requests_by_agent",
    operation_id="legacy_loan_requests_by_agent",
    responses=list_of("Loan Requests", LegacyLoan),
    summary="The caller's requests, oldest first",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/agent/requests`. Agents only, token in `x-access-token` (or "
    "`Authorization: Bearer`); other roles get a 401 `Not Authorized to view this page`. Every "
    "loan with the caller as its agent, whatever its status now, at most the 10,000 oldest.",
)
async def loan_requests_by_agent(caller: RequestingAgent, session: ReadSessionDep) -> Response:
    rows = await _loans(session, loans.LoanFilters(agent_id=caller.id))
    return listing("Loan Requests", rows, "No requests found !")


@router.get(
    "/Agent_loan_requests/{agent_id}",
    operation_id="legacy_agent_loan_requests",
    responses={**list_of("Agent_loanRequests", LegacyLoan), **errors(404)},
    summary="One agent's requests, oldest first",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/admin/agents/{agent_id}/loan-requests`. Admins only, token in `x-access-token` "
    "(or `Authorization: Bearer`); other roles get a 401. An id that is no agent's is a 404; at "
    "most the 10,000 oldest loans are listed.",
)
async def agent_loan_requests(agent_id: UserId, caller: Admin, session: ReadSessionDep) -> Response:
    await loans.require_agent(session, agent_id)
    rows = await _loans(session, loans.LoanFilters(agent_id=agent_id))
    return listing(
        "Agent_loanRequests",
        rows,
        "No request for Loans from this particular agent found found !",
    )


@router.get(
    "/view_loan_history/{loan_id}",
    operation_id="legacy_view_loan_history",
    responses={**list_of("History", LegacyHistoryEntry), **errors(404)},
    summary="Each change of a loan's terms, with the loan as it was before it",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/customer/loans/{loan_id}/history` (or the agent's and admin's equivalents). Any "
    "role, token in `x-access-token` (or `Authorization: Bearer`); a customer asking for another "
    "customer's loan gets a 404. Only edits and rollbacks count as changes: the loan's request, "
    "approval and other status changes are not listed.",
)
async def view_loan_history(
    loan_id: LoanId, caller: AnyCaller, session: ReadSessionDep
) -> Response:
    customer_id = caller.id if caller.role is Role.customer else None
    events = await loans.history(session, loan_id, customer_id=customer_id)
    before = {event.version + 1: event.snapshot for event in events}
    entries = [
        {
            "id": event.id,
            **fields.item(fields.HISTORY, before[event.version]),
            "Origina Loan ID": loan_id,
            "Created At": fields.time_text(event.at),
        }
        for event in events
        if event.action in TERM_CHANGES
    ]
    if not entries:
        return message("No changes have been done on this loan object!")
    return LegacyJSON({"History": entries})


FROM_DAY = "YYYY-MM-DD, inclusive; none: from the first loan"
TO_DAY = "YYYY-MM-DD, inclusive; none: to today"


async def _between(
    session: ReadSessionDep, start: date | None, end: date | None, *, on: str
) -> Response:
    if start is not None and end is not None and end < start:
        raise LegacyError(422, "end_date must not be before start_date")
    try:
        lower = day_start(start) if start else None
        upper = day_end(end) if end else None
    except OverflowError:
        raise LegacyError(422, "end_date is past the end of the calendar") from None
    filters = (
        loans.LoanFilters(created_from=lower, created_before=upper)
        if on == "created"
        else loans.LoanFilters(updated_from=lower, updated_before=upper)
    )
    rows = await loans.oldest_rows(
        session, filters=filters, columns=fields.DATED_LOAN_COLUMNS, limit=MAX_ROWS
    )
    key = f"Loans between {start or EARLIEST} and {end or utcnow().date()}"
    return listing(key, rows, "No records found for the give range!")


@router.get(
    "/filter-by-create-date",
    operation_id="legacy_filter_by_create_date",
    responses=DATED_LIST,
    summary="Loans created between two dates (whole UTC days), oldest first",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/agent/loans` or `GET /api/v1/admin/loans` with `created_from` and `created_to`. "
    "Agents and admins, token in `x-access-token` (or `Authorization: Bearer`); a customer gets a "
    "401. `start_date` or `end_date` (`YYYY-MM-DD`) may be left out for no bound on that side, and "
    "an `end_date` before `start_date` is a 422; at most the 10,000 oldest loans are listed.",
)
async def filter_by_create_date(
    caller: Filterer,
    session: ReadSessionDep,
    start_date: Annotated[IsoDate | None, Query(description=FROM_DAY)] = None,
    end_date: Annotated[IsoDate | None, Query(description=TO_DAY)] = None,
) -> Response:
    return await _between(session, start_date, end_date, on="created")


@router.get(
    "/filter-by-update-date",
    operation_id="legacy_filter_by_update_date",
    responses=DATED_LIST,
    summary="Loans last updated between two dates (whole UTC days), oldest first",
    description="Kept for clients of the original service; new clients use "
    "`GET /api/v1/agent/loans` or `GET /api/v1/admin/loans` with `updated_from` and `updated_to`. "
    "Agents and admins, token in `x-access-token` (or `Authorization: Bearer`); a customer gets a "
    "401. `start_date` or `end_date` (`YYYY-MM-DD`) may be left out for no bound on that side, and "
    "an `end_date` before `start_date` is a 422; at most the 10,000 oldest loans are listed.",
)
async def filter_by_update_date(
    caller: Filterer,
    session: ReadSessionDep,
    start_date: Annotated[IsoDate | None, Query(description=FROM_DAY)] = None,
    end_date: Annotated[IsoDate | None, Query(description=TO_DAY)] = None,
) -> Response:
    return await _between(session, start_date, end_date, on="updated")


@both(
    "/approve_loan/{loan_id}",
    documented="GET",
    response_model=Message,
    operation_id="legacy_approve_loan",
    summary="Approve a requested loan",
    description="Kept for clients of the original service; new clients use "
    "`POST /api/v1/admin/loans/{loan_id}/approve`. Admins only, by GET or POST, token in "
    "`x-access-token` (or `Authorization: Bearer`). A loan in any other status than `requested` is "
    "a 409 whose message names its status.",
    responses=errors(404, 409),
)
async def approve_loan(loan_id: LoanId, caller: Admin, session: WriteSessionDep) -> Response:
    await loans.decide(
        session, loan_id=loan_id, actor=caller, action=Action.approve, expected_version=None
    )
    return message("The Loan has been successfully approved!!")


@both(
    "/reject_loan/{loan_id}",
    documented="GET",
    response_model=Message,
    operation_id="legacy_reject_loan",
    summary="Reject a new or requested loan (again: the same answer)",
    description="Kept for clients of the original service; new clients use "
    "`POST /api/v1/admin/loans/{loan_id}/reject`, which also takes a `reason`. Admins only, by GET "
    "or POST, token in `x-access-token` (or `Authorization: Bearer`). A loan in any status other "
    "than `new`, `requested` or `rejected` is a 409.",
    responses=errors(404, 409),
)
async def reject_loan(loan_id: LoanId, caller: Admin, session: WriteSessionDep) -> Response:
    try:
        await loans.decide(
            session, loan_id=loan_id, actor=caller, action=Action.reject, expected_version=None
        )
    except LoanStateConflict as exc:
        if exc.loan_status is not LoanStatus.rejected:
            raise
    return message("The Loan has been successfully Rejected!!")
