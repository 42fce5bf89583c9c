"""Database wiring: declarative base, UTC timestamps, engine and the per-request session."""

import asyncio
import enum
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import DateTime, Enum, MetaData, Numeric, Select, String, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine
from starlette.requests import Request

from loanapi.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Ids are 32-bit integers on both engines; a larger number is refused before it reaches SQL.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of `day`: a bare date in a filter means that whole UTC day."""
    return datetime.combine(day, time.min, UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every engine.

    PostgreSQL stores `timestamptz`; SQLite has no zone, so the value is stored as naive UTC
    (a fixed-width string that sorts and compares correctly) and made aware again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """An exact decimal with a fixed scale on every engine.

    PostgreSQL stores NUMERIC. SQLite's NUMERIC is a binary float underneath, exact only to about
    15 digits, so there the decimal's text is stored instead (a column with text affinity).
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int = 2) -> None:
        super().__init__(precision=precision, scale=scale)
        self.precision, self.scale = precision, scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = Decimal(value).quantize(self._quantum)
        return str(exact) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value).quantize(self._quantum)


def checked_enum(cls: type[enum.StrEnum], name: str) -> Enum:
    """A VARCHAR with a CHECK, not a native PostgreSQL enum: the same text on both engines,
    and a new value is a plain migration."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Foreign keys and WAL on every connection; transactions begun by us, not by pysqlite.

    pysqlite's own implicit BEGIN is turned off so that a write request can start with
    BEGIN IMMEDIATE: a deferred transaction that reads and then writes fails at once with
    "database is locked" when another connection committed in between.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(settings: Settings, **kwargs: Any) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    if "poolclass" not in kwargs:
        # A fixed pool: an overflow pool churns connections under load (PERFORMANCE-NOTES.md).
        kwargs.setdefault("pool_size", settings.db_pool_size)
        kwargs.setdefault("max_overflow", 0)
        # No pre-ping: it costs a round trip per checkout; stale connections are recycled.
        kwargs.setdefault("pool_recycle", 1800)
    return create_async_engine(settings.database_url, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def mark_write(request: Request) -> None:
    """Route dependency for a GET that changes data (the legacy endpoints have some)."""
    request.state.writes = True


async def mark_read(request: Request) -> None:
    """Route dependency for a POST whose own transaction only reads (login)."""
    request.state.writes = False


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per writing request: commit when the handler returns, roll back on error.

    On SQLite a write request's transaction starts with BEGIN IMMEDIATE (at its first
    statement), so concurrent writers queue on the lock instead of failing. On PostgreSQL a
    request that only reads runs its statements in autocommit: no BEGIN and COMMIT round trips
    for what has nothing to commit, and `fetch` takes its statements to the read pool.
    """
    state = request.app.state
    writes = getattr(request.state, "writes", request.method in WRITE_METHODS)
    if state.settings.is_sqlite:
        bind = state.write_engine if writes else state.engine
    else:
        bind = state.engine if writes else state.read_engine
    session = state.sessionmaker(bind=bind)
    session.info[READ_POOL] = state.read_pool
    session.info[WRITES] = writes
    try:
        yield session
        if writes:  # a read has nothing to commit
            await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        # Only a session in a transaction holds a connection. Not `async with`: closing one
        # that never connected (most reads: `fetch` uses the read pool) costs a task per request.
        if session.in_transaction():
            await session.close()


# In a request session's info: the ReadPool `fetch` may use, and whether the request writes.
READ_POOL = "loanapi.read_pool"
WRITES = "loanapi.writes"


class ReadPool:
    """asyncpg's own pool, for the statements `fetch` runs in requests that only read.

    Apart from SQLAlchemy's pool: a checkout there, with its Connection wrapper, costs about
    60 us of CPU, here 14 us. Each statement takes a connection for one autocommit SELECT and
    gives it back at once, so a request never holds two connections of one pool (no pool can
    run dry with every request waiting for its second one). Opened on first use.
    """

    def __init__(self, engine: AsyncEngine, size: int) -> None:
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        for name in SQLALCHEMY_ONLY:  # read by SQLAlchemy's adapter, unknown to asyncpg
            kwargs.pop(name, None)
        self._connect = (args, kwargs)
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        pool = self._pool or await self._open()
        async with pool.acquire() as connection:
            return await connection.fetch(sql, *args)

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                args, kwargs = self._connect
                self._pool = await asyncpg.create_pool(
                    *args, **kwargs, min_size=1, max_size=self._size, reset=_reset
                )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


SQLALCHEMY_ONLY = (
    "async_creator_fn",
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
)


async def _reset(connection: asyncpg.Connection) -> None:
    """Instead of asyncpg's reset, a round trip on every release: these connections only run
    single autocommit SELECTs and keep no state, unless a cancelled one left a transaction."""
    if connection.is_in_transaction():
        await connection.reset()


async def fetch(
    session: AsyncSession,
    statement: Select[Any],
    parameters: dict[str, Any] | None = None,
    *,
    outside_transaction: bool = False,
) -> Sequence[Mapping[str, Any]]:
    """The rows of a read-only Core statement, as mappings of the same values either way.

    In a request that only reads on PostgreSQL, the statement runs straight on asyncpg, on the
    read pool: SQLAlchemy compiles it once, and its execution layer, which costs more CPU than
    the query itself, is skipped. So does it in a request that writes, `outside_transaction`:
    for a read that needs neither the request's own changes nor its transaction (the caller's
    account, read before any). Elsewhere, and for statements asyncpg cannot take as they are
    (expanding IN lists), it runs through Core on the session's connection, in its transaction.

    The compiled form is cached per statement object: build statements once, with bindparams.
    """
    parameters = parameters or {}
    pool: ReadPool | None = session.info.get(READ_POOL)
    if session.info.get(WRITES) and not outside_transaction:
        pool = None
    assert session.bind is not None
    compiled = _compiled(statement, session.bind.dialect) if pool is not None else None
    if pool is None or compiled is None:
        connection = await session.connection()
        return (await connection.execute(statement, parameters)).mappings().all()
    args = [parameters.get(name, compiled.defaults[name]) for name in compiled.names]
    return [compiled.row(record) for record in await pool.fetch(compiled.sql, args)]


@dataclass(frozen=True)
class _Compiled:
    """A statement as asyncpg takes it, and how to give its rows Core's values."""

    sql: str
    names: list[str]  # the bindparams, in positional order
    defaults: dict[str, Any]
    enums: tuple[tuple[str, Mapping[Any, Any]], ...]  # enum columns: text -> member

    def row(self, record: Mapping[str, Any]) -> dict[str, Any]:
        # asyncpg already gives what the other column types give through Core (Decimal at the
        # column's scale, aware UTC datetimes); enum columns come back as their text.
        row = dict(record)
        for name, members in self.enums:
            if row[name] is not None:
                row[name] = members[row[name]]
        return row


@functools.lru_cache(maxsize=256)
def _compiled(statement: Select[Any], dialect: Dialect) -> _Compiled | None:
    compiled = statement.compile(dialect=dialect)
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    enums = tuple(
        (column.name, column.type.enum_class._value2member_map_)
        for column in statement.selected_columns
        if isinstance(column.type, Enum) and column.type.enum_class is not None
    )
    return _Compiled(compiled.string, list(compiled.positiontup or ()), compiled.params, enums)
