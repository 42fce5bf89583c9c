"""A customer's own loans: every lookup is filtered by the caller, so others' loans are 404s."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from loanapi.api.common import (
    history_response,
    loan_page,
    loan_response,
    payoff_response,
    statement_response,
)
from loanapi.api.deps import (
    V1,
    CustomerUser,
    IfMatch,
    LoanId,
    PageDep,
    ReadSessionDep,
    StatusText,
    WriteSessionDep,
    statuses_of,
)
from loanapi.api.idempotency import IdempotentRoute
from loanapi.api.servicing import PAYOFF, STATEMENT, OnDate
from loanapi.errors import problem_responses
from loanapi.loans import service as loans
from loanapi.loans import servicing
from loanapi.loans.schemas import LoanCreate, LoanHistory, LoanRead, PayoffRead, ScheduleRead
from loanapi.loans.workflow import Action
from loanapi.pagination import Page

router = APIRouter(
    route_class=IdempotentRoute,
    prefix=f"{V1}/customer",
    tags=["customer"],
    responses=problem_responses(401, 403, 422),
)


@router.post(
    "/loans",
    status_code=201,
    response_model=LoanRead,
    operation_id="customer_apply_loan",
    summary="Apply for a loan; the product's current rate prices it",
    description="The loan starts `new`, with no agent (`agent_id` null) and a `created` event "
    "in its history. `principal` and `tenure_months` must lie within the product's bounds "
    "(`GET /api/v1/loan-products`), else 422. A repeat with the same `Idempotency-Key` and "
    "body returns the first response; the same key with another body is a 409.",
    responses=problem_responses(409),
)
async def apply_loan(
    data: LoanCreate,
    customer: CustomerUser,
    session: WriteSessionDep,
) -> Response:
    loan = await loans.apply(session, customer=customer, data=data)
    return loan_response(loan, 201, location=f"{V1}/customer/loans/{loan.id}")


@router.get(
    "/loans",
    response_model=Page[LoanRead],
    operation_id="customer_list_loans",
    summary="The caller's own loans, newest first",
    description="`status` takes one status or several separated by commas. Cursor pagination: "
    "`limit` (1 to 200, default 50), and `cursor` set to the previous page's `next_cursor` "
    "with the same filters; `next_cursor` is null on the last page.",
)
async def list_loans(
    customer: CustomerUser,
    session: ReadSessionDep,
    page: PageDep,
    status: Annotated[StatusText, Query()] = None,
) -> Response:
    filters = loans.LoanFilters(customer_id=customer.id, statuses=statuses_of(status))
    return loan_page(await loans.list_loans(session, filters=filters, page=page), page)


@router.get(
    "/loans/{loan_id}",
    response_model=LoanRead,
    operation_id="customer_get_loan",
    summary="One of the caller's loans",
    description="Another customer's loan is a 404, the same as an id that does not exist. "
    "The `ETag` header is the loan's `version`: send it as `If-Match` when withdrawing.",
    responses=problem_responses(404),
)
async def get_loan(loan_id: LoanId, customer: CustomerUser, session: ReadSessionDep) -> Response:
    return loan_response(await loans.get_loan(session, loan_id, customer_id=customer.id))


@router.get(
    "/loans/{loan_id}/history",
    response_model=LoanHistory,
    operation_id="customer_loan_history",
    summary="Every change of one of the caller's loans, oldest first",
    description="The whole history in one response, not paginated: each event's `action`, who "
    "acted, the fields it changed (`from` and `to`) and a `snapshot` of the loan after it. "
    "Another customer's loan is a 404.",
    responses=problem_responses(404),
)
async def loan_history(
    loan_id: LoanId, customer: CustomerUser, session: ReadSessionDep
) -> LoanHistory:
    return history_response(await loans.history(session, loan_id, customer_id=customer.id))


@router.post(
    "/loans/{loan_id}/withdraw",
    response_model=LoanRead,
    operation_id="customer_withdraw_loan",
    summary="Withdraw an application that is new or requested",
    description="The loan becomes `withdrawn`, which is final, and a `withdrawn` event is "
    "written; in any other status it is a 409. With `If-Match` set to the loan's `ETag`, a "
    "loan that has changed since is a 412. Another customer's loan is a 404.",
    responses=problem_responses(404, 409, 412),
)
async def withdraw_loan(
    loan_id: LoanId,
    customer: CustomerUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    loan = await loans.decide(
        session,
        loan_id=loan_id,
        actor=customer,
        action=Action.withdraw,
        expected_version=expected_version,
        customer_id=customer.id,
    )
    return loan_response(loan)


@router.get(
    "/loans/{loan_id}/schedule",
    response_model=ScheduleRead,
    operation_id="customer_loan_schedule",
    summary="The repayment schedule of one of the caller's loans",
    description="Computed from the loan's current `principal`, `annual_rate` and "
    "`tenure_months`, in any status: installments by number, without due dates or "
    "repayments (the `statement` has those). The last row pays off the remaining balance, "
    "which ends at exactly `0.00`. Another customer's loan is a 404.",
    responses=problem_responses(404),
)
async def loan_schedule(
    loan_id: LoanId, customer: CustomerUser, session: ReadSessionDep
) -> ScheduleRead:
    plan = await loans.schedule(session, loan_id, customer_id=customer.id)
    return ScheduleRead.model_validate(plan, from_attributes=True)


@router.get("/loans/{loan_id}/payoff", operation_id="customer_loan_payoff", **PAYOFF)
async def loan_payoff(
    loan_id: LoanId, customer: CustomerUser, session: ReadSessionDep, on: OnDate = None
) -> PayoffRead:
    quote = await servicing.payoff(session, loan_id=loan_id, on=on, customer_id=customer.id)
    return payoff_response(quote)


@router.get("/loans/{loan_id}/statement", operation_id="customer_loan_statement", **STATEMENT)
async def loan_statement(
    loan_id: LoanId, customer: CustomerUser, session: ReadSessionDep, on: OnDate = None
) -> Response:
    found = await servicing.statement(session, loan_id=loan_id, on=on, customer_id=customer.id)
    return statement_response(found)
