import calendar
import os
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from loanapi.loans.ledger import (
    ZERO,
    Bucket,
    InstallmentStatus,
    Ledger,
    LoanTerms,
    Overpayment,
    Payoff,
    Repayment,
    Standing,
    _delinquency,
    add_months,
    bucket_of,
    delinquency,
    installments,
    late_fee_on,
    late_fees,
    payoff_quote,
    post_after,
    replay,
)
from loanapi.loans.pricing import schedule, to_cents

# CI runs these with LOANAPI_HYPOTHESIS_EXAMPLES of at least 2000 (issue 13); locally 200.
settings.register_profile(
    "ledger",
    max_examples=int(os.environ.get("LOANAPI_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LEDGER_PROFILE = settings.get_profile("ledger")


def d(text: str) -> date:
    return date.fromisoformat(text)


def money(text: str) -> Decimal:
    return Decimal(text)


# The worked example of SERVICING.md.
EXAMPLE = LoanTerms(
    principal=money("12000.00"),
    annual_rate=money("10.75"),
    tenure_months=12,
    disbursed_on=d("2025-01-15"),
    first_due_on=d("2025-02-15"),
    late_fee=money("25.00"),
    grace_days=5,
)
FIRST = Repayment(1, d("2025-02-15"), money("1059.18"))
SECOND = Repayment(2, d("2025-04-02"), money("1500.00"))


# add_months --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        ("2025-01-31", 1, "2025-02-28"),
        ("2025-01-31", 2, "2025-03-31"),
        ("2025-01-31", 3, "2025-04-30"),
        ("2024-01-31", 1, "2024-02-29"),
        ("2024-02-29", 12, "2025-02-28"),
        ("2024-02-29", 48, "2028-02-29"),
        ("2025-01-30", 1, "2025-02-28"),
        ("2025-01-29", 1, "2025-02-28"),
        ("2024-01-29", 1, "2024-02-29"),
        ("2025-12-15", 1, "2026-01-15"),
        ("2025-11-30", 3, "2026-02-28"),
        ("2025-03-31", -1, "2025-02-28"),
        ("2025-01-15", 0, "2025-01-15"),
        ("2025-01-31", 60, "2030-01-31"),
    ],
)
def test_add_months_clamps_to_month_end(anchor: str, months: int, expected: str) -> None:
    assert add_months(d(anchor), months) == d(expected)


@given(anchor=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)))
def test_add_months_counts_from_the_anchor(anchor: date) -> None:
    dates = [add_months(anchor, k) for k in range(0, 61)]
    assert all(a < b for a, b in zip(dates, dates[1:], strict=False))
    for k, due in enumerate(dates):
        # Step by step would drift (Jan 31 -> Feb 28 -> Mar 28); from the anchor it never does.
        assert due.day == anchor.day or (due + timedelta(days=1)).day == 1
        assert (due.year * 12 + due.month) - (anchor.year * 12 + anchor.month) == k


def test_due_dates_with_and_without_first_due_on() -> None:
    on_31st = LoanTerms(money("5000.00"), money("12.00"), 4, d("2025-01-31"))
    assert [i.due_on for i in installments(on_31st)] == [
        d("2025-02-28"),
        d("2025-03-31"),
        d("2025-04-30"),
        d("2025-05-31"),
    ]
    chosen = replace(on_31st, first_due_on=d("2025-03-15"))
    assert [i.due_on for i in installments(chosen)] == [
        d("2025-03-15"),
        d("2025-04-15"),
        d("2025-05-15"),
        d("2025-06-15"),
    ]
    assert installments(chosen)[0].start_on == d("2025-01-31")
    assert installments(chosen)[1].start_on == d("2025-03-15")


@pytest.mark.parametrize("first_due_on", ["2025-01-15", "2025-01-10", "2025-03-16"])
def test_first_due_on_must_fall_in_the_first_two_months(first_due_on: str) -> None:
    with pytest.raises(ValueError, match="first_due_on"):
        replace(EXAMPLE, first_due_on=d(first_due_on))


