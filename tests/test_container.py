"""The container files (Dockerfile, .dockerignore, compose.yaml, .env.example) against the code.

No Docker engine is needed: the files are parsed and checked against the settings, the routes and
the command line they name, and the commands compose runs are run here, outside a container.
"""

import asyncio
import fnmatch
import http.server
import inspect
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

import loanapi.migrate
from loanapi.app import create_app
from loanapi.cli import app as cli
from loanapi.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

PREFIX = "LOANAPI_"
# LOANAPI_* names that are not settings: compose interpolation only (never passed to a
# container), and the one loanapi.migrate reads from the environment itself.
COMPOSE_ONLY = {"LOANAPI_PORT", "LOANAPI_WORKERS"}
READ_BY_MIGRATE = "LOANAPI_ALEMBIC_INI"
# Settings whose compose value is deliberately not the code's default.
NOT_DEFAULTED = {"database_url", "secret_key"}
INTERPOLATION = re.compile(r"(?<!\$)\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


# --- parsing -------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def environment(name: str) -> dict[str, Any]:
    env = service(name).get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return env


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}; $$ is a literal $."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if (op == ":?" and not current) or (op == "?" and current is None):
            raise KeyError(f"{name}: {arg}")
        return current or ""

    return INTERPOLATION.sub(substitute, value).replace("$$", "$")


def variables_used(node: Any) -> set[str]:
    """Every ${VAR} in the values of a compose document (comments excluded)."""
    if isinstance(node, dict):
        return set().union(*(variables_used(v) for v in node.values()), set())
    if isinstance(node, list):
        return set().union(*(variables_used(v) for v in node), set())
    if isinstance(node, str):
        return {m.group(1) for m in INTERPOLATION.finditer(node)}
    return set()


