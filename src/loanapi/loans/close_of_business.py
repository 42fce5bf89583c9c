"""Close of business for a date D: late fees recorded, lateness stored, for the whole book.

Set-based, in batches of active loans in id order, each batch one transaction, so a run killed
halfway leaves every loan done or not done for D and the next run finishes the rest; a loan
whose `cob_date` is D already is skipped, so a second run changes nothing, and on PostgreSQL two
runs at once split the batches (FOR UPDATE SKIP LOCKED).

Why SQL can do what the ledger does (loans/ledger.py) without a replay: between two changes of a
loan nothing is paid, only time passes. Its stored fields are as of `serviced_on` (the day of
its last change or close of business), when every repayment it has was already dated. So as of
any later D:
- what its repayments paid towards installments is fixed: `paid` = principal paid + interest
  paid, and allocation fills installments in order, so the oldest one not fully paid is
  `c = paid // emi + 1` (installments are emi each, the last takes the remainder);
- the installments due before D follow from the calendar (`due_k = add_months(anchor, k - o)`);
- a fee dated after `serviced_on` and by D is charged on every installment from c on whose fee
  date falls in that window (none of them can have been paid by then);
- dpd is D minus installment c's due date when that is before D; arrears are the unpaid part of
  the installments due before D plus every unpaid fee.
tests/loans/test_close_of_business.py checks these against the ledger's replay on random loans.
Loans changed after D (a repayment today, the run for yesterday) take the ledger's own replay
as of D instead: there are few of them, and their stored fields (newer than D) are kept.
"""

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    any_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import async_sessionmaker

from loanapi.db import WriteSession, fetch
from loanapi.loans import ledger
from loanapi.loans.models import TOTAL, EventAction, Loan, LoanStatus
from loanapi.loans.records import LoanRecord
from loanapi.loans.service import INSERT_EVENT, event_row
from loanapi.loans.servicing import (
    SERVICED,
    check_day,
    repayments_of,
    replayable,
    terms_of,
    today,
)
from loanapi.sql import add_days, add_months, cents, days_between, greatest, least, money
from loanapi.sql import month_index as month
from loanapi.users.models import Role
from loanapi.webhooks import outbox
from loanapi.webhooks.models import DELINQUENCY_CHANGED, loan_type

BATCH = 2_000
D = bindparam("day", type_=Loan.cob_date.type)


def day_to_close(requested: date | None) -> date:
    """The day a run closes: the one asked for, or yesterday (UTC); like every servicing date,
    none after today nor before 2000-01-01 (422)."""
    day = requested or today() - timedelta(days=1)
    check_day(day, "date")
    return day


@dataclass(frozen=True, slots=True)
class Result:
    """What one run did (SERVICING.md's answer to POST /admin/close-of-business)."""

    date: date
    loans: int  # loans closed for the date by this run
    penalties_charged: int  # late fees recorded (one penalty_charged event per loan with any)
    bucket_changes: int
    seconds: float


Progress = Callable[[int], None]  # called with the loans each batch closed


# --- the set-based calculation ---------------------------------------------------------------

_DUE = and_(
    Loan.status == LoanStatus.active,
    Loan.disbursed_on <= D,
    or_(Loan.cob_date.is_(None), Loan.cob_date < D),
)


