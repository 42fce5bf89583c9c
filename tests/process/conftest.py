"""Real `loanapi serve` processes on a PostgreSQL database of their own.

Each test module gets a fresh database (created with asyncpg, migrated with `loanapi db upgrade`,
dropped WITH (FORCE) at the end) and starts servers as subprocesses on free ports. Every server
runs in a session of its own, so teardown can prove that nothing it started is left running.
"""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

CLI = Path(sys.executable).with_name("loanapi")
POSTGRES_URL = os.environ.get("LOANAPI_TEST_POSTGRES_URL", "")
ADMIN = {"username": "admin", "password": "admin-password-1", "email": "admin@example.com"}
PASSWORD = "s3cret-pass"
# One signing key for every server of the run: a token from one is valid on the other.
SECRET_KEY = secrets.token_urlsafe(48)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
API = "/api/v1"


REPORT: list[str] = []


def report(line: str) -> None:
    """A line for the end of the run (counts of races, kills, verified writes)."""
    REPORT.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("process tests")
        for line in REPORT:
            terminalreporter.write_line(line)


def require_postgres() -> str:
    """The PostgreSQL URL; without one, skip (locally) or fail (CI), like tests/conftest.py."""
    if POSTGRES_URL:
        return POSTGRES_URL
    message = "process tests need PostgreSQL: set LOANAPI_TEST_POSTGRES_URL"
    if os.environ.get("CI"):
        pytest.fail(f"CI requires PostgreSQL: {message}", pytrace=False)
    pytest.skip(message)


# --- the database -------------------------------------------------------------------------


@dataclass
class PgDatabase:
    name: str
    url: str  # SQLAlchemy URL (postgresql+asyncpg://...) for LOANAPI_DATABASE_URL

    async def connect(self) -> asyncpg.Connection:
        return await _connect(self.url)


async def _connect(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database or "postgres",
    )


async def _admin_sql(sql: str) -> None:
    conn = await _connect(require_postgres())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def server_env(database_url: str) -> dict[str, str]:
    """The environment of a server: ours, minus any LOANAPI_* setting of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANAPI_")}
    env.update(
        {
            "LOANAPI_DATABASE_URL": database_url,
            "LOANAPI_SECRET_KEY": SECRET_KEY,
            "LOANAPI_PBKDF2_ROUNDS": "1000",
            "LOANAPI_ADMIN_USERNAME": ADMIN["username"],
            "LOANAPI_ADMIN_PASSWORD": ADMIN["password"],
            "LOANAPI_ADMIN_EMAIL": ADMIN["email"],
            "LOANAPI_REGISTER_MAX_PER_ADDRESS": "100000",
            "LOANAPI_DB_POOL_SIZE": "10",  # two pools each: a cluster and the suite fit in 100
            "LOANAPI_LOG_LEVEL": "WARNING",
        }
    )
    return env


@pytest.fixture(scope="module")
def pg_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgDatabase]:
    """A fresh PostgreSQL database for this module, migrated by `loanapi db upgrade`."""
    base = make_url(require_postgres())
    name = f"loanapi_process_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = base.set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        migrated = subprocess.run(
            [str(CLI), "db", "upgrade"],
            env=server_env(url),
            cwd=tmp_path_factory.mktemp("migrate"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        yield PgDatabase(name, url)
    finally:
        asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- server processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (uvicorn with --workers 1 must have none)."""
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return [
        int(line.split()[0]) for line in out.splitlines() if not line.split()[1].startswith("Z")
    ]


def session_alive(sid: int) -> list[str]:
    """Non-zombie processes of session `sid` (each server is started in a session of its own)."""
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=,args=", "--sid", str(sid)], capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line.split()[1][:1] != "Z"]


