"""Cross-cutting behaviour: problem details, request ids, limits, probes, no leaked secrets."""

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import ADMIN, PASSWORD, bearer, client_for, token_for

PROBLEM_KEYS = {"type", "title", "status", "detail"}
PROBLEM_JSON = "application/problem+json"
UNREACHABLE_DB = "postgresql+asyncpg://postgres@127.0.0.1:1/nope"
ONE_MIB = 1024 * 1024


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert body["type"]
    assert isinstance(body["title"], str)
    assert body["title"]
    return dict(body)


# --- problem details --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v1/nope", "/api/v1/admin/nothing-here", "/api/v2/auth/me"]
)
async def test_unknown_route_is_404_problem(client, path):
    response = await client.get(path)
    body = assert_problem(response, 404)
    assert set(body) == PROBLEM_KEYS
    assert body["title"] == "Not Found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/auth/token", "POST"),
        ("GET", "/api/v1/auth/register/customer", "POST"),
        ("POST", "/api/v1/auth/me", "GET"),
        ("DELETE", "/api/v1/admin/users", "GET"),
        ("PUT", "/healthz", "GET"),
    ],
)
async def test_wrong_method_is_405_problem(client, method, path, allowed):
    response = await client.request(method, path)
    body = assert_problem(response, 405)
    assert set(body) == PROBLEM_KEYS
    assert allowed in response.headers["allow"]


async def test_validation_error_lists_each_bad_field(client):
    response = await client.post(
        "/api/v1/auth/register/customer",
        json={"username": "x", "email": "nope", "password": PASSWORD, "extra": 1},
    )
    body = assert_problem(response, 422)
    assert set(body) == PROBLEM_KEYS | {"errors"}
    assert isinstance(body["detail"], str)
    assert body["detail"]
    errors = body["errors"]
    assert isinstance(errors, list)
    for error in errors:
        assert isinstance(error["loc"], list)
        assert isinstance(error["msg"], str)
    locations = {tuple(error["loc"]) for error in errors}
    assert ("body", "username") in locations
    assert ("body", "email") in locations
    assert ("body", "extra") in locations


async def test_malformed_json_is_422_problem(client):
    response = await client.post(
        "/api/v1/auth/register/customer",
        content=b'{"username": "abc", ',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert isinstance(body["errors"], list)
    assert all("loc" in error for error in body["errors"])


async def test_validation_errors_do_not_echo_input(client):
    secret = "hunter2-but-longer-than-128-" + "z" * 120
    response = await client.post(
        "/api/v1/auth/register/customer",
        json={"username": "echo", "email": "echo@example.com", "password": secret},
    )
    body = assert_problem(response, 422)
    assert any(error["loc"] == ["body", "password"] for error in body["errors"])
    assert secret not in response.text
    assert "hunter2" not in response.text


async def test_401_403_409_are_problems(client, admin, customer):
    unauthorized = await client.get("/api/v1/admin/users")
    assert_problem(unauthorized, 401)
    forbidden = await client.get("/api/v1/admin/users", headers=customer.headers)
    assert_problem(forbidden, 403)
    conflict = await client.post(
        "/api/v1/auth/register/customer",
        json={"username": customer.username, "email": "x@example.com", "password": PASSWORD},
    )
    assert_problem(conflict, 409)


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz"), ("GET", "/api/v1/auth/me"), ("GET", "/missing"), ("POST", "/healthz")],
)
async def test_request_id_is_echoed(client, method, path):
    response = await client.request(method, path, headers={"X-Request-ID": "abc-123.def_456"})
    assert response.headers["x-request-id"] == "abc-123.def_456"
    assert response.status_code in (200, 401, 404, 405)
    if response.status_code != 200:
        assert_problem(response, response.status_code)
    else:
        assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/healthz"), ("GET", "/api/v1/auth/me"), ("GET", "/missing")]
)
async def test_request_id_is_generated(client, method, path):
    first = await client.request(method, path)
    second = await client.request(method, path)
    assert first.status_code == second.status_code
    assert first.status_code in (200, 401, 404)
    one, two = first.headers["x-request-id"], second.headers["x-request-id"]
    assert one
    assert two
    assert one != two
    assert re.fullmatch(r"[A-Za-z0-9._:\-]{8,128}", one)