def test_bucket_bounds() -> None:
    assert [bucket_of(n) for n in (0, 1, 30, 31, 60, 61, 90, 91, 400)] == [
        Bucket.current,
        Bucket.days_1_30,
        Bucket.days_1_30,
        Bucket.days_31_60,
        Bucket.days_31_60,
        Bucket.days_61_90,
        Bucket.days_61_90,
        Bucket.days_91_plus,
        Bucket.days_91_plus,
    ]


# The worked example, bullet by bullet ----------------------------------------------------


def test_worked_example_schedule() -> None:
    plan = schedule(EXAMPLE.principal, EXAMPLE.annual_rate, EXAMPLE.tenure_months)
    assert plan.emi == money("1059.18")
    rows = installments(EXAMPLE)
    assert [(i.interest, i.principal) for i in rows[:3]] == [
        (money("107.50"), money("951.68")),
        (money("98.97"), money("960.21")),
        (money("90.37"), money("968.81")),
    ]
    assert [i.due_on for i in rows[:3]] == [d("2025-02-15"), d("2025-03-15"), d("2025-04-15")]
    assert sum((i.principal for i in rows), ZERO) == EXAMPLE.principal


def test_worked_example_first_repayment_pays_installment_one() -> None:
    ledger = replay(EXAMPLE, [FIRST], d("2025-02-15"))
    allocation = ledger.allocations[1]
    assert (allocation.penalty, allocation.interest, allocation.principal) == (
        money("0.00"),
        money("107.50"),
        money("951.68"),
    )
    first = ledger.installments[0]
    assert first.status == InstallmentStatus.paid
    assert (first.paid_interest, first.paid_principal) == (money("107.50"), money("951.68"))


def test_worked_example_payoff_on_march_first() -> None:
    quote = payoff_quote(EXAMPLE, [FIRST], d("2025-03-01"))
    # 98.97 x 14 / 28 days = 49.485, half-up.
    assert quote == Payoff(d("2025-03-01"), money("11048.32"), money("49.49"), money("0.00"))
    assert quote.total == money("11097.81")


def test_worked_example_fee_and_statement_on_april_first() -> None:
    assert late_fees(EXAMPLE, [FIRST], d("2025-03-20")) == ()
    fees = late_fees(EXAMPLE, [FIRST], d("2025-04-01"))
    assert [(f.installment, f.charged_on, f.amount) for f in fees] == [
        (2, d("2025-03-21"), money("25.00"))
    ]
    ledger = replay(EXAMPLE, [FIRST], d("2025-04-01"))
    state = ledger.delinquency
    assert (state.dpd, state.bucket, state.arrears) == (17, Bucket.days_1_30, money("1084.18"))
    assert state.penalty_outstanding == money("25.00")
    assert state.next_due_on == d("2025-04-15")
    assert state.next_due_amount == money("1084.18") + money("1059.18")
    assert [i.status for i in ledger.installments[:4]] == [
        InstallmentStatus.paid,
        InstallmentStatus.overdue,
        InstallmentStatus.future,
        InstallmentStatus.future,
    ]
    assert ledger.installments[1].penalty == money("25.00")


def test_worked_example_second_repayment_and_statement_on_april_tenth() -> None:
    ledger = replay(EXAMPLE, [FIRST, SECOND], d("2025-04-10"))
    allocation = ledger.allocations[2]
    assert allocation.penalty == money("25.00")
    assert allocation.interest == money("98.97") + money("90.37")
    assert allocation.principal == money("960.21") + money("325.45")
    second, third = ledger.installments[1], ledger.installments[2]
    assert second.status == InstallmentStatus.paid
    assert (second.paid_penalty, second.paid_interest, second.paid_principal) == (
        money("25.00"),
        money("98.97"),
        money("960.21"),
    )
    assert (third.paid_interest, third.paid_principal) == (money("90.37"), money("325.45"))
    assert third.paid_interest + third.paid_principal == money("415.82")
    assert third.status == InstallmentStatus.partial
    assert (ledger.delinquency.dpd, ledger.delinquency.bucket) == (0, Bucket.current)
    assert ledger.delinquency.arrears == money("0.00")


