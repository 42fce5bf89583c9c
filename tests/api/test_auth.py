"""Registration, login (OAuth2 form and HTTP Basic), tokens and login throttling."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jose import jwt
from sqlalchemy import func, select

from loanapi.users.models import User
from tests.conftest import ADMIN, PASSWORD, TEST_SECRET, bearer, client_for, register, token_for

USER_KEYS = {"id", "username", "email", "phone", "role", "status", "created_at"}
PROBLEM_KEYS = {"type", "title", "status", "detail"}
PROBLEM_JSON = "application/problem+json"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    return dict(body)


def assert_user(body: dict[str, Any], **expected: Any) -> None:
    assert set(body) == USER_KEYS
    assert isinstance(body["id"], int | str)
    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert created.utcoffset() == timedelta(0)
    for key, value in expected.items():
        assert body[key] == value, key


def assert_token(response: Any) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str)
    assert body["access_token"].count(".") == 2
    assert response.headers["cache-control"] == "no-store"
    return str(body["access_token"])


def b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def claims_for(user_id: Any, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": "customer",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=30)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def assert_unauthorized(client: Any, token: str) -> None:
    response = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- registration -----------------------------------------------------------------------------


async def test_register_customer_is_active_and_returns_the_user(client):
    response = await client.post(
        "/api/v1/auth/register/customer",
        json={
            "username": "alice",
            "email": "alice@example.com",
            "password": PASSWORD,
            "phone": "+44 20 7946 0000",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert_user(
        body,
        username="alice",
        email="alice@example.com",
        phone="+44 20 7946 0000",
        role="customer",
        status="active",
    )
    assert "password" not in response.text
    assert "pbkdf2" not in response.text


async def test_register_without_phone_gives_null_phone(client):
    response = await client.post(
        "/api/v1/auth/register/customer",
        json={"username": "nophone", "email": "nophone@example.com", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    assert_user(response.json(), username="nophone", phone=None, role="customer")


async def test_register_agent_is_pending(client):
    response = await client.post(
        "/api/v1/auth/register/agent",
        json={"username": "agent007", "email": "bond@example.com", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    assert_user(
        response.json(),
        username="agent007",
        email="bond@example.com",
        phone=None,
        role="agent",
        status="pending",
    )
    assert "password" not in response.text


async def test_registered_user_reads_itself_through_me(client):
    user = await register(client, "customer", "mira", phone="555-0100")
    token = await token_for(client, "mira")
    response = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == user


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "a" * 65),
        ("username", "bad name"),
        ("username", "bad!name"),
        ("username", "ünïcode"),
        ("username", ""),
        ("email", "not-an-email"),
        ("email", "missing@"),
        ("password", "x" * 7),
        ("password", "x" * 129),
        ("phone", "1" * 33),
    ],
)
@pytest.mark.parametrize("role", ["customer", "agent"])
async def test_register_rejects_invalid_fields(client, role, field, value):
    body = {"username": "valid_user", "email": "valid@example.com", "password": PASSWORD}
    body[field] = value
    response = await client.post(f"/api/v1/auth/register/{role}", json=body)
    problem = assert_problem(response, 422)
    assert isinstance(problem["errors"], list)
    assert problem["errors"]
    assert any(error["loc"][-1] == field for error in problem["errors"]), problem
    assert all("loc" in error for error in problem["errors"])
    # Validation never reflects the submitted password back.
    if field == "password":
        assert value not in response.text


@pytest.mark.parametrize("field", ["username", "email", "password"])
async def test_register_requires_fields(client, field):
    body = {"username": "valid_user", "email": "valid@example.com", "password": PASSWORD}
    del body[field]
    response = await client.post("/api/v1/auth/register/customer", json=body)
    problem = assert_problem(response, 422)
    assert any(error["loc"][-1] == field for error in problem["errors"]), problem


async def test_register_accepts_boundary_lengths(client):
    response = await client.post(
        "/api/v1/auth/register/customer",
        json={
            "username": "a" * 64,
            "email": "long@example.com",
            "password": "p" * 128,
            "phone": "9" * 32,
        },
    )
    assert response.status_code == 201, response.text
    assert_user(response.json(), username="a" * 64, phone="9" * 32, status="active")
    login = await client.post(
        "/api/v1/auth/token", data={"username": "a" * 64, "password": "p" * 128}
    )
    assert_token(login)

    short = await client.post(
        "/api/v1/auth/register/customer",
        json={"username": "A.b-c_1", "email": "short@example.com", "password": "p" * 8},
    )
    assert short.status_code == 201, short.text
    assert_user(short.json(), username="A.b-c_1", status="active")


@pytest.mark.parametrize(
    ("extra", "value"),
    [
        ("role", "admin"),
        ("status", "active"),
        ("id", 1),
        ("password_hash", "x"),
        ("created_at", "2020-01-01T00:00:00Z"),
    ],
)
@pytest.mark.parametrize("role", ["customer", "agent"])
async def test_register_refuses_unknown_fields(client, admin, role, extra, value):
    body = {
        "username": "sneaky",
        "email": "sneaky@example.com",
        "password": PASSWORD,
        extra: value,
    }
    response = await client.post(f"/api/v1/auth/register/{role}", json=body)
    problem = assert_problem(response, 422)
    assert any(error["loc"][-1] == extra for error in problem["errors"]), problem
    # Nothing was created.
    listed = await client.get("/api/v1/admin/users", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert [u["username"] for u in listed.json()["items"]] == [ADMIN["username"]]


async def test_register_rejects_non_json_body(client):
    response = await client.post(
        "/api/v1/auth/register/customer",
        content=b"username=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    problem = assert_problem(response, 422)
    assert isinstance(problem["errors"], list)


@pytest.mark.parametrize("second_role", ["customer", "agent"])
async def test_duplicate_username_ignoring_case_is_409(client, second_role):
    await register(client, "customer", "Dave")
    response = await client.post(
        f"/api/v1/auth/register/{second_role}",
        json={"username": "dAVE", "email": "other@example.com", "password": PASSWORD},
    )
    assert_problem(response, 409)
    same = await client.post(
        "/api/v1/auth/register/customer",
        json={"username": "Dave", "email": "third@example.com", "password": PASSWORD},
    )
    assert_problem(same, 409)


@pytest.mark.parametrize("second_role", ["customer", "agent"])
async def test_duplicate_email_ignoring_case_is_409(client, second_role):
    first = await client.post(
        "/api/v1/auth/register/customer",
        json={"username": "eve", "email": "Eve.Smith@Example.com", "password": PASSWORD},
    )
    assert first.status_code == 201, first.text
    response = await client.post(
        f"/api/v1/auth/register/{second_role}",
        json={"username": "eve2", "email": "eve.smith@example.com", "password": PASSWORD},
    )
    assert_problem(response, 409)
    upper = await client.post(
        "/api/v1/auth/register/customer",
        json={"username": "eve3", "email": "EVE.SMITH@EXAMPLE.COM", "password": PASSWORD},
    )
    assert_problem(upper, 409)


async def test_duplicate_of_admin_username_is_409(client):
    response = await client.post(
        "/api/v1/auth/register/customer",
        json={
            "username": ADMIN["username"].upper(),
            "email": "x@example.com",
            "password": PASSWORD,
        },
    )
    assert_problem(response, 409)


# --- login ------------------------------------------------------------------------------------


async def test_token_endpoint_issues_a_bearer_token(client):
    user = await register(client, "customer", "tina")
    response = await client.post(
        "/api/v1/auth/token", data={"username": "tina", "password": PASSWORD}
    )
    token = assert_token(response)
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json() == user


async def test_token_is_hs256_with_the_expected_claims(client):
    user = await register(client, "customer", "claire")
    token = await token_for(client, "claire")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(user["id"])
    assert 3599 < claims["exp"] - claims["iat"] <= 3600  # iat to the millisecond
    assert claims["jti"]
    assert "password" not in json.dumps(claims)


async def test_token_endpoint_requires_form_fields(client):
    response = await client.post("/api/v1/auth/token", data={"username": "tina"})
    problem = assert_problem(response, 422)
    assert any(error["loc"][-1] == "password" for error in problem["errors"]), problem


async def test_login_with_http_basic(client):
    user = await register(client, "customer", "basil")
    response = await client.post("/api/v1/auth/login", auth=("basil", PASSWORD))
    token = assert_token(response)
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json() == user


async def test_admin_can_log_in_with_both_flows(client):
    token = assert_token(
        await client.post(
            "/api/v1/auth/token",
            data={"username": ADMIN["username"], "password": ADMIN["password"]},
        )
    )
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert_user(me.json(), username=ADMIN["username"], role="admin", status="active")
    assert_token(
        await client.post("/api/v1/auth/login", auth=(ADMIN["username"], ADMIN["password"]))
    )


@pytest.mark.parametrize("flow", ["token", "login"])
async def test_wrong_password_and_unknown_user_give_the_same_401(client, flow):
    await register(client, "customer", "gina")

    async def attempt(username: str, password: str) -> Any:
        if flow == "token":
            return await client.post(
                "/api/v1/auth/token", data={"username": username, "password": password}
            )
        return await client.post("/api/v1/auth/login", auth=(username, password))

    wrong_password = await attempt("gina", "not-the-password")
    unknown_user = await attempt("nobody-here", PASSWORD)
    first = assert_problem(wrong_password, 401)
    second = assert_problem(unknown_user, 401)
    assert first == second
    assert "www-authenticate" in wrong_password.headers
    assert wrong_password.headers["www-authenticate"] == unknown_user.headers["www-authenticate"]
    assert "access_token" not in wrong_password.text


async def test_login_without_basic_credentials_is_401(client):
    response = await client.post("/api/v1/auth/login")
    assert_problem(response, 401)
    assert "www-authenticate" in response.headers
    assert "access_token" not in response.text


async def test_login_with_bearer_instead_of_basic_is_401(client, customer):
    response = await client.post("/api/v1/auth/login", headers=customer.headers)
    assert_problem(response, 401)
    assert "access_token" not in response.text


@pytest.mark.parametrize("flow", ["token", "login"])
async def test_pending_agent_cannot_log_in(client, flow):
    await register(client, "agent", "penny")
    if flow == "token":
        response = await client.post(
            "/api/v1/auth/token", data={"username": "penny", "password": PASSWORD}
        )
    else:
        response = await client.post("/api/v1/auth/login", auth=("penny", PASSWORD))
    problem = assert_problem(response, 403)
    assert "not been approved" in problem["detail"]
    assert "access_token" not in response.text


async def test_pending_agent_with_wrong_password_gets_the_generic_401(client):
    await register(client, "agent", "penny")
    response = await client.post(
        "/api/v1/auth/token", data={"username": "penny", "password": "wrong-password"}
    )
    problem = assert_problem(response, 401)
    assert "approved" not in (problem["detail"] or "")


async def test_rejected_agent_cannot_log_in(client, admin):
    agent = await register(client, "agent", "rick")
    rejected = await client.post(
        f"/api/v1/admin/agents/{agent['id']}/reject", headers=admin.headers
    )
    assert rejected.status_code == 200, rejected.text
    response = await client.post(
        "/api/v1/auth/token", data={"username": "rick", "password": PASSWORD}
    )
    problem = assert_problem(response, 403)
    assert "approved" in problem["detail"]
    basic = await client.post("/api/v1/auth/login", auth=("rick", PASSWORD))
    assert_problem(basic, 403)


async def test_approved_agent_can_log_in(client, admin):
    agent = await register(client, "agent", "april")
    approved = await client.post(
        f"/api/v1/admin/agents/{agent['id']}/approve", headers=admin.headers
    )
    assert approved.status_code == 200, approved.text
    token = assert_token(
        await client.post("/api/v1/auth/token", data={"username": "april", "password": PASSWORD})
    )
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert_user(me.json(), username="april", role="agent", status="active")


@pytest.mark.parametrize("role", ["customer", "agent"])
async def test_disabled_user_cannot_log_in(client, admin, role):
    user = await register(client, role, "dora")
    disabled = await client.post(f"/api/v1/admin/users/{user['id']}/disable", headers=admin.headers)
    assert disabled.status_code == 200, disabled.text
    response = await client.post(
        "/api/v1/auth/token", data={"username": "dora", "password": PASSWORD}
    )
    problem = assert_problem(response, 403)
    # A disabled account is not an agent application waiting for approval.
    assert "approved" not in (problem["detail"] or "")
    assert "access_token" not in response.text
    basic = await client.post("/api/v1/auth/login", auth=("dora", PASSWORD))
    assert_problem(basic, 403)


# --- tokens -----------------------------------------------------------------------------------


async def test_me_without_token_is_401_with_bearer_challenge(client):
    response = await client.get("/api/v1/auth/me")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer-less"],
)
async def test_me_with_malformed_authorization_header_is_401(client, authorization):
    response = await client.get("/api/v1/auth/me", headers={"Authorization": authorization})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "not.a.jwt.at.all", "eyJhbGciOiJIUzI1NiJ9..", "....."],
)
async def test_garbage_token_is_401(client, customer, token):
    await assert_unauthorized(client, token)


async def test_alg_none_token_is_401(client, customer):
    header = b64url({"alg": "none", "typ": "JWT"})
    payload = b64url(claims_for(customer.id))
    await assert_unauthorized(client, f"{header}.{payload}.")
    await assert_unauthorized(client, f"{header}.{payload}")
    upper = b64url({"alg": "None", "typ": "JWT"})
    await assert_unauthorized(client, f"{upper}.{payload}.")


async def test_token_signed_with_another_key_is_401(client, customer):
    token = jwt.encode(claims_for(customer.id), "another-key-" + "x" * 40, algorithm="HS256")
    await assert_unauthorized(client, token)


async def test_tampered_payload_is_401(client, customer, admin):
    token = customer.headers["Authorization"].removeprefix("Bearer ")
    header, _payload, signature = token.split(".")
    forged = b64url(claims_for(admin.id, role="admin"))
    await assert_unauthorized(client, f"{header}.{forged}.{signature}")
    listed = await client.get(
        "/api/v1/admin/users", headers=bearer(f"{header}.{forged}.{signature}")
    )
    assert_problem(listed, 401)


async def test_expired_token_is_401(client, customer):
    past = datetime.now(UTC) - timedelta(hours=2)
    claims = claims_for(
        customer.id,
        iat=int(past.timestamp()),
        exp=int((past + timedelta(minutes=60)).timestamp()),
    )
    await assert_unauthorized(client, jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


async def test_token_issued_in_the_future_is_401(client, customer):
    future = datetime.now(UTC) + timedelta(hours=1)
    claims = claims_for(
        customer.id,
        iat=int(future.timestamp()),
        exp=int((future + timedelta(minutes=60)).timestamp()),
    )
    await assert_unauthorized(client, jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


@pytest.mark.parametrize("missing", ["jti", "sub", "exp"])
async def test_token_missing_a_claim_is_401(client, customer, missing):
    claims = claims_for(customer.id)
    del claims[missing]
    await assert_unauthorized(client, jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


@pytest.mark.parametrize("sub", ["", "abc", "999999"])
async def test_token_for_no_such_user_is_401(client, customer, sub):
    claims = claims_for(customer.id, sub=sub)
    await assert_unauthorized(client, jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


@pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
async def test_token_with_another_algorithm_is_401(client, customer, algorithm):
    token = jwt.encode(claims_for(customer.id), TEST_SECRET, algorithm=algorithm)
    await assert_unauthorized(client, token)


async def test_well_formed_token_built_by_hand_is_accepted(client, customer):
    # The control for the tampering tests: the same claims, signed correctly, do work.
    token = jwt.encode(claims_for(customer.id), TEST_SECRET, algorithm="HS256")
    response = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert_user(response.json(), id=customer.id, username=customer.username)


async def test_disabled_users_token_stops_working_at_once(client, admin, customer):
    before = await client.get("/api/v1/auth/me", headers=customer.headers)
    assert before.status_code == 200, before.text
    assert_user(before.json(), username=customer.username, status="active")

    disabled = await client.post(
        f"/api/v1/admin/users/{customer.id}/disable", headers=admin.headers
    )
    assert disabled.status_code == 200, disabled.text
    assert_user(disabled.json(), id=customer.id, status="disabled")

    await assert_unauthorized(client, customer.headers["Authorization"].removeprefix("Bearer "))

    enabled = await client.post(f"/api/v1/admin/users/{customer.id}/enable", headers=admin.headers)
    assert enabled.status_code == 200, enabled.text
    after = await client.get("/api/v1/auth/me", headers=customer.headers)
    assert after.status_code == 200, after.text
    assert_user(after.json(), id=customer.id, status="active")


async def test_disabled_agents_token_stops_working(client, admin, agent):
    listed = await client.get("/api/v1/agent/customers", headers=agent.headers)
    assert listed.status_code == 200, listed.text
    disabled = await client.post(f"/api/v1/admin/users/{agent.id}/disable", headers=admin.headers)
    assert disabled.status_code == 200, disabled.text
    response = await client.get("/api/v1/agent/customers", headers=agent.headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- throttling -------------------------------------------------------------------------------


async def failed_login(client: Any, username: str) -> None:
    response = await client.post(
        "/api/v1/auth/token", data={"username": username, "password": "wrong-password"}
    )
    assert_problem(response, 401)


async def test_login_is_throttled_after_too_many_failures(app, make_app):
    throttled_app = await make_app(login_max_failures=3)
    async with client_for(throttled_app) as client:
        await register(client, "customer", "victim")
        await register(client, "customer", "bystander")
        for _ in range(3):
            await failed_login(client, "victim")

        blocked = await client.post(
            "/api/v1/auth/token", data={"username": "victim", "password": PASSWORD}
        )
        assert_problem(blocked, 429)
        assert int(blocked.headers["retry-after"]) > 0
        assert int(blocked.headers["retry-after"]) <= 15 * 60 + 1
        assert "access_token" not in blocked.text

        basic = await client.post("/api/v1/auth/login", auth=("victim", PASSWORD))
        assert_problem(basic, 429)
        assert int(basic.headers["retry-after"]) > 0

        # The username is matched ignoring case, like login itself.
        upper = await client.post(
            "/api/v1/auth/token", data={"username": "VICTIM", "password": PASSWORD}
        )
        assert_problem(upper, 429)

        # Another username is unaffected.
        other = await client.post(
            "/api/v1/auth/token", data={"username": "bystander", "password": PASSWORD}
        )
        assert_token(other)


async def test_throttling_counts_basic_failures_too(app, make_app):
    throttled_app = await make_app(login_max_failures=3)
    async with client_for(throttled_app) as client:
        await register(client, "customer", "basic_victim")
        for _ in range(3):
            response = await client.post("/api/v1/auth/login", auth=("basic_victim", "nope-nope"))
            assert_problem(response, 401)
        blocked = await client.post(
            "/api/v1/auth/token", data={"username": "basic_victim", "password": PASSWORD}
        )
        assert_problem(blocked, 429)
        assert int(blocked.headers["retry-after"]) > 0


async def test_throttling_applies_to_unknown_usernames(app, make_app):
    throttled_app = await make_app(login_max_failures=3)
    async with client_for(throttled_app) as client:
        for _ in range(3):
            await failed_login(client, "ghost")
        blocked = await client.post(
            "/api/v1/auth/token", data={"username": "ghost", "password": PASSWORD}
        )
        assert_problem(blocked, 429)
        assert int(blocked.headers["retry-after"]) > 0


async def test_successful_logins_do_not_count_toward_the_limit(app, make_app):
    throttled_app = await make_app(login_max_failures=3)
    async with client_for(throttled_app) as client:
        await register(client, "customer", "steady")
        for _ in range(2):
            await failed_login(client, "steady")
        for _ in range(4):
            ok = await client.post(
                "/api/v1/auth/token", data={"username": "steady", "password": PASSWORD}
            )
            assert_token(ok)
        # Two failures so far: one more is allowed (and fails), the one after is throttled.
        await failed_login(client, "steady")
        blocked = await client.post(
            "/api/v1/auth/token", data={"username": "steady", "password": PASSWORD}
        )
        assert_problem(blocked, 429)
        assert "retry-after" in blocked.headers


async def test_below_the_limit_login_still_works(app, make_app):
    throttled_app = await make_app(login_max_failures=3)
    async with client_for(throttled_app) as client:
        await register(client, "customer", "almost")
        for _ in range(2):
            await failed_login(client, "almost")
        assert_token(
            await client.post(
                "/api/v1/auth/token", data={"username": "almost", "password": PASSWORD}
            )
        )


# --- password hashes --------------------------------------------------------------------------


async def stored_hash(app: Any, username: str) -> str:
    async with app.state.sessions.write() as session:
        value = await session.scalar(
            select(User.password_hash).where(func.lower(User.username) == username.lower())
        )
    assert value is not None
    return str(value)


async def test_login_upgrades_an_outdated_hash(app, client, make_app):
    await register(client, "customer", "upgrader")
    before = await stored_hash(app, "upgrader")
    assert before.startswith("$pbkdf2-sha256$1000$")
    assert PASSWORD not in before

    stronger = await make_app(pbkdf2_rounds=2000)
    async with client_for(stronger) as stronger_client:
        assert_token(
            await stronger_client.post(
                "/api/v1/auth/token", data={"username": "upgrader", "password": PASSWORD}
            )
        )
    after = await stored_hash(app, "upgrader")
    assert after.startswith("$pbkdf2-sha256$")
    assert "$2000$" in after
    assert after != before

    # The upgraded hash still verifies, through either app.
    assert_token(
        await client.post("/api/v1/auth/token", data={"username": "upgrader", "password": PASSWORD})
    )
    assert_problem(
        await client.post(
            "/api/v1/auth/token", data={"username": "upgrader", "password": "wrong-password"}
        ),
        401,
    )


async def test_failed_login_does_not_upgrade_the_hash(app, client, make_app):
    await register(client, "customer", "keeper")
    before = await stored_hash(app, "keeper")
    stronger = await make_app(pbkdf2_rounds=2000)
    async with client_for(stronger) as stronger_client:
        response = await stronger_client.post(
            "/api/v1/auth/token", data={"username": "keeper", "password": "wrong-password"}
        )
        assert_problem(response, 401)
    assert await stored_hash(app, "keeper") == before


async def test_password_is_stored_hashed_with_a_salt(app, client):
    await register(client, "customer", "salt1")
    await register(client, "customer", "salt2")
    first, second = await stored_hash(app, "salt1"), await stored_hash(app, "salt2")
    assert first.startswith("$pbkdf2-sha256$")
    assert PASSWORD not in first
    assert first != second
