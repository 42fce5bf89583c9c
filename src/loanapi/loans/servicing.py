"""A loan after approval: disbursement, repayments, reversals, write-off, payoff, statements.

The money rules are `loans/ledger.py`'s (pure): every change here replays the loan's terms and
repayments and persists what the replay says, the loan's servicing fields and each repayment's
allocation, so a statement, a payoff quote and the next replay cannot disagree. Each change
costs a bounded number of statements whatever the loan's age: the loan (locked), its
repayments in replay order, one insert or update per table touched, the loan's conditional
UPDATE on (id, version), its events.
"""

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loanapi.clock import utcnow
from loanapi.db import WriteSession, fetch
from loanapi.errors import Conflict, NotFound, Unprocessable
from loanapi.loans import ledger
from loanapi.loans.models import EventAction, Loan, LoanStatus, Repayment
from loanapi.loans.records import LoanRecord, RepaymentRecord
from loanapi.loans.schemas import Disbursement, RepaymentCreate
from loanapi.loans.service import (
    INSERT_EVENT,
    SNAPSHOT,
    ConcurrentChange,
    LoanNotFound,
    StaleVersion,
    event_row,
    get_loan,
    read_product,
    update_loan,
)
from loanapi.loans.workflow import Action, permit
from loanapi.orm import MAX_ID
from loanapi.pagination import PageParams, keyset
from loanapi.users.records import Caller
from loanapi.webhooks import outbox
from loanapi.webhooks.models import loan_type

log = logging.getLogger("loanapi.servicing")

EARLIEST = date(2000, 1, 1)
# The fields a replay derives; every servicing change stores them, its events snapshot them.
DERIVED = (
    "principal_outstanding",
    "interest_outstanding",
    "penalty_outstanding",
    "arrears",
    "dpd",
    "bucket",
    "next_due_on",
    "next_due_amount",
    "closed_on",
)
SERVICED = (
    *SNAPSHOT,
    "disbursed_on",
    "first_due_on",
    "late_fee",
    "grace_days",
    *DERIVED,
    "written_off_on",
    "written_off_principal",
    "written_off_interest",
    "written_off_penalty",
)
_STORED = (*SERVICED, "first_due_given", "serviced_on", "fees_charged", "fees_recorded")


def today() -> date:
    """Servicing's "today": the UTC date when the request arrives."""
    return utcnow().date()


class NotDisbursed(Conflict):
    def __init__(self, loan_id: int) -> None:
        super().__init__(f"Loan {loan_id} has not been disbursed: it has no servicing yet")


class RepaymentNotFound(NotFound):
    def __init__(self, loan_id: int, repayment_id: int) -> None:
        super().__init__(f"Loan {loan_id} has no repayment {repayment_id}")


class AlreadyReversed(Conflict):
    def __init__(self, repayment_id: int) -> None:
        super().__init__(f"Repayment {repayment_id} is already reversed")


class LaterRepaymentTooLarge(Conflict):
    def __init__(self, exc: ledger.Overpayment) -> None:
        paid_on = exc.repayment.paid_on.isoformat()
        super().__init__(
            f"Accepting this would make repayment {exc.repayment_id} of "
            f"{exc.repayment.amount:.2f} on {paid_on} exceed the payoff amount on its date "
            f"({exc.payoff:.2f}); nothing was changed"
        )


def _date_field(name: str, msg: str) -> Unprocessable:
    return Unprocessable.field(("body", name), msg, "value_error")


def check_day(value: date, name: str, *, where: str = "body", not_before: date = EARLIEST) -> None:
    """Servicing dates: no later than today, no earlier than 2000-01-01 (or `not_before`)."""
    now = today()
    if value > now:
        raise Unprocessable.field(
            (where, name), f"must not be after today ({now.isoformat()}, UTC)", "value_error"
        )
    if value < not_before:
        what = "2000-01-01" if not_before == EARLIEST else f"the disbursement ({not_before})"
        raise Unprocessable.field((where, name), f"must not be before {what}", "value_error")


# --- reading ----------------------------------------------------------------------------------


