"""The original Flask system's clients, as scripts/legacy_clients.py replays them, against a real
`loanapi serve` on a fresh SQLite database: every one of the 20 checks passes.

The script talks to the server over TCP the way the old clients did (`//login`, `///all_users`,
7-character agent passwords, HTTP Basic login), so this is the migrating user's view end to end.
It needs no PostgreSQL: it uses tests/live_server.py, not this directory's database fixtures.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import live_server as serve

pytestmark = pytest.mark.process

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "legacy_clients.py"
ADMIN = {"username": "Admin", "password": "Adminpass", "email": "admin@example.com"}
# What the old clients need: their agents' passwords have 7 characters.
LEGACY_ENV = {"LOANAPI_PASSWORD_MIN_LENGTH": "6"}


@pytest.fixture
def legacy_server(tmp_path: Path) -> Iterator[str]:
    """`loanapi serve` on a free port, a fresh database, the admin the old clients log in as."""
    with serve(tmp_path, ADMIN, env=LEGACY_ENV) as base_url:
        yield base_url


def test_the_original_clients_pass_all_twenty_checks(legacy_server: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANAPI_")}
    env["PYTHONIOENCODING"] = "utf-8"
    ran = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--base",
            f"{legacy_server}/",
            "--admin",
            f"{ADMIN['username']}:{ADMIN['password']}",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
    )
    output = ran.stdout.decode("utf-8", "replace") + ran.stderr.decode("utf-8", "replace")
    assert ran.returncode == 0, output
    assert "20 passed, 0 failed" in output, output
