"""Accounts against abuse (issue 16): Basic credentials in UTF-8, token errors that say why,
lockouts an attacker cannot turn on the owner, logout, password change and reset."""

import asyncio
import base64
import time
import uuid
from typing import Any

import httpx
import pytest
from jose import jwt

from loanapi.config import Settings
from loanapi.users.service import slowdown
from tests.conftest import ADMIN, PASSWORD, TEST_SECRET, bearer, client_for, register, token_for
from tests.helpers import assert_field_error, assert_problem

ACCENTED = "Crème brûlée, s'il vous plaît 9"


def basic(username: str, password: str, encoding: str = "utf-8") -> dict[str, str]:
    raw = f"{username}:{password}".encode(encoding)
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# --- HTTP Basic in UTF-8 (RFC 7617) -----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/login"])
async def test_basic_credentials_with_non_ascii_passwords_log_in(client, path, encoding):
    await register(client, "customer", "amelie", password=ACCENTED)
    form = await client.post(
        "/api/v1/auth/token", data={"username": "amelie", "password": ACCENTED}
    )
    assert form.status_code == 200, form.text
    response = await client.post(path, headers=basic("amelie", ACCENTED, encoding))
    assert response.status_code == 200, response.text
    token = response.json().get("access_token") or response.json()["token"]
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.json()["username"] == "amelie"


async def test_basic_credentials_decoded_as_utf8_do_not_match_another_password(client):
    await register(client, "customer", "amelie", password=ACCENTED)
    wrong = ACCENTED.replace("è", "e")
    response = await client.post("/api/v1/auth/login", headers=basic("amelie", wrong))
    assert_problem(response, 401)


NO_COLON = "Basic " + base64.b64encode(b"no-colon").decode()


@pytest.mark.parametrize("header", ["Basic !!!notbase64", NO_COLON])
async def test_malformed_basic_credentials_are_401(client, header):
    response = await client.post("/api/v1/auth/login", headers={"Authorization": header})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Basic")


# --- lockout per (username, address); slowdown per username; unlock ---------------------------


def client_from(app: Any, host: str) -> httpx.AsyncClient:
    return client_for(app, client=(host, 4321))


async def token_form(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    )


async def test_an_attacker_failing_50_times_does_not_lock_the_owner_out(app, client, admin):
    """Default settings: 10 failures lock the username from the attacker's address only."""
    await register(client, "customer", "owner")
    async with client_from(app, "203.0.113.66") as attacker:
        statuses = [
            (await token_form(attacker, "owner", f"guess-{n}")).status_code for n in range(50)
        ]
        assert statuses == [401] * 10 + [429] * 40
        locked = await token_form(attacker, "owner", PASSWORD)
        assert_problem(locked, 429)
        assert "from this address" in locked.json()["detail"]
    began = time.monotonic()
    assert (await token_form(client, "owner", PASSWORD)).status_code == 200
    assert time.monotonic() - began < 0.5  # 10 failures: far below the slowdown
    admin_login = await client.post(
        "/api/v1/auth/login", auth=(ADMIN["username"], ADMIN["password"])
    )
    assert admin_login.status_code == 200


async def test_many_addresses_slow_a_username_down_without_locking_its_owner(make_app):
    spread = await make_app(login_slowdown_after=3)
    async with client_for(spread) as owner:
        await register(owner, "customer", "target")
        for n in range(4):
            async with client_from(spread, f"198.51.100.{n + 1}") as bot:
                assert (await token_form(bot, "target", "wrong-guess")).status_code == 401
        began = time.monotonic()
        assert (await token_form(owner, "target", PASSWORD)).status_code == 200
        assert time.monotonic() - began >= 0.5


def test_the_slowdown_grows_and_is_capped():
    settings = Settings(_env_file=None, login_slowdown_after=50)  # type: ignore[call-arg]
    delays = [slowdown(n, settings) for n in (0, 49, 50, 59, 60, 70, 80, 100, 10_000)]
    assert delays == [0.0, 0.0, 0.5, 0.5, 1.0, 2.0, 4.0, 10.0, 10.0]


async def test_an_admin_unlocks_a_user_for_every_address(app, client, admin, customer):
    async with client_from(app, "203.0.113.9") as remote:
        for _ in range(10):
            assert (await token_form(remote, customer.username, "wrong-guess")).status_code == 401
        assert (await token_form(remote, customer.username, PASSWORD)).status_code == 429
        refused = await client.post(
            f"/api/v1/admin/users/{customer.id}/unlock", headers=customer.headers
        )
        assert_problem(refused, 403)
        unlocked = await client.post(
            f"/api/v1/admin/users/{customer.id}/unlock", headers=admin.headers
        )
        assert unlocked.status_code == 200, unlocked.text
        assert unlocked.json()["username"] == customer.username
        assert (await token_form(remote, customer.username, PASSWORD)).status_code == 200
    missing = await client.post("/api/v1/admin/users/999999/unlock", headers=admin.headers)
    assert_problem(missing, 404)