def terms_of(loan: LoanRecord) -> ledger.LoanTerms:
    """The terms a disbursed loan's replay starts from."""
    if loan.disbursed_on is None or loan.late_fee is None or loan.grace_days is None:
        raise NotDisbursed(loan.id)
    return ledger.LoanTerms(
        principal=loan.principal,
        annual_rate=loan.annual_rate,
        tenure_months=loan.tenure_months,
        disbursed_on=loan.disbursed_on,
        first_due_on=loan.first_due_on if loan.first_due_given else None,
        late_fee=loan.late_fee,
        grace_days=loan.grace_days,
    )


_REPAYMENTS = select(Repayment.__table__)
# Replay order straight from the index on (loan_id, paid_on, id).
_LOAN_REPAYMENTS = _REPAYMENTS.where(Repayment.loan_id == bindparam("loan_id")).order_by(
    Repayment.paid_on, Repayment.id
)


async def repayments_of(session: AsyncSession, loan_id: int) -> list[RepaymentRecord]:
    rows = await fetch(session, _LOAN_REPAYMENTS, {"loan_id": loan_id})
    return [RepaymentRecord.of(row) for row in rows]


def replayable(records: Sequence[RepaymentRecord]) -> list[ledger.Repayment]:
    return [ledger.Repayment(r.id, r.paid_on, r.amount, r.reversed) for r in records]


@dataclass(frozen=True, slots=True)
class Statement:
    loan: LoanRecord  # as of `as_of`
    as_of: date
    installments: tuple[ledger.InstallmentState, ...]
    repayments: tuple[RepaymentRecord, ...]


async def _serviced_loan(
    session: AsyncSession, loan_id: int, customer_id: int | None
) -> tuple[LoanRecord, ledger.LoanTerms, list[RepaymentRecord]]:
    loan = await get_loan(session, loan_id, customer_id=customer_id)
    terms = terms_of(loan)
    return loan, terms, await repayments_of(session, loan_id)


def _as_of(on: date | None, loan: LoanRecord) -> date:
    day = on or today()
    assert loan.disbursed_on is not None
    check_day(day, "on", where="query", not_before=loan.disbursed_on)
    return day


async def payoff(
    session: AsyncSession, *, loan_id: int, on: date | None, customer_id: int | None = None
) -> ledger.Payoff:
    """What closes the loan on `on` (default today), counting repayments dated by then."""
    loan, terms, records = await _serviced_loan(session, loan_id, customer_id)
    return ledger.replay(terms, replayable(records), _as_of(on, loan), detail=False).payoff


async def statement(
    session: AsyncSession, *, loan_id: int, on: date | None, customer_id: int | None = None
) -> Statement:
    loan, terms, records = await _serviced_loan(session, loan_id, customer_id)
    as_of = _as_of(on, loan)
    book = ledger.replay(terms, replayable(records), as_of)
    allocations = book.allocations
    shown = tuple(
        _allocated(r, allocations.get(r.id)) for r in records if r.paid_on <= as_of
    )  # replay order: the query's
    status = _status_on(loan, book.closed_on, as_of)
    values = {**_derived(book), "status": status}
    if status is not LoanStatus.written_off:
        values |= {name: None for name in SERVICED if name.startswith("written_off_")}
    return Statement(replace(loan, **values), as_of, book.installments, shown)


def _status_on(loan: LoanRecord, closed_on: date | None, as_of: date) -> LoanStatus:
    if closed_on is not None:
        return LoanStatus.closed
    if loan.written_off_on is not None and loan.written_off_on <= as_of:
        return LoanStatus.written_off
    return LoanStatus.active


def _allocated(record: RepaymentRecord, allocation: ledger.Allocation | None) -> RepaymentRecord:
    """The repayment with its allocation as of the statement's date (a reversed one keeps its
    stored allocation). Stored allocations are kept current by every change, so this copies
    a record only when they differ."""
    if allocation is None or (allocation.principal, allocation.interest, allocation.penalty) == (
        record.principal,
        record.interest,
        record.penalty,
    ):
        return record
    return replace(
        record,
        principal=allocation.principal,
        interest=allocation.interest,
        penalty=allocation.penalty,
    )


