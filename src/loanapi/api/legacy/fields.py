"""The one mapping from loanapi's rows to the original system's keys and values.

Each legacy key names a column and how its value is shown (a `Kind`). A kind renders a value in
two places that must agree: in SQL, so that a whole list comes out of the database ready to be
encoded in bulk (no per-row Python), and in Python, for the single loan a change returns.
"""

import email.utils
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, Integer, String, case, cast, func, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.schema import Column

from loanapi.loans.models import Loan, LoanStatus, LoanType
from loanapi.users.models import User

LOAN_TYPE_WORDS = {
    LoanType.home_loan: "Home_loan",
    LoanType.personal_loan: "Personal_loan",
    LoanType.car_loan: "Car_loan",
    LoanType.education_loan: "Educational_loan",
}
# The original knew New, Approved and Rejected; a requested loan was still New to it.
STATUS_WORDS = {
    LoanStatus.new: "New",
    LoanStatus.requested: "New",
    LoanStatus.approved: "Approved",
    LoanStatus.rejected: "Rejected",
    LoanStatus.withdrawn: "Withdrawn",
    # The original ended at approval: a disbursed loan, repaid or written off, is still Approved.
    LoanStatus.active: "Approved",
    LoanStatus.closed: "Approved",
    LoanStatus.written_off: "Approved",
}
# The original's state numbers, as its history and date filters sent them.
STATE_NUMBERS = {"Approved": 0, "Rejected": 1, "New": 2, "Withdrawn": 3}
NO_AGENT = -1


class rfc1123(FunctionElement[str]):  # noqa: N801 (a SQL function's name)
    """A UTC timestamp as `Mon, 30 Nov 2026 00:12:21 GMT`, formatted by the database."""

    type = String()
    inherit_cache = True


