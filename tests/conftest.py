"""Test wiring: the whole suite runs once on SQLite and once on PostgreSQL.

Each database is migrated with Alembic once per session; after every test its tables are emptied
and the rows the migrations seeded are put back, so tests are isolated but cheap.
"""

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from loanapi import migrate
from loanapi.app import bootstrap_admin, close_databases, create_app
from loanapi.config import Settings
from loanapi.models import load_all
from loanapi.orm import Base

load_all()

POSTGRES_URL = os.environ.get("LOANAPI_TEST_POSTGRES_URL", "")
ADMIN = {"username": "admin", "password": "admin-password-1", "email": "admin@example.com"}
PASSWORD = "s3cret-pass"
TEST_SECRET = secrets.token_urlsafe(48)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("CI") and not POSTGRES_URL:
        raise pytest.UsageError("CI requires PostgreSQL: LOANAPI_TEST_POSTGRES_URL is not set")


@dataclass
class Database:
    name: str
    url: str
    seed: dict[str, list[dict[str, Any]]]

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


def _create_postgres_database() -> tuple[str, Callable[[], None]]:
    base = make_url(POSTGRES_URL)
    name = f"loanapi_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(
            host=base.host,
            port=base.port or 5432,
            user=base.username,
            password=base.password,
            database=base.database or "postgres",
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    return url, lambda: asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _read_seed(url: str) -> dict[str, list[dict[str, Any]]]:
    """Rows the migrations inserted (loan products, ...), to restore after each test."""

    async def read() -> dict[str, list[dict[str, Any]]]:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url)
        async with engine.connect() as conn:

            def load(sync_conn: Any) -> dict[str, list[dict[str, Any]]]:
                return {
                    table.name: [dict(row._mapping) for row in sync_conn.execute(table.select())]
                    for table in Base.metadata.sorted_tables
                }

            seed = await conn.run_sync(load)
        await engine.dispose()
        return seed

    return asyncio.run(read())


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    if request.param == "sqlite":
        path = Path(tmp_path_factory.mktemp("db")) / "loanapi.db"
        url, drop = f"sqlite+aiosqlite:///{path}", lambda: None
    else:
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL not available (set LOANAPI_TEST_POSTGRES_URL)")
        url, drop = _create_postgres_database()
    try:
        migrate.upgrade(url, configure_logging=False)
        yield Database(request.param, url, _read_seed(url))
    finally:
        drop()


def make_settings(database: Database, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database.url,
        "secret_key": TEST_SECRET,
        "pbkdf2_rounds": 1000,
        "admin_username": ADMIN["username"],
        "admin_password": ADMIN["password"],
        "admin_email": ADMIN["email"],
        "db_pool_size": 10,  # two pools per app: the suite stays well under max_connections (100)
        "register_max_per_address": 10_000,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


async def _reset(app: Any, database: Database) -> None:
    engine = app.state.engine
    ordered = Base.metadata.sorted_tables
    async with engine.begin() as conn:
        if database.is_sqlite:
            for table in reversed(ordered):
                await conn.execute(table.delete())
        else:
            names = ", ".join(f'"{t.name}"' for t in ordered)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        for table in ordered:
            if rows := database.seed.get(table.name):
                await conn.execute(table.insert(), rows)


@pytest.fixture(scope="session")
async def shared_app(database: Database) -> AsyncIterator[Any]:
    app = create_app(make_settings(database))
    yield app
    await close_databases(app)


@pytest.fixture
async def app(shared_app: Any, database: Database) -> Any:
    """The app on an emptied database holding only the seeded rows and the first admin."""
    await _reset(shared_app, database)
    await bootstrap_admin(shared_app)
    return shared_app


@pytest.fixture
async def make_app(app: Any, database: Database) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Another app with its own settings (throttling limits, ...) on the same test database."""
    created: list[Any] = []

    async def factory(**overrides: Any) -> Any:
        new_app = create_app(make_settings(database, **overrides))
        created.append(new_app)
        return new_app

    yield factory
    for each in created:
        await close_databases(each)


SECRET_KEY_WORDS = ("password", "hash", "secret")


def _secret_keys(body: Any, path: str = "") -> list[str]:
    """Keys anywhere in a JSON body that look like they hold a credential."""
    if isinstance(body, dict):
        found = [f"{path}.{key}" for key in body if any(w in key.lower() for w in SECRET_KEY_WORDS)]
        return found + [
            k for key, value in body.items() for k in _secret_keys(value, f"{path}.{key}")
        ]
    if isinstance(body, list):
        return [k for i, value in enumerate(body) for k in _secret_keys(value, f"{path}[{i}]")]
    return []


def _shown_once(response: httpx.Response) -> str | None:
    """The one credential a response may carry: a webhook endpoint's signing secret when it is
    created or rotated, a temporary password when an admin resets one."""
    path = response.request.url.path
    if not response.is_success or response.request.method != "POST":
        return None
    if path == "/api/v1/admin/webhooks" or (
        path.startswith("/api/v1/admin/webhooks/") and path.endswith("/rotate-secret")
    ):
        return ".secret"
    if path.startswith("/api/v1/admin/users/") and path.endswith("/reset-password"):
        return ".temporary_password"
    return None


async def no_secrets_in(response: httpx.Response) -> None:
    """Every response of the suite is swept: no password, hash or signing key ever leaves."""
    await response.aread()
    text = response.text
    assert "$pbkdf2" not in text, f"a password hash in {response.request.url}"
    assert TEST_SECRET not in text, f"the signing key in {response.request.url}"
    describes_inputs = response.request.url.path.endswith("/openapi.json")
    if "json" in response.headers.get("content-type", "") and not describes_inputs:
        leaked = _secret_keys(response.json())
        if shown := _shown_once(response):
            leaked.remove(shown)
        assert not leaked, f"credential-like keys {leaked} in {response.request.url}"


def client_for(app: Any, **transport: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, **transport),
        base_url="http://test",
        event_hooks={"response": [no_secrets_in]},
    )


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


async def token_for(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    response = await client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Caller:
    id: int
    username: str
    headers: dict[str, str]


async def register(
    client: httpx.AsyncClient, role: str, username: str, **extra: Any
) -> dict[str, Any]:
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD, **extra}
    response = await client.post(f"/api/v1/auth/register/{role}", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> Caller:
    token = await token_for(client, ADMIN["username"], ADMIN["password"])
    me = (await client.get("/api/v1/auth/me", headers=bearer(token))).json()
    return Caller(me["id"], ADMIN["username"], bearer(token))


@pytest.fixture
def new_customer(client: httpx.AsyncClient) -> Callable[[str], Awaitable[Caller]]:
    async def create(username: str) -> Caller:
        user = await register(client, "customer", username)
        return Caller(user["id"], username, bearer(await token_for(client, username)))

    return create


@pytest.fixture
def new_agent(client: httpx.AsyncClient, admin: Caller) -> Callable[[str], Awaitable[Caller]]:
    async def create(username: str) -> Caller:
        user = await register(client, "agent", username)
        approved = await client.post(
            f"/api/v1/admin/agents/{user['id']}/approve", headers=admin.headers
        )
        assert approved.status_code == 200, approved.text
        return Caller(user["id"], username, bearer(await token_for(client, username)))

    return create


@pytest.fixture
async def customer(new_customer: Callable[[str], Awaitable[Caller]]) -> Caller:
    return await new_customer("carol")


@pytest.fixture
async def agent(new_agent: Callable[[str], Awaitable[Caller]]) -> Caller:
    return await new_agent("andy")