def _derived(book: ledger.Ledger) -> dict[str, Any]:
    """The fields a replay as of `book.as_of` gives a loan (its stored state as of that day)."""
    owed = book.delinquency
    return {
        "serviced_on": book.as_of,
        "fees_charged": book.fees_charged,
        "principal_outstanding": owed.principal_outstanding,
        "interest_outstanding": owed.interest_outstanding,
        "penalty_outstanding": owed.penalty_outstanding,
        "arrears": owed.arrears,
        "dpd": owed.dpd,
        "bucket": owed.bucket,
        "next_due_on": owed.next_due_on,
        "next_due_amount": owed.next_due_amount,
        "closed_on": book.closed_on,
    }


# --- changes ----------------------------------------------------------------------------------


_LOCKED_LOAN = select(Loan.__table__).where(Loan.id == bindparam("loan_id")).with_for_update()
# ... and the id the new repayment will have, so that it can be written with the loan's UPDATE
# (update_loan's `beside`): the sequence's next value on PostgreSQL; the next rowid on SQLite,
# which lets no other writer in until this transaction ends (BEGIN IMMEDIATE).
_NEXT_REPAYMENT_ID = {
    "postgresql": func.nextval(func.pg_get_serial_sequence("repayments", "id")),
    "sqlite": select(func.coalesce(func.max(Repayment.id), 0) + 1).scalar_subquery(),
}
_LOCKED_FOR_REPAYMENT = {
    dialect: _LOCKED_LOAN.add_columns(next_id.label("next_repayment_id"))
    for dialect, next_id in _NEXT_REPAYMENT_ID.items()
}


async def _locked_row(
    session: WriteSession, loan_id: int, statement: Select[Any] = _LOCKED_LOAN
) -> Mapping[str, Any]:
    """The loan's row, locked until the transaction ends (PostgreSQL; a SQLite write
    transaction holds the database's write lock from its BEGIN IMMEDIATE). Changes of one loan
    queue here instead of failing on each other's version; the conditional UPDATE stays."""
    rows = await fetch(session, statement, {"loan_id": loan_id})
    if not rows:
        raise LoanNotFound(loan_id)
    return rows[0]


async def _locked(session: WriteSession, loan_id: int) -> LoanRecord:
    return LoanRecord.of(await _locked_row(session, loan_id))


async def _locked_for_repayment(session: WriteSession, loan_id: int) -> tuple[LoanRecord, int]:
    """The locked loan and the id its new repayment will have."""
    dialect = (await session.connection()).dialect.name
    row = await _locked_row(session, loan_id, _LOCKED_FOR_REPAYMENT[dialect])
    return LoanRecord.of(row), row["next_repayment_id"]


def _permit(loan: LoanRecord, action: Action, actor: Caller, expected: int | None) -> LoanStatus:
    if expected is not None and expected != loan.version:
        raise StaleVersion(loan.version)
    return permit(loan.status, action, role=actor.role, actor_id=actor.id, agent_id=loan.agent_id)


@dataclass(frozen=True, slots=True)
class Step:
    """One version of the loan: its event and the fields it changes."""

    action: EventAction
    values: dict[str, Any]
    detail: dict[str, Any] | None = None  # e.g. the repayment, listed with the changes


def _state(loan: LoanRecord) -> dict[str, Any]:
    return {name: getattr(loan, name) for name in _STORED}


async def _save(
    session: WriteSession,
    loan: LoanRecord,
    actor: Caller,
    steps: Sequence[Step],
    reason: str | None = None,
    repayment: RepaymentRecord | None = None,
    posting: bool = False,
) -> LoanRecord:
    """Write the steps as consecutive versions: one conditional UPDATE to the last, one loan
    event and one integration event each (with `repayment` on each step when the change posts
    or reverses one: `loan.closed` and `loan.reopened` are that repayment's doing too), in the
    request's transaction. `posting`: `repayment` is new, written with the loan's UPDATE."""
    original = state = _state(loan)
    events = []
    states = []
    for number, step in enumerate(steps, start=loan.version + 1):
        after = {**state, **step.values}
        events.append(
            event_row(
                loan.id,
                number,
                step.action,
                (actor.id, actor.role),
                state,
                after,
                fields=SERVICED,
                detail=step.detail,
                reason=reason,
            )
        )
        state = after
        states.append(after)
    changed = {name: state[name] for name in _STORED if state[name] != original[name]}
    beside = (_INSERT_REPAYMENT, _repayment_params(repayment)) if posting and repayment else None
    saved = await update_loan(session, loan, changed, versions=len(steps), beside=beside)
    if saved is None:
        raise ConcurrentChange
    await (await session.connection()).execute(INSERT_EVENT, events)
    await outbox.publish(session, _published(saved, actor, steps, states, repayment))
    return saved


