"""Loan pricing: EMI and amortisation schedules in exact decimal arithmetic.

Money is never touched by floats here; every intermediate step runs in a local decimal
context wide enough that only the explicit rounding to cents affects the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

CENT = Decimal("0.01")
PRECISION = 40
# Wide enough that only the explicit rounding to cents affects a result.
_EXACT = Context(prec=PRECISION)

_ZERO = Decimal(0)
_ONE = Decimal(1)
# A yearly percentage becomes a monthly fraction by dividing by 12 * 100.
_MONTHS_PER_YEAR_PERCENT = Decimal(1200)


def to_cents(value: Decimal) -> Decimal:
    """Round to whole cents the way a borrower expects (half away from zero)."""
    # An explicit context, not a `with localcontext()`: a schedule rounds four times a month.
    return value.quantize(CENT, rounding=ROUND_HALF_UP, context=_EXACT)


@dataclass(frozen=True)
class Installment:
    """One line of a repayment schedule; balance is what remains after this payment."""

    installment: int
    payment: Decimal
    principal: Decimal
    interest: Decimal
    balance: Decimal


@dataclass(frozen=True)
class Schedule:
    """A full repayment plan, so totals and rows can never disagree."""

    emi: Decimal
    total_payable: Decimal
    total_interest: Decimal
    rows: tuple[Installment, ...]


@dataclass(frozen=True)
class Terms:
    """The figures a loan record keeps, without the per-month detail."""

    emi: Decimal
    total_payable: Decimal
    total_interest: Decimal


def _validate(principal: Decimal, annual_rate: Decimal, tenure_months: int) -> None:
    """Reject inputs for which the annuity formula is meaningless or divides by zero."""
    if principal <= _ZERO:
        raise ValueError("principal must be greater than zero")
    if tenure_months < 1:
        raise ValueError("tenure_months must be at least 1")
    if annual_rate < _ZERO:
        raise ValueError("annual_rate must not be negative")


def monthly_rate(annual_rate: Decimal) -> Decimal:
    """Convert a yearly percentage into the per-month fraction the formulas work with."""
    with localcontext(_EXACT):
        return annual_rate / _MONTHS_PER_YEAR_PERCENT


def emi(principal: Decimal, annual_rate: Decimal, tenure_months: int) -> Decimal:
    """Equal monthly instalment that repays the principal with interest over the tenure."""
    _validate(principal, annual_rate, tenure_months)
    with localcontext(_EXACT):
        rate = monthly_rate(annual_rate)
        if rate == _ZERO:
            return to_cents(principal / tenure_months)
        growth = (_ONE + rate) ** tenure_months
        return to_cents(principal * rate * growth / (growth - _ONE))


Month = tuple[int, Decimal, Decimal, Decimal, Decimal]  # an Installment's fields, in order


def month_interest(balance: Decimal, annual_rate: Decimal) -> Decimal:
    """A month's interest on a balance, the one rounding rule every module uses.

    The product is taken before the division (`balance * annual_rate / 1200`) so an exact half
    cent stays exact and rounds up: 2,100.00 at 12.34% is 21.595 -> 21.60. Multiplying by a
    pre-divided monthly rate (0.010283...) would leave 21.5949... and round it down to 21.59.
    """
    # Explicit context calls, not `with localcontext()`: this runs once per schedule row. The
    # product is exact; the quotient's expansion ends in a repeating 3 or 6 (1200 = 2^4 * 3 * 5^2),
    # so rounding it to 40 digits can never manufacture or destroy a half-cent tie.
    exact = _EXACT.divide(_EXACT.multiply(balance, annual_rate), _MONTHS_PER_YEAR_PERCENT)
    return to_cents(exact)


def _cents_of(amount: Decimal) -> int:
    """A whole-cents amount as an int of cents (1234.56 -> 123456)."""
    return int(amount.scaleb(2, _EXACT))


def _interest_fraction(annual_rate: Decimal) -> tuple[int, int]:
    """(n, d) such that a month's interest in cents is exactly balance_cents * n / d: with
    `annual_rate` = n / 10^s, balance * annual_rate / 1200 is cents * n / (1200 * 10^s)."""
    exponent = annual_rate.as_tuple().exponent
    assert isinstance(exponent, int)  # a finite rate (LoanTerms and the API refuse others)
    places = max(0, -exponent)
    return int(annual_rate.scaleb(places, _EXACT)), 1200 * 10**places


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero (to_cents' rule), in ints."""
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


def _amortise(
    principal: Decimal, annual_rate: Decimal, instalment: Decimal, tenure_months: int
) -> Iterator[Month]:
    """Amortise month by month; the last month absorbs rounding so the balance ends at zero.

    Month by month in whole cents as ints, month_interest's rule exactly (the product before
    the division, half-up), a fraction of Decimal's cost: a 360-month plan is built on every
    repayment of a loan not seen recently. tests/loans/test_pricing.py checks it against
    month_interest row by row on random terms."""
    rate, divisor = _interest_fraction(annual_rate)
    emi_cents = _cents_of(instalment)
    balance = _cents_of(to_cents(principal))
    for number in range(1, tenure_months + 1):
        interest = _half_up(balance * rate, divisor)
        principal_part = emi_cents - interest if number < tenure_months else balance
        balance -= principal_part
        yield (
            number,
            instalment if number < tenure_months else (principal_part + interest) * CENT,
            principal_part * CENT,
            interest * CENT,
            balance * CENT,
        )


def _totals(principal: Decimal, payments: Iterable[Decimal]) -> tuple[Decimal, Decimal]:
    """Total payable and total interest of a schedule's payments."""
    with localcontext(_EXACT):
        total_payable = to_cents(sum(payments, _ZERO))
        return total_payable, to_cents(total_payable - to_cents(principal))


def schedule(principal: Decimal, annual_rate: Decimal, tenure_months: int) -> Schedule:
    """Full plan, so callers can show borrowers exactly where each payment goes."""
    instalment = emi(principal, annual_rate, tenure_months)
    rows = tuple(
        Installment(*month) for month in _months(principal, annual_rate, instalment, tenure_months)
    )
    return Schedule(instalment, *_totals(principal, (row.payment for row in rows)), rows)


def months(principal: Decimal, annual_rate: Decimal, tenure_months: int) -> tuple[Month, ...]:
    """The schedule's rows as plain tuples, Installment's fields in order: for callers that
    build rows of their own from them (the ledger's plan), without an Installment each."""
    return _months(
        principal, annual_rate, emi(principal, annual_rate, tenure_months), tenure_months
    )


def _months(
    principal: Decimal, annual_rate: Decimal, instalment: Decimal, tenure_months: int
) -> tuple[Month, ...]:
    with localcontext(_EXACT):
        return tuple(_amortise(principal, annual_rate, instalment, tenure_months))


def price(principal: Decimal, annual_rate: Decimal, tenure_months: int) -> Terms:
    """Totals derived from the real schedule, so stored terms match what is collected (the
    months are walked, not kept: pricing runs on every application and edit)."""
    instalment = emi(principal, annual_rate, tenure_months)
    with localcontext(_EXACT):
        months = _amortise(principal, annual_rate, instalment, tenure_months)
        return Terms(instalment, *_totals(principal, (month[1] for month in months)))
