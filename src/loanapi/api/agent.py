"""What an approved agent can see and do."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from loanapi.api.common import (
    history_response,
    loan_page,
    loan_response,
    payoff_response,
    repayment_response,
    statement_response,
    user_page,
)
from loanapi.api.deps import (
    V1,
    AgentUser,
    IfMatch,
    LoanId,
    LoanListDep,
    PageDep,
    ReadSessionDep,
    RepaymentId,
    StatusText,
    WriteSessionDep,
    statuses_of,
)
from loanapi.api.idempotency import IdempotentRoute
from loanapi.api.servicing import PAYOFF, REPAY, REPAYMENT, STATEMENT, OnDate
from loanapi.errors import problem_responses
from loanapi.loans import service as loans
from loanapi.loans import servicing
from loanapi.loans.schemas import (
    AgentLoanCreate,
    LoanHistory,
    LoanRead,
    LoanRollback,
    LoanUpdate,
    PayoffRead,
    RepaymentCreate,
)
from loanapi.pagination import Page
from loanapi.users import service as users
from loanapi.users.models import Role
from loanapi.users.schemas import UserRead

router = APIRouter(
    route_class=IdempotentRoute,
    prefix=f"{V1}/agent",
    tags=["agent"],
    responses=problem_responses(401, 403, 422),
)


@router.get(
    "/customers",
    response_model=Page[UserRead],
    operation_id="agent_list_customers",
    summary="All customers, newest first",
    description="Customer accounts whatever their `status`, `disabled` ones included; an "
    "`id` here is the `customer_id` for opening a walk-in customer's application. Cursor "
    "pagination: `limit` (1 to 200, default 50) and `cursor` (the previous `next_cursor`).",
)
async def list_customers(agent: AgentUser, session: ReadSessionDep, page: PageDep) -> Response:
    return user_page(await users.list_users(session, page=page, roles=[Role.customer]), page)


@router.post(
    "/loans",
    status_code=201,
    response_model=LoanRead,
    operation_id="agent_open_loan",
    summary="Open an application on a walk-in customer's behalf",
    description="As if the customer had applied (`new`, priced at the product's current rate), "
    "except that the `created` event is the agent's. The agent works it on as any other loan.",
    responses=problem_responses(
        404, notes={409: "The customer's account is not active, or a reused Idempotency-Key"}
    ),
)
async def open_loan(data: AgentLoanCreate, agent: AgentUser, session: WriteSessionDep) -> Response:
    loan = await loans.apply_for(session, customer_id=data.customer_id, data=data, agent=agent)
    return loan_response(loan, 201, location=f"{V1}/agent/loans/{loan.id}")


@router.get(
    "/loans",
    response_model=Page[LoanRead],
    operation_id="agent_list_loans",
    summary="All loans, filtered, newest first",
    description="Every customer's loans. Filters combine with AND: `status` (one, or several "
    "separated by commas), `loan_type`, `customer_id`, `q` (a prefix of the customer's "
    "username or e-mail), `created_from`/`created_to` and `updated_from`/`updated_to` (a "
    "date is the whole UTC day), `dpd_min`/`dpd_max` and `bucket` (as stored at the last "
    "close of business or change). Cursor pagination with `limit` and `cursor`; a cursor "
    "works only with the filters of the page that gave it.",
)
async def list_loans(agent: AgentUser, session: ReadSessionDep, query: LoanListDep) -> Response:
    found = await loans.list_loans(session, filters=query.filters, page=query.page)
    return loan_page(found, query.page)


@router.get(
    "/loans/{loan_id}",
    response_model=LoanRead,
    operation_id="agent_get_loan",
    summary="One loan",
    description="Any customer's loan. The `ETag` header is the loan's `version`: send it as "
    "`If-Match` with a change, so that a loan changed since is refused with 412.",
    responses=problem_responses(404),
)
async def get_loan(loan_id: LoanId, agent: AgentUser, session: ReadSessionDep) -> Response:
    return loan_response(await loans.get_loan(session, loan_id))


@router.patch(
    "/loans/{loan_id}",
    response_model=LoanRead,
    operation_id="agent_edit_loan",
    summary="Change a loan's terms (new, requested or rejected loans); re-prices it",
    description="Only the fields sent change. The loan keeps its rate unless `loan_type` "
    "changes (then that product's current rate), and the terms must fit the product's bounds "
    "(422). A `rejected` loan returns to `new`; a `requested` one stays `requested`, and "
    "only the agent who requested it may edit it (409). An `edited` event is written, or "
    "nothing when no term changes; a stale `If-Match` is a 412.",
    responses=problem_responses(404, 409, 412),
)
async def edit_loan(
    loan_id: LoanId,
    data: LoanUpdate,
    agent: AgentUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    loan = await loans.edit(
        session, loan_id=loan_id, actor=agent, data=data, expected_version=expected_version
    )
    return loan_response(loan)


@router.post(
    "/loans/{loan_id}/request",
    response_model=LoanRead,
    operation_id="agent_request_loan",
    summary="Forward a new loan to the admin on the customer's behalf",
    description="A `new` loan becomes `requested` with the caller as its agent (`agent_id`), "
    "and a `requested` event is written. Asking again while the caller's request stands is a "
    "200 that changes nothing; a loan another agent requested, or in any other status, is a "
    "409. A stale `If-Match` is a 412.",
    responses=problem_responses(404, 409, 412),
)
async def request_loan(
    loan_id: LoanId,
    agent: AgentUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    loan = await loans.request(
        session, loan_id=loan_id, agent=agent, expected_version=expected_version
    )
    return loan_response(loan)


@router.post(
    "/loans/{loan_id}/rollback",
    response_model=LoanRead,
    operation_id="agent_rollback_loan",
    summary="Restore an earlier version's terms as a new version",
    description="Restores `loan_type`, `principal`, `tenure_months` and the `annual_rate` of "
    "`version` (earlier than the current one, else 422) and recomputes the amounts; the "
    "status stays. A `rolled_back` event with `restored_version` is written, or nothing when "
    "the terms are already those. Allowed while the loan is `new`, `rejected` or `requested` "
    "(then only by the agent who requested it), else 409; a stale `If-Match` is a 412.",
    responses=problem_responses(404, 409, 412),
)
async def rollback_loan(
    loan_id: LoanId,
    data: LoanRollback,
    agent: AgentUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    loan = await loans.rollback(
        session,
        loan_id=loan_id,
        actor=agent,
        version=data.version,
        expected_version=expected_version,
    )
    return loan_response(loan)


@router.get(
    "/loans/{loan_id}/history",
    response_model=LoanHistory,
    operation_id="agent_loan_history",
    summary="Every change of a loan, oldest first",
    description="Any customer's loan; the whole history in one response, not paginated. Each "
    "event has its `action`, who acted (`actor_id`, `actor_username`, `actor_role`), the "
    "fields it changed (`from` and `to`) and a `snapshot` of the loan after it.",
    responses=problem_responses(404),
)
async def loan_history(loan_id: LoanId, agent: AgentUser, session: ReadSessionDep) -> LoanHistory:
    return history_response(await loans.history(session, loan_id))


@router.get(
    "/requests",
    response_model=Page[LoanRead],
    operation_id="agent_list_requests",
    summary="Loans the caller has requested, newest first",
    description="Loans whose `agent_id` is the caller, whatever their status since; `status` "
    "takes one status or several separated by commas. Cursor pagination: `limit` (1 to 200, "
    "default 50) and `cursor` (the previous `next_cursor`).",
)
async def list_requests(
    agent: AgentUser,
    session: ReadSessionDep,
    page: PageDep,
    status: Annotated[StatusText, Query()] = None,
) -> Response:
    statuses = statuses_of(status)
    found = await loans.agent_requests(session, agent_id=agent.id, statuses=statuses, page=page)
    return loan_page(found, page)


@router.post("/loans/{loan_id}/repayments", operation_id="agent_repay_loan", **REPAY)
async def repay_loan(
    loan_id: LoanId,
    data: RepaymentCreate,
    agent: AgentUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    repayment = await servicing.repay(
        session, loan_id=loan_id, actor=agent, data=data, expected_version=expected_version
    )
    where = f"{V1}/agent/loans/{loan_id}/repayments/{repayment.id}"
    return repayment_response(repayment, 201, location=where)


@router.get(
    "/loans/{loan_id}/repayments/{repayment_id}",
    operation_id="agent_get_repayment",
    **REPAYMENT,
)
async def get_repayment(
    loan_id: LoanId, repayment_id: RepaymentId, agent: AgentUser, session: ReadSessionDep
) -> Response:
    found = await servicing.get_repayment(session, loan_id=loan_id, repayment_id=repayment_id)
    return repayment_response(found)


@router.get("/loans/{loan_id}/payoff", operation_id="agent_loan_payoff", **PAYOFF)
async def loan_payoff(
    loan_id: LoanId, agent: AgentUser, session: ReadSessionDep, on: OnDate = None
) -> PayoffRead:
    return payoff_response(await servicing.payoff(session, loan_id=loan_id, on=on))


@router.get("/loans/{loan_id}/statement", operation_id="agent_loan_statement", **STATEMENT)
async def loan_statement(
    loan_id: LoanId, agent: AgentUser, session: ReadSessionDep, on: OnDate = None
) -> Response:
    return statement_response(await servicing.statement(session, loan_id=loan_id, on=on))
