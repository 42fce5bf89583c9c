"""The `loanapi` command, driven through typer's CliRunner against a temporary SQLite file."""

import asyncio
import json
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from loanapi import __version__
from loanapi.app import close_databases, create_app
from loanapi.cli import app as cli
from loanapi.config import Settings

SECRET = secrets.token_urlsafe(48)
ROOT_PASSWORD = "root-password-123"

runner = CliRunner()


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # No stray .env from the working directory, and no LOANAPI_* from the outer environment.
    monkeypatch.chdir(tmp_path)
    for name in (
        "LOANAPI_DATABASE_URL",
        "LOANAPI_SECRET_KEY",
        "LOANAPI_ADMIN_USERNAME",
        "LOANAPI_ADMIN_EMAIL",
        "LOANAPI_ADMIN_PASSWORD",
        "LOANAPI_PBKDF2_ROUNDS",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cli.db"


def database_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def env_for(path: Path, **extra: str) -> dict[str, str]:
    return {
        "LOANAPI_DATABASE_URL": database_url(path),
        "LOANAPI_SECRET_KEY": SECRET,
        "LOANAPI_PBKDF2_ROUNDS": "1000",
        "LOANAPI_ADMIN_USERNAME": "root",
        "LOANAPI_ADMIN_EMAIL": "root@example.com",
        "LOANAPI_ADMIN_PASSWORD": ROOT_PASSWORD,
        **extra,
    }


def invoke(args: list[str], path: Path, **kwargs: Any) -> Any:
    return runner.invoke(cli, args, env=env_for(path), **kwargs)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.execute(sql).fetchall())
    finally:
        connection.close()


