"""Async Alembic environment: the same engine code as the app, one connection, no pool."""

import asyncio
import warnings
from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from loanapi.config import Settings
from loanapi.db import create_engine
from loanapi.models import load_all
from loanapi.orm import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

load_all()
target_metadata = Base.metadata

# SQLite batch migrations reflect the tables that refer to `users`, and `users` with them; its
# expression indexes (unique lower(username), lower(email)) cannot be reflected and need not
# be: no migration copies `users` (0011 alters it in place; tests/test_migrations.py checks).
warnings.filterwarnings(
    "ignore", "Skipped unsupported reflection of expression-based index", sa.exc.SAWarning
)


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings().database_url


def compare_type(
    context: Any,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: Any,
    metadata_type: Any,
) -> bool | None:
    """SQLite does not enforce a VARCHAR's length, so a length alone is no difference there."""
    plain = type(metadata_type) is sa.String and isinstance(inspected_type, sa.String)
    if context.dialect.name == "sqlite" and plain:
        return False
    return None  # Alembic's own comparison


def include_name(name: str | None, type_: str, _parent: Any) -> bool:
    """The job queue's tables are Procrastinate's (revision 0009), not our models'."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate"))


def run_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=compare_type,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Outside a transaction (inside one SQLite ignores it): the DBAPI cursor, not SQLAlchemy,
    which would begin one."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


def run_with(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        # SQLite's DDL is transactional too: a revision that refuses (0007's downgrade) undoes
        # the ones run before it in the same command, as on PostgreSQL.
        transactional_ddl=True,
        compare_type=compare_type,
        include_name=include_name,
    )
    if sqlite:
        # Batch mode rebuilds a table by copying it and dropping the old one, which the foreign
        # keys of other tables' rows would refuse: they are checked once at the end instead.
        _sqlite_foreign_keys(connection, on=False)
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, on=True)


async def run_online() -> None:
    settings = Settings(database_url=database_url(), secret_key=None)
    engine = create_engine(settings, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
