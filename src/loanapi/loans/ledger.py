"""Loan servicing money rules: due dates, late fees, allocation by replay, payoff, delinquency.

Every figure a disbursed loan shows (what each repayment paid, which fees exist, what is owed and
how late) is derived here from two things only: the loan's terms and its repayments. No I/O, no
clock (the caller passes every date), no floats. A replay, a statement, a payoff quote and the
nightly job all call `replay`, so they cannot disagree; the services persist what it returns.

One call is linear in installments + repayments: an allocation cursor only moves forward (an
installment once fully paid is never charged again), installments after the cursor are untouched
(allocation moves on only when the current one is fully paid), so a payoff quote in the middle of
a replay is O(1) from running totals and prefix sums instead of a walk over the schedule.

Readings of SERVICING.md where it is silent, chosen as a careful lender would:
- A repayment's amount is compared with the payoff quote *at its place in the replay*: after the
  repayments before it in (paid_on, id) order and the fees dated on or before its paid_on. For a
  new repayment (the highest id) that is exactly "counting only repayments dated on or before it".
- A repayment after the loan closed meets a payoff amount of 0.00, so it is an overpayment: the
  same error, which the service reports as 409 (a closed loan accepts no repayment).
- "Fully paid" for a late fee means nothing of the installment's principal and interest is left
  (its own fee does not exist yet at that moment); paid in advance or waived counts as paid.
- Fees of a loan are not charged once it has closed on or before the fee's date; a fee dated on
  the closing day is charged before the payoff and so is part of it (fees come first on a date).
- The pro-rated interest of the period running on D counts days from the period's start to D, so
  a quote on the start day (a due date, or the disbursement day) carries no interest for it.
- An installment whose scheduled amounts are both zero (possible only in degenerate schedules) is
  fully paid from the start: it is never late and never charged.
- Dates before `disbursed_on` (a repayment or an as-of date) are a caller error (ValueError), as
  are duplicate repayment ids (the replay order would be ambiguous).
"""

from __future__ import annotations

import bisect
import calendar
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Context, Decimal
from enum import StrEnum
from itertools import accumulate
from operator import add
from typing import NamedTuple

from loanapi.loans.pricing import months, to_cents

ZERO = Decimal("0.00")
MAX_GRACE_DAYS = 30
# Wide enough that only the explicit rounding to cents affects a pro-rated interest.
_EXACT = Context(prec=40)


class Bucket(StrEnum):
    """Days-past-due bands, the buckets a collections team works by."""

    current = "current"
    days_1_30 = "1-30"
    days_31_60 = "31-60"
    days_61_90 = "61-90"
    days_91_plus = "91+"


class InstallmentStatus(StrEnum):
    """What a statement says of an installment; the first that applies wins."""

    paid = "paid"
    overdue = "overdue"
    due = "due"
    partial = "partial"
    future = "future"