@compiles(rfc1123, "postgresql")
def _rfc1123_postgresql(element: rfc1123, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    # Without the TM prefix, Dy and Mon are English whatever the server's locale.
    return f"to_char(({value}) AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS \"GMT\"')"


@compiles(rfc1123, "sqlite")
def _rfc1123_sqlite(element: rfc1123, compiler: Any, **kw: Any) -> str:
    # Stored as naive UTC text; SQLite's strftime has no day or month names.
    value = compiler.process(element.clauses, **kw)
    day = f"substr('SunMonTueWedThuFriSat', 1 + 3 * CAST(strftime('%w', {value}) AS INTEGER), 3)"
    month = (
        "substr('JanFebMarAprMayJunJulAugSepOctNovDec', "
        f"1 + 3 * (CAST(strftime('%m', {value}) AS INTEGER) - 1), 3)"
    )
    return (
        f"({day} || ', ' || strftime('%d', {value}) || ' ' || {month} || ' ' "
        f"|| strftime('%Y %H:%M:%S', {value}) || ' GMT')"
    )


def _text(value: str) -> ColumnElement[Any]:
    return literal_column("'" + value.replace("'", "''") + "'")


def _words(column: Column[Any], words: Mapping[Any, Any]) -> ColumnElement[Any]:
    """CASE column WHEN value THEN word ..., with inline literals (no bound parameters)."""
    whens = [(column == _text(str(value)), _literal(word)) for value, word in words.items()]
    return case(*whens, else_=None)


def _literal(value: str | int) -> ColumnElement[Any]:
    return _text(value) if isinstance(value, str) else literal_column(str(int(value)), Integer)


def time_text(value: datetime) -> str:
    return email.utils.format_datetime(value.astimezone(UTC), usegmt=True)


@dataclass(frozen=True)
class Kind:
    """How one column is shown: in SQL (a list) and in Python (one row)."""

    sql: Callable[[Column[Any]], ColumnElement[Any]]
    python: Callable[[Any], Any]


PLAIN = Kind(lambda column: column, lambda value: value)
# Two-place decimals survive the trip through a double exactly: 864.81 stays 864.81.
NUMBER = Kind(lambda column: cast(column, Float), lambda value: float(Decimal(value)))
TIME = Kind(rfc1123, time_text)
TYPE_WORD = Kind(
    lambda column: _words(column, LOAN_TYPE_WORDS),
    lambda value: LOAN_TYPE_WORDS[LoanType(value)],
)
STATUS_WORD = Kind(
    lambda column: _words(column, STATUS_WORDS),
    lambda value: STATUS_WORDS[LoanStatus(value)],
)
STATE_NUMBER = Kind(
    lambda column: _words(column, {s: STATE_NUMBERS[w] for s, w in STATUS_WORDS.items()}),
    lambda value: STATE_NUMBERS[STATUS_WORDS[LoanStatus(value)]],
)
AGENT = Kind(
    lambda column: func.coalesce(column, literal_column(str(NO_AGENT), Integer)),
    lambda value: NO_AGENT if value is None else value,
)

Fields = dict[str, tuple[str, Kind]]  # legacy key -> (loanapi field, kind)

LOAN: Fields = {
    "id": ("id", PLAIN),
    "Loan Amount": ("principal", NUMBER),
    "Loan Type": ("loan_type", TYPE_WORD),
    "Rate of interest": ("annual_rate", NUMBER),
    "Duration": ("tenure_months", PLAIN),
    "EMI": ("emi", NUMBER),
    "Status": ("status", STATUS_WORD),
    "Total Payable amount": ("total_payable", NUMBER),
    "Customer Id": ("customer_id", PLAIN),
    "Agent Id": ("agent_id", AGENT),
    "Created On": ("created_at", TIME),
    "Updated On": ("updated_at", TIME),
}
# The `data` object of /new_loan and /edit_loan ("Created on " has the original's space).
LOAN_DATA: Fields = {
    "Loan amount": ("principal", NUMBER),
    "Duration": ("tenure_months", PLAIN),
    "Rate of Interest": ("annual_rate", NUMBER),
    "EMI": ("emi", NUMBER),
    "Total amount to be paid": ("total_payable", NUMBER),
    "Loan Type": ("loan_type", TYPE_WORD),
    "Created on ": ("created_at", TIME),
}
# An item of /filter-by-create-date and /filter-by-update-date.
DATED_LOAN: Fields = {
    "id": ("id", PLAIN),
    "Loan amount": ("principal", NUMBER),
    "Duration": ("tenure_months", PLAIN),
    "Loan Type": ("loan_type", TYPE_WORD),
    "State": ("status", STATE_NUMBER),
    "Rate of Interest": ("annual_rate", NUMBER),
    "Total Payable amount": ("total_payable", NUMBER),
    "EMI": ("emi", NUMBER),
    "Created At": ("created_at", TIME),
}
# A /view_loan_history entry: the loan as it was before a change (from that version's snapshot).
HISTORY: Fields = {
    "Loan amount": ("principal", NUMBER),
    "Duration": ("tenure_months", PLAIN),
    "Loan Type": ("loan_type", TYPE_WORD),
    "State At this point": ("status", STATE_NUMBER),
}
USER: Fields = {
    "id": ("id", PLAIN),
    "username": ("username", PLAIN),
    "public_id": ("public_id", PLAIN),
    "email": ("email", PLAIN),
    "phone": ("phone", PLAIN),
    "Created On": ("created_at", TIME),
}


def columns(fields: Fields, table: Any) -> tuple[ColumnElement[Any], ...]:
    """The SELECT list giving each legacy key as a column labelled with the key itself."""
    return tuple(kind.sql(table.c[name]).label(key) for key, (name, kind) in fields.items())


def item(fields: Fields, values: Mapping[str, Any] | object) -> dict[str, Any]:
    """The legacy object of one loan (a record) or of one version of it (a snapshot)."""
    get = values.__getitem__ if isinstance(values, Mapping) else values.__getattribute__
    return {key: kind.python(get(name)) for key, (name, kind) in fields.items()}


LOAN_COLUMNS = columns(LOAN, Loan.__table__)
DATED_LOAN_COLUMNS = columns(DATED_LOAN, Loan.__table__)
USER_COLUMNS = columns(USER, User.__table__)
