"""Who calls: the original's token header, and its refusals of a role (401 with its words)."""

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from loanapi.api.deps import Basic, ReadSessionDep, bearer, current_user
from loanapi.api.legacy.errors import LegacyError, first_problem
from loanapi.users.models import Role
from loanapi.users.records import Caller

UNAUTHORISED = "Unauthorised Access"
NOT_AUTHORIZED_VIEW = "Not Authorized to view this page"
NOT_AUTHORISED_FILTER = "You are not authorised to view this page!"
ADMIN_ONLY = "You are not authorized to open this page"

access_token = APIKeyHeader(
    name="x-access-token",
    auto_error=False,
    description="Legacy endpoints only: the token from the original /login",
)
basic = Basic(
    auto_error=False,
    realm="Login Required!",
    scheme_name="LegacyBasic",
    description="Legacy endpoints only: the original /login, with username and password",
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


M = TypeVar("M", bound=BaseModel)


def body_of(model: type[M]) -> Callable[[Request], Awaitable[M | None]]:
    """The request body as `model`, read after the caller's checks, as the original did: a
    missing token or a refused role answers before anything about the body. None when there
    is no body (the endpoint answers with the original's words for that)."""

    async def read_body(request: Request) -> M | None:
        raw = await request.body()
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
            raise LegacyError(422, "The request body could not be parsed as JSON") from None
        if data is None:
            return None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise LegacyError(422, first_problem(exc.errors())) from None

    return read_body


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` describing the body that `body_of` reads (FastAPI does not see it)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}  # added by openapi.install
    return {"requestBody": {"required": False, "content": {"application/json": {"schema": schema}}}}