def _calculation(ids: Callable[[Any], Any]) -> Select[Any]:
    """Every stored field of the loans `ids` as of D, in whole cents, beside their old values.

    It reads an alias of the table, so that inside an UPDATE of `loans` it is not correlated to
    the row being updated."""
    book = Loan.__table__.alias("book")
    base = (
        select(
            book.c.id,
            book.c.version,
            book.c.tenure_months.label("n"),
            case((book.c.first_due_given, book.c.first_due_on), else_=book.c.disbursed_on).label(
                "anchor"
            ),
            case((book.c.first_due_given, 1), else_=0).label("o"),
            cents(book.c.emi).label("emi"),
            cents(book.c.total_payable).label("total"),
            (
                cents(book.c.principal)
                - cents(book.c.principal_outstanding)
                + cents(book.c.total_interest)
                - cents(book.c.interest_outstanding)
            ).label("paid"),
            cents(book.c.penalty_outstanding).label("penalty"),
            cents(book.c.late_fee).label("fee"),
            book.c.grace_days,
            book.c.serviced_on,
            book.c.fees_charged,
            book.c.fees_recorded,
            book.c.bucket.label("old_bucket"),
        )
        .where(ids(book.c.id))
        .cte("base")
    )

    def due_before(day: Any) -> Any:
        """How many installments are due before `day`: the last month before it, counted from
        the anchor, plus its own month's when that due date is before it."""
        q = month(day) - month(base.c.anchor)
        same_month = case((add_months(base.c.anchor, q) < day, 1), else_=0)
        return least(base.c.n, greatest(0, q - 1 + same_month + base.c.o))

    cursor = least(base.c.n, base.c.paid // base.c.emi + 1)
    step = select(
        base,
        cursor.label("c"),
        due_before(D).label("due_d"),
        due_before(add_days(D, -base.c.grace_days)).label("fees_d"),
        due_before(add_days(base.c.serviced_on, -base.c.grace_days)).label("fees_s"),
    ).cte("step")
    # Each level computed once: inlined, every mention of `c` or `due_d` below would repeat
    # their date arithmetic (a batch's calculation 3x slower on PostgreSQL).
    step = step.prefix_with("MATERIALIZED", dialect="postgresql")

    def scheduled(k: Any) -> Any:
        """What installments 1..k ask for in all (emi each; the last one takes the rest)."""
        return case((k >= step.c.n, step.c.total), else_=k * step.c.emi)

    def due_on(k: Any) -> Any:
        return add_months(step.c.anchor, k - step.c.o)

    new_fees = case(
        (step.c.fee > 0, greatest(0, step.c.fees_d - greatest(step.c.fees_s, step.c.c - 1))),
        else_=0,
    )
    first_due = due_on(step.c.c)
    next_k = greatest(step.c.c, step.c.due_d + 1)
    late = case(
        (first_due < D, days_between(D, first_due)), else_=0
    )  # the oldest unpaid installment
    result = select(
        step,
        new_fees.label("new_fees"),
        late.label("dpd"),
        case((next_k <= step.c.n, due_on(next_k)), else_=None).label("next_due_on"),
        case(
            (
                next_k <= step.c.n,
                scheduled(next_k) - greatest(step.c.paid, scheduled(next_k - 1)),
            ),
            else_=0,
        ).label("next_part"),
        greatest(0, scheduled(step.c.due_d) - step.c.paid).label("unpaid_due"),
    ).cte("result")
    result = result.prefix_with("MATERIALIZED", dialect="postgresql")
    penalty = result.c.penalty + result.c.new_fees * result.c.fee
    arrears = result.c.unpaid_due + penalty
    dpd = result.c.dpd
    bucket = case(
        (dpd <= 0, ledger.Bucket.current.value),
        (dpd <= 30, ledger.Bucket.days_1_30.value),
        (dpd <= 60, ledger.Bucket.days_31_60.value),
        (dpd <= 90, ledger.Bucket.days_61_90.value),
        else_=ledger.Bucket.days_91_plus.value,
    )
    charged = result.c.fees_charged + result.c.new_fees
    return select(
        result.c.id,
        result.c.version,
        result.c.old_bucket,
        result.c.fees_recorded,
        (charged - result.c.fees_recorded).label("to_record"),
        charged.label("fees_charged"),
        money(penalty, TOTAL).label("penalty_outstanding"),
        money(arrears, TOTAL).label("arrears"),
        dpd.label("dpd"),
        bucket.label("bucket"),
        result.c.next_due_on,
        money(arrears + result.c.next_part, TOTAL).label("next_due_amount"),
    )


# --- a run -------------------------------------------------------------------------------------


def _batch(*, changed_after: bool, skip_locked: bool) -> Select[Any]:
    """The next batch of loans not yet closed for D: stored as of D or before (set-based), or
    changed after D (replayed). On PostgreSQL, `skip_locked` passes over rows another
    transaction holds (another run's batch, or a repayment being posted); otherwise it waits
    for them, and a row another run closed meanwhile no longer matches."""
    # Every disbursed loan has serviced_on (each change sets it; migration 0008 filled the rest).
    stored = Loan.serviced_on > D if changed_after else Loan.serviced_on <= D
    return (
        select(Loan.id)
        .where(_DUE, stored, Loan.id > bindparam("after", type_=Integer))
        .order_by(Loan.id)
        .limit(BATCH)
        .with_for_update(skip_locked=skip_locked)
    )


# Two sweeps: the first shares the book with any other run; the second comes back for what
# the first passed over because a servicing change (or another run) held it, and waits.
_SWEEPS = tuple(
    (_batch(changed_after=False, skip_locked=skip), _batch(changed_after=True, skip_locked=skip))
    for skip in (True, False)
)


def _update(calculated: Any, ids: Callable[[Any], Any]) -> Any:
    # The batch's ids as well as the join: the planner then walks the primary key, whatever the
    # table's size (joined alone, it may scan the whole table for each batch).
    return (
        update(Loan)
        .where(ids(Loan.id), Loan.id == calculated.c.id, _DUE)
        .values(
            penalty_outstanding=calculated.c.penalty_outstanding,
            arrears=calculated.c.arrears,
            dpd=calculated.c.dpd,
            bucket=calculated.c.bucket,
            next_due_on=calculated.c.next_due_on,
            next_due_amount=calculated.c.next_due_amount,
            fees_charged=calculated.c.fees_charged,
            fees_recorded=calculated.c.fees_charged,
            version=Loan.version + case((calculated.c.to_record > 0, 1), else_=0),
            serviced_on=D,
            cob_date=D,
        )
    )


def _changed(calculated: Any) -> Any:
    """Of the calculated loans, those with fees to record or a new bucket."""
    return or_(
        calculated.c.to_record > 0, calculated.c.old_bucket.is_distinct_from(calculated.c.bucket)
    )


@dataclass(frozen=True)
class _Statements:
    """A batch's statements. On PostgreSQL the ids are one array parameter (an IN list of 2,000
    is compiled again for each statement), and the new values are worked out once: the UPDATE
    is a data-modifying CTE of the SELECT that returns the changes. SQLite takes two."""

    changes: Select[Any]
    apply: Any | None  # None: `changes` applies them too
    loan_rows: Select[Any]


def _statements(dialect: str) -> _Statements:
    if dialect == "postgresql":
        array = bindparam("ids", type_=ARRAY(Integer))

        def ids(column: Any) -> Any:
            return column == any_(array)

        calculated = _calculation(ids).cte("calculated")
        applied = _update(calculated, ids).returning(Loan.id).cte("applied")
        changes = select(calculated).where(
            calculated.c.id.in_(select(applied.c.id)), _changed(calculated)
        )
        rows = select(Loan.__table__).where(ids(Loan.id)).order_by(Loan.id)
        return _Statements(changes, None, rows)

    listed: Any = bindparam("ids", expanding=True)

    def in_list(column: Any) -> Any:
        return column.in_(listed)

    subquery = _calculation(in_list).subquery("calculated")
    changes = select(subquery).where(_changed(subquery))
    rows = select(Loan.__table__).where(in_list(Loan.id)).order_by(Loan.id)
    return _Statements(changes, _update(subquery, in_list), rows)


_BY_DIALECT = {name: _statements(name) for name in ("postgresql", "sqlite")}


_PENALTY = loan_type(EventAction.penalty_charged)


async def _insert_events(session: WriteSession, events: list[dict[str, Any]]) -> None:
    """One executemany of the services' own INSERT (asyncpg pipelines the rows): a multi-row
    INSERT with 9,000 parameters was compiled afresh for every 1,000 events, 3.5x slower (the
    first close of business of a book records fees on every late loan)."""
    if events:  # (an empty list would be one INSERT of defaults)
        await (await session.connection()).execute(INSERT_EVENT, events)


@dataclass
class _Tally:
    loans: int = 0
    penalties: int = 0
    buckets: int = 0


async def _set_based_batch(
    session: WriteSession, ids: list[int], day: date, actor_id: int, tally: _Tally
) -> None:
    assert session.bind is not None
    statements = _BY_DIALECT[session.bind.dialect.name]
    params = {"ids": ids, "day": day}
    changes = await fetch(session, statements.changes, params)  # and applies them on PostgreSQL
    if statements.apply is not None:
        await (await session.connection()).execute(statements.apply, params)
    fees = {row["id"]: row for row in changes if row["to_record"] > 0}
    moved = {row["id"] for row in changes if row["old_bucket"] != row["bucket"]}
    tally.buckets += len(moved)
    tally.penalties += sum(row["to_record"] for row in fees.values())
    if changes:
        rows = await fetch(session, statements.loan_rows, {"ids": [row["id"] for row in changes]})
        loans = [LoanRecord.of(row) for row in rows]
        charged = [loan for loan in loans if loan.id in fees]
        await _insert_events(session, [_event(loan, fees[loan.id], actor_id) for loan in charged])
        published = [
            outbox.loan_event(type_, loan, actor_id)
            for loan in loans
            for type_, happened in (
                (_PENALTY, loan.id in fees),
                (DELINQUENCY_CHANGED, loan.id in moved),
            )
            if happened
        ]
        await outbox.publish(session, published)
    tally.loans += len(ids)


def _event(loan: LoanRecord, change: Any, actor_id: int) -> dict[str, Any]:
    """The loan's `penalty_charged` event: the fees it records; the loan as it is now."""
    assert loan.late_fee is not None
    recorded = change["to_record"]
    fees = {
        "count": recorded,
        "amount": f"{loan.late_fee * recorded:.2f}",
        "recorded": {"from": change["fees_recorded"], "to": change["fees_recorded"] + recorded},
    }
    state = {name: getattr(loan, name) for name in SERVICED}
    return event_row(
        loan.id,
        loan.version,
        EventAction.penalty_charged,
        (actor_id, Role.admin),
        state,  # the changed fields are the fees, listed below
        state,
        fields=SERVICED,
        detail={"late_fees": {"from": None, "to": fees}},
        reason=f"close of business {loan.cob_date.isoformat() if loan.cob_date else ''}",
    )


async def _replayed_batch(
    session: WriteSession, ids: list[int], day: date, actor_id: int, tally: _Tally
) -> None:
    """Loans changed after D: their fees as of D come from the ledger; their fields are newer
    than D and stay."""
    connection = await session.connection()
    assert session.bind is not None
    statements = _BY_DIALECT[session.bind.dialect.name]
    for row in await fetch(session, statements.loan_rows, {"ids": ids}):
        loan = LoanRecord.of(row)
        repayments = replayable(await repayments_of(session, loan.id))
        book = ledger.replay(terms_of(loan), repayments, day, detail=False)
        to_record = max(0, len(book.fees) - (loan.fees_recorded or 0))
        values: dict[str, Any] = {"cob_date": day}
        if to_record:
            values |= {"fees_recorded": (loan.fees_recorded or 0) + to_record}
            values |= {"version": loan.version + 1}
        await connection.execute(
            update(Loan).where(Loan.id == loan.id, Loan.version == loan.version).values(values)
        )
        if to_record:
            changed = {**row, **values}
            before = {"to_record": to_record, "fees_recorded": loan.fees_recorded or 0}
            recorded = LoanRecord.of(changed)
            await _insert_events(session, [_event(recorded, before, actor_id)])
            await outbox.publish(session, [outbox.loan_event(_PENALTY, recorded, actor_id)])
            tally.penalties += to_record
        tally.loans += 1


async def run(
    writers: async_sessionmaker[WriteSession],
    *,
    day: date,
    actor_id: int,
    progress: Progress | None = None,
    within: WriteSession | None = None,
) -> Result:
    """Close the book for `day`: batch after batch, each in its own transaction; or, `within`
    a transaction the caller commits (SQLite's one writer: a request that already holds the
    write lock, for its Idempotency-Key, cannot wait for other transactions)."""
    started = time.monotonic()
    tally = _Tally()
    passes = [
        (query, work)
        for set_based, replayed in _SWEEPS
        for query, work in ((set_based, _set_based_batch), (replayed, _replayed_batch))
    ]
    for query, work in passes:
        after = 0
        while True:
            async with _batch_session(writers, within) as session:
                await _custom_plans(session)
                ids = [
                    row["id"] for row in await fetch(session, query, {"day": day, "after": after})
                ]
                if not ids:
                    break
                done = tally.loans
                await work(session, ids, day, actor_id, tally)
                if within is None:
                    await session.commit()
            after = ids[-1]
            if progress is not None:
                progress(tally.loans - done)
    return Result(day, tally.loans, tally.penalties, tally.buckets, time.monotonic() - started)


_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def _custom_plans(session: WriteSession) -> None:
    """Plan each batch's statements for its own ids and day. asyncpg prepares them, and after
    five runs PostgreSQL may switch to a generic plan, blind to how many rows `id = ANY($1)`
    selects: at a million loans that made each batch scan the table (a run 5x slower)."""
    assert session.bind is not None
    if session.bind.dialect.name == "postgresql":
        await session.execute(_CUSTOM_PLANS)


def _batch_session(
    writers: async_sessionmaker[WriteSession], within: WriteSession | None
) -> AbstractAsyncContextManager[WriteSession]:
    return nullcontext(within) if within is not None else writers()


_PENDING = select(func.count().label("count")).select_from(Loan).where(_DUE)


async def pending(writers: async_sessionmaker[WriteSession], day: date) -> int:
    """How many loans a run for `day` has left (for a progress bar)."""
    async with writers() as session:
        rows = await fetch(session, _PENDING, {"day": day})
        return int(rows[0]["count"]) if rows else 0
