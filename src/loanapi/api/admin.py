"""The admin's views and decisions."""

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response

from loanapi.api.common import (
    history_response,
    loan_page,
    loan_response,
    user_page,
    user_response,
)
from loanapi.api.deps import (
    V1,
    AdminUser,
    IfMatch,
    LoanId,
    LoanListDep,
    PageDep,
    ReadSessionDep,
    UserId,
    WriteSessionDep,
)
from loanapi.api.idempotency import IdempotentRoute
from loanapi.errors import problem_responses
from loanapi.loans import service as loans
from loanapi.loans.models import LoanStatus, LoanType
from loanapi.loans.schemas import (
    LoanHistory,
    LoanProductRead,
    LoanProductUpdate,
    LoanRead,
    LoanReject,
)
from loanapi.loans.workflow import Action
from loanapi.pagination import Page
from loanapi.users import service as users
from loanapi.users.models import Role, UserStatus
from loanapi.users.schemas import UserRead

router = APIRouter(
    route_class=IdempotentRoute,
    prefix=f"{V1}/admin",
    tags=["admin"],
    responses=problem_responses(401, 403, 422),
)


class AgentStatus(StrEnum):
    active = "active"
    pending = "pending"
    rejected = "rejected"


@router.get(
    "/users",
    response_model=Page[UserRead],
    operation_id="admin_list_users",
    summary="All users, newest first",
)
async def list_users(
    admin: AdminUser,
    session: ReadSessionDep,
    page: PageDep,
    role: Annotated[Role | None, Query()] = None,
    status: Annotated[UserStatus | None, Query()] = None,
) -> Response:
    found = await users.list_users(
        session, page=page, roles=[role] if role else (), statuses=[status] if status else ()
    )
    return user_page(found, page)


@router.get(
    "/customers",
    response_model=Page[UserRead],
    operation_id="admin_list_customers",
    summary="All customers, newest first",
)
async def list_customers(admin: AdminUser, session: ReadSessionDep, page: PageDep) -> Response:
    return user_page(await users.list_users(session, page=page, roles=[Role.customer]), page)


@router.get(
    "/agents",
    response_model=Page[UserRead],
    operation_id="admin_list_agents",
    summary="Agents, optionally by status (active = approved)",
)
async def list_agents(
    admin: AdminUser,
    session: ReadSessionDep,
    page: PageDep,
    status: Annotated[AgentStatus | None, Query()] = None,
) -> Response:
    statuses = [UserStatus(status.value)] if status else ()
    found = await users.list_users(session, page=page, roles=[Role.agent], statuses=statuses)
    return user_page(found, page)


@router.get(
    "/agent-applications",
    response_model=Page[UserRead],
    operation_id="admin_list_agent_applications",
    summary="Agents waiting for approval",
)
async def list_agent_applications(
    admin: AdminUser, session: ReadSessionDep, page: PageDep
) -> Response:
    return user_page(
        await users.list_users(
            session, page=page, roles=[Role.agent], statuses=[UserStatus.pending]
        ),
        page,
    )


@router.post(
    "/agents/{agent_id}/approve",
    response_model=UserRead,
    operation_id="admin_approve_agent",
    summary="Approve an agent's application",
    responses=problem_responses(404, 409),
)
async def approve_agent(admin: AdminUser, session: WriteSessionDep, agent_id: UserId) -> Response:
    return user_response(await users.approve_agent(session, agent_id=agent_id))


@router.post(
    "/agents/{agent_id}/reject",
    response_model=UserRead,
    operation_id="admin_reject_agent",
    summary="Reject a pending agent's application",
    responses=problem_responses(404, 409),
)
async def reject_agent(admin: AdminUser, session: WriteSessionDep, agent_id: UserId) -> Response:
    return user_response(await users.reject_agent(session, agent_id=agent_id))


