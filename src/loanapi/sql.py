"""Calendar arithmetic in SQL, alike on PostgreSQL and SQLite.

Close of business derives a whole book's lateness in set-based statements, so the ledger's date
rules (loans/ledger.py) have to exist in SQL too: adding months clamped to the month's end,
days between dates. Each construct compiles to each engine's own functions; SQLite keeps dates as
`YYYY-MM-DD` text. tests/loans/test_close_of_business.py checks them against the ledger.
"""

from typing import Any

from sqlalchemy import BigInteger, Date, Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class add_months(FunctionElement[Any]):  # noqa: N801 (a SQL function's name)
    """`add_months(day, months)`: the same day `months` later, clamped to the month's end."""

    type = Date()
    inherit_cache = True


@compiles(add_months, "postgresql")
def _add_months_postgresql(element: add_months, compiler: Any, **kw: Any) -> str:
    day, months = (compiler.process(arg, **kw) for arg in element.clauses)
    # PostgreSQL's month arithmetic clamps to the month's last day, as the ledger does.
    return f"CAST(({day}) + make_interval(months => CAST({months} AS INTEGER)) AS DATE)"


@compiles(add_months, "sqlite")
def _add_months_sqlite(element: add_months, compiler: Any, **kw: Any) -> str:
    day, months = (compiler.process(arg, **kw) for arg in element.clauses)
    # SQLite's '+N months' overflows into the next month (Jan 31 + 1 month = Mar 3): go to the
    # first of the target month, then add min(day of month, days in that month) - 1 days.
    first = f"date({day}, 'start of month', ({months}) || ' months')"
    last_day = f"CAST(strftime('%d', {first}, '+1 month', '-1 day') AS INTEGER)"
    wanted = f"CAST(strftime('%d', {day}) AS INTEGER)"
    return f"date({first}, (min({wanted}, {last_day}) - 1) || ' days')"


class days_between(FunctionElement[Any]):  # noqa: N801
    """`days_between(later, earlier)`: whole days from `earlier` to `later`."""

    type = Integer()
    inherit_cache = True


@compiles(days_between, "postgresql")
def _days_between_postgresql(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(CAST({later} AS DATE) - CAST({earlier} AS DATE))"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


class add_days(FunctionElement[Any]):  # noqa: N801
    """`add_days(day, count)`: `count` days later (earlier when negative)."""

    type = Date()
    inherit_cache = True


@compiles(add_days, "postgresql")
def _add_days_postgresql(element: add_days, compiler: Any, **kw: Any) -> str:
    day, count = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(CAST({day} AS DATE) + CAST({count} AS INTEGER))"


@compiles(add_days, "sqlite")
def _add_days_sqlite(element: add_days, compiler: Any, **kw: Any) -> str:
    day, count = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"date({day}, ({count}) || ' days')"


class month_index(FunctionElement[Any]):  # noqa: N801
    """`year * 12 + month - 1` of a date: months between two dates are a difference of these."""

    type = Integer()
    inherit_cache = True


@compiles(month_index, "postgresql")
def _month_index_postgresql(element: month_index, compiler: Any, **kw: Any) -> str:
    day = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(extract(year FROM {day}) AS INTEGER) * 12 "
        f"+ CAST(extract(month FROM {day}) AS INTEGER) - 1)"
    )


@compiles(month_index, "sqlite")
def _month_index_sqlite(element: month_index, compiler: Any, **kw: Any) -> str:
    day = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(strftime('%Y', {day}) AS INTEGER) * 12 "
        f"+ CAST(strftime('%m', {day}) AS INTEGER) - 1)"
    )


class cents(FunctionElement[Any]):  # noqa: N801
    """A money column as whole cents (an integer), so sums and comparisons are exact: SQLite
    keeps money as decimal text, and its arithmetic on text is binary floating point."""

    type = Integer()
    inherit_cache = True


@compiles(cents, "postgresql")
def _cents_postgresql(element: cents, compiler: Any, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) * 100 AS BIGINT)"