def add_months(anchor: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day.

    Always counted from the anchor, never step by step, so a loan disbursed on the 31st is due on
    every month end (Jan 31 -> Feb 28 -> Mar 31) instead of drifting to the 28th.
    """
    year, month = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    day = anchor.day
    if day > 28:  # every month has the 28th: only a later day needs the month's length
        day = min(day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day)


def bucket_of(dpd: int) -> Bucket:
    """The bucket for a number of days past due."""
    if dpd <= 0:
        return Bucket.current
    if dpd <= 30:
        return Bucket.days_1_30
    if dpd <= 60:
        return Bucket.days_31_60
    if dpd <= 90:
        return Bucket.days_61_90
    return Bucket.days_91_plus


def _is_cents(value: Decimal) -> bool:
    """True when the value has at most two decimal places (money as the API accepts it)."""
    return value.is_finite() and value == to_cents(value)


@dataclass(frozen=True, slots=True)
class LoanTerms:
    """What a loan fixes at disbursement; everything else is derived from these and repayments.

    `late_fee` and `grace_days` are the product's at disbursement: a later product change must not
    rewrite an existing loan's history.
    """

    principal: Decimal
    annual_rate: Decimal
    tenure_months: int
    disbursed_on: date
    first_due_on: date | None = None
    late_fee: Decimal = ZERO
    grace_days: int = 5

    def __post_init__(self) -> None:
        # The service validates requests (422); this guards the invariants replay relies on.
        if not _is_cents(self.principal) or self.principal <= 0:
            raise ValueError("principal must be a positive amount with at most two places")
        if self.annual_rate < 0 or self.tenure_months < 1:
            raise ValueError("annual_rate must not be negative and tenure_months must be >= 1")
        if not _is_cents(self.late_fee) or self.late_fee < 0:
            raise ValueError("late_fee must be a non-negative amount with at most two places")
        if not 0 <= self.grace_days <= MAX_GRACE_DAYS:
            raise ValueError(f"grace_days must be between 0 and {MAX_GRACE_DAYS}")
        if self.first_due_on is not None and not (
            self.disbursed_on < self.first_due_on <= add_months(self.disbursed_on, 2)
        ):
            raise ValueError("first_due_on must be after disbursed_on and within two months")

    def due_on(self, installment: int) -> date:
        """Due date of installment k (1-based), always counted from one anchor."""
        if self.first_due_on is None:
            return add_months(self.disbursed_on, installment)
        return add_months(self.first_due_on, installment - 1)


class ScheduledInstallment(NamedTuple):
    """Installment k as scheduled: its period (start_on, due_on] and what it asks for.

    The amounts are row k of pricing's schedule; the dates never change them.
    """

    installment: int
    start_on: date
    due_on: date
    principal: Decimal
    interest: Decimal


@functools.lru_cache(maxsize=4096)
def installments(terms: LoanTerms) -> tuple[ScheduledInstallment, ...]:
    """The loan's installments: pricing's rows (same emi, last row absorbs the rest) with dates."""
    rows = months(terms.principal, terms.annual_rate, terms.tenure_months)
    dues = [terms.due_on(k) for k in range(1, terms.tenure_months + 1)]
    starts = [terms.disbursed_on, *dues]
    make = ScheduledInstallment._make
    return tuple(
        make((k, starts[k - 1], dues[k - 1], principal, interest))
        for k, _payment, principal, interest, _balance in rows
    )


def late_fee_on(terms: LoanTerms, due_on: date) -> date:
    """The date a late fee is charged: the day after the grace period ends."""
    return due_on + timedelta(days=terms.grace_days + 1)


@dataclass(frozen=True, slots=True)
class Repayment:
    """A repayment as stored; `id` breaks ties between repayments of the same day.

    A repayment not yet stored can be replayed with any id above every stored one: it was
    created last, so it replays after every repayment of its day.
    """

    id: int
    paid_on: date
    amount: Decimal
    reversed: bool = False


@dataclass(frozen=True, slots=True)
class Allocation:
    """Where one repayment went in the replay; the three parts sum to its amount."""

    repayment_id: int
    penalty: Decimal
    interest: Decimal
    principal: Decimal
    payoff: bool  # it was the payoff: the loan closed on its paid_on

    @property
    def total(self) -> Decimal:
        return self.penalty + self.interest + self.principal


@dataclass(frozen=True, slots=True)
class Posting:
    """A repayment in replay order with its allocation; None for a reversed one, which keeps the
    allocation the service stored when it was reversed."""

    repayment: Repayment
    allocation: Allocation | None


@dataclass(frozen=True, slots=True)
class LateFee:
    """A fee charged on an installment, dated the day after its grace period."""

    installment: int
    charged_on: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Payoff:
    """What closes the loan on `on`: every unpaid fee and principal, the interest earned to date."""

    on: date
    principal: Decimal
    interest: Decimal
    penalty: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.penalty


@dataclass(frozen=True, slots=True)
class Delinquency:
    """How late and how much is owed as of a date: the fields a loan stores and lists filter by."""

    dpd: int
    arrears: Decimal
    bucket: Bucket
    next_due_on: date | None
    next_due_amount: Decimal
    principal_outstanding: Decimal
    interest_outstanding: Decimal
    penalty_outstanding: Decimal


class InstallmentState(NamedTuple):
    """An installment as a statement shows it as of a date.

    A named tuple, not a frozen dataclass: a 360-month statement makes 360 of them per request,
    and a tuple is built several times faster."""

    installment: int
    due_on: date
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    paid_principal: Decimal
    paid_interest: Decimal
    paid_penalty: Decimal
    waived_interest: Decimal
    status: InstallmentStatus

    @property
    def unpaid(self) -> Decimal:
        """What is left to pay on it (zero once paid in full or closed with interest waived)."""
        return (
            self.principal
            + self.interest
            + self.penalty
            - self.paid_principal
            - self.paid_interest
            - self.paid_penalty
            - self.waived_interest
        )


@dataclass(frozen=True, slots=True)
class Ledger:
    """Everything about a loan as of one date, from one replay: the statement, the payoff quote,
    the delinquency fields, the fees and each repayment's allocation."""

    as_of: date
    installments: tuple[InstallmentState, ...]
    fees: tuple[LateFee, ...]
    postings: tuple[Posting, ...]  # repayments dated <= as_of, replay order, reversed included
    closed_on: date | None
    payoff: Payoff
    delinquency: Delinquency
    fees_charged: int = -1  # every fee charged by as_of; -1: len(fees) (see `post_after`)

    def __post_init__(self) -> None:
        if self.fees_charged < 0:
            object.__setattr__(self, "fees_charged", len(self.fees))

    @property
    def allocations(self) -> dict[int, Allocation]:
        """Current allocation of each non-reversed repayment, by repayment id."""
        return {
            posting.repayment.id: posting.allocation
            for posting in self.postings
            if posting.allocation is not None
        }


class Overpayment(Exception):
    """A repayment is above the payoff amount at its place in the replay.

    The service answers 422 when it is the repayment being posted (the detail states `payoff`),
    and 409 when an earlier, back-dated new one made this later stored one too big.
    """

    def __init__(self, repayment: Repayment, payoff: Decimal) -> None:
        super().__init__(
            f"repayment {repayment.id} of {repayment.amount} on {repayment.paid_on.isoformat()} "
            f"exceeds the payoff amount {payoff}"
        )
        self.repayment = repayment
        self.repayment_id = repayment.id
        self.payoff = payoff


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a replay needs of the terms alone, computed once per terms (a loan's replays, and
    loans on the same terms, share it)."""

    dues: tuple[ScheduledInstallment, ...]
    due_dates: tuple[date, ...]
    interest_before: tuple[Decimal, ...]  # interest_before[k]: scheduled interest of dues[:k]
    scheduled_before: tuple[Decimal, ...]  # principal and interest of dues[:k]
    principal: Decimal
    fee_dates: tuple[date, ...]  # empty when the loan has no late fee


@functools.lru_cache(maxsize=4096)
def _plan(terms: LoanTerms) -> _Plan:
    dues = installments(terms)
    due_dates = tuple(due.due_on for due in dues)
    interests = [due.interest for due in dues]
    grace = timedelta(days=terms.grace_days + 1)  # late_fee_on's, once for every due date
    return _Plan(
        dues=dues,
        due_dates=due_dates,
        interest_before=tuple(accumulate(interests, initial=ZERO)),
        scheduled_before=tuple(
            accumulate(map(add, (due.principal for due in dues), interests), initial=ZERO)
        ),
        principal=sum((due.principal for due in dues), ZERO),
        fee_dates=tuple(day + grace for day in due_dates) if terms.late_fee > 0 else (),
    )


class _Book:
    """The replay's working state (private, local to one `replay` call).

    Mutable lists rather than a fold over frozen records: the replay touches each installment a
    bounded number of times, which is what keeps a statement linear in the loan's age.
    """

    def __init__(self, terms: LoanTerms) -> None:
        self.terms = terms
        self.plan = _plan(terms)
        self.dues = self.plan.dues
        count = len(self.dues)
        self.fee = [ZERO] * count
        self.paid_principal = [ZERO] * count
        self.paid_interest = [ZERO] * count
        self.paid_penalty = [ZERO] * count
        self.fees: list[LateFee] = []
        self.cursor = 0  # oldest installment not fully paid; nothing after it is paid at all
        self.due_count = 0  # installments due on or before the last date asked about
        self.principal_unpaid = self.plan.principal
        self.penalty_unpaid = ZERO
        self.interest_paid = ZERO  # allocated to interest so far (before any closing)
        self.interest_before = self.plan.interest_before
        self.closed_on: date | None = None
        self._skip_paid()

    def unpaid(self, k: int) -> Decimal:
        due = self.dues[k]
        return (
            due.principal
            + due.interest
            + self.fee[k]
            - self.paid_principal[k]
            - self.paid_interest[k]
            - self.paid_penalty[k]
        )

    def _skip_paid(self) -> None:
        while self.cursor < len(self.dues) and self.unpaid(self.cursor) == 0:
            self.cursor += 1

    def _count_due(self, on: date) -> int:
        """How many installments are due on or before `on`; dates asked only move forward."""
        while self.due_count < len(self.dues) and self.dues[self.due_count].due_on <= on:
            self.due_count += 1
        return self.due_count

    def charge_fee(self, k: int, on: date) -> None:
        """Charge installment k's fee if it is still not fully paid (cursor at or before it)."""
        if self.closed_on is None and self.unpaid(k) > 0:
            self.fee[k] = self.terms.late_fee
            self.penalty_unpaid += self.terms.late_fee
            self.fees.append(LateFee(k + 1, on, self.terms.late_fee))

    def accrued_interest(self, k: int, on: date) -> Decimal:
        """Interest of installment k earned by `on`, pro rata to the days of its period."""
        due = self.dues[k]
        elapsed = (on - due.start_on).days
        period = (due.due_on - due.start_on).days
        # Product before division, half-up; the quotient's denominator is at most 100 * 62, so
        # 40 digits cannot move it across a half cent.
        return to_cents(_EXACT.divide(_EXACT.multiply(due.interest, elapsed), period))

    def quote(self, on: date) -> Payoff:
        """The payoff quote on `on`, from running totals (O(1) amortised)."""
        if self.closed_on is not None:
            return Payoff(on, ZERO, ZERO, ZERO)
        due_count = self._count_due(on)
        interest = ZERO
        if due_count > self.cursor:
            # Installments after the cursor are untouched, so their unpaid interest is scheduled.
            interest = (
                self.dues[self.cursor].interest
                - self.paid_interest[self.cursor]
                + self.interest_before[due_count]
                - self.interest_before[self.cursor + 1]
            )
        if due_count < len(self.dues):
            accrued = self.accrued_interest(due_count, on)
            interest += max(ZERO, accrued - self.paid_interest[due_count])
        return Payoff(on, self.principal_unpaid, interest, self.penalty_unpaid)

    def post(self, repayment: Repayment) -> Allocation:
        """Refuse a repayment above the payoff, close on one equal to it, else allocate it."""
        amount = to_cents(repayment.amount)
        if self.closed_on is None and amount < self.principal_unpaid + self.penalty_unpaid:
            # Below what the payoff asks before any interest: neither the payoff nor above it.
            return self._allocate(repayment.id, amount)
        quote = self.quote(repayment.paid_on)
        if amount > quote.total:
            raise Overpayment(repayment, quote.total)
        if amount == quote.total:
            self._close(repayment.paid_on)
            return Allocation(repayment.id, quote.penalty, quote.interest, quote.principal, True)
        return self._allocate(repayment.id, amount)

    def _allocate(self, repayment_id: int, amount: Decimal) -> Allocation:
        """Oldest installment first, within it penalty, interest, principal; move on only when it
        is fully paid. Below the payoff amount this never runs out of installments: the payoff
        is at most everything still scheduled."""
        left = amount
        penalty = interest = principal = ZERO
        while left > 0:
            k = self.cursor
            due = self.dues[k]
            part = min(left, self.fee[k] - self.paid_penalty[k])
            self.paid_penalty[k] += part
            self.penalty_unpaid -= part
            penalty += part
            left -= part
            part = min(left, due.interest - self.paid_interest[k])
            self.paid_interest[k] += part
            self.interest_paid += part
            interest += part
            left -= part
            part = min(left, due.principal - self.paid_principal[k])
            self.paid_principal[k] += part
            self.principal_unpaid -= part
            principal += part
            left -= part
            self._skip_paid()
        return Allocation(repayment_id, penalty, interest, principal, False)

    def _close(self, on: date) -> None:
        """Pay exactly the quote on `on`: every fee and principal, the interest of installments due
        by then and the accrued part of the running one. The rest is waived (see `waived`)."""
        due_count = self._count_due(on)
        for k in range(self.cursor, len(self.dues)):
            due = self.dues[k]
            self.paid_penalty[k] = self.fee[k]
            self.paid_principal[k] = due.principal
            if k < due_count:
                self.paid_interest[k] = due.interest
            elif k == due_count:
                self.paid_interest[k] = max(self.paid_interest[k], self.accrued_interest(k, on))
        self.principal_unpaid = ZERO
        self.penalty_unpaid = ZERO
        self.cursor = len(self.dues)
        self.closed_on = on

    def waived(self, k: int) -> Decimal:
        """Interest the payoff left out; nothing is waived while the loan is open."""
        if self.closed_on is None:
            return ZERO
        return self.dues[k].interest - self.paid_interest[k]


def _ordered(repayments: Iterable[Repayment], as_of: date, disbursed_on: date) -> list[Repayment]:
    """Repayments that count as of `as_of`, in replay order (paid_on, id).

    Sorting is linear when the caller passes them already in that order (an ORDER BY).
    """
    counted = sorted((r for r in repayments if r.paid_on <= as_of), key=lambda r: (r.paid_on, r.id))
    ids = {r.id for r in counted}
    if len(ids) != len(counted):
        raise ValueError("repayment ids must be unique")
    for r in counted:
        if r.paid_on < disbursed_on:
            raise ValueError(f"repayment {r.id} is dated before the disbursement")
        if not _is_cents(r.amount) or r.amount <= 0:
            raise ValueError(f"repayment {r.id} must be a positive amount with two places")
    return counted


def replay(
    terms: LoanTerms, repayments: Iterable[Repayment], as_of: date, *, detail: bool = True
) -> Ledger:
    """The loan as of `as_of`: replay the repayments dated on or before it over the installments
    and the fees, in date order, a fee dated F before any repayment dated F.

    Without `detail`, the ledger's `installments` are left empty: what a change stores (the
    allocations, the delinquency fields, the payoff) costs then what the repayments and the
    overdue installments do, not the whole schedule.

    Raises Overpayment at the first repayment above the payoff amount at its place.
    """
    if as_of < terms.disbursed_on:
        raise ValueError("as_of must not be before the disbursement")
    book = _Book(terms)
    fee_dates = book.plan.fee_dates
    next_fee = 0
    postings: list[Posting] = []

    def charge_fees_until(day: date) -> None:
        nonlocal next_fee
        while next_fee < len(fee_dates) and fee_dates[next_fee] <= day:
            book.charge_fee(next_fee, fee_dates[next_fee])
            next_fee += 1

    for repayment in _ordered(repayments, as_of, terms.disbursed_on):
        if repayment.reversed:
            postings.append(Posting(repayment, None))
            continue
        charge_fees_until(repayment.paid_on)
        postings.append(Posting(repayment, book.post(repayment)))
    charge_fees_until(as_of)
    states = _states(book, as_of) if detail else ()
    return Ledger(
        as_of=as_of,
        installments=states,
        fees=tuple(book.fees),
        postings=tuple(postings),
        closed_on=book.closed_on,
        payoff=book.quote(as_of),
        delinquency=_book_delinquency(book, as_of),
    )


def _status(due_on: date, unpaid: Decimal, paid: Decimal, as_of: date) -> InstallmentStatus:
    """The first status that applies, in SERVICING.md's order."""
    if unpaid == 0:
        return InstallmentStatus.paid
    if due_on < as_of:
        return InstallmentStatus.overdue
    if due_on == as_of:
        return InstallmentStatus.due
    if paid > 0:
        return InstallmentStatus.partial
    return InstallmentStatus.future


def _states(book: _Book, as_of: date) -> tuple[InstallmentState, ...]:
    """Every installment's state. Those after the cursor of an open loan with no fee charged
    are untouched (nothing paid, nothing waived): only their status needs the date."""
    count = len(book.dues)
    touched = count if book.closed_on is not None else min(count, book.cursor + 1)
    states = [_state(book, k, as_of) for k in range(touched)]
    for k in range(touched, count):
        due = book.dues[k]
        if book.fee[k] or not (due.principal or due.interest):
            states.append(_state(book, k, as_of))
            continue
        if due.due_on < as_of:
            status = InstallmentStatus.overdue
        elif due.due_on == as_of:
            status = InstallmentStatus.due
        else:
            status = InstallmentStatus.future
        states.append(
            InstallmentState(
                due.installment, due.due_on, due.principal, due.interest, *_NOTHING, status
            )
        )
    return tuple(states)


_NOTHING = (ZERO, ZERO, ZERO, ZERO, ZERO)  # penalty, paid principal, interest, penalty, waived


def _state(book: _Book, k: int, as_of: date) -> InstallmentState:
    due = book.dues[k]
    paid = book.paid_principal[k] + book.paid_interest[k] + book.paid_penalty[k]
    waived = book.waived(k)
    unpaid = book.unpaid(k) - waived
    return InstallmentState(
        due.installment,
        due.due_on,
        due.principal,
        due.interest,
        book.fee[k],
        book.paid_principal[k],
        book.paid_interest[k],
        book.paid_penalty[k],
        waived,
        _status(due.due_on, unpaid, paid, as_of),
    )


def _book_delinquency(book: _Book, as_of: date) -> Delinquency:
    """SERVICING.md "Delinquency" from the replay's running state. Installments before the
    cursor are fully paid and every one from it on is not (allocation fills them in order), so
    the overdue ones are those from the cursor to the last due before `as_of`: only they are
    visited. tests/loans/test_ledger.py checks this against `_delinquency` over every
    installment's state."""
    count = len(book.dues)
    before = bisect.bisect_left(book.plan.due_dates, as_of)  # installments due before as_of
    overdue = range(book.cursor, before)
    arrears = sum((book.unpaid(k) for k in overdue), ZERO)
    dpd = (as_of - book.dues[book.cursor].due_on).days if overdue else 0
    upcoming = max(book.cursor, before)
    closed = book.closed_on is not None
    return Delinquency(
        dpd=dpd,
        arrears=arrears,
        bucket=bucket_of(dpd),
        next_due_on=book.dues[upcoming].due_on if upcoming < count else None,
        next_due_amount=arrears + (book.unpaid(upcoming) if upcoming < count else ZERO),
        principal_outstanding=book.principal_unpaid,
        interest_outstanding=ZERO if closed else book.interest_before[count] - book.interest_paid,
        penalty_outstanding=book.penalty_unpaid,
    )


def _delinquency(states: Sequence[InstallmentState], as_of: date) -> Delinquency:
    """SERVICING.md "Delinquency": overdue means due before `as_of` and not fully paid."""
    overdue = [s for s in states if s.due_on < as_of and s.unpaid > 0]
    dpd = (as_of - overdue[0].due_on).days if overdue else 0
    arrears = sum((s.unpaid for s in overdue), ZERO)
    upcoming = next((s for s in states if s.due_on >= as_of and s.unpaid > 0), None)
    return Delinquency(
        dpd=dpd,
        arrears=arrears,
        bucket=bucket_of(dpd),
        next_due_on=upcoming.due_on if upcoming else None,
        next_due_amount=arrears + (upcoming.unpaid if upcoming else ZERO),
        principal_outstanding=sum((s.principal - s.paid_principal for s in states), ZERO),
        interest_outstanding=sum(
            (s.interest - s.paid_interest - s.waived_interest for s in states), ZERO
        ),
        penalty_outstanding=sum((s.penalty - s.paid_penalty for s in states), ZERO),
    )


def payoff_quote(terms: LoanTerms, repayments: Iterable[Repayment], on: date) -> Payoff:
    """The payoff quote on `on`, counting only repayments dated on or before it."""
    return replay(terms, repayments, on).payoff


def late_fees(
    terms: LoanTerms, repayments: Iterable[Repayment], as_of: date
) -> tuple[LateFee, ...]:
    """The fees charged as of `as_of`: a pure function of the repayments, so close of business
    only records what this already says."""
    return replay(terms, repayments, as_of).fees


def delinquency(terms: LoanTerms, repayments: Iterable[Repayment], as_of: date) -> Delinquency:
    """The loan's delinquency fields as of `as_of`."""
    return replay(terms, repayments, as_of).delinquency


@dataclass(frozen=True, slots=True)
class Standing:
    """What a loan stores of its replay as of `as_of` (its last change or close of business),
    every repayment it has being dated on or before that day."""

    as_of: date
    principal_outstanding: Decimal
    interest_outstanding: Decimal
    penalty_outstanding: Decimal
    fees_charged: int


class Inconsistent(ValueError):
    """A standing that no replay of these terms can give (the caller replays in full)."""


def _resumed(terms: LoanTerms, standing: Standing) -> _Book:
    """The replay's state as of `standing.as_of`, rebuilt from the stored totals alone.

    Allocation fills installments in order, so what was paid towards principal and interest
    says which installment is the oldest not fully paid (the cursor) and how much of it is paid;
    every installment from the cursor on whose fee date has passed was charged its fee (it is
    not fully paid even now), the ones before it are fully paid, fees included; so what the
    cursor's own fee has been paid follows from the unpaid penalty. The same reasoning as close
    of business's SQL (loans/close_of_business.py)."""
    book = _Book(terms)
    plan = book.plan
    count = len(plan.dues)
    interest = plan.interest_before[count]
    paid = (plan.principal - standing.principal_outstanding) + (
        interest - standing.interest_outstanding
    )
    cursor = bisect.bisect_right(plan.scheduled_before, paid) - 1
    if not 0 <= cursor < count or paid < 0:
        raise Inconsistent("the stored totals do not fit the schedule")
    for k in range(cursor):
        book.paid_principal[k] = plan.dues[k].principal
        book.paid_interest[k] = plan.dues[k].interest
    on_cursor = paid - plan.scheduled_before[cursor]
    due = plan.dues[cursor]
    book.paid_interest[cursor] = min(on_cursor, due.interest)
    book.paid_principal[cursor] = on_cursor - book.paid_interest[cursor]
    charged = bisect.bisect_right(plan.fee_dates, standing.as_of)  # fee dates by as_of
    for k in range(cursor, charged):
        book.fee[k] = terms.late_fee
    owed_fees = terms.late_fee * max(0, charged - cursor)
    book.paid_penalty[cursor] = owed_fees - standing.penalty_outstanding
    if not ZERO <= book.paid_penalty[cursor] <= book.fee[cursor]:
        raise Inconsistent("the stored penalty does not fit the fees charged")
    book.cursor = cursor
    book.principal_unpaid = standing.principal_outstanding
    book.interest_paid = interest - standing.interest_outstanding
    book.penalty_unpaid = standing.penalty_outstanding
    book._skip_paid()
    return book


def post_after(terms: LoanTerms, standing: Standing, repayment: Repayment, as_of: date) -> Ledger:
    """Post a repayment dated on or after `standing.as_of` (so after every stored one) and take
    the loan on to `as_of`, without the repayments before it: the ledger `replay` would give
    without detail, except that its `fees` and `postings` hold only what came after the
    standing's day (`fees_charged` counts every fee). Raises Overpayment like `replay`, and
    Inconsistent when the standing cannot be a replay's (then replay in full).
    tests/loans/test_ledger.py checks it against `replay` on random loans."""
    if repayment.paid_on < standing.as_of or as_of < repayment.paid_on:
        raise ValueError("the repayment must be dated between the standing's day and as_of")
    book = _resumed(terms, standing)
    fee_dates = book.plan.fee_dates
    next_fee = bisect.bisect_right(fee_dates, standing.as_of)

    def charge_fees_until(day: date) -> None:
        nonlocal next_fee
        while next_fee < len(fee_dates) and fee_dates[next_fee] <= day:
            book.charge_fee(next_fee, fee_dates[next_fee])
            next_fee += 1

    charge_fees_until(repayment.paid_on)
    posting = Posting(repayment, book.post(repayment))
    charge_fees_until(as_of)
    return Ledger(
        as_of=as_of,
        installments=(),
        fees=tuple(book.fees),
        postings=(posting,),
        closed_on=book.closed_on,
        payoff=book.quote(as_of),
        delinquency=_book_delinquency(book, as_of),
        fees_charged=standing.fees_charged + len(book.fees),
    )
