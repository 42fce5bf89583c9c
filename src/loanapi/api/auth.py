from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2PasswordRequestForm
from sqlalchemy.ext.asyncio import AsyncSession

from loanapi.api.deps import CodecDep, CurrentUser, HasherDep, SessionDep, SettingsDep
from loanapi.db import mark_read
from loanapi.errors import Unauthorized, problem_responses
from loanapi.security import TokenCodec
from loanapi.users import service as users
from loanapi.users.models import Role, User
from loanapi.users.schemas import Token, UserCreate, UserRead

router = APIRouter(prefix="/auth", tags=["auth"])
basic = HTTPBasic(auto_error=False, description="Username and password")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def issue_token(codec: TokenCodec, user: User, response: Response) -> Token:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return Token(
        access_token=codec.issue(user_id=user.id, role=user.role.value),
        expires_in=int(codec.lifetime.total_seconds()),
    )


@router.post(
    "/register/customer",
    status_code=201,
    response_model=UserRead,
    operation_id="auth_register_customer",
    summary="Register a customer (active at once)",
    responses=problem_responses(409, 422),
)
async def register_customer(
    data: UserCreate, session: SessionDep, hasher: HasherDep, settings: SettingsDep
) -> User:
    return await users.register(
        session, data=data, role=Role.customer, hasher=hasher, settings=settings
    )


@router.post(
    "/register/agent",
    status_code=201,
    response_model=UserRead,
    operation_id="auth_register_agent",
    summary="Apply as an agent (pending until an admin approves)",
    responses=problem_responses(409, 422),
)
async def register_agent(
    data: UserCreate, session: SessionDep, hasher: HasherDep, settings: SettingsDep
) -> User:
    return await users.register(
        session, data=data, role=Role.agent, hasher=hasher, settings=settings
    )


async def _login(
    request: Request,
    session: AsyncSession,
    username: str,
    password: str,
    hasher: HasherDep,
    settings: SettingsDep,
) -> User:
    return await users.authenticate(
        session,
        username=username,
        password=password,
        address=client_address(request),
        hasher=hasher,
        settings=settings,
        writer=request.app.state.sessionmaker,
    )


@router.post(
    "/token",
    dependencies=[Depends(mark_read)],
    response_model=Token,
    operation_id="auth_token",
    summary="Log in with the OAuth2 password flow (form fields username, password)",
    responses=problem_responses(401, 403, 422, 429),
)
async def token(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    hasher: HasherDep,
    settings: SettingsDep,
    codec: CodecDep,
) -> Token:
    user = await _login(request, session, form.username, form.password, hasher, settings)
    return issue_token(codec, user, response)


@router.post(
    "/login",
    dependencies=[Depends(mark_read)],
    response_model=Token,
    operation_id="auth_login",
    summary="Log in with HTTP Basic credentials",
    responses=problem_responses(401, 403, 429),
)
async def login(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    session: SessionDep,
    hasher: HasherDep,
    settings: SettingsDep,
    codec: CodecDep,
) -> Token:
    if credentials is None:
        raise Unauthorized("HTTP Basic credentials required", scheme='Basic realm="loanapi"')
    user = await _login(
        request, session, credentials.username, credentials.password, hasher, settings
    )
    return issue_token(codec, user, response)


@router.get(
    "/me",
    response_model=UserRead,
    operation_id="auth_me",
    summary="The caller's own account",
    responses=problem_responses(401),
)
async def me(user: CurrentUser) -> User:
    return user
