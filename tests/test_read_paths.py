"""Every read statement down both paths on PostgreSQL: the read pool and SQLAlchemy Core.

`db.fetch` runs a read-only Core statement straight on asyncpg in a read session on PostgreSQL
(compiled once, enum columns turned back into members by `_Compiled.row`) and through Core
everywhere else. Both must give the same rows. A small book is built through the API, every read
endpoint that reaches `fetch` is called while each (statement, parameters) is recorded, and each
recorded pair is then run down both paths and compared value by value and type by type.
"""

import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest

from loanapi import db
from tests.conftest import Caller, Database, bearer, register, token_for

pytestmark = pytest.mark.postgres

V1 = "/api/v1"
# The modules whose statements reach `fetch`: each must be recorded at least once.
SERVICES = {"loanapi.loans.service", "loanapi.users.service"}
# Statements `_compiled` refuses (an expanding IN list), which run only through Core, by the
# names of their parameters: the legacy /getloans?status=..., where "New" stands for two
# statuses, so any status is an IN list (`statuses`).
CORE_ONLY = {
    frozenset({"statuses", "limit"}): "legacy /getloans?status=... by an agent or an admin",
    frozenset({"statuses", "customer_id", "limit"}): "legacy /getloans?status=... by a customer",
}
PLAIN_TYPES = (bool, int, str, float, Decimal, datetime)

Recorded = tuple[str, Any, dict[str, Any]]


@pytest.fixture
def postgres(database: Database) -> Database:
    if database.is_sqlite:
        pytest.skip("the read pool exists only on PostgreSQL")
    return database


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Recorded]:
    """Every (module, statement, parameters) given to `fetch` while the test runs."""
    calls: list[Recorded] = []
    original = db.fetch

    def recorder(module: str) -> Any:
        async def fetch(
            session: Any, statement: Any, parameters: dict[str, Any] | None = None
        ) -> Sequence[Mapping[str, Any]]:
            calls.append((module, statement, dict(parameters or {})))
            return await original(session, statement, parameters)

        return fetch

    # The services import it by name: patch it where each one looks it up.
    importers = [
        name
        for name, module in list(sys.modules.items())
        if name.startswith("loanapi.") and getattr(module, "fetch", None) is original
    ]
    assert SERVICES <= set(importers), importers
    for name in importers:
        monkeypatch.setattr(sys.modules[name], "fetch", recorder(name))
    return calls


async def ok(client: Any, method: str, path: str, caller: Caller, **kwargs: Any) -> Any:
    response = await client.request(method, path, headers=caller.headers, **kwargs)
    assert response.status_code in (200, 201), f"{method} {path}: {response.text}"
    return response.json()


async def registered(client: Any, role: str, username: str, **extra: Any) -> Caller:
    user = await register(client, role, username, **extra)
    return Caller(user["id"], username, bearer(await token_for(client, username)))


async def apply(client: Any, customer: Caller, loan_type: str, principal: str, months: int) -> int:
    body = {"loan_type": loan_type, "principal": principal, "tenure_months": months}
    return int((await ok(client, "POST", f"{V1}/customer/loans", customer, json=body))["id"])


async def build_book(client: Any, admin: Caller, agent: Caller) -> dict[str, Any]:
    """Loans in every status and of every type, edited, with and without an agent."""
    carol = await registered(client, "customer", "carol", phone="+44 20 7946 0000")
    dave = await registered(client, "customer", "dave")
    bea_id = (await register(client, "agent", "bea", phone="555-0101"))["id"]
    await ok(client, "POST", f"{V1}/admin/agents/{bea_id}/approve", admin)
    bea = Caller(bea_id, "bea", bearer(await token_for(client, "bea")))

    agent_loans = f"{V1}/agent/loans"
    approved = await apply(client, carol, "home_loan", "10000", 12)
    edit = {"principal": "12500.55", "tenure_months": 24}
    await ok(client, "PATCH", f"{agent_loans}/{approved}", agent, json=edit)
    await ok(client, "POST", f"{agent_loans}/{approved}/request", agent)
    await ok(client, "POST", f"{V1}/admin/loans/{approved}/approve", admin)

    rejected = await apply(client, carol, "personal_loan", "5000", 6)
    await ok(client, "POST", f"{agent_loans}/{rejected}/request", bea)
    reason = {"reason": "Income not verified"}
    await ok(client, "POST", f"{V1}/admin/loans/{rejected}/reject", admin, json=reason)

    untouched = await apply(client, dave, "car_loan", "7500.10", 36)
    withdrawn = await apply(client, dave, "education_loan", "20000", 48)
    await ok(client, "POST", f"{V1}/customer/loans/{withdrawn}/withdraw", dave)

    requested = await apply(client, carol, "home_loan", "30000", 60)
    await ok(client, "PATCH", f"{agent_loans}/{requested}", agent, json={"loan_type": "car_loan"})
    await ok(client, "POST", f"{agent_loans}/{requested}/request", agent)

    rolled_back = await apply(client, dave, "personal_loan", "4000", 12)
    await ok(client, "PATCH", f"{agent_loans}/{rolled_back}", bea, json={"principal": "4500"})
    await ok(client, "POST", f"{agent_loans}/{rolled_back}/rollback", bea, json={"version": 1})

    return {
        "carol": carol,
        "dave": dave,
        "bea": bea,
        "loans": [approved, rejected, untouched, withdrawn, requested, rolled_back],
    }