def compose_default(value: str) -> str | None:
    """The default of a value that is exactly one `${VAR:-default}`, else None."""
    match = INTERPOLATION.fullmatch(value)
    return match.group(3) if match and match.group(2) == ":-" else None


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, args = (current + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    assert not current, "the Dockerfile ends in a continuation line"
    return instructions


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in dockerfile():
        if keyword == "FROM":
            result.append([])
        assert result, f"{keyword} before the first FROM"
        result[-1].append((keyword, args))
    return result


def runtime_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def only(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [args for kw, args in stage if kw == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {found}"
    return found[0]


def image_cmd() -> list[str]:
    return json.loads(only(runtime_stage(), "CMD"))


def image_healthcheck() -> list[str]:
    _options, _, command = only(runtime_stage(), "HEALTHCHECK").partition(" CMD ")
    return json.loads(command)


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in runtime_stage():
        if keyword == "ENV":
            for item in re.findall(r'(\w+)=("[^"]*"|\S+)', args):
                env[item[0]] = item[1].strip('"')
    return env


def env_example() -> dict[str, str]:
    """NAME -> value of .env.example, lines commented out (`# NAME=value`) included."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def setting(name: str) -> str:
    assert name.startswith(PREFIX), name
    return name.removeprefix(PREFIX).lower()


def option_value(command: list[str], option: str) -> str:
    return command[command.index(option) + 1]


def effective(field: str, raw: Any) -> Any:
    """A setting's value as the app sees it; empty and unset are the same."""
    return getattr(Settings(_env_file=None, **{field: raw}), field) or None


def default(field: str) -> Any:
    return Settings.model_fields[field].get_default(call_default_factory=True) or None


@pytest.fixture(autouse=True)
def no_outer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)


# --- compose and the settings ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["app", "migrate"])
def test_compose_passes_only_and_all_real_settings(name: str) -> None:
    passed = {key for key in environment(name) if key.startswith(PREFIX)}
    unknown = {key for key in passed if setting(key) not in Settings.model_fields}
    assert not unknown, f"{name} passes LOANAPI_* that are not settings: {sorted(unknown)}"
    missing = {f"{PREFIX}{field.upper()}" for field in Settings.model_fields} - passed
    assert not missing, f"{name} does not pass the settings {sorted(missing)}"
    assert not (COMPOSE_ONLY & passed), "compose-only variables must not reach the container"


def test_compose_defaults_are_the_code_defaults() -> None:
    for key, value in environment("app").items():
        if not key.startswith(PREFIX) or setting(key) in NOT_DEFAULTED:
            continue
        raw = compose_default(str(value))
        assert raw is not None, f"{key}: expected ${{{key}:-default}}, found {value!r}"
        field = setting(key)
        assert effective(field, raw) == default(field), f"{key}: compose default {raw!r}"


def test_migrate_and_app_share_the_settings() -> None:
    app_env = {k: v for k, v in environment("app").items() if k.startswith(PREFIX)}
    migrate_env = {k: v for k, v in environment("migrate").items() if k.startswith(PREFIX)}
    assert app_env == migrate_env


def test_secret_key_is_required_so_replicas_share_it() -> None:
    value = environment("app")["LOANAPI_SECRET_KEY"]
    assert re.fullmatch(r"\$\{LOANAPI_SECRET_KEY:\?[^}]+\}", value), value
    with pytest.raises(KeyError, match="LOANAPI_SECRET_KEY"):
        interpolate(value, {})


def test_database_url_points_at_the_db_service_with_its_credentials() -> None:
    url = environment("app")["LOANAPI_DATABASE_URL"]
    db_env = environment("db")
    assert url.startswith("postgresql+asyncpg://"), url
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        # The same variable with the same default on both sides.
        assert db_env[name] in url, f"{name}: {db_env[name]} is not in {url}"
    resolved = interpolate(url, {})
    assert "@db:5432/" in resolved, resolved
    assert Settings(_env_file=None, database_url=resolved).database_url == resolved


# --- .env.example ----------------------------------------------------------------------------


def test_env_example_names_every_setting_and_nothing_else() -> None:
    names = set(env_example())
    loanapi_names = {name for name in names if name.startswith(PREFIX)} - COMPOSE_ONLY
    unknown = {name for name in loanapi_names if setting(name) not in Settings.model_fields}
    assert not unknown, f".env.example has LOANAPI_* that are not settings: {sorted(unknown)}"
    missing = {f"{PREFIX}{field.upper()}" for field in Settings.model_fields} - names
    assert not missing, f".env.example lacks the settings {sorted(missing)}"


def test_env_example_names_every_variable_compose_uses() -> None:
    missing = variables_used(compose()) - set(env_example())
    assert not missing, f".env.example lacks variables that compose.yaml uses: {sorted(missing)}"
    assert COMPOSE_ONLY <= variables_used(compose())


def test_env_example_has_a_comment_per_variable_and_no_secret() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.fullmatch(r"#?\s*[A-Z][A-Z0-9_]*=.*", line.strip()):
            above = lines[index - 1].strip() if index else ""
            assert above.startswith("#"), f"no comment above {line!r}"
            assert not re.fullmatch(r"#?\s*[A-Z][A-Z0-9_]*=.*", above), f"no comment for {line!r}"
    assert env_example()["LOANAPI_SECRET_KEY"] == ""
    assert "secrets.token_urlsafe" in ENV_EXAMPLE.read_text()


def test_env_example_as_dotenv_gives_the_defaults() -> None:
    # `cp .env.example .env` must also work for `loanapi` run from the checkout.
    settings = Settings(_env_file=ENV_EXAMPLE)
    for field in Settings.model_fields:
        assert (getattr(settings, field) or None) == default(field), field


# --- ports, health checks, commands ----------------------------------------------------------


def test_one_port_everywhere() -> None:
    app = service("app")
    exposed = {int(port) for port in only(runtime_stage(), "EXPOSE").split()}
    assert len(exposed) == 1
    port = exposed.pop()
    assert int(option_value(image_cmd(), "--port")) == port
    assert int(option_value(app["command"], "--port")) == port
    assert [int(p) for p in app["expose"]] == [port]
    for mapping in app["ports"]:
        assert int(interpolate(mapping, {}).rsplit(":", 1)[1]) == port, mapping
    for check in (image_healthcheck(), app["healthcheck"]["test"]):
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(check)


def test_health_checks_probe_a_real_route() -> None:
    paths = {
        match.group(1)
        for check in (image_healthcheck(), service("app")["healthcheck"]["test"])
        for match in re.finditer(r"http://127\.0\.0\.1:\d+(/\w+)", " ".join(check))
    }
    assert paths == {"/healthz"}
    app = create_app(Settings(_env_file=None, secret_key="x" * 48))
    # Ask the schema and the app itself, not app.routes.
    assert "/healthz" in app.openapi()["paths"]

    async def get(path: str) -> int:
        transport = httpx.ASGITransport(app=app)  # no lifespan: no database is touched
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get(path)).status_code

    assert asyncio.run(get("/healthz")) == 200
    assert asyncio.run(get("/no-such-probe")) == 404


class _Probe(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def probe_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("source", ["Dockerfile", "compose.yaml"])
def test_health_check_command_fails_on_an_unhealthy_answer(source: str, probe_port: int) -> None:
    check = image_healthcheck() if source == "Dockerfile" else service("app")["healthcheck"]["test"]
    if check[0] == "CMD":
        check = check[1:]
    assert check[:2] == ["python", "-c"], "python is the only HTTP client in the slim image"
    code = check[2].replace("127.0.0.1:8000", f"127.0.0.1:{probe_port}")
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    bad = code.replace("/healthz", "/readyz")
    failing = subprocess.run([sys.executable, "-c", bad], capture_output=True, timeout=30)
    assert failing.returncode != 0


runner = CliRunner()


def help_text(args: list[str]) -> str:
    result = runner.invoke(cli, [*args, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def check_command(command: list[str]) -> None:
    """`loanapi <sub> ... --opt ...`: the program is the console script, every word exists."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] == "loanapi"
    assert scripts["loanapi"] == "loanapi.cli:app"
    words = [word for word in command[1:] if not word.startswith("-")]
    subcommand = words[: 2 if words and words[0] == "db" else 1]
    text = help_text(subcommand)
    for word in command[1:]:
        if word.startswith("--"):
            assert word in text, f"{' '.join(subcommand)} has no option {word}"


def test_the_commands_the_image_and_compose_run_exist() -> None:
    check_command(image_cmd())
    check_command([interpolate(word, {}) for word in service("app")["command"]])
    check_command(service("migrate")["command"])
    check_command(["loanapi", "db", "reset", "--yes"])  # docker compose exec app ...
    assert "docker compose exec app loanapi db reset --yes" in COMPOSE.read_text()


def test_serve_and_db_help() -> None:
    serve = help_text(["serve"])
    for option in ("--host", "--port", "--workers", "--no-migrate"):
        assert option in serve
    db = help_text(["db"])
    assert "upgrade" in db
    assert "reset" in db


# --- services ----------------------------------------------------------------------------------


def test_app_is_stateless_and_starts_after_db_and_migrations() -> None:
    app, migrate = service("app"), service("migrate")
    assert "volumes" not in app
    assert not any(kw == "VOLUME" for kw, _ in dockerfile()), "VOLUME gives app a volume"
    assert app["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert "--no-migrate" in app["command"], "migrations are the migrate service's job"
    assert migrate["command"] == ["loanapi", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("app", "migrate"):
        assert service(name)["build"] == "."


def test_db_is_postgres_17_on_a_named_volume() -> None:
    db = service("db")
    assert db["image"] == "postgres:17"
    volume, _, target = db["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose()["volumes"]
    check = " ".join(db["healthcheck"]["test"])
    assert "pg_isready" in check
    assert "-U" in check
    assert {"interval", "retries"} <= set(db["healthcheck"])
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert compose_default(db["environment"][name]), f"{name} has no ${{{name}:-default}}"


# --- Dockerfile and .dockerignore ---------------------------------------------------------------


def test_dockerfile_stages_user_and_files() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    bases = {args.split()[0] for stage in all_stages for kw, args in stage if kw == "FROM"}
    # One base for both: the venv's python is a link into the base image.
    assert len(bases) == 1
    (base,) = bases
    assert re.fullmatch(r"python:3\.\d+-slim-\w+", base), base
    runtime = runtime_stage()
    user = only(runtime, "USER").split(":")[0]
    assert user not in ("root", "0"), user
    copies = [args.split() for kw, args in runtime if kw == "COPY"]
    sources = {words[-2] for words in copies if not words[0].startswith("--from")}
    assert {"alembic.ini", "alembic"} <= sources
    assert any(w[0] == "--from=builder" and w[1] == "/opt/venv" for w in copies), copies
    env = image_env()
    assert "/opt/venv/bin" in env["PATH"]
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_dockerfile_environment_is_real() -> None:
    env = image_env()
    for name in env:
        if name.startswith(PREFIX) and name != READ_BY_MIGRATE:
            assert setting(name) in Settings.model_fields, name
    assert READ_BY_MIGRATE in inspect.getsource(loanapi.migrate)
    workdir = only(runtime_stage(), "WORKDIR")
    assert env[READ_BY_MIGRATE] == f"{workdir}/alembic.ini"
    assert Settings(_env_file=None, database_url=env["LOANAPI_DATABASE_URL"]).is_sqlite
    data_dir = env["LOANAPI_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///").rsplit("/", 1)[0]
    setup = " ".join(args for kw, args in runtime_stage() if kw == "RUN")
    assert f"mkdir -p {data_dir}" in setup
    assert re.search(rf"chown \S+ {re.escape(data_dir)}", setup), "the data dir is the user's"


def in_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    patterns = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!")
        if any(fnmatch.fnmatchcase(candidate, glob) for candidate in candidates):
            included = negated
    return included


def test_dockerignore_keeps_what_the_build_copies_and_nothing_secret() -> None:
    copied = [
        source
        for stage in stages()
        for kw, args in stage
        if kw == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    ]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert in_context(source), f"{source} is copied but excluded by .dockerignore"
    for needed in ("src/loanapi/app.py", "alembic/env.py", "pyproject.toml", "README.md"):
        assert in_context(needed), needed
    for unwanted in (
        ".env",
        ".git/HEAD",
        ".venv/bin/python",
        "tests/test_container.py",
        ".pytest_cache/v",
        ".hypothesis/examples",
        "loanapi.db",
        "bench/results/run.json",
        "src/loanapi/__pycache__/app.cpython-312.pyc",
        "src/loanapi.egg-info/PKG-INFO",
    ):
        assert not in_context(unwanted), f"{unwanted} would be sent to the build"


# --- the compose commands, run here ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_compose_commands_run_in_an_image_like_layout(tmp_path: Path) -> None:
    """migrate's command, then app's, then the health check and `db reset --yes`, as compose would
    run them, from a copy of the image's /app (alembic.ini and alembic/ only), on SQLite."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    shutil.copy(ROOT / "alembic.ini", app_dir)
    shutil.copytree(ROOT / "alembic", app_dir / "alembic", ignore=shutil.ignore_patterns("__*"))
    outer = {"LOANAPI_SECRET_KEY": secrets.token_urlsafe(48)}
    container_env = {key: interpolate(str(v), outer) for key, v in environment("app").items()}
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **{k: v for k, v in image_env().items() if k != "PATH"},
        **container_env,
        READ_BY_MIGRATE: str(app_dir / "alembic.ini"),
        "LOANAPI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'loanapi.db'}",
        "LOANAPI_PBKDF2_ROUNDS": "1000",
    }
    cli_path = str(Path(sys.executable).with_name("loanapi"))

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cli_path, *command[1:]],
            cwd=app_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    migrated = run(service("migrate")["command"])
    assert migrated.returncode == 0, migrated.stderr

    serve = [interpolate(word, {}) for word in service("app")["command"]]
    serve[serve.index("--host") + 1] = "127.0.0.1"
    serve[serve.index("--port") + 1] = str(port)
    check = service("app")["healthcheck"]["test"][1:]
    probe = [sys.executable, "-c", check[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")]
    server = subprocess.Popen(
        [cli_path, *serve[1:]],
        cwd=app_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(probe, capture_output=True, timeout=30).returncode != 0:
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, "the app never became healthy"
            time.sleep(0.5)
        reset = run(["loanapi", "db", "reset", "--yes"])
        assert reset.returncode == 0, reset.stderr
        assert subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # Nothing is written to the image's /app (root's, read-only for the user): no database, no
    # bytecode next to the migrations.
    assert sorted(os.listdir(app_dir)) == ["alembic", "alembic.ini"]
    assert not list((app_dir / "alembic").rglob("__pycache__"))