def test_worked_example_payoff_closes_the_loan() -> None:
    quote = payoff_quote(EXAMPLE, [FIRST, SECOND], d("2025-04-10"))
    assert quote == Payoff(d("2025-04-10"), money("9762.66"), money("0.00"), money("0.00"))
    assert quote.total == money("9762.66")

    third = Repayment(3, d("2025-04-10"), money("9762.66"))
    ledger = replay(EXAMPLE, [FIRST, SECOND, third], d("2025-04-10"))
    assert ledger.closed_on == d("2025-04-10")
    assert ledger.allocations[3].payoff
    assert ledger.allocations[3].principal == money("9762.66")
    assert all(i.status == InstallmentStatus.paid for i in ledger.installments)
    rows = installments(EXAMPLE)
    for state, row in zip(ledger.installments[3:], rows[3:], strict=True):
        assert state.waived_interest == row.interest
        assert state.paid_interest == ZERO
    assert all(i.waived_interest == ZERO for i in ledger.installments[:3])
    assert ledger.payoff.total == ZERO
    assert ledger.delinquency.principal_outstanding == ZERO
    assert ledger.delinquency.interest_outstanding == ZERO
    assert ledger.delinquency.next_due_on is None

    # Later dates see the same closed loan and no fees.
    later = replay(EXAMPLE, [FIRST, SECOND, third], d("2026-06-01"))
    assert later.fees == ledger.fees
    assert later.closed_on == d("2025-04-10")


def test_a_statement_before_the_closing_day_shows_the_loan_open() -> None:
    payoff = Repayment(3, d("2025-04-10"), money("9762.66"))
    ledger = replay(EXAMPLE, [FIRST, SECOND, payoff], d("2025-04-09"))
    assert ledger.closed_on is None
    assert [p.repayment.id for p in ledger.postings] == [1, 2]
    assert ledger.delinquency.principal_outstanding == money("9762.66")


# Refusals, back-dating, reversal ---------------------------------------------------------


def test_a_repayment_above_the_payoff_is_refused_with_the_amount() -> None:
    too_much = Repayment(3, d("2025-04-10"), money("9762.67"))
    with pytest.raises(Overpayment) as raised:
        replay(EXAMPLE, [FIRST, SECOND, too_much], d("2025-04-10"))
    assert raised.value.repayment_id == 3
    assert raised.value.payoff == money("9762.66")


def test_nothing_can_be_paid_after_closing() -> None:
    payoff = Repayment(3, d("2025-04-10"), money("9762.66"))
    late = Repayment(4, d("2025-04-11"), money("0.01"))
    with pytest.raises(Overpayment) as raised:
        replay(EXAMPLE, [FIRST, SECOND, payoff, late], d("2025-04-11"))
    assert (raised.value.repayment_id, raised.value.payoff) == (4, ZERO)


def test_a_back_dated_repayment_that_makes_a_later_one_too_big_names_the_later_one() -> None:
    payoff = Repayment(3, d("2025-04-10"), money("9762.66"))
    back_dated = Repayment(4, d("2025-04-05"), money("100.00"))
    with pytest.raises(Overpayment) as raised:
        replay(EXAMPLE, [FIRST, SECOND, payoff, back_dated], d("2025-04-10"))
    assert raised.value.repayment_id == 3  # the service answers 409 and changes nothing
    assert raised.value.payoff == money("9662.66")


def test_a_back_dated_repayment_can_make_a_later_one_the_payoff() -> None:
    partial = Repayment(3, d("2025-04-10"), money("9662.66"))
    before = replay(EXAMPLE, [FIRST, SECOND, partial], d("2025-04-10"))
    assert before.closed_on is None
    back_dated = Repayment(4, d("2025-04-05"), money("100.00"))
    after = replay(EXAMPLE, [FIRST, SECOND, partial, back_dated], d("2025-04-10"))
    assert after.closed_on == d("2025-04-10")
    assert after.allocations[3].payoff
    assert [p.repayment.id for p in after.postings] == [1, 2, 4, 3]


def test_reversing_the_payoff_reopens_the_loan() -> None:
    payoff = Repayment(3, d("2025-04-10"), money("9762.66"))
    reversed_payoff = replace(payoff, reversed=True)
    ledger = replay(EXAMPLE, [FIRST, SECOND, reversed_payoff], d("2025-04-20"))
    assert ledger.closed_on is None
    assert ledger.postings[-1].allocation is None
    assert ledger.postings[-1].repayment.reversed
    assert 3 not in ledger.allocations
    assert ledger.installments[2].status == InstallmentStatus.overdue
    assert ledger.installments[3].waived_interest == ZERO


