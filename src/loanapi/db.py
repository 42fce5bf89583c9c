"""Engines and sessions: a read session and a write session, different types.

A service that changes data takes a `WriteSession` (one transaction: everything it writes
commits together or not at all); one that only reads takes any `AsyncSession`. A `ReadSession`
never commits: on PostgreSQL its statements run in autocommit and `fetch` takes them to a pool of
raw asyncpg connections of its own. Nothing is inferred from the HTTP method.
"""

import asyncio
import functools
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy.exc
from sqlalchemy import JSON, Enum, Select, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from loanapi.config import Settings


class ReadSession(AsyncSession):
    """A session that only reads: nothing it does is ever committed."""

    async def commit(self) -> None:
        raise TypeError("a read session never commits: a change takes a WriteSession")


class WriteSession(AsyncSession):
    """One transaction: the caller commits it when the work is done, or rolls it back."""


def _configure_sqlite(engine: AsyncEngine, busy_seconds: float) -> None:
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
        cursor.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(settings: Settings, **kwargs: Any) -> AsyncEngine:
    if settings.is_sqlite:
        timeout = settings.db_timeout_seconds
        engine = create_async_engine(
            settings.database_url, connect_args={"timeout": timeout}, **kwargs
        )
        _configure_sqlite(engine, timeout)
        return engine
    if "poolclass" not in kwargs:
        # A fixed pool: an overflow pool churns connections under load (PERFORMANCE-NOTES.md).
        kwargs.setdefault("pool_size", settings.db_pool_size)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", settings.db_timeout_seconds)
        # No pre-ping: it costs a round trip per checkout; stale connections are recycled.
        kwargs.setdefault("pool_recycle", 1800)
    return create_async_engine(settings.database_url, **kwargs)


@dataclass(frozen=True)
class Sessions:
    """The two kinds of session of one database."""

    engine: AsyncEngine
    readers: async_sessionmaker[ReadSession]
    writers: async_sessionmaker[WriteSession]
    read_pool: "ReadPool | None"

    def read(self) -> ReadSession:
        session = self.readers()
        session.info[READ_POOL] = self.read_pool
        return session

    def write(self) -> WriteSession:
        return self.writers()


def create_sessions(engine: AsyncEngine, settings: Settings) -> Sessions:
    """On SQLite a write transaction starts with BEGIN IMMEDIATE (at its first statement), so
    concurrent writers queue on the lock instead of failing. On PostgreSQL reads run in
    autocommit: no BEGIN and COMMIT round trips for what has nothing to commit."""
    if settings.is_sqlite:
        read_bind, write_bind = engine, engine.execution_options(sqlite_immediate=True)
        read_pool = None
    else:
        read_bind, write_bind = engine.execution_options(isolation_level="AUTOCOMMIT"), engine
        read_pool = ReadPool(engine, settings.db_pool_size, settings.db_timeout_seconds)
    options: dict[str, Any] = {"expire_on_commit": False, "autoflush": False}
    return Sessions(
        engine=engine,
        readers=async_sessionmaker(read_bind, class_=ReadSession, **options),
        writers=async_sessionmaker(write_bind, class_=WriteSession, **options),
        read_pool=read_pool,
    )


async def release(session: AsyncSession) -> None:
    """Give back a request session's connection, if it took one. Not `async with`: closing one
    that never connected (most reads: `fetch` uses the read pool) costs a task per request."""
    if session.in_transaction():
        await session.close()


# In a read session's info: the ReadPool `fetch` may use.
READ_POOL = "loanapi.read_pool"


class ReadPool:
    """asyncpg's own pool, for the statements `fetch` runs in requests that only read.

    Apart from SQLAlchemy's pool: a checkout there, with its Connection wrapper, costs about
    60 us of CPU, here 14 us. Each statement takes a connection for one autocommit SELECT and
    gives it back at once, so a request never holds two connections of one pool (no pool can
    run dry with every request waiting for its second one). Opened on first use.
    """

    def __init__(self, engine: AsyncEngine, size: int, timeout: float = 30) -> None:
        self._connect = asyncpg_connect_args(engine)
        self._size = size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        pool = self._pool or await self._open()
        try:
            connection = await pool.acquire(timeout=self._timeout)
        except TimeoutError:
            raise PoolExhausted(f"no read connection free within {self._timeout:g} s") from None
        try:
            records: list[asyncpg.Record] = await connection.fetch(sql, *args)
            return records
        finally:
            await pool.release(connection)

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