def tables(path: Path) -> set[str]:
    return {name for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def users(path: Path) -> list[tuple[str, str, str]]:
    return [
        (str(u), str(r), str(s))
        for u, r, s in rows(path, "SELECT username, role, status FROM users ORDER BY id")
    ]


def login(path: Path, username: str, password: str) -> tuple[int, dict[str, Any] | None]:
    """Log in through a fresh app on the file; the status (of the login, or of /auth/me with
    its token when it refused) and /auth/me when it worked."""

    async def run() -> tuple[int, dict[str, Any] | None]:
        settings = Settings(
            database_url=database_url(path),
            secret_key=secrets.token_urlsafe(48),
            pbkdf2_rounds=1000,
            _env_file=None,
        )
        application = create_app(settings)
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://cli") as client:
                response = await client.post(
                    "/api/v1/auth/token", data={"username": username, "password": password}
                )
                if response.status_code != 200:
                    return response.status_code, None
                token = response.json()["access_token"]
                me = await client.get(
                    "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
                )
                if me.status_code != 200:  # a reset password: the token may only change it
                    return me.status_code, None
                return 200, dict(me.json())
        finally:
            await close_databases(application)

    return asyncio.run(run())


def create_admin(path: Path, username: str, email: str, password: str) -> Any:
    return invoke(
        ["create-admin", "--username", username, "--email", email, "--password-stdin"],
        path,
        input=password + "\n",
    )


# --- help and openapi -------------------------------------------------------------------------


def test_help_lists_every_command(db_file):
    result = invoke(["--help"], db_file)
    assert result.exit_code == 0, result.output
    for command in ("serve", "db", "create-admin", "openapi"):
        assert command in result.stdout


def test_db_help_lists_upgrade_and_reset(db_file):
    result = invoke(["db", "--help"], db_file)
    assert result.exit_code == 0, result.output
    assert "upgrade" in result.stdout
    assert "reset" in result.stdout


def test_no_arguments_shows_help(db_file):
    result = invoke([], db_file)
    assert "create-admin" in result.output
    assert "openapi" in result.output
    assert not db_file.exists()


def test_unknown_command_fails(db_file):
    result = invoke(["frobnicate"], db_file)
    assert result.exit_code != 0
    assert not db_file.exists()


def test_openapi_prints_the_document(db_file):
    result = invoke(["openapi"], db_file)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "loanapi"
    assert "/api/v1/auth/token" in document["paths"]
    assert "/api/v1/admin/users" in document["paths"]
    assert "post" in document["paths"]["/api/v1/auth/token"]
    # It needs no database.
    assert not db_file.exists()


# --- db upgrade and reset ---------------------------------------------------------------------


def test_db_upgrade_creates_the_schema(db_file):
    result = invoke(["db", "upgrade"], db_file)
    assert result.exit_code == 0, result.output
    assert "latest revision" in result.stdout
    assert {"users", "alembic_version"} <= tables(db_file)
    assert rows(db_file, "SELECT count(*) FROM alembic_version") == [(1,)]
    # Upgrading an up-to-date database is a no-op that still succeeds.
    again = invoke(["db", "upgrade"], db_file)
    assert again.exit_code == 0, again.output
    assert rows(db_file, "SELECT count(*) FROM alembic_version") == [(1,)]


def test_db_reset_empties_the_database_and_recreates_the_admin(db_file):
    assert invoke(["db", "upgrade"], db_file).exit_code == 0
    created = create_admin(db_file, "boss", "boss@example.com", "boss-password-1")
    assert created.exit_code == 0, created.output
    assert users(db_file) == [("boss", "admin", "active")]

    result = invoke(["db", "reset", "--yes"], db_file)
    assert result.exit_code == 0, result.output
    assert "database reset" in result.stdout
    assert users(db_file) == [("root", "admin", "active")]
    assert {"users", "alembic_version"} <= tables(db_file)

    status, me = login(db_file, "root", ROOT_PASSWORD)
    assert status == 200
    assert me is not None
    assert me["username"] == "root"
    assert me["role"] == "admin"
    assert me["email"] == "root@example.com"
    assert login(db_file, "boss", "boss-password-1") == (401, None)


def test_db_reset_without_yes_refuses_and_changes_nothing(db_file):
    assert invoke(["db", "upgrade"], db_file).exit_code == 0
    created = create_admin(db_file, "keepme", "k@example.com", "x" * 12)
    assert created.exit_code == 0, created.output
    result = invoke(["db", "reset"], db_file)
    assert result.exit_code != 0
    assert "--yes" in result.output
    assert users(db_file) == [("keepme", "admin", "active")]


def test_db_reset_on_a_fresh_file(db_file):
    result = invoke(["db", "reset", "--yes"], db_file)
    assert result.exit_code == 0, result.output
    assert users(db_file) == [("root", "admin", "active")]


def test_invalid_configuration_is_reported(db_file):
    result = runner.invoke(
        cli, ["db", "upgrade"], env=env_for(db_file, LOANAPI_SECRET_KEY="changethis")
    )
    assert result.exit_code != 0
    assert "LOANAPI_SECRET_KEY" in result.output or "secret" in result.output.lower()
    assert not db_file.exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOANAPI_SECRET_KEY", "my-real-but-short-secret"),
        ("LOANAPI_SECRET_KEY", "changeme"),
        ("LOANAPI_DB_POOL_SIZE", "zero-pool-4711"),
        ("LOANAPI_ACCESS_TOKEN_MINUTES", "-4711"),
    ],
)
def test_invalid_configuration_names_the_variable_never_its_value(db_file, variable, value):
    result = runner.invoke(cli, ["db", "upgrade"], env=env_for(db_file, **{variable: value}))
    assert result.exit_code == 2, result.output
    assert variable in result.output
    assert value not in result.output
    assert "Value error" not in result.output
    assert not db_file.exists()


# --- create-admin -----------------------------------------------------------------------------