def test_same_day_repayments_replay_in_creation_order() -> None:
    small = Repayment(5, d("2025-02-15"), money("100.00"))
    big = Repayment(7, d("2025-02-15"), money("959.18"))
    ledger = replay(EXAMPLE, [big, small], d("2025-02-15"))
    assert [p.repayment.id for p in ledger.postings] == [5, 7]
    assert ledger.allocations[5].interest == money("100.00")
    assert ledger.allocations[7].interest == money("7.50")


# Late fees ---------------------------------------------------------------------------------


def test_paying_on_the_last_grace_day_avoids_the_fee() -> None:
    on_time = Repayment(2, d("2025-03-20"), money("1059.18"))
    assert late_fees(EXAMPLE, [FIRST, on_time], d("2025-04-20")) == ()
    # Installment 3 is the next one left unpaid.
    fees = late_fees(EXAMPLE, [FIRST, on_time], d("2025-05-01"))
    assert [f.installment for f in fees] == [3]


def test_a_fee_is_charged_before_a_repayment_of_its_day() -> None:
    fee_day = Repayment(2, d("2025-03-21"), money("1059.18"))
    ledger = replay(EXAMPLE, [FIRST, fee_day], d("2025-03-21"))
    assert late_fee_on(EXAMPLE, d("2025-03-15")) == d("2025-03-21")
    assert [f.charged_on for f in ledger.fees] == [d("2025-03-21")]
    assert ledger.allocations[2].penalty == money("25.00")
    assert ledger.installments[1].status == InstallmentStatus.overdue


def test_a_partly_paid_installment_is_charged_once() -> None:
    part = Repayment(2, d("2025-03-15"), money("1000.00"))
    fees = late_fees(EXAMPLE, [FIRST, part], d("2025-03-30"))
    assert [(f.installment, f.amount) for f in fees] == [(2, money("25.00"))]


def test_a_zero_fee_is_no_fee() -> None:
    free = replace(EXAMPLE, late_fee=money("0.00"))
    assert late_fees(free, [], d("2026-06-01")) == ()
    ledger = replay(free, [], d("2025-04-01"))
    assert ledger.delinquency.arrears == money("2118.36")
    assert ledger.delinquency.dpd == 45


def test_every_missed_installment_is_charged_and_the_loan_ages() -> None:
    ledger = replay(EXAMPLE, [], d("2025-06-20"))
    assert [f.installment for f in ledger.fees] == [1, 2, 3, 4]
    assert ledger.delinquency.dpd == (d("2025-06-20") - d("2025-02-15")).days
    assert ledger.delinquency.bucket == Bucket.days_91_plus
    assert delinquency(EXAMPLE, [], d("2025-06-20")) == ledger.delinquency


def test_paying_ahead_pays_full_interest_and_is_never_charged() -> None:
    ahead = Repayment(1, d("2025-01-20"), money("2118.36"))
    ledger = replay(EXAMPLE, [ahead], d("2025-04-01"))
    assert ledger.fees == ()
    assert ledger.allocations[1].interest == money("107.50") + money("98.97")
    assert [i.status for i in ledger.installments[:3]] == [
        InstallmentStatus.paid,
        InstallmentStatus.paid,
        InstallmentStatus.future,
    ]


def test_quote_on_the_disbursement_day_has_no_interest() -> None:
    quote = payoff_quote(EXAMPLE, [], EXAMPLE.disbursed_on)
    assert quote == Payoff(EXAMPLE.disbursed_on, EXAMPLE.principal, ZERO, ZERO)


def test_caller_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="as_of"):
        replay(EXAMPLE, [], d("2025-01-14"))
    with pytest.raises(ValueError, match="before the disbursement"):
        replay(EXAMPLE, [Repayment(1, d("2025-01-01"), money("1.00"))], d("2025-02-01"))
    with pytest.raises(ValueError, match="unique"):
        replay(EXAMPLE, [FIRST, FIRST], d("2025-03-01"))
    with pytest.raises(ValueError, match="positive"):
        replay(EXAMPLE, [Repayment(1, d("2025-02-01"), money("0.001"))], d("2025-03-01"))