@dataclass
class Server:
    """One `loanapi serve --workers 1` process: uvicorn serves in that very process."""

    name: str
    database: PgDatabase
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    sessions: list[int] = field(default_factory=list)
    starts: int = 0
    start_seconds: list[float] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # settings beside server_env's

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, migrate: bool) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        began = time.monotonic()
        command = [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", "1"] + ([] if migrate else ["--no-migrate"])
        with self.log.open("ab") as log:
            log.write(f"\n=== start {self.starts + 1}: {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                env=server_env(self.database.url) | self.env,
                cwd=self.workdir,  # no stray .env is read
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.sessions.append(self.process.pid)
        self.starts += 1
        self._wait_healthy()
        self.start_seconds.append(time.monotonic() - began)

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not healthy in {START_TIMEOUT}s:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def sigkill(self) -> int:
        """SIGKILL the serving process (no graceful shutdown); returns its pid."""
        assert self.process is not None
        assert self.process.poll() is None, f"{self.name} is not running"
        pid = self.process.pid
        assert children_of(pid) == [], f"{self.name} has child processes: serving elsewhere?"
        os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)
        assert self.process.returncode == -signal.SIGKILL
        return pid

    def stop(self) -> None:
        """Terminate gracefully, SIGKILL after a timeout; then anything left in its sessions."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        for sid in self.sessions:
            if session_alive(sid):
                try:
                    os.killpg(sid, signal.SIGKILL)  # our own process group, nobody else's
                except ProcessLookupError:
                    pass

    def leftovers(self) -> list[str]:
        return [line for sid in self.sessions for line in session_alive(sid)]


class ServerFactory:
    def __init__(self, database: PgDatabase, workdir: Path) -> None:
        self.database, self.workdir = database, workdir
        self.servers: list[Server] = []

    def __call__(self, name: str, *, migrate: bool, env: dict[str, str] | None = None) -> Server:
        server = Server(name, self.database, self.workdir, env=env or {})
        self.servers.append(server)
        server.start(migrate=migrate)
        return server

    def stop_all(self) -> None:
        errors: list[BaseException] = []
        for server in self.servers:
            try:
                server.stop()
            except BaseException as exc:  # stop the others regardless
                errors.append(exc)
        deadline = time.monotonic() + 5
        while (left := [line for s in self.servers for line in s.leftovers()]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert not left, f"server processes left running: {left}"
        if errors:
            raise errors[0]


@pytest.fixture(scope="module")
def start_server(
    pg_database: PgDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerFactory]:
    """Start `loanapi serve` processes on the module's database; all stopped at teardown."""
    factory = ServerFactory(pg_database, tmp_path_factory.mktemp("servers"))
    try:
        yield factory
    finally:
        factory.stop_all()


def start_worker_process(
    name: str, database: PgDatabase, workdir: Path, env: dict[str, str]
) -> tuple["subprocess.Popen[bytes]", Path]:
    """`loanapi worker` on the database, with `env` beside server_env's; its log's path."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CLI), "worker"],
            env=server_env(database.url) | env,
            cwd=workdir,  # no stray .env is read
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


# --- HTTP helpers -------------------------------------------------------------------------


@dataclass
class Caller:
    id: int
    username: str
    headers: dict[str, str]


def client_for(base_url: str, *, connections: int = 64, timeout: float = 20) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout)


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> Caller:
    response = await client.post(
        f"{API}/auth/token", data={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    me = await client.get(f"{API}/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    return Caller(int(me.json()["id"]), username, headers)


async def register(client: httpx.AsyncClient, role: str, username: str) -> dict[str, Any]:
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    response = await client.post(f"{API}/auth/register/{role}", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_customer(client: httpx.AsyncClient, username: str) -> Caller:
    await register(client, "customer", username)
    return await login(client, username)


async def new_agent(client: httpx.AsyncClient, admin: Caller, username: str) -> Caller:
    user = await register(client, "agent", username)
    approved = await client.post(f"{API}/admin/agents/{user['id']}/approve", headers=admin.headers)
    assert approved.status_code == 200, approved.text
    return await login(client, username)


async def apply_loan(
    client: httpx.AsyncClient,
    customer: Caller,
    *,
    loan_type: str = "home_loan",
    principal: str = "10000",
    tenure_months: int = 12,
) -> dict[str, Any]:
    body = {"loan_type": loan_type, "principal": principal, "tenure_months": tenure_months}
    response = await client.post(f"{API}/customer/loans", json=body, headers=customer.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def history(client: httpx.AsyncClient, admin: Caller, loan_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/admin/loans/{loan_id}/history", headers=admin.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def assert_no_holes(events: list[dict[str, Any]], loan: dict[str, Any]) -> None:
    versions = [event["version"] for event in events]
    assert versions == list(range(1, len(events) + 1)), f"version holes: {versions}"
    assert loan["version"] == len(events), (loan["version"], versions)
    assert events[0]["action"] == "created", events[0]


# --- two servers on one database ------------------------------------------------------------


@dataclass
class Cluster:
    """Two `loanapi serve` processes on one database, a client for each, and three callers
    (the customer registered on the second, the agent approved on the first)."""

    servers: tuple[Server, Server]
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
    admin: Caller
    customer: Caller
    agent: Caller

    def client(self, i: int) -> httpx.AsyncClient:
        """Racer i's server: even ones on the first, odd ones on the second."""
        return self.clients[i % 2]


@pytest.fixture(scope="module")
def two_servers(start_server: ServerFactory) -> tuple[Server, Server]:
    # One after the other: the first migrates (a no-op after `db upgrade`) and creates the admin.
    first = start_server("serve-a", migrate=True)
    second = start_server("serve-b", migrate=False)
    return first, second


@pytest.fixture
async def cluster(two_servers: tuple[Server, Server]) -> AsyncIterator[Cluster]:
    a, b = two_servers
    async with client_for(a.base_url) as client_a, client_for(b.base_url) as client_b:
        admin = await login(client_a, ADMIN["username"], ADMIN["password"])
        suffix = uuid.uuid4().hex[:8]
        customer = await new_customer(client_b, f"racer_c_{suffix}")
        agent = await new_agent(client_a, admin, f"racer_a_{suffix}")
        # A token issued by one server works on the other: the signing key is shared.
        me = await client_b.get(f"{API}/auth/me", headers=agent.headers)
        assert me.status_code == 200, me.text
        yield Cluster((a, b), (client_a, client_b), admin, customer, agent)
