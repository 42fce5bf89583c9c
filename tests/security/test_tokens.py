"""OWASP API2 (broken authentication): bad tokens on both surfaces, login and signup throttling.

tests/api/test_auth.py checks several bad tokens on /api/v1/auth/me and the per-username login
limit of /api/v1. Here every bad token is also tried on a legacy endpoint, the cases it lacks are
added (missing role or iat, nbf, a deleted user, a rejected agent, a forged role claim), and the
throttles are checked across usernames, client addresses and the legacy /login.
"""

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from jose import jwt
from sqlalchemy import delete

from loanapi.users.models import User
from tests.conftest import ADMIN, PASSWORD, TEST_SECRET, Caller, bearer, client_for, register
from tests.security.support import (
    assert_legacy_error,
    assert_no_leak,
    assert_v1_error,
    legacy_headers,
)

OTHER_ADDRESS = ("10.0.0.9", 123)
THIRD_ADDRESS = ("10.0.0.77", 4567)


def client_from(app: Any, address: tuple[str, int]) -> httpx.AsyncClient:
    """A client whose requests come from `address` (ASGITransport's default is 127.0.0.1)."""
    transport = httpx.ASGITransport(app=app, client=address)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def claims(user_id: Any, role: str = "customer", **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=30)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    values.update(overrides)
    return values


def signed(values: dict[str, Any], *, key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(values, key, algorithm=algorithm)


def without(name: str, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != name}


def in_future(**delta: float) -> int:
    return int((datetime.now(UTC) + timedelta(**delta)).timestamp())


# Each builds, for a user id, a token the API must refuse.
BAD_TOKENS: dict[str, Callable[[int], str]] = {
    "alg_none": lambda uid: f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(claims(uid))}.",
    "alg_none_with_hs256_signature": lambda uid: (
        b64url({"alg": "none", "typ": "JWT"}) + "." + ".".join(signed(claims(uid)).split(".")[1:])
    ),
    "hs512": lambda uid: signed(claims(uid), algorithm="HS512"),
    "hs384": lambda uid: signed(claims(uid), algorithm="HS384"),
    "wrong_key": lambda uid: signed(claims(uid), key="not-the-server-key-" + "k" * 40),
    "empty_key": lambda uid: signed(claims(uid), key=""),
    "expired": lambda uid: signed(claims(uid, iat=in_future(hours=-3), exp=in_future(hours=-2))),
    "expired_a_second_ago": lambda uid: signed(claims(uid, exp=in_future(seconds=-1))),
    "nbf_in_the_future": lambda uid: signed(claims(uid, nbf=in_future(hours=1))),
    "iat_far_in_the_future": lambda uid: signed(
        claims(uid, iat=in_future(days=3650), exp=in_future(days=3650, hours=1))
    ),
    "missing_sub": lambda uid: signed(without("sub", claims(uid))),
    "missing_role": lambda uid: signed(without("role", claims(uid))),
    "missing_iat": lambda uid: signed(without("iat", claims(uid))),
    "missing_exp": lambda uid: signed(without("exp", claims(uid))),
    "missing_jti": lambda uid: signed(without("jti", claims(uid))),
    "sub_not_an_integer": lambda uid: signed(claims(f"{uid}abc")),
    "sub_a_fraction": lambda uid: signed(claims(f"{uid}.0")),
    "sub_a_sql_string": lambda uid: signed(claims(f"{uid} OR 1=1")),
    "sub_out_of_range": lambda uid: signed(claims(str(2**80))),
    "exp_not_a_number": lambda uid: signed(claims(uid, exp="tomorrow")),
}


async def assert_refused(client: httpx.AsyncClient, token: str) -> None:
    """401 on /api/v1 (problem+json, Bearer challenge) and on the legacy /getloans."""
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 401, me.text
    assert_v1_error(me)
    assert me.headers["www-authenticate"].startswith("Bearer")
    assert_no_leak(me)

    for headers in (legacy_headers(token), bearer(token)):
        loans = await client.get("/getloans", headers=headers)
        assert loans.status_code == 401, loans.text
        assert loans.json() == {"message": "Token is invalid!"}
        assert_no_leak(loans)


async def assert_accepted(client: httpx.AsyncClient, token: str, user_id: int) -> None:
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user_id
    loans = await client.get("/getloans", headers=legacy_headers(token))
    assert loans.status_code == 200, loans.text


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_token_is_refused_on_v1_and_legacy(client, customer, case):
    # Control: a token built the same way but valid is accepted by both surfaces.
    await assert_accepted(client, signed(claims(customer.id)), customer.id)
    await assert_refused(client, BAD_TOKENS[case](customer.id))


async def test_missing_token_on_legacy_is_token_is_missing(client):
    response = await client.get("/getloans")
    assert response.status_code == 401
    assert response.json() == {"message": "Token is missing!"}
    empty = await client.get("/getloans", headers={"x-access-token": ""})
    assert empty.status_code == 401
    assert empty.json() == {"message": "Token is missing!"}