def _published(
    saved: LoanRecord,
    actor: Caller,
    steps: Sequence[Step],
    states: Sequence[dict[str, Any]],
    repayment: RepaymentRecord | None,
) -> list[dict[str, Any]]:
    """Each step's integration event: the loan as of its version (the last one is `saved`)."""
    first = saved.version - len(steps) + 1
    return [
        outbox.loan_event(
            loan_type(step.action),
            replace(saved, **state, version=first + index),
            actor.id,
            repayment,
        )
        for index, (step, state) in enumerate(zip(steps, states, strict=True))
    ]


async def disburse(
    session: WriteSession,
    *,
    loan_id: int,
    actor: Caller,
    data: Disbursement,
    expected_version: int | None,
) -> LoanRecord:
    loan = await _locked(session, loan_id)
    _permit(loan, Action.disburse, actor, expected_version)
    disbursed_on = data.disbursed_on or today()
    check_day(disbursed_on, "disbursed_on")
    first_due_on = data.first_due_on
    if first_due_on is not None:
        latest = ledger.add_months(disbursed_on, 2)
        if not disbursed_on < first_due_on <= latest:
            raise _date_field(
                "first_due_on",
                f"must be after disbursed_on ({disbursed_on}) and no later than {latest}",
            )
    product = await read_product(session, loan.loan_type)
    terms = ledger.LoanTerms(
        principal=loan.principal,
        annual_rate=loan.annual_rate,
        tenure_months=loan.tenure_months,
        disbursed_on=disbursed_on,
        first_due_on=first_due_on,
        late_fee=product.late_fee,
        grace_days=product.grace_days,
    )
    book = ledger.replay(terms, [], max(today(), disbursed_on), detail=False)
    values = {
        "status": LoanStatus.active,
        "disbursed_on": disbursed_on,
        "first_due_on": terms.due_on(1),
        "first_due_given": first_due_on is not None,
        "late_fee": product.late_fee,
        "grace_days": product.grace_days,
        "fees_recorded": 0,
        **_derived(book),
    }
    return await _save(session, loan, actor, [Step(EventAction.disbursed, values)])


_NEW_REPAYMENT = (
    "id",
    "loan_id",
    "amount",
    "paid_on",
    "reference",
    "principal",
    "interest",
    "penalty",
    "reversed",
    "actor_id",
    "created_at",
)
# Its parameters are named apart from the loan UPDATE's that it goes with.
_INSERT_REPAYMENT = insert(Repayment).values(
    {name: bindparam(f"repayment_{name}") for name in _NEW_REPAYMENT}
)


def _repayment_params(record: RepaymentRecord) -> dict[str, Any]:
    return {f"repayment_{name}": getattr(record, name) for name in _NEW_REPAYMENT}


_REALLOCATE = (
    update(Repayment)
    .where(Repayment.id == bindparam("repayment_id"))
    .values(
        principal=bindparam("new_principal"),
        interest=bindparam("new_interest"),
        penalty=bindparam("new_penalty"),
    )
)
# A repayment not yet stored replays last among those of its day: it is created last.
_UNSTORED = MAX_ID + 1


async def _reallocate(
    session: WriteSession, records: Sequence[RepaymentRecord], book: ledger.Ledger
) -> None:
    """Store the allocations the replay moved (a back-dated repayment or a reversal moves the
    ones after it), in one executemany."""
    moved = []
    allocations = book.allocations
    for record in records:
        new = allocations.get(record.id)
        if new is None or record.reversed:
            continue
        if (new.principal, new.interest, new.penalty) != (
            record.principal,
            record.interest,
            record.penalty,
        ):
            moved.append(
                {
                    "repayment_id": record.id,
                    "new_principal": new.principal,
                    "new_interest": new.interest,
                    "new_penalty": new.penalty,
                }
            )
    if moved:
        await (await session.connection()).execute(_REALLOCATE, moved)


