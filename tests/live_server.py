"""A real `loanapi serve` process on a free port and a fresh SQLite database (browser, SDK)."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

CLI = Path(sys.executable).with_name("loanapi")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(
    workdir: Path, admin: dict[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Our environment minus any LOANAPI_* of the caller's, plus the test server's settings
    (and `extra`, which wins: e.g. LOANAPI_PASSWORD_MIN_LENGTH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANAPI_")}
    env.update(
        {
            "LOANAPI_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'live.db'}",
            "LOANAPI_SECRET_KEY": secrets.token_urlsafe(48),
            "LOANAPI_PBKDF2_ROUNDS": "1000",
            "LOANAPI_ADMIN_USERNAME": admin["username"],
            "LOANAPI_ADMIN_PASSWORD": admin["password"],
            "LOANAPI_ADMIN_EMAIL": admin["email"],
            "LOANAPI_LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra or {})
    return env


@contextmanager
def live_server(
    workdir: Path, admin: dict[str, str], *, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Start the server, wait for /healthz, yield its base URL, stop it (its session only)."""
    port = free_port()
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env(workdir, admin, env),
            cwd=workdir,  # no stray .env is read
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not healthy in {START_TIMEOUT}s:\n{log.read_text()}")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
