from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPBasicCredentials, OAuth2PasswordRequestForm

from loanapi.api.common import user_response
from loanapi.api.deps import (
    V1,
    Basic,
    BearerToken,
    CodecDep,
    CurrentUser,
    HasherDep,
    ReadSessionDep,
    SettingsDep,
    TokenHolder,
    WriteSessionDep,
    authenticate_user,
    client_address,
    register_user,
)
from loanapi.errors import Unauthorized, problem_responses
from loanapi.security import TokenCodec
from loanapi.users import service as users
from loanapi.users.models import Role
from loanapi.users.records import Caller, UserRecord
from loanapi.users.schemas import PasswordChange, Token, UserCreate, UserRead

router = APIRouter(prefix=f"{V1}/auth", tags=["auth"])
basic = Basic(
    auto_error=False,
    description="Only for POST /api/v1/auth/login, which answers a bearer token; the other "
    "endpoints take that token (the first form of this dialog).",
)


def issue_token(codec: TokenCodec, user: UserRecord, response: Response) -> Token:
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
    description="The account may log in at once. The username (3-64 of `A-Z a-z 0-9 _ . -`) and "
    "the e-mail address must be unused, ignoring case (409); the password needs at least "
    "`LOANAPI_PASSWORD_MIN_LENGTH` (default 8) characters and must not be the username, the e-mail "
    "address or one of the 10,000 most common passwords (422). One client address may register 20 "
    "accounts within an hour (`LOANAPI_REGISTER_MAX_PER_ADDRESS`), then gets a 429 with "
    "`Retry-After`.",
    responses=problem_responses(409, 422, 429),
)
async def register_customer(
    data: UserCreate, request: Request, session: WriteSessionDep
) -> Response:
    user = await register_user(request, session, data, Role.customer)
    return user_response(user, 201, location=f"{V1}/admin/users/{user.id}")


@router.post(
    "/register/agent",
    status_code=201,
    response_model=UserRead,
    operation_id="auth_register_agent",
    summary="Apply as an agent (pending until an admin approves)",
    description="The account starts `pending`: logging in answers 403 until an admin approves it "
    "with `POST /api/v1/admin/agents/{agent_id}/approve`. The rules of customer registration "
    "apply: an unused username and e-mail address (409), the password rules (422), and 20 "
    "registrations within an hour per client address (429 with `Retry-After`).",
    responses=problem_responses(409, 422, 429),
)
async def register_agent(data: UserCreate, request: Request, session: WriteSessionDep) -> Response:
    user = await register_user(request, session, data, Role.agent)
    return user_response(user, 201, location=f"{V1}/admin/users/{user.id}")


@router.post(
    "/token",
    response_model=Token,
    operation_id="auth_token",
    summary="Log in with the OAuth2 password flow (form fields username, password)",
    description="Send the answer's `access_token` as `Authorization: Bearer`; it lasts "
    "`expires_in` seconds (one hour unless `LOANAPI_ACCESS_TOKEN_MINUTES` says otherwise). A wrong "
    "username or password is one generic 401; a disabled account, or an agent whose application is "
    "not approved, gets a 403. After 10 failed logins (`LOANAPI_LOGIN_MAX_FAILURES`) for a "
    "username from one address within 15 minutes, logins for it from there answer 429 with "
    "`Retry-After`.",
    responses=problem_responses(401, 403, 422, 429),
)
async def token(
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: ReadSessionDep,
    codec: CodecDep,
) -> Token:
    user = await authenticate_user(request, session, form.username, form.password)
    return issue_token(codec, user, response)


@router.post(
    "/login",
    response_model=Token,
    operation_id="auth_login",
    summary="Log in with HTTP Basic credentials",
    description="The same token as `POST /api/v1/auth/token` (one hour by default), for clients "
    "that send `Authorization: Basic` instead of a form. A request without Basic credentials gets "
    "a 401 with a `WWW-Authenticate: Basic` challenge; otherwise the refusals are those of "
    "`/auth/token` (401, 403, 429 with `Retry-After`).",
    responses=problem_responses(401, 403, 429),
)
async def login(
    response: Response,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    request: Request,
    session: ReadSessionDep,
    codec: CodecDep,
) -> Token:
    if credentials is None:
        raise Unauthorized("HTTP Basic credentials required", scheme='Basic realm="loanapi"')
    user = await authenticate_user(request, session, credentials.username, credentials.password)
    return issue_token(codec, user, response)


@router.get(
    "/me",
    response_model=UserRead,
    operation_id="auth_me",
    summary="The caller's own account",
    description="Read from the database on every request, not from the token: a disabled account's "
    "token is a 401. After an admin reset the password, this is a 403 until a new one is chosen "
    "with `POST /api/v1/auth/password`.",
    responses=problem_responses(
        401, notes={403: "An admin reset the password: choose a new one first"}
    ),
)
async def me(user: CurrentUser) -> Caller:
    return user


@router.post(
    "/logout",
    status_code=204,
    operation_id="auth_logout",
    summary="End this token now (other tokens of the account go on)",
    description="Using this token again is a 401. To end the account's other tokens too, change "
    "the password with `POST /api/v1/auth/password`. Also allowed after an admin reset the "
    "password, when other endpoints answer 403.",
    responses=problem_responses(401),
)
async def logout(
    holder: TokenHolder, token: BearerToken, session: WriteSessionDep, codec: CodecDep
) -> Response:
    assert token is not None  # the holder has one
    await users.logout(session, claims=users.token_claims(token, codec))
    return Response(status_code=204)


@router.post(
    "/password",
    status_code=204,
    operation_id="auth_change_password",
    summary="Change your password; every other token of the account stops working",
    description="This token goes on working; every other token of the account is revoked. "
    "A wrong current password counts as a failed login (the same lockout). After an admin's "
    "reset, this is the only endpoint (besides logout) the account may call.",
    responses=problem_responses(401, 409, 422, 429),
)
async def change_password(
    data: PasswordChange,
    request: Request,
    holder: TokenHolder,
    token: BearerToken,
    session: WriteSessionDep,
    codec: CodecDep,
    hasher: HasherDep,
    settings: SettingsDep,
) -> Response:
    assert token is not None
    await users.change_password(
        session,
        caller=holder,
        claims=users.token_claims(token, codec),
        current_password=data.current_password,
        new_password=data.new_password,
        address=client_address(request),
        hasher=hasher,
        settings=settings,
        writers=request.app.state.sessions.writers,
    )
    return Response(status_code=204)