# Properties --------------------------------------------------------------------------------


@st.composite
def loan_terms(draw: st.DrawFn) -> LoanTerms:
    year = draw(st.integers(min_value=2000, max_value=2030))
    month = draw(st.integers(min_value=1, max_value=12))
    # Month ends are where due dates go wrong: draw the 28th-31st often.
    day = draw(st.one_of(st.integers(min_value=28, max_value=31), st.integers(1, 31)))
    disbursed_on = date(year, month, min(day, calendar.monthrange(year, month)[1]))
    first_due_on = draw(
        st.one_of(
            st.none(),
            st.integers(min_value=1, max_value=62).map(
                lambda days: min(disbursed_on + timedelta(days=days), add_months(disbursed_on, 2))
            ),
            st.integers(min_value=1, max_value=2).map(lambda k: add_months(disbursed_on, k)),
        )
    )
    return LoanTerms(
        principal=draw(
            st.decimals(min_value=Decimal("1000.00"), max_value=Decimal("100000.00"), places=2)
        ),
        annual_rate=draw(
            st.decimals(min_value=Decimal("0.00"), max_value=Decimal("30.00"), places=2)
        ),
        tenure_months=draw(st.integers(min_value=1, max_value=60)),
        disbursed_on=disbursed_on,
        first_due_on=first_due_on,
        late_fee=draw(
            st.one_of(
                st.just(Decimal("0.00")),
                st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100.00"), places=2),
            )
        ),
        grace_days=draw(st.integers(min_value=0, max_value=30)),
    )


@dataclass(frozen=True)
class Step:
    """One repayment a user tries to post, in creation order."""

    offset_days: int
    kind: str  # "amount", "emi", "payoff", "over"
    amount: Decimal


steps = st.lists(
    st.builds(
        Step,
        offset_days=st.integers(min_value=0, max_value=60 * 31 + 120),
        kind=st.sampled_from(["amount", "amount", "emi", "payoff", "over"]),
        amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("30000.00"), places=2),
    ),
    max_size=12,
)


def horizon(terms: LoanTerms) -> date:
    """A 'today' past the last due date and its grace, so every fee can exist."""
    return installments(terms)[-1].due_on + timedelta(days=45)


def post_all(terms: LoanTerms, tries: list[Step]) -> list[Repayment]:
    """Post repayments as the service would: each new one is replayed with the accepted ones;
    refused ones change nothing. Checks that exactly the overpayments are refused."""
    today = horizon(terms)
    emi = schedule(terms.principal, terms.annual_rate, terms.tenure_months).emi
    accepted: list[Repayment] = []
    for number, step in enumerate(tries, start=1):
        paid_on = min(terms.disbursed_on + timedelta(days=step.offset_days), today)
        quote = payoff_quote(terms, accepted, paid_on).total
        amount = {
            "amount": step.amount,
            "emi": emi,
            "payoff": quote,
            "over": quote + Decimal("0.01"),
        }[step.kind]
        if amount <= 0:
            amount = Decimal("0.01")
        candidate = Repayment(number, paid_on, amount)
        refused: Overpayment | None = None
        try:
            replay(terms, [*accepted, candidate], today)
        except Overpayment as error:
            refused = error
        if refused is None:
            assert amount <= quote, "an overpayment was accepted"
            accepted.append(candidate)
        elif amount > quote:
            event("refused: above its own payoff (422)")
            assert (refused.repayment_id, refused.payoff) == (number, quote)
        else:
            # A back-dated one made an accepted later one too big: that one is named.
            event("refused: made a later one too big (409)")
            later = next(r for r in accepted if r.id == refused.repayment_id)
            assert (later.paid_on, later.id) > (paid_on, number)
            assert later.amount > refused.payoff
    return accepted