@compiles(cents, "sqlite")
def _cents_sqlite(element: cents, compiler: Any, **kw: Any) -> str:
    # Below 2**53 cents a double holds every whole number exactly; round() removes the binary
    # error of parsing the decimal text.
    return f"CAST(round(({compiler.process(element.clauses, **kw)}) * 100) AS INTEGER)"


class cents_sum(FunctionElement[Any]):  # noqa: N801
    """The sum of a money column in whole cents: NUMERIC's own exact sum on PostgreSQL (one
    conversion per group, not per row), a sum of per-row cents on SQLite."""

    type = Integer()
    inherit_cache = True


@compiles(cents_sum, "postgresql")
def _cents_sum_postgresql(element: cents_sum, compiler: Any, **kw: Any) -> str:
    return f"CAST(sum({compiler.process(element.clauses, **kw)}) * 100 AS BIGINT)"


@compiles(cents_sum, "sqlite")
def _cents_sum_sqlite(element: cents_sum, compiler: Any, **kw: Any) -> str:
    return f"sum(CAST(round(({compiler.process(element.clauses, **kw)}) * 100) AS INTEGER))"


class money(FunctionElement[Any]):  # noqa: N801
    """Whole cents back as a money value for a Money column (NUMERIC, or SQLite's text)."""

    inherit_cache = True

    def __init__(self, amount: Any, type_: Any) -> None:
        super().__init__(amount)
        self.type = type_


@compiles(money, "postgresql")
def _money_postgresql(element: money, compiler: Any, **kw: Any) -> str:
    return f"(CAST({compiler.process(element.clauses, **kw)} AS NUMERIC) / 100)"


@compiles(money, "sqlite")
def _money_sqlite(element: money, compiler: Any, **kw: Any) -> str:
    amount = compiler.process(element.clauses, **kw)
    return f"printf('%d.%02d', ({amount}) / 100, ({amount}) % 100)"


class least(FunctionElement[Any]):  # noqa: N801
    type = Integer()
    inherit_cache = True


class greatest(FunctionElement[Any]):  # noqa: N801
    type = Integer()
    inherit_cache = True


@compiles(least, "postgresql")
@compiles(greatest, "postgresql")
def _extreme_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"{type(element).__name__}({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
def _least_sqlite(element: least, compiler: Any, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


# --- transaction order, for the event feed (webhooks/feed.py) ---------------------------------


class current_txid(FunctionElement[Any]):  # noqa: N801
    """The writing transaction's id on PostgreSQL; 0 on SQLite (one writer: ids are in commit
    order there)."""

    type = BigInteger()
    inherit_cache = True


@compiles(current_txid, "postgresql")
def _current_txid_postgresql(element: current_txid, compiler: Any, **kw: Any) -> str:
    return "CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)"


@compiles(current_txid, "sqlite")
def _current_txid_sqlite(element: current_txid, compiler: Any, **kw: Any) -> str:
    return "0"


class head_event_id(FunctionElement[Any]):  # noqa: N801
    """With current_txid, the feed's head as this transaction sees it: every event of an older
    transaction is at or before (current_txid, head_event_id), every later one after it. On
    PostgreSQL 0 (the transaction's id does it); on SQLite the last event's id."""

    type = Integer()
    inherit_cache = True


@compiles(head_event_id, "postgresql")
def _head_event_id_postgresql(element: head_event_id, compiler: Any, **kw: Any) -> str:
    return "0"


@compiles(head_event_id, "sqlite")
def _head_event_id_sqlite(element: head_event_id, compiler: Any, **kw: Any) -> str:
    return "(SELECT coalesce(max(id), 0) FROM events)"


class oldest_running_txid(FunctionElement[Any]):  # noqa: N801
    """Every transaction with a smaller id has ended (PostgreSQL's snapshot xmin); on SQLite,
    1, so every committed event (txid 0) is below it."""

    type = BigInteger()
    inherit_cache = True


@compiles(oldest_running_txid, "postgresql")
def _oldest_running_postgresql(element: oldest_running_txid, compiler: Any, **kw: Any) -> str:
    return "CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT)"


@compiles(oldest_running_txid, "sqlite")
def _oldest_running_sqlite(element: oldest_running_txid, compiler: Any, **kw: Any) -> str:
    return "1"