def _closing(loan: LoanRecord, values: dict[str, Any], first: Step) -> list[Step]:
    """The steps of a change whose replay may close or reopen the loan."""
    closed = values["closed_on"] is not None
    if closed and loan.status is not LoanStatus.closed:
        return [
            replace(first, values={**values, "closed_on": None}),
            Step(EventAction.closed, {**values, "status": LoanStatus.closed}),
        ]
    if not closed and loan.status is LoanStatus.closed:
        still_closed = {**values, "status": LoanStatus.closed, "closed_on": loan.closed_on}
        return [
            replace(first, values=still_closed),
            Step(EventAction.reopened, {**values, "status": LoanStatus.active}),
        ]
    return [replace(first, values={**values, "status": loan.status})]


def _repayment_detail(record: RepaymentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "amount": f"{record.amount:.2f}",
        "paid_on": record.paid_on.isoformat(),
        "reference": record.reference,
    }


def standing_of(loan: LoanRecord) -> ledger.Standing | None:
    """What the loan stores of its last replay (None for a loan serviced before it was kept)."""
    values = (
        loan.serviced_on,
        loan.principal_outstanding,
        loan.interest_outstanding,
        loan.penalty_outstanding,
        loan.fees_charged,
    )
    if any(value is None for value in values):
        return None
    return ledger.Standing(*values)  # type: ignore[arg-type]


async def _posted(
    session: WriteSession, loan: LoanRecord, terms: ledger.LoanTerms, new: ledger.Repayment
) -> tuple[list[RepaymentRecord], ledger.Ledger]:
    """The loan as of today with the new repayment: from what the loan stores when the new one
    is dated on or after its stored day (the usual case: no repayment is read, nothing else
    moves), else by replaying every repayment (a back-dated one can move later allocations)."""
    standing = standing_of(loan)
    if standing is not None and new.paid_on >= standing.as_of:
        try:
            return [], ledger.post_after(terms, standing, new, today())
        except ledger.Inconsistent:
            log.warning("loan %s: stored totals do not fit its schedule; replaying", loan.id)
    records = await repayments_of(session, loan.id)
    return records, ledger.replay(terms, [*replayable(records), new], today(), detail=False)


async def repay(
    session: WriteSession,
    *,
    loan_id: int,
    actor: Caller,
    data: RepaymentCreate,
    expected_version: int | None = None,
) -> RepaymentRecord:
    loan, repayment_id = await _locked_for_repayment(session, loan_id)
    _permit(loan, Action.repay, actor, expected_version)
    terms = terms_of(loan)
    paid_on = data.paid_on or today()
    check_day(paid_on, "paid_on", not_before=terms.disbursed_on)
    new = ledger.Repayment(_UNSTORED, paid_on, data.amount)
    try:
        records, book = await _posted(session, loan, terms, new)
    except ledger.Overpayment as exc:
        # The new repayment replays after every one dated on or before its paid_on and before
        # any later one, so it meets its own limit (422) before it can push a later one over
        # theirs (409), the order SERVICING.md gives.
        if exc.repayment_id == _UNSTORED:
            raise Unprocessable.field(
                ("body", "amount"),
                f"exceeds the payoff amount on {paid_on.isoformat()}: {exc.payoff:.2f}",
                "value_error",
            ) from None
        raise LaterRepaymentTooLarge(exc) from None
    allocation = book.allocations[_UNSTORED]
    created = RepaymentRecord(
        id=repayment_id,
        loan_id=loan_id,
        amount=data.amount,
        paid_on=paid_on,
        reference=data.reference,
        principal=allocation.principal,
        interest=allocation.interest,
        penalty=allocation.penalty,
        reversed=False,
        reversed_at=None,
        reason=None,
        actor_id=actor.id,
        created_at=utcnow(),
    )
    await _reallocate(session, records, book)
    detail = {"repayment": {"from": None, "to": _repayment_detail(created)}}
    steps = _closing(loan, _derived(book), Step(EventAction.repaid, {}, detail))
    await _save(session, loan, actor, steps, repayment=created, posting=True)
    return created


