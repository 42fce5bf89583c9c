"""The admin's views and decisions."""

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query

from loanapi.api.deps import AdminUser, SessionDep, UserId
from loanapi.errors import problem_responses
from loanapi.pagination import Page, PageDep
from loanapi.users import service as users
from loanapi.users.models import Role, User, UserStatus
from loanapi.users.schemas import UserRead

router = APIRouter(prefix="/admin", tags=["admin"], responses=problem_responses(401, 403, 422))


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
    session: SessionDep,
    page: PageDep,
    role: Annotated[Role | None, Query()] = None,
    status: Annotated[UserStatus | None, Query()] = None,
) -> Page[UserRead]:
    return await users.list_users(
        session, page=page, roles=[role] if role else (), statuses=[status] if status else ()
    )


@router.get(
    "/customers",
    response_model=Page[UserRead],
    operation_id="admin_list_customers",
    summary="All customers, newest first",
)
async def list_customers(admin: AdminUser, session: SessionDep, page: PageDep) -> Page[UserRead]:
    return await users.list_users(session, page=page, roles=[Role.customer])


@router.get(
    "/agents",
    response_model=Page[UserRead],
    operation_id="admin_list_agents",
    summary="Agents, optionally by status (active = approved)",
)
async def list_agents(
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    status: Annotated[AgentStatus | None, Query()] = None,
) -> Page[UserRead]:
    statuses = [UserStatus(status.value)] if status else ()
    return await users.list_users(session, page=page, roles=[Role.agent], statuses=statuses)


@router.get(
    "/agent-applications",
    response_model=Page[UserRead],
    operation_id="admin_list_agent_applications",
    summary="Agents waiting for approval",
)
async def list_agent_applications(
    admin: AdminUser, session: SessionDep, page: PageDep
) -> Page[UserRead]:
    return await users.list_users(
        session, page=page, roles=[Role.agent], statuses=[UserStatus.pending]
    )


@router.post(
    "/agents/{agent_id}/approve",
    response_model=UserRead,
    operation_id="admin_approve_agent",
    summary="Approve an agent's application",
    responses=problem_responses(404, 409),
)
async def approve_agent(admin: AdminUser, session: SessionDep, agent_id: UserId) -> User:
    return await users.approve_agent(session, agent_id=agent_id)


@router.post(
    "/agents/{agent_id}/reject",
    response_model=UserRead,
    operation_id="admin_reject_agent",
    summary="Reject a pending agent's application",
    responses=problem_responses(404, 409),
)
async def reject_agent(admin: AdminUser, session: SessionDep, agent_id: UserId) -> User:
    return await users.reject_agent(session, agent_id=agent_id)


@router.post(
    "/users/{user_id}/disable",
    response_model=UserRead,
    operation_id="admin_disable_user",
    summary="Disable a user; their tokens stop working at once",
    responses=problem_responses(404, 409),
)
async def disable_user(admin: AdminUser, session: SessionDep, user_id: UserId) -> User:
    return await users.disable_user(session, user_id=user_id, actor=admin)


@router.post(
    "/users/{user_id}/enable",
    response_model=UserRead,
    operation_id="admin_enable_user",
    summary="Enable a disabled user again",
    responses=problem_responses(404, 409),
)
async def enable_user(admin: AdminUser, session: SessionDep, user_id: UserId) -> User:
    return await users.enable_user(session, user_id=user_id)