def naive_quote(terms: LoanTerms, ledger: Ledger) -> Payoff:
    """SERVICING.md's payoff formula read literally off the statement, walking every line."""
    on = ledger.as_of
    if ledger.closed_on is not None:
        return Payoff(on, ZERO, ZERO, ZERO)
    principal = interest = penalty = ZERO
    first_after = True
    for row, line in zip(installments(terms), ledger.installments, strict=True):
        principal += line.principal - line.paid_principal
        penalty += line.penalty - line.paid_penalty
        if row.due_on <= on:
            interest += line.interest - line.paid_interest
        elif first_after:
            first_after = False
            accrued = to_cents(
                line.interest * (on - row.start_on).days / (row.due_on - row.start_on).days
            )
            interest += max(ZERO, accrued - line.paid_interest)
    return Payoff(on, principal, interest, penalty)


def check_ledger(terms: LoanTerms, accepted: list[Repayment], ledger: Ledger) -> None:
    counted = [r for r in accepted if r.paid_on <= ledger.as_of]
    allocations = ledger.allocations
    assert sorted(allocations) == sorted(r.id for r in counted)

    # Allocations sum to each amount, never negative.
    for repayment in counted:
        allocation = allocations[repayment.id]
        assert allocation.total == repayment.amount
        assert min(allocation.penalty, allocation.interest, allocation.principal) >= 0

    # Per installment, paid never exceeds due; interest paid + waived never exceeds scheduled.
    for line in ledger.installments:
        assert ZERO <= line.paid_principal <= line.principal
        assert ZERO <= line.paid_interest
        assert line.paid_interest + line.waived_interest <= line.interest
        assert ZERO <= line.paid_penalty <= line.penalty
        assert line.unpaid >= 0
        assert (line.status == InstallmentStatus.paid) == (line.unpaid == 0)
        assert line.waived_interest == ZERO or ledger.closed_on is not None

    # Conservation: paid + waived + outstanding = scheduled + fees charged.
    state = ledger.delinquency
    paid = sum((a.total for a in allocations.values()), ZERO)
    paid_lines = sum(
        (i.paid_principal + i.paid_interest + i.paid_penalty for i in ledger.installments), ZERO
    )
    waived = sum((i.waived_interest for i in ledger.installments), ZERO)
    outstanding = (
        state.principal_outstanding + state.interest_outstanding + state.penalty_outstanding
    )
    scheduled = sum((i.principal + i.interest for i in ledger.installments), ZERO)
    fees = sum((f.amount for f in ledger.fees), ZERO)
    assert paid == paid_lines
    assert paid + waived + outstanding == scheduled + fees
    assert fees == sum((i.penalty for i in ledger.installments), ZERO)
    assert len({f.installment for f in ledger.fees}) == len(ledger.fees)
    assert all(f.charged_on <= ledger.as_of for f in ledger.fees)

    # Oldest first: paid installments, then at most one partly paid, then untouched ones.
    open_lines = [i for i in ledger.installments if i.status != InstallmentStatus.paid]
    if open_lines:
        first = open_lines[0].installment
        assert all(i.status == InstallmentStatus.paid for i in ledger.installments[: first - 1])
        for line in ledger.installments[first:]:
            assert line.paid_principal + line.paid_interest + line.paid_penalty == ZERO

    # The running-total payoff quote agrees with the formula read literally.
    assert ledger.payoff == naive_quote(terms, ledger)

    # Delinquency agrees with the statement's statuses.
    overdue = [i for i in ledger.installments if i.status == InstallmentStatus.overdue]
    assert state.dpd == ((ledger.as_of - overdue[0].due_on).days if overdue else 0)
    assert state.bucket == bucket_of(state.dpd)
    assert state.arrears == sum((i.unpaid for i in overdue), ZERO)
    assert state.next_due_amount >= state.arrears

    # A payoff closes the loan with every installment paid and nothing outstanding.
    payoffs = [r for r in counted if allocations[r.id].payoff]
    assert len(payoffs) <= 1
    if ledger.closed_on is not None:
        assert payoffs
        assert ledger.closed_on == payoffs[0].paid_on
        assert all(i.status == InstallmentStatus.paid for i in ledger.installments)
        assert outstanding == ZERO
        assert ledger.payoff.total == ZERO
        assert all(f.charged_on <= ledger.closed_on for f in ledger.fees)
        for line in ledger.installments:
            assert line.waived_interest == line.interest - line.paid_interest
    else:
        assert not payoffs
        assert state.principal_outstanding > 0


