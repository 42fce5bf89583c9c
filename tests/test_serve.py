"""`loanapi serve` as production runs it: migrations first, then uvicorn, docs served offline."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from loanapi import __version__

CLI = Path(sys.executable).with_name("loanapi")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float = 30) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_migrates_bootstraps_and_serves_docs(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        # relative: the first line says where it is, as an absolute path
        "LOANAPI_DATABASE_URL": "sqlite+aiosqlite:///./serve.db",
        "LOANAPI_PBKDF2_ROUNDS": "1000",
        "LOANAPI_LOG_FORMAT": "json",
        "LOANAPI_SECRET_KEY": "",
        "LOANAPI_ADMIN_PASSWORD": "",
    }
    server = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(f"{base}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz").status_code == 200
        docs = httpx.get(f"{base}/docs")
        assert docs.status_code == 200
        assert "cdn" not in docs.text.lower()
        assert "/static-offline-docs/swagger-ui-bundle.js" in docs.text
        bundle = httpx.get(f"{base}/static-offline-docs/swagger-ui-bundle.js")
        assert bundle.status_code == 200
        assert len(bundle.content) > 100_000
        redoc = httpx.get(f"{base}/redoc")
        assert "/static-offline-docs/redoc.standalone.js" in redoc.text
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    lines = output.splitlines()
    assert (
        lines[0] == f"loanapi {__version__}, database: SQLite {(tmp_path / 'serve.db').resolve()}"
    )
    # No admin configured: one was created with a generated password, printed once, framed.
    banner = [line for line in lines if line.startswith("*")]
    assert banner[0] == banner[-1] == "*" * len(banner[0])
    assert any(line.startswith("*     password: ") for line in banner)
    assert "tokens will not survive a restart" in output
    assert "SAWarning" not in output  # the migrations' reflection warning
    # JSON lines hold no terminal colour codes (uvicorn's color_message)
    json_lines = [line for line in lines if line.startswith("{")]
    assert any('"route": "/healthz"' in line for line in json_lines)
    assert not [line for line in json_lines if "\\u001b" in line or "color_message" in line]
