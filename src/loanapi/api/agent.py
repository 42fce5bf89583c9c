"""What an approved agent can see and do."""

from fastapi import APIRouter

from loanapi.api.deps import AgentUser, SessionDep
from loanapi.errors import problem_responses
from loanapi.pagination import Page, PageDep
from loanapi.users import service as users
from loanapi.users.models import Role
from loanapi.users.schemas import UserRead

router = APIRouter(prefix="/agent", tags=["agent"], responses=problem_responses(401, 403, 422))


@router.get(
    "/customers",
    response_model=Page[UserRead],
    operation_id="agent_list_customers",
    summary="All customers, newest first",
)
async def list_customers(agent: AgentUser, session: SessionDep, page: PageDep) -> Page[UserRead]:
    return await users.list_users(session, page=page, roles=[Role.customer])