def check_each_accepted_against_its_own_quote(
    terms: LoanTerms, accepted: list[Repayment], ledger: Ledger
) -> None:
    """No overpayment was ever accepted: each repayment is at most the quote at its place, and
    it is the payoff exactly when equal."""
    order = [p.repayment for p in ledger.postings]
    for place, repayment in enumerate(order):
        quote = payoff_quote(terms, order[:place], repayment.paid_on).total
        assert repayment.amount <= quote
        assert ledger.allocations[repayment.id].payoff == (repayment.amount == quote)


def check_fees_against_their_definition(
    terms: LoanTerms, accepted: list[Repayment], ledger: Ledger
) -> None:
    """A fee exists for installment k iff it was not fully paid at the end of its grace period,
    counting only repayments dated up to then."""
    charged = {f.installment: f for f in ledger.fees}
    for row in installments(terms):
        fee_on = late_fee_on(terms, row.due_on)
        if fee_on > ledger.as_of:
            assert row.installment not in charged
            continue
        end_of_grace = replay(terms, accepted, fee_on - timedelta(days=1))
        expected = terms.late_fee > 0 and end_of_grace.installments[row.installment - 1].unpaid > 0
        assert (row.installment in charged) == expected
        if expected:
            assert charged[row.installment].charged_on == fee_on
            assert charged[row.installment].amount == terms.late_fee


@LEDGER_PROFILE
@given(terms=loan_terms(), tries=steps, as_of_days=st.integers(min_value=0, max_value=2000))
def test_replay_properties(terms: LoanTerms, tries: list[Step], as_of_days: int) -> None:
    accepted = post_all(terms, tries)
    today = horizon(terms)
    final = replay(terms, accepted, today)
    event("closed" if final.closed_on else "open")
    event("fees charged" if final.fees else "no fees")
    check_ledger(terms, accepted, final)
    check_each_accepted_against_its_own_quote(terms, accepted, final)
    check_fees_against_their_definition(terms, accepted, final)

    # Any earlier date sees only what was dated by then, with the same rules.
    as_of = min(terms.disbursed_on + timedelta(days=as_of_days), today)
    earlier = replay(terms, accepted, as_of)
    check_ledger(terms, accepted, earlier)

    # The delinquency a change stores (from the running state, without the installments' detail)
    # is what every installment's state says, and so is the rest of a replay without detail.
    for ledger_ in (final, earlier):
        assert ledger_.delinquency == _delinquency(ledger_.installments, ledger_.as_of)
        brief = replay(terms, accepted, ledger_.as_of, detail=False)
        assert brief.installments == ()
        assert (brief.delinquency, brief.payoff, brief.postings, brief.fees) == (
            ledger_.delinquency,
            ledger_.payoff,
            ledger_.postings,
            ledger_.fees,
        )


@LEDGER_PROFILE
@given(terms=loan_terms(), tries=steps, data=st.data())
def test_reversal_then_reposting_restores_the_state(
    terms: LoanTerms, tries: list[Step], data: st.DataObject
) -> None:
    accepted = post_all(terms, tries)
    if not accepted:
        return
    today = horizon(terms)
    before = replay(terms, accepted, today)
    target = data.draw(st.sampled_from(accepted))

    # A reversal is a replay without it; it never makes another repayment an overpayment.
    marked = [replace(r, reversed=True) if r == target else r for r in accepted]
    after_reversal = replay(terms, marked, today)
    without = replay(terms, [r for r in accepted if r != target], today)
    assert after_reversal.installments == without.installments
    assert after_reversal.fees == without.fees
    assert after_reversal.payoff == without.payoff
    assert after_reversal.delinquency == without.delinquency
    assert after_reversal.closed_on == without.closed_on
    check_ledger(terms, [r for r in accepted if r != target], after_reversal)

    # Re-posting the same repayment restores the exact prior state.
    assert replay(terms, accepted, today) == before
    # Re-posted as a new repayment (a new id): the same state when nothing else shares its day
    # after it (same-day repayments replay in creation order).
    reposted = replace(target, id=max(r.id for r in accepted) + 1)
    same_day_after = [r for r in accepted if r.paid_on == target.paid_on and r.id > target.id]
    if not same_day_after:
        again = replay(terms, [*(r for r in accepted if r != target), reposted], today)
        assert again.installments == before.installments
        assert again.fees == before.fees
        assert again.payoff == before.payoff
        assert again.delinquency == before.delinquency
        assert again.closed_on == before.closed_on


