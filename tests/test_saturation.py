"""A saturated database answers 503 with Retry-After, logged once, nothing changed (issue 16):
a pool with no connection free in time, too many clients, a statement timeout, SQLite's lock."""

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from loanapi.db import PoolExhausted, saturation
from loanapi.loans.models import Loan
from tests.conftest import PASSWORD, bearer, client_for, register, token_for
from tests.helpers import assert_problem

APPLY = {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12}


def assert_unavailable(response: Any) -> None:
    problem = assert_problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert "nothing was changed" in problem["detail"]
    assert response.headers["x-request-id"]


async def loans(app: Any) -> int:
    async with app.state.sessions.write() as session:
        return int(await session.scalar(select(func.count()).select_from(Loan)) or 0)


async def test_a_starved_database_answers_503_and_changes_nothing(make_app, database, caplog):
    starved = await make_app(db_pool_size=1, db_timeout_seconds=0.3)
    async with client_for(starved) as client:
        await register(client, "customer", "patient")
        headers = bearer(await token_for(client, "patient", PASSWORD))
        before = await loans(starved)
        caplog.set_level(logging.WARNING, logger="loanapi")
        if database.is_sqlite:
            # another process holds SQLite's write lock past the busy timeout
            path = Path(database.url.split("///", 1)[1])
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                refused = await client.post("/api/v1/customer/loans", json=APPLY, headers=headers)
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert_unavailable(refused)
        else:
            # the read pool's one connection busy: a read waits 0.3 s, then 503
            busy = asyncio.create_task(
                starved.state.sessions.read_pool.fetch("SELECT pg_sleep(1.5)", [])
            )
            await asyncio.sleep(0.1)
            assert_unavailable(await client.get("/api/v1/auth/me", headers=headers))
            await busy
            # the write pool's one connection held: a write waits 0.3 s, then 503
            async with starved.state.engine.connect() as held:
                await held.execute(text("SELECT 1"))
                refused = await client.post("/api/v1/customer/loans", json=APPLY, headers=headers)
            assert_unavailable(refused)
        assert await loans(starved) == before
        saturated = [r for r in caplog.records if "database saturated" in r.getMessage()]
        assert len(saturated) == 1 + (not database.is_sqlite)
        assert refused.headers["x-request-id"] in saturated[-1].getMessage()
        assert all(r.exc_info is None for r in saturated)
        # once the database is free again, the same request goes through
        applied = await client.post("/api/v1/customer/loans", json=APPLY, headers=headers)
        assert applied.status_code == 201, applied.text
        assert await loans(starved) == before + 1


@pytest.mark.postgres
async def test_statement_timeouts_and_too_many_clients_are_saturation(app, database):
    if database.is_sqlite:
        pytest.skip("PostgreSQL's own limits")
    async with app.state.engine.connect() as connection:
        await connection.execute(text("SET statement_timeout = 50"))
        with pytest.raises(DBAPIError) as cancelled:
            await connection.execute(text("SELECT pg_sleep(1)"))
    assert saturation(cancelled.value) == "statement timeout"
    too_many = asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
    assert saturation(too_many) == "too many connections"
    assert saturation(PoolExhausted("none free")) == "connection pool exhausted"
    assert saturation(ValueError("a bug")) is None