# --- token errors (RFC 6750) ------------------------------------------------------------------


def assert_token_error(response: httpx.Response, description: str) -> None:
    problem = assert_problem(response, 401)
    assert problem["detail"] == description
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{description}"'
    )


async def test_token_errors_say_why(app, client, admin, customer):
    me = "/api/v1/auth/me"
    now = int(time.time())
    expired = jwt.encode(
        {
            "sub": str(customer.id),
            "role": "customer",
            "iat": now - 7200,
            "exp": now - 3600,
            "jti": uuid.uuid4().hex,
        },
        TEST_SECRET,
        algorithm="HS256",
    )
    assert_token_error(await client.get(me, headers=bearer(expired)), "The token has expired")
    forged = jwt.encode({"sub": str(customer.id)}, "another-key" * 4, algorithm="HS256")
    assert_token_error(await client.get(me, headers=bearer(forged)), "The token is invalid")
    assert_token_error(await client.get(me, headers=bearer("not.a.token")), "The token is invalid")
    disabled = await client.post(
        f"/api/v1/admin/users/{customer.id}/disable", headers=admin.headers
    )
    assert disabled.status_code == 200
    assert_token_error(await client.get(me, headers=customer.headers), "The account is disabled")
    # no token at all: a challenge without an error code (RFC 6750 section 3.1)
    missing = await client.get(me)
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    # the original's clients keep the original's words
    legacy = await client.get("/getloans", headers={"x-access-token": expired})
    assert legacy.json() == {"message": "Token is invalid!"}


# --- logout -----------------------------------------------------------------------------------


async def test_logout_ends_this_token_only_in_every_process(app, client, customer, make_app):
    other_token = await token_for(client, customer.username)
    other_app = await make_app()
    async with client_for(other_app) as elsewhere:
        assert (await elsewhere.get("/api/v1/auth/me", headers=customer.headers)).status_code == 200
        out = await client.post("/api/v1/auth/logout", headers=customer.headers)
        assert out.status_code == 204, out.text
        for each in (client, elsewhere):
            gone = await each.get("/api/v1/auth/me", headers=customer.headers)
            assert_token_error(gone, "The token has been revoked")
            still = await each.get("/api/v1/auth/me", headers=bearer(other_token))
            assert still.status_code == 200
    again = await client.post("/api/v1/auth/logout", headers=customer.headers)
    assert_token_error(again, "The token has been revoked")
    assert_problem(await client.post("/api/v1/auth/logout"), 401)


# --- password change --------------------------------------------------------------------------


async def change(client: httpx.AsyncClient, headers: dict[str, str], current: str, new: str) -> Any:
    body = {"current_password": current, "new_password": new}
    return await client.post("/api/v1/auth/password", json=body, headers=headers)


async def test_changing_the_password_revokes_every_other_token(client, customer):
    other_token = await token_for(client, customer.username)
    changed = await change(client, customer.headers, PASSWORD, "fresh-horse-42-lamp")
    assert changed.status_code == 204, changed.text
    me = await client.get("/api/v1/auth/me", headers=customer.headers)
    assert me.status_code == 200  # the token that changed it goes on
    revoked = await client.get("/api/v1/auth/me", headers=bearer(other_token))
    assert_token_error(revoked, "The token has been revoked")
    assert (await token_form(client, customer.username, PASSWORD)).status_code == 401
    # a login in the same second as the change is not revoked with the older tokens
    new_token = await token_for(client, customer.username, "fresh-horse-42-lamp")
    assert (await client.get("/api/v1/auth/me", headers=bearer(new_token))).status_code == 200


@pytest.mark.parametrize(
    ("current", "new", "field", "words"),
    [
        ("not-my-password", "fresh-horse-42-lamp", "current_password", "not your current"),
        (PASSWORD, "short", "new_password", "at least 8"),
        (PASSWORD, "password123", "new_password", "most common"),
        (PASSWORD, "Chuck_Change", "new_password", "username"),
        (PASSWORD, "chuck_change@example.com", "new_password", "e-mail"),
        (PASSWORD, PASSWORD, "new_password", "differ"),
    ],
)
async def test_a_refused_password_change_says_why_and_changes_nothing(
    client, new_customer, current, new, field, words
):
    user = await new_customer("chuck_change")
    refused = await change(client, user.headers, current, new)
    problem = assert_field_error(refused, "body", field)
    assert words in problem["detail"], problem
    assert "Value error" not in problem["detail"]
    assert (await client.get("/api/v1/auth/me", headers=user.headers)).status_code == 200
    assert (await token_form(client, user.username, PASSWORD)).status_code == 200