class PoolExhausted(Exception):
    """No connection of a pool came free in time."""


# SQLSTATEs of a database that is overloaded rather than wrong: too many connections, not
# accepting connections now (starting or shutting down), a statement or lock wait cancelled by
# its timeout.
SATURATED_STATES = {
    "53300": "too many connections",
    "57P03": "not accepting connections",
    "57014": "statement timeout",
    "55P03": "lock timeout",
}


def saturation(exc: BaseException) -> str | None:
    """What overloaded the database when `exc` says it was (the answer is then 503 with
    Retry-After, not 500), else None."""
    if isinstance(exc, PoolExhausted | sqlalchemy.exc.TimeoutError):
        return "connection pool exhausted"
    original = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if state in SATURATED_STATES:
        return SATURATED_STATES[state]
    sqlite_error = isinstance(original, sqlite3.OperationalError)
    if sqlite_error or isinstance(exc, sqlalchemy.exc.OperationalError):
        if "database is locked" in str(original):  # SQLite's busy timeout ran out
            return "database locked"
    cause = exc.__cause__
    return saturation(cause) if cause is not None and cause is not exc else None


SQLALCHEMY_ONLY = (
    "async_creator_fn",
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
)


def asyncpg_connect_args(engine: AsyncEngine) -> tuple[list[Any], dict[str, Any]]:
    """What `asyncpg.connect` takes to open a connection like `engine`'s own."""
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    for name in SQLALCHEMY_ONLY:  # read by SQLAlchemy's adapter, unknown to asyncpg
        kwargs.pop(name, None)
    return list(args), dict(kwargs)


async def _reset(connection: asyncpg.Connection) -> None:
    """Instead of asyncpg's reset, a round trip on every release: these connections only run
    single autocommit SELECTs and keep no state, unless a cancelled one left a transaction."""
    if connection.is_in_transaction():
        await connection.reset()


async def fetch(
    session: AsyncSession,
    statement: Select[Any],
    parameters: dict[str, Any] | None = None,
) -> Sequence[Mapping[str, Any]]:
    """The rows of a read-only Core statement, as mappings of the same values either way.

    In a read session on PostgreSQL, the statement runs straight on asyncpg, on the read pool:
    SQLAlchemy compiles it once, and its execution layer, which costs more CPU than the query
    itself, is skipped. In a write session (it must see its own changes, in its transaction),
    on SQLite, and for statements asyncpg cannot take as they are (expanding IN lists), it runs
    through Core on the session's connection. tests/test_read_paths.py runs every read statement
    down both paths and compares the rows value by value.

    The compiled form is cached per statement object: build statements once, with bindparams.
    """
    parameters = parameters or {}
    pool: ReadPool | None = session.info.get(READ_POOL)
    assert session.bind is not None
    compiled = _compiled(statement, session.bind.dialect) if pool is not None else None
    if pool is None or compiled is None:
        connection = await session.connection()
        result = await connection.execute(statement, parameters)
        return list(result.mappings().all())
    args = [parameters.get(name, compiled.defaults[name]) for name in compiled.names]
    return [compiled.row(record) for record in await pool.fetch(compiled.sql, args)]


@dataclass(frozen=True)
class _Compiled:
    """A statement as asyncpg takes it, and how to give its rows Core's values."""

    sql: str
    names: list[str]  # the bindparams, in positional order
    defaults: dict[str, Any]
    enums: tuple[tuple[str, Mapping[Any, Any]], ...]  # enum columns: text -> member
    jsons: tuple[str, ...]  # JSON columns, decoded like Core does

    def row(self, record: Mapping[str, Any]) -> dict[str, Any]:
        # asyncpg already gives what the other column types give through Core (Decimal at the
        # column's scale, aware UTC datetimes); enum columns come back as their text, JSON
        # columns as theirs.
        row = dict(record)
        for name, members in self.enums:
            if row[name] is not None:
                row[name] = members[row[name]]
        for name in self.jsons:
            if row[name] is not None:
                row[name] = json.loads(row[name])
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
    jsons = tuple(
        column.name for column in statement.selected_columns if isinstance(column.type, JSON)
    )
    names = list(compiled.positiontup or ())
    return _Compiled(compiled.string, names, compiled.params, enums, jsons)