_REPAYMENT_ROW = _REPAYMENTS.where(
    Repayment.id == bindparam("repayment_id"), Repayment.loan_id == bindparam("loan_id")
)
_MARK_REVERSED = (
    update(Repayment)
    .where(Repayment.id == bindparam("repayment_id"))
    .values(reversed=True, reversed_at=bindparam("at"), reason=bindparam("reason"))
    .returning(*Repayment.__table__.c)
)


async def get_repayment(
    session: AsyncSession, *, loan_id: int, repayment_id: int
) -> RepaymentRecord:
    rows = await fetch(session, _REPAYMENT_ROW, {"repayment_id": repayment_id, "loan_id": loan_id})
    if not rows:
        raise RepaymentNotFound(loan_id, repayment_id)
    return RepaymentRecord.of(rows[0])


async def reverse(
    session: WriteSession,
    *,
    loan_id: int,
    repayment_id: int,
    actor: Caller,
    reason: str,
    expected_version: int | None = None,
) -> RepaymentRecord:
    loan = await _locked(session, loan_id)
    if (await get_repayment(session, loan_id=loan_id, repayment_id=repayment_id)).reversed:
        raise AlreadyReversed(repayment_id)
    _permit(loan, Action.reverse, actor, expected_version)
    terms = terms_of(loan)
    records = await repayments_of(session, loan_id)
    remaining = [r if r.id != repayment_id else replace(r, reversed=True) for r in records]
    try:
        book = ledger.replay(terms, replayable(remaining), today(), detail=False)
    except ledger.Overpayment as exc:  # not expected: a reversal only raises what is owed
        raise LaterRepaymentTooLarge(exc) from None
    connection = await session.connection()
    marked = {"repayment_id": repayment_id, "at": utcnow(), "reason": reason}
    reversed_row = (await connection.execute(_MARK_REVERSED, marked)).mappings().one()
    await _reallocate(session, remaining, book)
    reversed_record = RepaymentRecord.of(reversed_row)
    detail = {
        "repayment": {
            "from": {**_repayment_detail(reversed_record), "reversed": False},
            "to": {**_repayment_detail(reversed_record), "reversed": True},
        }
    }
    steps = _closing(loan, _derived(book), Step(EventAction.repayment_reversed, {}, detail))
    await _save(session, loan, actor, steps, reason, repayment=reversed_record)
    return reversed_record


async def write_off(
    session: WriteSession,
    *,
    loan_id: int,
    actor: Caller,
    reason: str,
    expected_version: int | None = None,
) -> LoanRecord:
    loan = await _locked(session, loan_id)
    status = _permit(loan, Action.write_off, actor, expected_version)
    terms = terms_of(loan)
    repayments = replayable(await repayments_of(session, loan_id))
    book = ledger.replay(terms, repayments, today(), detail=False)
    owed = book.delinquency
    values = {
        **_derived(book),
        "status": status,
        "written_off_on": today(),
        "written_off_principal": owed.principal_outstanding,
        "written_off_interest": owed.interest_outstanding,
        "written_off_penalty": owed.penalty_outstanding,
    }
    return await _save(session, loan, actor, [Step(EventAction.written_off, values)], reason)


# --- reconciliation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RepaymentFilters:
    loan_id: int | None = None
    paid_from: date | None = None
    paid_to: date | None = None
    reversed: bool | None = None

    def params(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if value is not None}


_REPAYMENT_CONDITIONS = {
    "loan_id": Repayment.loan_id == bindparam("loan_id"),
    "paid_from": Repayment.paid_on >= bindparam("paid_from"),
    "paid_to": Repayment.paid_on <= bindparam("paid_to"),
    "reversed": Repayment.reversed == bindparam("reversed"),
}


@functools.cache
def _list_statement(filters: tuple[str, ...], with_cursor: bool) -> Select[Any]:
    query = _REPAYMENTS.where(*(_REPAYMENT_CONDITIONS[name] for name in filters))
    return keyset(query, with_cursor, Repayment.created_at, Repayment.id)


async def list_repayments(
    session: AsyncSession, *, filters: RepaymentFilters, page: PageParams
) -> list[RepaymentRecord]:
    """Repayments across loans, newest first, and one more when there are more."""
    params = filters.params()
    query = _list_statement(tuple(params), page.after is not None)
    rows = await fetch(session, query, {**params, **page.binds()})
    return [RepaymentRecord.of(row) for row in rows]
