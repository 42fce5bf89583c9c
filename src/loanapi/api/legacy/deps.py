"""Who calls: the original's token header, and its refusals of a role (401 with its words)."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBasic

from loanapi.api.deps import ReadSessionDep, bearer, current_user
from loanapi.api.legacy.errors import LegacyError
from loanapi.users.models import Role
from loanapi.users.records import Caller

UNAUTHORISED = "Unauthorised Access"
NOT_AUTHORIZED_VIEW = "Not Authorized to view this page"
NOT_AUTHORISED_FILTER = "You are not authorised to view this page!"
ADMIN_ONLY = "You are not authorized to open this page"

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
    session: ReadSessionDep,
    header_token: Annotated[str | None, Depends(access_token)],
    bearer_token: Annotated[str | None, Depends(bearer)],
) -> Caller:
    """v1's caller, with the original's header and its words for a missing token."""
    token = header_token or bearer_token
    if not token:
        raise LegacyError(401, "Token is missing!", key="message")
    return await current_user(request, session, token)


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
