"""Shared helpers of the security tests: the route inventory, callers, leak checks, counts."""

from collections.abc import Iterable
from typing import Any

import httpx
from starlette.routing import BaseRoute, Mount

from tests.conftest import PASSWORD

PROBLEM_JSON = "application/problem+json"
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE"})

# Served by the framework for the documentation, not by loanapi: the only routes that are not in
# the OpenAPI document, listed one by one so that a new undocumented route is noticed.
DOCS_ROUTES = frozenset(
    {
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        ("MOUNT", "/static-offline-docs"),
    }
)

# Words that mean an internal error, a query or a driver leaked into a response.
LEAKS = ("Traceback", "sqlalchemy", "SELECT", "asyncpg", "sqlite3", 'File "')


def documented_routes(app: Any) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation in the app's OpenAPI document."""
    paths = app.openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method.upper() in HTTP_METHODS
    }


def legacy_routes(app: Any) -> set[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "legacy" in operation.get("tags", [])
    }


def _route_entries(route: BaseRoute) -> Iterable[tuple[str, str]]:
    # FastAPI >= 0.16x keeps included routers as one entry each (`_IncludedRouter`); their
    # routes, with the prefixes applied, come from `effective_route_contexts()`.
    contexts = getattr(route, "effective_route_contexts", None)
    if contexts is not None:
        for context in contexts():
            original = context.original_route
            for method in getattr(original, "methods", None) or {"MOUNT"}:
                if method != "HEAD":
                    yield method, context.path
        return
    if isinstance(route, Mount):
        yield "MOUNT", route.path
        return
    path = getattr(route, "path", None)
    methods = getattr(route, "methods", None)
    assert isinstance(path, str), f"a route without a path: {route!r}"
    assert methods, f"a route without methods: {route!r}"
    for method in methods:
        if method != "HEAD":
            yield method, path


def served_routes(app: Any) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route the app serves, included routers flattened."""
    return {entry for route in app.routes for entry in _route_entries(route)}


def legacy_headers(token: str) -> dict[str, str]:
    return {"x-access-token": token}


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def assert_no_leak(response: httpx.Response) -> None:
    for word in LEAKS:
        assert word not in response.text, (word, response.request.url, response.text[:500])
    lowered = response.text.lower()
    for word in ("traceback", "sqlalchemy", "asyncpg", "sqlite3", "psycopg"):
        assert word not in lowered, (word, response.request.url, response.text[:500])


def assert_v1_error(response: httpx.Response) -> dict[str, Any]:
    """A /api/v1 error: RFC 9457 problem details with the response's status."""
    assert response.headers.get("content-type", "").startswith(PROBLEM_JSON), (
        response.status_code,
        response.headers.get("content-type"),
        response.text[:300],
    )
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == response.status_code, body
    return dict(body)


def assert_legacy_error(response: httpx.Response) -> dict[str, Any]:
    """A legacy error: a JSON object with one key, `Message` (or `message` for token errors)."""
    assert response.headers.get("content-type", "").startswith("application/json"), (
        response.status_code,
        response.headers.get("content-type"),
        response.text[:300],
    )
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) in ({"Message"}, {"message"}), body
    assert isinstance(next(iter(body.values())), str), body
    return dict(body)


async def _count_pages(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items


async def database_state(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Any:
    """What the admin API shows of users, loans and products: compared before and after."""
    users = await _count_pages(client, "/api/v1/admin/users", admin_headers)
    loans = await _count_pages(client, "/api/v1/admin/loans", admin_headers)
    products = (await client.get("/api/v1/loan-products")).json()
    return {
        "user_count": len(users),
        "loan_count": len(loans),
        "users": sorted((u["id"], u["username"], u["status"]) for u in users),
        "loans": sorted(
            (loan["id"], loan["version"], loan["status"], loan["principal"]) for loan in loans
        ),
        "products": products,
    }


async def register_user(client: httpx.AsyncClient, role: str, username: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/auth/register/{role}",
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def requested_loan(
    client: httpx.AsyncClient, customer_headers: dict[str, str], agent_headers: dict[str, str]
) -> dict[str, Any]:
    """A loan of the customer, requested by the agent: every later state is reachable."""
    created = await client.post(
        "/api/v1/customer/loans",
        json={"loan_type": "home_loan", "principal": "10000", "tenure_months": 12},
        headers=customer_headers,
    )
    assert created.status_code == 201, created.text
    loan_id = created.json()["id"]
    requested = await client.post(f"/api/v1/agent/loans/{loan_id}/request", headers=agent_headers)
    assert requested.status_code == 200, requested.text
    assert requested.json()["status"] == "requested"
    return dict(requested.json())