async def test_request_id_is_on_successful_api_calls(client, customer):
    response = await client.get(
        "/api/v1/auth/me", headers={**customer.headers, "X-Request-ID": "me-call-1"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["username"] == customer.username
    assert response.headers["x-request-id"] == "me-call-1"
    assert response.headers.get_list("x-request-id") == ["me-call-1"]


async def test_a_dangerous_request_id_is_replaced(client):
    bad = "evil\tvalue with spaces <script>"
    response = await client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]
    assert response.headers["x-request-id"] != bad
    assert "<" not in response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/readyz", 200),
        ("GET", "/api/v1/auth/me", 401),
        ("GET", "/nothing", 404),
        ("GET", "/api/v1/auth/token", 405),
        ("POST", "/api/v1/auth/register/customer", 422),
    ],
)
async def test_nosniff_on_every_response(client, method, path, status):
    response = await client.request(method, path)
    assert response.status_code == status, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    if status >= 400:
        assert_problem(response, status)


# --- limits -----------------------------------------------------------------------------------


def oversized_registration() -> bytes:
    body = {
        "username": "bigbody",
        "email": "big@example.com",
        "password": PASSWORD,
        "phone": "1" * (ONE_MIB + 10),
    }
    data = json.dumps(body).encode()
    assert len(data) > ONE_MIB
    return data