def test_create_admin_with_options_can_log_in(db_file):
    assert invoke(["db", "upgrade"], db_file).exit_code == 0
    result = create_admin(db_file, "chief", "chief@example.com", "chief-password-1")
    assert result.exit_code == 0, result.output
    assert "chief" in result.stdout
    assert "chief-password-1" not in result.output
    assert users(db_file) == [("chief", "admin", "active")]
    stored = rows(db_file, "SELECT password_hash FROM users WHERE username = 'chief'")[0][0]
    assert stored.startswith("$pbkdf2-sha256$1000$")

    status, me = login(db_file, "chief", "chief-password-1")
    assert status == 200
    assert me is not None
    assert set(me) == {"id", "username", "email", "phone", "role", "status", "created_at"}
    assert (me["username"], me["email"], me["role"], me["status"]) == (
        "chief",
        "chief@example.com",
        "admin",
        "active",
    )
    assert login(db_file, "chief", "wrong-password")[0] == 401


def test_create_admin_with_prompts(db_file):
    assert invoke(["db", "upgrade"], db_file).exit_code == 0
    result = invoke(
        ["create-admin"],
        db_file,
        input="prompted\nprompted@example.com\nprompt-pass-1\nprompt-pass-1\n",
    )
    assert result.exit_code == 0, result.output
    assert users(db_file) == [("prompted", "admin", "active")]
    assert login(db_file, "prompted", "prompt-pass-1")[0] == 200


def test_create_admin_works_when_an_admin_exists(db_file):
    assert invoke(["db", "reset", "--yes"], db_file).exit_code == 0
    result = create_admin(db_file, "second", "s@example.com", "p" * 10)
    assert result.exit_code == 0, result.output
    assert users(db_file) == [("root", "admin", "active"), ("second", "admin", "active")]


@pytest.mark.parametrize(
    ("username", "email", "password"),
    [
        ("root", "other@example.com", "long-enough-1"),  # taken
        ("ROOT", "other@example.com", "long-enough-1"),  # taken, ignoring case
        ("newadmin", "ROOT@example.com", "long-enough-1"),  # email taken
        ("newadmin", "new@example.com", "short"),  # password too short
        ("x", "new@example.com", "long-enough-1"),  # username too short
        ("newadmin", "not-an-email", "long-enough-1"),
        ("newadmin", "new@example.com", "password123"),  # one of the most common
        ("newadmin", "new@example.com", "NewAdmin"),  # the username
    ],
)
def test_create_admin_refuses_bad_input(db_file, username, email, password):
    assert invoke(["db", "reset", "--yes"], db_file).exit_code == 0
    result = invoke(
        ["create-admin", "--username", username, "--email", email, "--password-stdin"],
        db_file,
        input=password + "\n",
    )
    assert result.exit_code != 0
    assert result.exit_code in (1, 2), result.output
    assert users(db_file) == [("root", "admin", "active")]


def test_create_admin_takes_no_password_option(db_file):
    """A password on the command line is visible to other users of the machine (ps)."""
    assert invoke(["db", "upgrade"], db_file).exit_code == 0
    result = invoke(
        ["create-admin", "--username", "u1", "--email", "u1@example.com", "--password", "pw-1"],
        db_file,
    )
    assert result.exit_code == 2
    assert "No such option" in result.output
    assert users(db_file) == []


def test_create_admin_does_not_warn_about_the_secret_key(db_file):
    assert invoke(["db", "upgrade"], db_file).exit_code == 0
    env = env_for(db_file)
    del env["LOANAPI_SECRET_KEY"]
    result = runner.invoke(
        cli,
        ["create-admin", "--username", "quiet", "--email", "q@example.com", "--password-stdin"],
        env=env,
        input="quiet-password-1\n",
    )
    assert result.exit_code == 0, result.output
    assert "SECRET_KEY" not in result.output
    assert login(db_file, "quiet", "quiet-password-1")[0] == 200


def test_users_reset_password_prints_a_temporary_password_that_must_be_changed(db_file):
    assert invoke(["db", "reset", "--yes"], db_file).exit_code == 0
    result = invoke(["users", "reset-password", "ROOT"], db_file)
    assert result.exit_code == 0, result.output
    temporary = result.stdout.split("temporary password for ROOT: ")[1].split()[0]
    assert login(db_file, "root", ROOT_PASSWORD)[0] == 401
    # the temporary password logs in, and the token may only change the password
    assert login(db_file, "root", temporary)[0] == 403
    missing = invoke(["users", "reset-password", "nobody"], db_file)
    assert missing.exit_code == 1
    assert "No user named nobody" in missing.output


