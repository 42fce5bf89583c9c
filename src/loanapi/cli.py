"""The `loanapi` command."""

import asyncio
import json
import logging
import logging.config
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, timedelta
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError

from loanapi import __version__, migrate
from loanapi.clock import utcnow
from loanapi.config import Settings, describe
from loanapi.observability import logging_config

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
)
db = typer.Typer(help="Database schema: migrate, or reset to empty.", no_args_is_help=True)
app.add_typer(db, name="db")
users_app = typer.Typer(help="Accounts: list, unlock, reset a password.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _run_long(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived command's loop on uvloop when it is installed (as uvicorn does for the
    API): a webhook delivery costs the worker about a tenth less CPU than on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        typer.echo(f"Invalid configuration: {describe(exc)}", err=True)
        raise typer.Exit(2) from None


async def _bootstrap(settings: Settings) -> None:
    from loanapi.app import bootstrap_admin, close_databases, create_app

    application = create_app(settings)
    try:
        await bootstrap_admin(application)
    finally:
        await close_databases(application)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations first")
    ] = True,
) -> None:
    """Serve the API with uvicorn (uvloop and httptools when installed)."""
    settings = _settings()
    typer.echo(f"loanapi {__version__}, database: {settings.database_label}", err=True)
    if not settings.secret_key:
        # One key for every worker: a key per process would reject each other's tokens.
        os.environ["LOANAPI_SECRET_KEY"] = secrets.token_urlsafe(48)
        typer.echo(
            "warning: LOANAPI_SECRET_KEY is not set; using a random key, so tokens will not "
            "survive a restart",
            err=True,
        )
        settings = _settings()
    if settings.weak_passwords:
        typer.echo(
            f"warning: LOANAPI_PASSWORD_MIN_LENGTH is {settings.password_min_length}, below the "
            "recommended 8: new accounts may have passwords that are easy to guess (only for "
            "old clients that register short ones; see the README's migration section)",
            err=True,
        )
    if migrate_first:
        migrate.upgrade(settings.database_url)
    asyncio.run(_bootstrap(settings))
    uvicorn.run(
        "loanapi.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=True,
        access_log=False,  # ours (observability.observe) knows the route and the user
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings.log_level, settings.log_format),
    )


def _version(show: bool) -> None:
    if show:
        typer.echo(f"loanapi {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """loanapi: a loan origination and servicing REST API. Configure with LOANAPI_* environment
    variables (or a .env file)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = _settings()
    typer.echo(f"database: {settings.database_label}")
    migrate.upgrade(settings.database_url)
    typer.echo("database is at the latest revision")


@db.command("reset")
def db_reset(
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: every row will be deleted")] = False,
) -> None:
    """Drop every table, migrate from scratch and recreate the admin (the old `recreate_db`)."""
    if not yes:
        label = _settings().database_label
        typer.echo(f"This deletes every row of {label}. Run again with --yes to confirm.", err=True)
        raise typer.Exit(1)
    settings = _settings()
    typer.echo(f"database: {settings.database_label}")
    with typer.progressbar(length=3, label="Resetting the database") as progress:
        migrate.reset(settings)
        progress.update(2)
        asyncio.run(_bootstrap(settings))
        progress.update(1)
    typer.echo("database reset")


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(prompt=True)],
    email: Annotated[str, typer.Option(prompt=True)],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of standard input (scripts), instead "
            "of a prompt",
        ),
    ] = False,
) -> None:
    """Create an admin account (works when admins already exist). The password is asked for,
    or read from standard input: never an option, which other users of the machine could see
    in the process list."""
    from loanapi.users.models import Role
    from loanapi.users.schemas import UserCreate

    settings = _settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserCreate(username=username, email=email, password=password)
    except ValidationError as exc:
        typer.echo(f"Invalid admin: {_first_errors(exc)}", err=True)
        raise typer.Exit(2) from None

    async def create(application: Any) -> None:
        from loanapi.users import service as users

        async with application.state.sessions.write() as session, session.begin():
            await users.register(
                session,
                data=data,
                role=Role.admin,
                hasher=application.state.hasher,
                settings=application.state.settings,
            )

    _with_app(settings, create, "Could not create the admin")
    typer.echo(f"admin {username} created")