async def test_token_of_a_deleted_user_is_refused(app, client, new_customer):
    gone = await new_customer("soon_gone")
    token = gone.headers["Authorization"].removeprefix("Bearer ")
    await assert_accepted(client, token, gone.id)
    async with app.state.sessions.write() as session, session.begin():
        result = await session.execute(delete(User).where(User.id == gone.id))
        assert result.rowcount == 1
    await assert_refused(client, token)


async def test_a_token_accepted_before_is_refused_once_it_expires(client, customer, monkeypatch):
    # Verified claims are cached per token: the expiry must still be checked on every request.
    token = signed(claims(customer.id, exp=in_future(minutes=5)))
    await assert_accepted(client, token, customer.id)
    later = datetime.now(UTC) + timedelta(minutes=5, seconds=1)
    monkeypatch.setattr("loanapi.security.utcnow", lambda: later)
    await assert_refused(client, token)


async def test_token_of_a_disabled_user_is_refused_on_both_surfaces(client, admin, customer, agent):
    for caller in (customer, agent):
        token = caller.headers["Authorization"].removeprefix("Bearer ")
        await assert_accepted(client, token, caller.id)
        disabled = await client.post(
            f"/api/v1/admin/users/{caller.id}/disable", headers=admin.headers
        )
        assert disabled.status_code == 200, disabled.text
        await assert_refused(client, token)