async def test_wrong_current_passwords_count_as_failed_logins(make_app):
    strict = await make_app(login_max_failures=3)
    async with client_for(strict) as client:
        await register(client, "customer", "stolen")
        token = await token_for(client, "stolen")
        for _ in range(3):
            refused = await change(client, bearer(token), "guess-again", "fresh-horse-42-lamp")
            assert refused.status_code == 422
        throttled = await change(client, bearer(token), PASSWORD, "fresh-horse-42-lamp")
        assert_problem(throttled, 429)
        assert (await token_form(client, "stolen", PASSWORD)).status_code == 429


# --- reset by an admin ------------------------------------------------------------------------


async def test_a_reset_password_must_be_changed_before_anything_else(client, admin, customer):
    reset = await client.post(
        f"/api/v1/admin/users/{customer.id}/reset-password", headers=admin.headers
    )
    assert reset.status_code == 200, reset.text
    assert reset.headers["cache-control"] == "no-store"
    body = reset.json()
    assert body["user"]["id"] == customer.id
    temporary = body["temporary_password"]
    assert len(temporary) >= 16
    revoked = await client.get("/api/v1/auth/me", headers=customer.headers)
    assert_token_error(revoked, "The token has been revoked")
    assert (await token_form(client, customer.username, PASSWORD)).status_code == 401
    token = await token_for(client, customer.username, temporary)
    for method, path in (("GET", "/api/v1/auth/me"), ("GET", "/api/v1/customer/loans")):
        blocked = await client.request(method, path, headers=bearer(token))
        problem = assert_problem(blocked, 403)
        assert "POST /api/v1/auth/password" in problem["detail"]
    changed = await change(client, bearer(token), temporary, "my-own-choice-77")
    assert changed.status_code == 204, changed.text
    assert (await client.get("/api/v1/customer/loans", headers=bearer(token))).status_code == 200
    assert (await token_form(client, customer.username, "my-own-choice-77")).status_code == 200


async def test_only_admins_reset_passwords(client, admin, agent, customer):
    for caller in (agent, customer):
        refused = await client.post(
            f"/api/v1/admin/users/{admin.id}/reset-password", headers=caller.headers
        )
        assert_problem(refused, 403)
    missing = await client.post("/api/v1/admin/users/999999/reset-password", headers=admin.headers)
    assert_problem(missing, 404)
    assert (await client.get("/api/v1/auth/me", headers=admin.headers)).status_code == 200


# --- passwords at registration ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "words"),
    [
        ("newbie", "password123", "most common"),
        ("newbie", "iloveyou", "most common"),
        ("newbie_user", "NEWBIE_USER", "username"),
        ("newbie", "newbie@example.com", "e-mail"),
    ],
)
@pytest.mark.parametrize("role", ["customer", "agent"])
async def test_registration_refuses_guessable_passwords(client, role, username, password, words):
    body = {"username": username, "email": f"{username}@example.com", "password": password}
    refused = await client.post(f"/api/v1/auth/register/{role}", json=body)
    problem = assert_field_error(refused, "body", "password")
    assert words in problem["detail"]
    assert (await token_form(client, username, password)).status_code == 401


async def test_passwords_from_8_to_128_characters_of_any_kind_are_accepted(client):
    short = {"username": "shorty", "email": "shorty@example.com", "password": "k9$Tq2z"}
    problem = assert_field_error(
        await client.post("/api/v1/auth/register/customer", json=short), "body", "password"
    )
    assert "at least 8" in problem["detail"]
    too_long = {**short, "password": "x" * 129}
    assert_field_error(
        await client.post("/api/v1/auth/register/customer", json=too_long), "body", "password"
    )
    for n, password in enumerate(["k9$Tq2zW", "q" * 128, "  spaces inside  ", "пароль-для-входа"]):
        body = {"username": f"fine{n}", "email": f"fine{n}@example.com", "password": password}
        created = await client.post("/api/v1/auth/register/customer", json=body)
        assert created.status_code == 201, created.text
        assert (await token_form(client, f"fine{n}", password)).status_code == 200


async def test_concurrent_logouts_of_one_token_all_end_well(client, customer):
    logouts = [client.post("/api/v1/auth/logout", headers=customer.headers) for _ in range(8)]
    statuses = sorted(response.status_code for response in await asyncio.gather(*logouts))
    assert statuses[0] == 204
    assert set(statuses) <= {204, 401}
    gone = await client.get("/api/v1/auth/me", headers=customer.headers)
    assert_token_error(gone, "The token has been revoked")