@LEDGER_PROFILE
@given(terms=loan_terms(), tries=steps, pay_days=st.integers(min_value=0, max_value=2000))
def test_the_payoff_closes_the_loan(terms: LoanTerms, tries: list[Step], pay_days: int) -> None:
    accepted = post_all(terms, tries)
    today = horizon(terms)
    ledger = replay(terms, accepted, today)
    if ledger.closed_on is not None:
        return
    last_paid = max((r.paid_on for r in accepted), default=terms.disbursed_on)
    paid_on = min(last_paid + timedelta(days=pay_days), today)
    quote = payoff_quote(terms, accepted, paid_on)
    final = Repayment(len(tries) + 1, paid_on, quote.total)
    closed = replay(terms, [*accepted, final], today)
    assert closed.closed_on == paid_on
    assert closed.allocations[final.id].payoff
    allocation = closed.allocations[final.id]
    assert (allocation.principal, allocation.interest, allocation.penalty) == (
        quote.principal,
        quote.interest,
        quote.penalty,
    )
    assert all(i.status == InstallmentStatus.paid for i in closed.installments)
    check_ledger(terms, [*accepted, final], closed)
    # Nothing more can be paid.
    with pytest.raises(Overpayment):
        replay(terms, [*accepted, final, Repayment(final.id + 1, paid_on, Decimal("0.01"))], today)


def _dates(start: date, end: date) -> st.SearchStrategy[date]:
    return st.integers(min_value=0, max_value=(end - start).days).map(
        lambda days: start + timedelta(days=days)
    )


@LEDGER_PROFILE
@given(terms=loan_terms(), tries=steps, data=st.data())
def test_posting_after_a_standing_is_what_the_replay_gives(
    terms: LoanTerms, tries: list[Step], data: st.DataObject
) -> None:
    """A repayment dated on or after a loan's stored day, posted from what the loan stores
    (`post_after`), gives exactly what replaying every repayment gives."""
    accepted = sorted(post_all(terms, tries), key=lambda r: (r.paid_on, r.id))
    today = horizon(terms)
    first = max([terms.disbursed_on, *(r.paid_on for r in accepted)])
    served = data.draw(_dates(first, today), label="standing's day")
    stored = replay(terms, accepted, served, detail=False)
    if stored.closed_on is not None:
        return  # a closed loan takes no repayment
    owed = stored.delinquency
    standing = Standing(
        served,
        owed.principal_outstanding,
        owed.interest_outstanding,
        owed.penalty_outstanding,
        len(stored.fees),
    )
    paid_on = data.draw(_dates(served, today), label="paid_on")
    as_of = data.draw(_dates(paid_on, today), label="as_of")
    payoff = replay(terms, accepted, paid_on, detail=False).payoff.total
    amount = data.draw(
        st.one_of(
            st.just(payoff),
            st.just(payoff + Decimal("0.01")),
            st.decimals(min_value=Decimal("0.01"), max_value=payoff, places=2),
        ),
        label="amount",
    )
    new = Repayment(max([0, *(r.id for r in accepted)]) + 1, paid_on, amount)
    if amount > payoff:  # above the payoff on its day: both refuse it, naming that payoff
        with pytest.raises(Overpayment) as raised:
            post_after(terms, standing, new, as_of)
        assert (raised.value.repayment_id, raised.value.payoff) == (new.id, payoff)
        return
    full = replay(terms, [*accepted, new], as_of, detail=False)
    resumed = post_after(terms, standing, new, as_of)
    event("closed" if full.closed_on else "open")
    assert resumed.allocations == {new.id: full.allocations[new.id]}
    assert resumed.delinquency == full.delinquency
    assert resumed.payoff == full.payoff
    assert resumed.closed_on == full.closed_on
    assert resumed.fees_charged == len(full.fees)