async def assert_not_registered(client: Any, admin_headers: dict[str, str]) -> None:
    listed = await client.get("/api/v1/admin/users", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    assert [u["username"] for u in listed.json()["items"]] == [ADMIN["username"]]


async def test_body_over_one_mib_is_413(client, admin):
    response = await client.post(
        "/api/v1/auth/register/customer",
        content=oversized_registration(),
        headers={"content-type": "application/json", "X-Request-ID": "big-body-1"},
    )
    assert_problem(response, 413)
    assert response.headers.get("x-request-id") == "big-body-1"
    assert response.headers.get("x-content-type-options") == "nosniff"
    await assert_not_registered(client, admin.headers)


async def test_streamed_body_over_one_mib_is_413(client, admin):
    data = oversized_registration()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    response = await client.post(
        "/api/v1/auth/register/customer",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 413)
    await assert_not_registered(client, admin.headers)


async def test_body_just_under_the_limit_is_not_413(client):
    body = {
        "username": "nearly",
        "email": "nearly@example.com",
        "password": PASSWORD,
        "phone": "1" * (ONE_MIB - 200),
    }
    data = json.dumps(body).encode()
    assert len(data) < ONE_MIB
    response = await client.post(
        "/api/v1/auth/register/customer",
        content=data,
        headers={"content-type": "application/json"},
    )
    # Under the size limit the request reaches validation: the phone is far too long.
    body = assert_problem(response, 422)
    assert any(error["loc"] == ["body", "phone"] for error in body["errors"])


# --- unexpected errors ------------------------------------------------------------------------


async def test_unexpected_exception_is_a_500_problem_without_traceback(make_app):
    broken = await make_app()

    @broken.get("/boom-for-test")
    async def boom() -> None:
        raise RuntimeError("secret internal detail xyzzy")

    async with client_for(broken) as client:
        response = await client.get("/boom-for-test", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(response, 500)
    assert set(body) == PROBLEM_KEYS
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    for leak in ("Traceback", "RuntimeError", "xyzzy", 'File "', "boom"):
        assert leak not in response.text


async def test_unexpected_exception_in_a_dependency_is_a_500_problem(make_app):
    from fastapi import Depends

    broken = await make_app()

    async def failing_dependency() -> None:
        raise ValueError("dependency detail plugh")

    @broken.post("/boom-dependency", dependencies=[Depends(failing_dependency)])
    async def boom() -> dict[str, str]:
        return {"unreachable": "yes"}

    async with client_for(broken) as client:
        response = await client.post("/boom-dependency", json={})
    body = assert_problem(response, 500)
    assert "plugh" not in response.text
    assert "Traceback" not in response.text
    assert body["detail"] is None or "plugh" not in body["detail"]


# --- probes -----------------------------------------------------------------------------------


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz(client):
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_database_is_unreachable(make_app):
    unreachable = await make_app(database_url=UNREACHABLE_DB)
    async with client_for(unreachable) as client:
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
    body = assert_problem(ready, 503)
    assert set(body) == PROBLEM_KEYS
    assert "127.0.0.1:1" not in ready.text
    assert "nope" not in ready.text
    # Liveness does not depend on the database.
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}


async def test_docs_and_openapi_are_served(client):
    schema = await client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/auth/token" in paths
    assert "/api/v1/admin/users" in paths
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


# --- no secrets in any body -------------------------------------------------------------------

FORBIDDEN = ("password", "pbkdf2", "password_hash", "$pbkdf2-sha256$")


def assert_no_secrets(response: Any) -> None:
    text = response.text.lower()
    for word in FORBIDDEN:
        assert word not in text, (response.request.url, word, response.text)


async def test_no_response_body_mentions_passwords_or_hashes(client):
    responses = []
    for role, name in [("customer", "sweep_c"), ("agent", "sweep_a"), ("agent", "sweep_p")]:
        response = await client.post(
            f"/api/v1/auth/register/{role}",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        )
        assert response.status_code == 201, response.text
        responses.append(response)
    admin_token = await token_for(client, ADMIN["username"], ADMIN["password"])
    admin = bearer(admin_token)
    users = await client.get("/api/v1/admin/users", headers=admin)
    assert users.status_code == 200
    agent_id = next(u["id"] for u in users.json()["items"] if u["username"] == "sweep_a")
    approved = await client.post(f"/api/v1/admin/agents/{agent_id}/approve", headers=admin)
    assert approved.status_code == 200
    responses.append(approved)

    token_response = await client.post(
        "/api/v1/auth/token", data={"username": "sweep_c", "password": PASSWORD}
    )
    assert token_response.status_code == 200
    responses.append(token_response)
    customer = bearer(token_response.json()["access_token"])
    agent = bearer(await token_for(client, "sweep_a"))

    for path, headers in [
        ("/api/v1/admin/users", admin),
        ("/api/v1/admin/customers", admin),
        ("/api/v1/admin/agents", admin),
        ("/api/v1/admin/agents?status=pending", admin),
        ("/api/v1/admin/agent-applications", admin),
        ("/api/v1/auth/me", admin),
        ("/api/v1/auth/me", customer),
        ("/api/v1/auth/me", agent),
        ("/api/v1/agent/customers", agent),
    ]:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        responses.append(response)
    users_after = await client.get("/api/v1/admin/users", headers=admin)
    assert len(users_after.json()["items"]) == 4

    disable = await client.post(
        f"/api/v1/admin/users/{users_after.json()['items'][-2]['id']}/disable", headers=admin
    )
    assert disable.status_code == 200
    assert disable.json()["username"] == "sweep_c"
    responses.append(disable)

    assert len(responses) == 15
    for response in responses:
        assert_no_secrets(response)

    # Error bodies may say "username or password", but never carry a hash or the password.
    errors = [
        await client.get("/api/v1/auth/me", headers=customer),
        await client.post("/api/v1/auth/token", data={"username": "sweep_c", "password": "bad"}),
        await client.post("/api/v1/auth/token", data={"username": "sweep_c", "password": PASSWORD}),
        await client.post("/api/v1/auth/login", auth=("sweep_p", PASSWORD)),
        await client.post(
            "/api/v1/auth/register/customer",
            json={"username": "sweep_c", "email": "dup@example.com", "password": PASSWORD},
        ),
    ]
    assert [r.status_code for r in errors] == [401, 401, 403, 403, 409]
    for response in errors:
        text = response.text.lower()
        assert "pbkdf2" not in text
        assert "password_hash" not in text
        assert PASSWORD not in response.text