async def read_everything(client: Any, admin: Caller, agent: Caller, book: dict[str, Any]) -> None:
    """Every read endpoint that reaches `fetch`, with each filter."""
    carol, dave, bea = book["carol"], book["dave"], book["bea"]
    approved, rejected, *_ = book["loans"]
    first = await ok(client, "GET", f"{V1}/admin/loans/{approved}", admin)
    day = first["created_at"][:10]
    moment = datetime.fromisoformat(first["created_at"]) - timedelta(minutes=5)

    await ok(client, "GET", f"{V1}/auth/me", dave)  # the caller read, on its own
    await ok(client, "GET", f"{V1}/loan-products", dave)
    admin_list = f"{V1}/admin/loans"
    for params in (
        {},
        {"status": "approved"},
        {"status": "new"},
        {"loan_type": "car_loan"},
        {"customer_id": carol.id},
        {"created_from": day, "created_to": day},
        {"created_from": moment.isoformat()},
        {"updated_from": day, "updated_to": day},
        {"updated_to": (moment + timedelta(days=1)).isoformat()},
        {"status": "requested", "loan_type": "car_loan", "customer_id": carol.id},
    ):
        page = await ok(client, "GET", admin_list, admin, params=params)
        assert page["items"], params
    first_page = await ok(client, "GET", admin_list, admin, params={"limit": 2})
    cursor = first_page["next_cursor"]
    assert cursor
    await ok(client, "GET", admin_list, admin, params={"limit": 2, "cursor": cursor})
    new = await ok(client, "GET", admin_list, admin, params={"limit": 1, "status": "new"})
    assert new["next_cursor"]  # a cursor goes with the filters of the page that gave it
    await ok(
        client,
        "GET",
        admin_list,
        admin,
        params={"limit": 1, "cursor": new["next_cursor"], "status": "new"},
    )
    for params in ({}, {"status": "rejected"}, {"loan_type": "home_loan"}):
        await ok(client, "GET", f"{V1}/agent/loans", agent, params=params)
    for params in ({}, {"status": "approved"}):
        await ok(client, "GET", f"{V1}/customer/loans", carol, params=params)

    for caller, prefix in ((admin, "admin"), (agent, "agent"), (carol, "customer")):
        for loan_id in (approved, rejected):
            await ok(client, "GET", f"{V1}/{prefix}/loans/{loan_id}", caller)
            await ok(client, "GET", f"{V1}/{prefix}/loans/{loan_id}/history", caller)
    await ok(client, "GET", f"{V1}/customer/loans/{approved}/schedule", carol)
    await ok(client, "GET", f"{V1}/agent/requests", agent)
    await ok(client, "GET", f"{V1}/agent/requests", bea, params={"status": "rejected"})
    await ok(client, "GET", f"{V1}/admin/agents/{agent.id}/loan-requests", admin)
    requests_of_bea = f"{V1}/admin/agents/{bea.id}/loan-requests"
    await ok(client, "GET", requests_of_bea, admin, params={"status": "rejected"})

    for caller in (admin, agent, carol):
        await ok(client, "GET", "/getloans", caller)
        await ok(client, "GET", "/getloans", caller, params={"status": "New"})
        await ok(client, "GET", "/getloans", caller, params={"status": "approved"})
    await ok(client, "GET", "/all_Customers", agent)
    await ok(client, "GET", "/loan_Requests_by_agent", agent)
    await ok(client, "GET", f"/Agent_loan_requests/{bea.id}", admin)
    for path in ("/filter-by-create-date", "/filter-by-update-date"):
        await ok(client, "GET", path, admin)
        await ok(client, "GET", path, agent, params={"start_date": day, "end_date": day})


def distinct(calls: list[Recorded]) -> list[Recorded]:
    seen: set[tuple[int, str]] = set()
    unique = []
    for module, statement, parameters in calls:
        key = (id(statement), repr(sorted(parameters.items())))
        if key not in seen:
            seen.add(key)
            unique.append((module, statement, parameters))
    return unique