def _first_errors(error: ValidationError) -> str:
    from loanapi.errors import field_errors

    errors = field_errors(error.errors(include_input=False, include_url=False))
    return "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in errors)


def _with_app(settings: Settings, work: Callable[[Any], Awaitable[None]], failure: str) -> None:
    """Run `work(app)` on an app over the configured database (no server); an API error is
    printed as `failure: detail` and exits 1. Tokens are not issued here, so an unset
    LOANAPI_SECRET_KEY needs no warning: a throwaway key stands in."""
    from loanapi.app import close_databases, create_app
    from loanapi.errors import ApiError

    if not settings.secret_key:
        settings = settings.model_copy(update={"secret_key": secrets.token_urlsafe(48)})

    async def run() -> None:
        application = create_app(settings)
        try:
            await work(application)
        except ApiError as exc:
            typer.echo(f"{failure}: {exc.detail}", err=True)
            raise typer.Exit(1) from None
        finally:
            await close_databases(application)

    asyncio.run(run())


@users_app.command("list")
def users_list(
    role: Annotated[str | None, typer.Option(help="customer, agent or admin")] = None,
    status: Annotated[
        str | None, typer.Option(help="active, pending, rejected or disabled")
    ] = None,
) -> None:
    """The accounts, oldest first: id, username, role, status, e-mail, created (UTC)."""
    from loanapi.users import service as users
    from loanapi.users.models import Role, User, UserStatus

    try:
        roles = [Role(role)] if role else []
        statuses = [UserStatus(status)] if status else []
    except ValueError as exc:
        typer.echo(f"Invalid filter: {exc}", err=True)
        raise typer.Exit(2) from None
    rows: list[Any] = []

    columns = (User.id, User.username, User.role, User.status, User.email, User.created_at)

    async def collect(application: Any) -> None:
        async with application.state.sessions.read() as session:
            found = await users.oldest_rows(
                session, columns=columns, limit=2**31 - 1, roles=roles, statuses=statuses
            )
        rows.extend(found)

    _with_app(_settings(), collect, "Could not list the users")
    header = ("id", "username", "role", "status", "email", "created")
    table = [header] + [
        (
            str(r["id"]),
            r["username"],
            r["role"].value,
            r["status"].value,
            r["email"],
            f"{r['created_at']:%Y-%m-%d %H:%M}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    typer.echo(f"{len(rows)} users")


@users_app.command("unlock")
def users_unlock(username: Annotated[str, typer.Argument(help="The user's username")]) -> None:
    """Clear a user's failed logins: every address may log in again at once."""
    from loanapi.users import service as users

    async def unlock(application: Any) -> None:
        async with application.state.sessions.write() as session, session.begin():
            await users.unlock(session, user_id=await users.id_of(session, username=username))

    _with_app(_settings(), unlock, "Could not unlock")
    typer.echo(f"{username} unlocked")


@users_app.command("reset-password")
def users_reset_password(
    username: Annotated[str, typer.Argument(help="The user's username")],
) -> None:
    """Give a user a one-time temporary password (printed once); their tokens stop working and
    they must choose a new password before anything else."""
    from loanapi.users import service as users

    shown: list[str] = []

    async def reset(application: Any) -> None:
        async with application.state.sessions.write() as session, session.begin():
            user_id = await users.id_of(session, username=username)
            _, temporary = await users.reset_password(
                session, user_id=user_id, hasher=application.state.hasher
            )
        shown.append(temporary)

    _with_app(_settings(), reset, "Could not reset the password")
    typer.echo(f"temporary password for {username}: {shown[0]}")
    typer.echo("they must choose a new one (POST /api/v1/auth/password) before anything else")


@app.command()
def demo() -> None:
    """Fill a fresh database with a believable book through the API: agents, customers, loans
    in every status with their histories, loans repaid on time, late, paid off and written
    off. Prints the logins."""
    from loanapi import demo as story

    settings = _settings()
    typer.echo(f"database: {settings.database_label}")
    migrate.upgrade(settings.database_url, configure_logging=False)
    made: list[story.Book] = []

    async def fill(application: Any) -> None:
        from sqlalchemy import select

        from loanapi.app import bootstrap_admin
        from loanapi.users.models import Role, User

        await bootstrap_admin(application)
        async with application.state.sessions.read() as session:
            admin_id = await session.scalar(
                select(User.id).where(User.role == Role.admin).order_by(User.id).limit(1)
            )
        token = application.state.codec.issue(user_id=admin_id, role="admin")
        try:
            made.append(await story.fill(application, token))
        except story.DemoError as exc:
            typer.echo(f"No demo: {exc}", err=True)
            raise typer.Exit(1) from None
        # close of business for yesterday: late fees charged, days past due as of today
        from loanapi import jobs

        yesterday = utcnow().date() - timedelta(days=1)
        await jobs.close_books(application.state.sessions, yesterday, actor_id=admin_id)

    _with_app(settings, fill, "Could not fill the demo book")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(made[0].made.items()))
    typer.echo(f"demo book: {counts}")
    typer.echo(f"logins (password {story.PASSWORD} for each):")
    for username, role, _ in story.logins():
        typer.echo(f"  {username:16} {role}")
    typer.echo("the admin: as created at the first start (its password was printed then)")


@app.command()
def cob(
    day: Annotated[
        str | None,
        typer.Option("--date", help="The day to close, YYYY-MM-DD (default: yesterday, UTC)"),
    ] = None,
) -> None:
    """Close of business: record late fees and store every active loan's lateness for a day."""
    from loanapi.errors import Unprocessable
    from loanapi.jobs import NoAdmin
    from loanapi.loans.close_of_business import day_to_close

    settings = _settings()
    try:
        closing = day_to_close(date.fromisoformat(day) if day else None)
    except ValueError as exc:
        typer.echo(f"Invalid --date {day}: {exc}", err=True)
        raise typer.Exit(2) from exc
    except Unprocessable as exc:
        reason = exc.errors[0]["msg"] if exc.errors else exc.detail
        typer.echo(f"Invalid --date {day}: {reason}", err=True)
        raise typer.Exit(2) from exc
    try:
        asyncio.run(_close_books(settings, closing))
    except NoAdmin as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


async def _close_books(settings: Settings, day: date) -> None:
    from loanapi import jobs
    from loanapi.db import create_engine, create_sessions
    from loanapi.loans import close_of_business

    engine = create_engine(settings)
    sessions = create_sessions(engine, settings)
    try:
        actor = await jobs.system_actor(sessions)
        total = await close_of_business.pending(sessions.writers, day)
        with typer.progressbar(length=total, label=f"Closing {day}", show_pos=True) as bar:
            result = await jobs.close_books(sessions, day, actor_id=actor, progress=bar.update)
    finally:
        if sessions.read_pool is not None:
            await sessions.read_pool.close()
        await engine.dispose()
    typer.echo(
        f"closed {result.date}: {result.loans} loans, {result.penalties_charged} late fees "
        f"recorded, {result.bucket_changes} bucket changes, {result.seconds:.1f} s"
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at once")] = 1,
) -> None:
    """Run scheduled jobs (close of business daily at LOANAPI_COB_TIME) from the PostgreSQL job
    queue; start as many as you like, on any machines: each job runs once."""
    from loanapi import jobs

    settings = _settings()
    if settings.is_sqlite:
        typer.echo(
            "loanapi worker needs PostgreSQL (LOANAPI_DATABASE_URL); on the embedded SQLite "
            "default, `loanapi serve` runs the scheduled jobs itself",
            err=True,
        )
        raise typer.Exit(2)
    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))
    _run_long(jobs.work(settings, concurrency=concurrency))


@app.command()
def openapi() -> None:
    """Print the OpenAPI document (for SDK generators: `loanapi openapi > openapi.json`)."""
    from loanapi.app import create_app

    logging.getLogger("loanapi").setLevel(logging.ERROR)
    settings = Settings(secret_key=secrets.token_urlsafe(48), docs=True)
    typer.echo(json.dumps(create_app(settings).openapi(), indent=2))
