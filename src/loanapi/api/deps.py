"""Typed dependencies: the session, the caller, and the role gates."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from loanapi.config import Settings
from loanapi.db import get_session
from loanapi.errors import Forbidden, Unauthorized
from loanapi.security import Hasher, TokenCodec
from loanapi.users import service as users
from loanapi.users.models import Role, User

TOKEN_URL = "/api/v1/auth/token"

# scope="function": the transaction commits before the response is sent, so a client never
# sees a success for a change that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _hasher(request: Request) -> Hasher:
    return request.app.state.hasher


def _codec(request: Request) -> TokenCodec:
    return request.app.state.codec


SettingsDep = Annotated[Settings, Depends(_settings)]
HasherDep = Annotated[Hasher, Depends(_hasher)]
CodecDep = Annotated[TokenCodec, Depends(_codec)]

bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def current_user(
    session: SessionDep, codec: CodecDep, token: Annotated[str | None, Depends(bearer)]
) -> User:
    if not token:
        raise Unauthorized("Not authenticated")
    return await users.user_from_token(session, token=token, codec=codec)


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(role: Role) -> Callable[[User], Awaitable[User]]:
    async def caller_with_role(user: CurrentUser) -> User:
        if user.role is not role:
            raise Forbidden(f"This endpoint is for the {role.value} role")
        return user

    caller_with_role.__name__ = f"require_{role.value}"
    return caller_with_role


CustomerUser = Annotated[User, Depends(require_role(Role.customer))]
AgentUser = Annotated[User, Depends(require_role(Role.agent))]
AdminUser = Annotated[User, Depends(require_role(Role.admin))]

# Ids are 32-bit integers; a larger number is a 422, not a database error.
MAX_ID = 2**31 - 1


def id_path(description: str) -> object:
    return Path(ge=1, le=MAX_ID, description=description)


UserId = Annotated[int, id_path("A user's id")]