@router.post(
    "/users/{user_id}/disable",
    response_model=UserRead,
    operation_id="admin_disable_user",
    summary="Disable a user; their tokens stop working at once",
    responses=problem_responses(404, 409),
)
async def disable_user(admin: AdminUser, session: WriteSessionDep, user_id: UserId) -> Response:
    return user_response(await users.disable_user(session, user_id=user_id, actor=admin))


@router.post(
    "/users/{user_id}/enable",
    response_model=UserRead,
    operation_id="admin_enable_user",
    summary="Enable a disabled user again",
    responses=problem_responses(404, 409),
)
async def enable_user(admin: AdminUser, session: WriteSessionDep, user_id: UserId) -> Response:
    return user_response(await users.enable_user(session, user_id=user_id))


@router.get(
    "/agents/{agent_id}/loan-requests",
    response_model=Page[LoanRead],
    operation_id="admin_agent_loan_requests",
    summary="Loans one agent has requested, newest first",
    responses=problem_responses(404),
)
async def agent_loan_requests(
    admin: AdminUser,
    session: ReadSessionDep,
    page: PageDep,
    agent_id: UserId,
    status: Annotated[LoanStatus | None, Query()] = None,
) -> Response:
    found = await loans.agent_requests(session, agent_id=agent_id, status=status, page=page)
    return loan_page(found, page)


@router.get(
    "/loans",
    response_model=Page[LoanRead],
    operation_id="admin_list_loans",
    summary="All loans, filtered, newest first",
)
async def list_loans(admin: AdminUser, session: ReadSessionDep, query: LoanListDep) -> Response:
    found = await loans.list_loans(session, filters=query.filters, page=query.page)
    return loan_page(found, query.page)


@router.get(
    "/loans/{loan_id}",
    response_model=LoanRead,
    operation_id="admin_get_loan",
    summary="One loan",
    responses=problem_responses(404),
)
async def get_loan(loan_id: LoanId, admin: AdminUser, session: ReadSessionDep) -> Response:
    return loan_response(await loans.get_loan(session, loan_id))


@router.get(
    "/loans/{loan_id}/history",
    response_model=LoanHistory,
    operation_id="admin_loan_history",
    summary="Every change of a loan, oldest first",
    responses=problem_responses(404),
)
async def loan_history(loan_id: LoanId, admin: AdminUser, session: ReadSessionDep) -> LoanHistory:
    return history_response(await loans.history(session, loan_id))


@router.post(
    "/loans/{loan_id}/approve",
    response_model=LoanRead,
    operation_id="admin_approve_loan",
    summary="Approve a requested loan (final)",
    responses=problem_responses(404, 409, 412),
)
async def approve_loan(
    loan_id: LoanId,
    admin: AdminUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    loan = await loans.decide(
        session,
        loan_id=loan_id,
        actor=admin,
        action=Action.approve,
        expected_version=expected_version,
    )
    return loan_response(loan)


@router.post(
    "/loans/{loan_id}/reject",
    response_model=LoanRead,
    operation_id="admin_reject_loan",
    summary="Reject a new or requested loan",
    responses=problem_responses(404, 409, 412),
)
async def reject_loan(
    loan_id: LoanId,
    admin: AdminUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
    data: LoanReject | None = None,
) -> Response:
    loan = await loans.decide(
        session,
        loan_id=loan_id,
        actor=admin,
        action=Action.reject,
        expected_version=expected_version,
        reason=data.reason if data else None,
    )
    return loan_response(loan)


@router.put(
    "/loan-products/{loan_type}",
    response_model=LoanProductRead,
    operation_id="admin_update_loan_product",
    summary="Set a product's rate and bounds; applies to loans priced afterwards",
)
async def update_product(
    loan_type: LoanType, data: LoanProductUpdate, admin: AdminUser, session: WriteSessionDep
) -> LoanProductRead:
    product = await loans.update_product(session, loan_type=loan_type, data=data)
    return LoanProductRead.model_validate(product)