async def test_token_of_a_rejected_agent_is_refused(app, client, admin):
    applicant = await register(client, "agent", "turned_down")
    token = app.state.codec.issue(user_id=applicant["id"], role="agent")
    rejected = await client.post(
        f"/api/v1/admin/agents/{applicant['id']}/reject", headers=admin.headers
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    await assert_refused(client, token)
    # The agent endpoints refuse it as well: 401 (not active), not 403.
    listed = await client.get("/api/v1/agent/loans", headers=bearer(token))
    assert listed.status_code == 401, listed.text
    legacy = await client.get("/loan_Requests_by_agent", headers=legacy_headers(token))
    assert legacy.status_code == 401, legacy.text
    assert legacy.json() == {"message": "Token is invalid!"}


async def test_token_of_an_approved_agent_that_was_disabled_and_enabled_works_again(
    client, admin, agent
):
    token = agent.headers["Authorization"].removeprefix("Bearer ")
    assert (
        await client.post(f"/api/v1/admin/users/{agent.id}/disable", headers=admin.headers)
    ).status_code == 200
    await assert_refused(client, token)
    enabled = await client.post(f"/api/v1/admin/users/{agent.id}/enable", headers=admin.headers)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["status"] == "active"
    await assert_accepted(client, token, agent.id)


async def test_a_role_claim_does_not_grant_the_role(client, customer, agent):
    """The role comes from the database row, not from the token: a forged claim gains nothing."""
    for caller in (customer, agent):
        token = signed(claims(caller.id, role="admin"))
        me = await client.get("/api/v1/auth/me", headers=bearer(token))
        assert me.status_code == 200, me.text
        assert me.json()["role"] != "admin"
        users = await client.get("/api/v1/admin/users", headers=bearer(token))
        assert users.status_code == 403, users.text
        assert_v1_error(users)
        legacy = await client.get("/all_users", headers=legacy_headers(token))
        assert legacy.status_code == 401, legacy.text
        assert legacy.json() == {"Message": "You are not authorized to open this page"}
    # And a customer's token claiming "agent" does not open the agent endpoints either.
    as_agent = signed(claims(customer.id, role="agent"))
    refused = await client.get("/api/v1/agent/loans", headers=bearer(as_agent))
    assert refused.status_code == 403, refused.text


# --- login throttling -------------------------------------------------------------------------


async def v1_token(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    form = {"username": username, "password": password}
    return await client.post("/api/v1/auth/token", data=form)


async def v1_basic(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", auth=(username, password))


async def legacy_login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/login", auth=(username, password))


LOGINS = {"v1_token": v1_token, "v1_basic": v1_basic, "legacy_login": legacy_login}


def assert_throttled(response: httpx.Response, *, window_minutes: int = 15) -> None:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= window_minutes * 60 + 1
    assert "token" not in response.json()
    assert "access_token" not in response.text
    if response.request.url.path.startswith("/api/v1"):
        assert_v1_error(response)
    else:
        assert_legacy_error(response)


def assert_logged_in(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("access_token") or body.get("token"), body


def assert_failed(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text


async def test_username_lock_holds_for_its_address_on_both_surfaces_only(app, make_app):
    """Failures lock a username from the address that made them, on every surface; its owner
    elsewhere logs in (issue 16: anyone could lock the admin out)."""
    throttled = await make_app(login_max_failures=3)
    async with (
        client_for(throttled) as local,
        client_from(throttled, OTHER_ADDRESS) as remote,
        client_from(throttled, THIRD_ADDRESS) as third,
    ):
        await register(local, "customer", "victim")
        await register(local, "customer", "bystander")
        # Three failures for one username from one address, on both surfaces.
        assert_failed(await v1_token(remote, "victim", "wrong-password"))
        assert_failed(await legacy_login(remote, "victim", "wrong-password"))
        assert_failed(await v1_basic(remote, "victim", "wrong-password"))
        # That address is refused for that username on every surface, the right password too.
        for login in LOGINS.values():
            assert_throttled(await login(remote, "victim", PASSWORD))
        assert_throttled(await remote.get("/login", auth=("victim", PASSWORD)))
        # The owner, from addresses without failures, logs in everywhere.
        for client in (local, third):
            for login in LOGINS.values():
                assert_logged_in(await login(client, "victim", PASSWORD))
        # Other usernames are unaffected from the failing address.
        for login in LOGINS.values():
            assert_logged_in(await login(remote, "bystander", PASSWORD))


async def test_address_limit_spans_usernames(app, make_app):
    throttled = await make_app(login_max_failures_per_address=5)
    async with (
        client_for(throttled) as local,
        client_from(throttled, OTHER_ADDRESS) as remote,
    ):
        await register(remote, "customer", "alice")
        # Five failures from 127.0.0.1, each for another username (none reaches its own limit).
        for n, login in enumerate([v1_token, v1_basic, legacy_login, v1_token, v1_basic]):
            assert_failed(await login(local, f"sprayed_{n}", "wrong-password"))
        # 127.0.0.1 is now refused for any username, with the right password too.
        for login in LOGINS.values():
            assert_throttled(await login(local, "alice", PASSWORD))
            assert_throttled(await login(local, "fresh_name", "whatever-password"))
        # Another address is unaffected, for the same user.
        for login in LOGINS.values():
            assert_logged_in(await login(remote, "alice", PASSWORD))


async def test_successful_logins_never_count_toward_the_address_limit(app, make_app):
    throttled = await make_app(login_max_failures_per_address=3)
    async with client_for(throttled) as client:
        await register(client, "customer", "regular")
        for _ in range(4):
            for login in LOGINS.values():
                assert_logged_in(await login(client, "regular", PASSWORD))
        for n in range(2):
            assert_failed(await v1_token(client, f"typo_{n}", "wrong-password"))
        assert_logged_in(await legacy_login(client, "regular", PASSWORD))
        assert_failed(await legacy_login(client, "typo_2", "wrong-password"))
        assert_throttled(await v1_token(client, "regular", PASSWORD))


async def test_legacy_login_is_throttled_per_username(app, make_app):
    throttled = await make_app(login_max_failures=3)
    async with client_for(throttled) as client:
        await register(client, "customer", "oldclient")
        await register(client, "customer", "otherclient")
        for _ in range(3):
            response = await legacy_login(client, "oldclient", "wrong-password")
            assert response.status_code == 401
            assert response.text == "Could not verify"
        blocked = await legacy_login(client, "oldclient", PASSWORD)
        assert_throttled(blocked)
        assert set(blocked.json()) == {"Message"}
        assert_throttled(await client.get("/login", auth=("oldclient", PASSWORD)))
        assert_throttled(await v1_token(client, "oldclient", PASSWORD))
        other = await legacy_login(client, "otherclient", PASSWORD)
        assert other.status_code == 200, other.text
        assert list(other.json()) == ["token"]


# --- registration throttling ------------------------------------------------------------------

REGISTRATIONS = [
    ("/api/v1/auth/register/customer", 201),
    ("/api/v1/auth/register/agent", 201),
    ("/register_Customer", 200),
    ("/register_Agent", 200),
]


def signup(username: str) -> dict[str, str]:
    return {"username": username, "email": f"{username}@example.com", "password": PASSWORD}


async def usernames(client: httpx.AsyncClient, admin: Caller) -> set[str]:
    response = await client.get("/api/v1/admin/users?limit=200", headers=admin.headers)
    assert response.status_code == 200, response.text
    return {user["username"] for user in response.json()["items"]}


async def test_registration_is_throttled_per_address(app, client, admin, make_app):
    throttled = await make_app(register_max_per_address=3)
    async with (
        client_for(throttled) as local,
        client_from(throttled, OTHER_ADDRESS) as remote,
    ):
        for n, (path, status) in enumerate(REGISTRATIONS[:3]):
            response = await local.post(path, json=signup(f"signup_{n}"))
            assert response.status_code == status, response.text
        # The fourth from the same address, on either surface, is refused and creates nothing.
        for n, (path, _status) in enumerate(REGISTRATIONS):
            refused = await local.post(path, json=signup(f"refused_{n}"))
            assert_throttled(refused, window_minutes=60)
        assert not {name for name in await usernames(client, admin) if name.startswith("refused")}
        # Another address is unaffected (it has its own three).
        for n, (path, status) in enumerate(REGISTRATIONS[1:], start=1):
            response = await remote.post(path, json=signup(f"remote_{n}"))
            assert response.status_code == status, response.text
    names = await usernames(client, admin)
    assert {"signup_0", "signup_1", "signup_2", "remote_1", "remote_3"} <= names
    assert ADMIN["username"] in names