async def fast_path(app: Any, compiled: Any, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """What `fetch` does in a read session on PostgreSQL."""
    pool = app.state.sessions.read_pool
    args = [parameters.get(name, compiled.defaults[name]) for name in compiled.names]
    return [compiled.row(record) for record in await pool.fetch(compiled.sql, args)]


async def core_path(app: Any, statement: Any, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """What `fetch` does everywhere else: Core on a session's connection."""
    async with app.state.sessions.readers() as session:
        connection = await session.connection()
        result = await connection.execute(statement, parameters)
        return [dict(row) for row in result.mappings().all()]


def assert_same_value(fast: Any, core: Any, where: str) -> str:
    """Equal and of the same type; returns the kind of value compared."""
    assert type(fast) is type(core), f"{where}: {type(fast)!r} != {type(core)!r}"
    assert fast == core, f"{where}: {fast!r} != {core!r}"
    if core is None:
        return "None"
    if isinstance(core, Enum):
        assert fast is core, f"{where}: {fast!r} is not {core!r}"
        return "enum"
    if isinstance(core, dict):  # a JSON column: the same document, value by value
        assert list(fast) == list(core), f"{where}: keys differ"
        for key in core:
            assert_same_value(fast[key], core[key], f"{where}.{key}")
        return "json"
    if isinstance(core, list):
        assert len(fast) == len(core), f"{where}: lengths differ"
        for index, (one, other) in enumerate(zip(fast, core, strict=True)):
            assert_same_value(one, other, f"{where}[{index}]")
        return "json"
    assert type(core) in PLAIN_TYPES, f"{where}: {core!r} is of no type compared here"
    if isinstance(core, Decimal):
        assert fast.as_tuple() == core.as_tuple(), f"{where}: {fast!r} vs {core!r} (exponent)"
    if isinstance(core, datetime):
        for value in (fast, core):
            assert value.utcoffset() == timedelta(0), f"{where}: {value!r} is not UTC"
        assert fast.tzinfo == core.tzinfo, f"{where}: {fast.tzinfo!r} != {core.tzinfo!r}"
    return type(core).__name__


def assert_same_rows(fast: list[dict[str, Any]], core: list[dict[str, Any]], name: str) -> set:
    assert core, f"{name}: no rows to compare"
    assert len(fast) == len(core), f"{name}: {len(fast)} rows != {len(core)}"
    kinds = set()
    for index, (fast_row, core_row) in enumerate(zip(fast, core, strict=True)):
        assert list(fast_row) == list(core_row), f"{name}[{index}]: columns differ"
        for column, core_value in core_row.items():
            where = f"{name}[{index}].{column}"
            kinds.add(assert_same_value(fast_row[column], core_value, where))
    return kinds


def describe(module: str, statement: Any, parameters: dict[str, Any]) -> str:
    columns = ",".join(column.name for column in statement.selected_columns)
    return f"{module.removeprefix('loanapi.')}({columns[:60]}; {sorted(parameters)})"


async def test_every_read_statement_gives_the_same_rows_down_both_paths(
    postgres: Database, app: Any, client: Any, admin: Caller, agent: Caller, recorded: Any
) -> None:
    assert app.state.sessions.read_pool is not None, "no read pool: nothing to compare"
    book = await build_book(client, admin, agent)
    await read_everything(client, admin, agent, book)

    calls = distinct(recorded)
    modules = {module for module, _, _ in calls}
    assert modules >= SERVICES, modules
    statements = {id(statement) for _, statement, _ in calls}
    assert len(statements) >= 20, f"only {len(statements)} distinct statements recorded"

    dialect = app.state.engine.dialect
    kinds: set[str] = set()
    core_only: set[frozenset[str]] = set()
    compared = 0
    for module, statement, parameters in calls:
        name = describe(module, statement, parameters)
        compiled = db._compiled(statement, dialect)
        core = await core_path(app, statement, parameters)
        if compiled is None:
            core_only.add(frozenset(parameters))
            assert frozenset(parameters) in CORE_ONLY, f"{name}: unexpectedly Core-only"
            assert core, f"{name}: no rows"
            continue
        assert frozenset(parameters) not in CORE_ONLY, f"{name}: expected to be Core-only"
        kinds |= assert_same_rows(await fast_path(app, compiled, parameters), core, name)
        compared += 1

    assert core_only == set(CORE_ONLY), sorted(map(sorted, core_only))
    assert compared >= 20
    # The book has a value of every kind the fast path must give as Core does.
    assert kinds >= {"enum", "Decimal", "datetime", "None", "float", "str", "int", "json"}, kinds


async def test_a_read_request_takes_the_read_pool(
    postgres: Database, app: Any, client: Any, admin: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise the comparison above would prove nothing about what requests run."""
    pool = app.state.sessions.read_pool
    used: list[str] = []
    original = pool.fetch

    async def counting(sql: str, args: Sequence[Any]) -> Any:
        used.append(sql)
        return await original(sql, args)

    monkeypatch.setattr(pool, "fetch", counting)
    await ok(client, "GET", f"{V1}/auth/me", admin)
    await ok(client, "GET", f"{V1}/admin/loans", admin)
    assert len(used) == 3, used  # the caller twice, and the list
