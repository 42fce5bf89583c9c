from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loanapi.loans.pricing import (
    CENT,
    Schedule,
    emi,
    month_interest,
    price,
    schedule,
    to_cents,
)

TABLE = [
    ("10000", "6.90", 12, "864.81", "864.76", "10377.67"),
    ("20000", "7.25", 24, "897.72", "897.71", "21545.27"),
    ("30000", "10.75", 36, "978.61", "978.76", "35230.11"),
    ("100000", "14.70", 60, "2363.27", "2363.67", "141796.60"),
    ("5000", "0.00", 7, "714.29", "714.26", "5000.00"),
]

principals = st.decimals(min_value=Decimal("1000.00"), max_value=Decimal("10000000.00"), places=2)
rates = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("40.00"), places=2)
tenures = st.integers(min_value=1, max_value=360)


def money_values(plan: Schedule) -> list[Decimal]:
    values = [plan.emi, plan.total_payable, plan.total_interest]
    for row in plan.rows:
        values.extend([row.payment, row.principal, row.interest, row.balance])
    return values


def test_to_cents_rounds_half_up() -> None:
    assert to_cents(Decimal("1.005")) == Decimal("1.01")
    assert to_cents(Decimal("1.004")) == Decimal("1.00")
    assert to_cents(Decimal("2")).as_tuple().exponent == -2
    assert CENT == Decimal("0.01")


@pytest.mark.parametrize(
    ("principal", "rate", "tenure", "expected_emi", "expected_last", "expected_total"), TABLE
)
def test_known_schedules(
    principal: str,
    rate: str,
    tenure: int,
    expected_emi: str,
    expected_last: str,
    expected_total: str,
) -> None:
    plan = schedule(Decimal(principal), Decimal(rate), tenure)

    assert plan.emi == Decimal(expected_emi)
    assert emi(Decimal(principal), Decimal(rate), tenure) == Decimal(expected_emi)
    assert plan.rows[-1].payment == Decimal(expected_last)
    assert plan.total_payable == Decimal(expected_total)
    assert plan.total_interest == plan.total_payable - Decimal(principal)
    assert plan.rows[-1].balance == Decimal("0.00")
    assert len(plan.rows) == tenure

    terms = price(Decimal(principal), Decimal(rate), tenure)
    assert terms.emi == plan.emi
    assert terms.total_payable == plan.total_payable
    assert terms.total_interest == plan.total_interest


@settings(max_examples=300, deadline=None)
@given(principal=principals, rate=rates, tenure=tenures)
def test_schedule_invariants(principal: Decimal, rate: Decimal, tenure: int) -> None:
    plan = schedule(principal, rate, tenure)

    assert len(plan.rows) == tenure
    assert [row.installment for row in plan.rows] == list(range(1, tenure + 1))
    assert sum((row.principal for row in plan.rows), Decimal(0)) == principal
    assert plan.rows[-1].balance == Decimal("0.00")
    assert all(row.payment == plan.emi for row in plan.rows[:-1])
    assert plan.total_payable == sum((row.payment for row in plan.rows), Decimal(0))
    assert plan.total_interest == plan.total_payable - principal
    assert all(value.as_tuple().exponent == -2 for value in money_values(plan))

    terms = price(principal, rate, tenure)
    assert (terms.emi, terms.total_payable, terms.total_interest) == (
        plan.emi,
        plan.total_payable,
        plan.total_interest,
    )


@pytest.mark.parametrize(
    ("principal", "rate", "tenure"),
    [
        ("0", "10.00", 12),
        ("0.00", "10.00", 12),
        ("-1000.00", "10.00", 12),
        ("1000.00", "10.00", 0),
        ("1000.00", "10.00", -3),
        ("1000.00", "-0.01", 12),
    ],
)
def test_invalid_inputs_are_rejected(principal: str, rate: str, tenure: int) -> None:
    with pytest.raises(ValueError, match="must"):
        emi(Decimal(principal), Decimal(rate), tenure)
    with pytest.raises(ValueError, match="must"):
        schedule(Decimal(principal), Decimal(rate), tenure)
    with pytest.raises(ValueError, match="must"):
        price(Decimal(principal), Decimal(rate), tenure)


def test_thirty_year_schedule_closes_at_zero() -> None:
    plan = schedule(Decimal("250000.00"), Decimal("8.50"), 360)

    assert len(plan.rows) == 360
    assert plan.rows[-1].balance == Decimal("0.00")
    assert sum((row.principal for row in plan.rows), Decimal(0)) == Decimal("250000.00")


def exact_half_up_cents(value: Fraction) -> Decimal:
    """Half-up to cents from an exact rational, with no decimal context involved."""
    cents = value * 100
    whole = cents.numerator // cents.denominator
    if cents - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole).scaleb(-2).quantize(CENT, rounding=ROUND_HALF_UP)


def test_a_half_cent_of_interest_rounds_up() -> None:
    # 2,100.00 * 12.34 / 1200 = 21.595 exactly; dividing the rate first gave 21.5949... -> 21.59.
    assert month_interest(Decimal("2100.00"), Decimal("12.34")) == Decimal("21.60")

    plan = schedule(Decimal("2100.00"), Decimal("12.34"), 12)
    assert plan.rows[0].interest == Decimal("21.60")
    assert plan.rows[0].principal == plan.emi - Decimal("21.60")

    # One month: the only row pays the balance plus that interest, so the totals carry the tie.
    terms = price(Decimal("2100.00"), Decimal("12.34"), 1)
    assert terms.total_payable == Decimal("2121.60")
    assert terms.total_interest == Decimal("21.60")
    assert schedule(Decimal("2100.00"), Decimal("12.34"), 1).total_payable == Decimal("2121.60")


@settings(max_examples=300, deadline=None)
@given(principal=principals, rate=rates, tenure=st.integers(min_value=1, max_value=60))
def test_every_row_interest_is_the_exact_product_over_1200(
    principal: Decimal, rate: Decimal, tenure: int
) -> None:
    balance = principal
    for row in schedule(principal, rate, tenure).rows:
        assert row.interest == exact_half_up_cents(Fraction(balance) * Fraction(rate) / 1200)
        balance = row.balance


@settings(max_examples=300, deadline=None)
@given(
    principal=principals,
    rate=st.decimals(min_value=Decimal("0"), max_value=Decimal("99.9999"), places=4),
    tenure=tenures,
)
def test_rows_are_whole_cents_of_the_exact_rule_whatever_the_rate_s_places(
    principal: Decimal, rate: Decimal, tenure: int
) -> None:
    """The schedule is amortised in ints of cents: the same figures as month_interest, each
    with exactly two places, for a rate of any precision."""
    balance = principal
    for row in schedule(principal, rate, tenure).rows:
        assert row.interest == month_interest(balance, rate)
        for value in (row.payment, row.principal, row.interest, row.balance):
            assert value.as_tuple().exponent == -2, row
        balance = row.balance
    assert balance == 0