def test_users_unlock_clears_the_failed_logins(db_file):
    assert invoke(["db", "reset", "--yes"], db_file).exit_code == 0
    for _ in range(10):
        assert login(db_file, "root", "wrong-password")[0] == 401
    assert login(db_file, "root", ROOT_PASSWORD)[0] == 429
    result = invoke(["users", "unlock", "root"], db_file)
    assert result.exit_code == 0, result.output
    assert "root unlocked" in result.stdout
    assert login(db_file, "root", ROOT_PASSWORD)[0] == 200


def test_version():
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"loanapi {__version__}"


def test_db_commands_say_which_database(db_file):
    upgraded = invoke(["db", "upgrade"], db_file)
    assert f"database: SQLite {db_file.resolve()}" in upgraded.stdout
    refused = invoke(["db", "reset"], db_file)
    assert refused.exit_code == 1
    assert str(db_file.resolve()) in refused.output
    label = Settings(
        database_url="postgresql+asyncpg://loan:hunter2@db.example:5432/loans", _env_file=None
    ).database_label
    assert label == "postgresql+asyncpg://loan:***@db.example:5432/loans"


def test_users_list_shows_the_accounts_with_filters(db_file):
    assert invoke(["db", "reset", "--yes"], db_file).exit_code == 0
    assert create_admin(db_file, "second", "s@example.com", "p" * 10).exit_code == 0
    everyone = invoke(["users", "list"], db_file)
    assert everyone.exit_code == 0, everyone.output
    lines = everyone.stdout.splitlines()
    assert lines[0].split() == ["id", "username", "role", "status", "email", "created"]
    assert [line.split()[1:4] for line in lines[1:3]] == [
        ["root", "admin", "active"],
        ["second", "admin", "active"],
    ]
    assert lines[-1] == "2 users"
    customers = invoke(["users", "list", "--role", "customer"], db_file)
    assert customers.stdout.splitlines()[-1] == "0 users"
    bad = invoke(["users", "list", "--status", "sleeping"], db_file)
    assert bad.exit_code == 2
    assert "sleeping" in bad.output


def test_demo_fills_a_fresh_database_once(database, app, tmp_path):
    """On both engines: a new SQLite file, or the suite's PostgreSQL database emptied by `app`
    (not the suite's SQLite file, which the session's app keeps open)."""
    url = database_url(tmp_path / "demo.db") if database.is_sqlite else database.url
    env = {
        "LOANAPI_DATABASE_URL": url,
        "LOANAPI_SECRET_KEY": SECRET,
        "LOANAPI_PBKDF2_ROUNDS": "1000",
        "LOANAPI_DB_POOL_SIZE": "2",
    }
    result = runner.invoke(cli, ["demo"], env=env)
    assert result.exit_code == 0, result.output
    assert "logins (password demo-password-2026 for each):" in result.stdout
    made = result.stdout.split("demo book: ")[1].splitlines()[0]
    for status in ("new", "requested", "approved", "rejected", "withdrawn", "closed"):
        assert f" {status}" in f" {made}", made
    assert "active, late" in made
    assert "written_off" in made
    again = runner.invoke(cli, ["demo"], env=env)
    assert again.exit_code == 1
    assert "already holds loans" in again.output


def test_create_admin_explains_a_bad_username_in_words(db_file):
    assert invoke(["db", "upgrade"], db_file).exit_code == 0
    result = create_admin(db_file, "bad name", "bad@example.com", "long-enough-pass-1")
    assert result.exit_code == 2
    assert "username: 3 to 64 letters, digits, _ . or -" in result.output
    assert "^[" not in result.output
