"""Close of business: the set-based SQL agrees with the ledger's replay, to the cent.

Random loans are disbursed and repaid through the API; each loan's stored fields are then put back
to what a replay gives as of a random earlier day S (as if nothing had happened to it since),
close of business runs for a later day D, and every loan must store exactly what the ledger's
replay says as of D: fees, penalty, arrears, dpd, bucket, next due date and amount.
"""

import os
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from loanapi.loans import close_of_business, ledger
from loanapi.loans.models import EventAction, Loan, LoanEvent
from loanapi.loans.records import LoanRecord
from loanapi.loans.servicing import _derived, repayments_of, replayable, terms_of, today

V1 = "/api/v1"
LOANS = int(os.environ.get("LOANAPI_COB_TEST_LOANS", "24"))
FIELDS = (
    "penalty_outstanding",
    "arrears",
    "dpd",
    "bucket",
    "next_due_on",
    "next_due_amount",
    "fees_charged",
)


async def _disbursed_loan(client, customer, agent, admin, rng: random.Random) -> int:
    loan_type = rng.choice(["home_loan", "personal_loan", "car_loan", "education_loan"])
    body = {
        "loan_type": loan_type,
        "principal": str(rng.randrange(1000, 60000)),
        "tenure_months": rng.choice([1, 2, 3, 6, 12, 18, 24, 36]),
    }
    applied = await client.post(f"{V1}/customer/loans", json=body, headers=customer.headers)
    assert applied.status_code == 201, applied.text
    loan_id = applied.json()["id"]
    await client.post(f"{V1}/agent/loans/{loan_id}/request", headers=agent.headers)
    await client.post(f"{V1}/admin/loans/{loan_id}/approve", headers=admin.headers)
    disbursed_on = today() - timedelta(days=rng.randrange(40, 900))
    # Month ends on purpose: the clamping rules are where SQL and Python could disagree.
    if rng.random() < 0.3:  # the last days of the month before
        month_end = date(disbursed_on.year, disbursed_on.month, 1) - timedelta(days=1)
        disbursed_on = month_end - timedelta(days=rng.randrange(0, 3))
    disbursement = {"disbursed_on": disbursed_on.isoformat()}
    if rng.random() < 0.4:
        first = disbursed_on + timedelta(days=rng.randrange(1, 55))
        disbursement["first_due_on"] = min(first, ledger.add_months(disbursed_on, 2)).isoformat()
    done = await client.post(
        f"{V1}/admin/loans/{loan_id}/disburse", json=disbursement, headers=admin.headers
    )
    assert done.status_code == 200, done.text
    paid_on = disbursed_on
    for _ in range(rng.randrange(0, 8)):
        paid_on += timedelta(days=rng.randrange(0, 70))
        if paid_on > today():
            break
        quote = await client.get(
            f"{V1}/admin/loans/{loan_id}/payoff?on={paid_on.isoformat()}", headers=admin.headers
        )
        total = Decimal(quote.json()["total"])
        if total == 0:
            break
        amount = min(total - Decimal("0.01"), Decimal(rng.randrange(1, 200000)) / 100)
        if amount <= 0:
            break
        paid = await client.post(
            f"{V1}/agent/loans/{loan_id}/repayments",
            json={"amount": str(amount), "paid_on": paid_on.isoformat()},
            headers=agent.headers,
        )
        assert paid.status_code == 201, paid.text
    return loan_id


async def _rewind(app, loan_id: int, rng: random.Random, day: date) -> date:
    """Store the loan as a replay gives it as of a random day S <= `day` after its last
    repayment, with random fee terms; returns S."""
    async with app.state.sessions.write() as session:
        row = (await session.execute(select(Loan.__table__).where(Loan.id == loan_id))).mappings()
        loan = LoanRecord.of(row.one())
        repayments = await repayments_of(session, loan_id)
        start = max([loan.disbursed_on, *(r.paid_on for r in repayments)])
        assert start is not None
        served = start + timedelta(days=rng.randrange(0, max(1, (day - start).days + 1)))
        late_fee = Decimal(rng.choice(["0.00", "25.00", "7.35"]))
        grace = rng.choice([0, 3, 5, 30])
        terms = terms_of(loan)
        terms = ledger.LoanTerms(**{**_fields(terms), "late_fee": late_fee, "grace_days": grace})
        served = max(loan.disbursed_on, min(served, day))
        book = ledger.replay(terms, replayable(repayments), served)
        values = {**_derived(book), "late_fee": late_fee, "grace_days": grace}
        values |= {"cob_date": None, "fees_recorded": rng.randrange(0, len(book.fees) + 1)}
        await session.execute(update(Loan).where(Loan.id == loan_id).values(values))
        await session.commit()
        return served


def _fields(terms: ledger.LoanTerms) -> dict:
    return {name: getattr(terms, name) for name in terms.__dataclass_fields__}


async def _expected(app, loan_id: int, day: date) -> dict:
    async with app.state.sessions.write() as session:
        row = (await session.execute(select(Loan.__table__).where(Loan.id == loan_id))).mappings()
        loan = LoanRecord.of(row.one())
        repayments = await repayments_of(session, loan_id)
        book = ledger.replay(terms_of(loan), replayable(repayments), day)
        derived = _derived(book)
        return {name: derived[name] for name in FIELDS}, loan


async def _stored(app, loan_id: int) -> LoanRecord:
    async with app.state.sessions.write() as session:
        row = (await session.execute(select(Loan.__table__).where(Loan.id == loan_id))).mappings()
        return LoanRecord.of(row.one())


@pytest.fixture
async def book(client, customer, agent, admin):
    rng = random.Random(int(os.environ.get("LOANAPI_COB_TEST_SEED", "20261130")))
    return rng, [await _disbursed_loan(client, customer, agent, admin, rng) for _ in range(LOANS)]


async def test_set_based_close_of_business_agrees_with_the_replay(app, admin, book):
    rng, loan_ids = book
    for round_ in range(3):
        day = today() - timedelta(days=rng.randrange(0, 30) if round_ else 0)
        expected = {}
        for loan_id in loan_ids:
            served = await _rewind(app, loan_id, rng, day)
            fields, loan = await _expected(app, loan_id, day)
            expected[loan_id] = (fields, loan, served)
        result = await close_of_business.run(app.state.sessions.writers, day=day, actor_id=admin.id)
        assert result.loans == len(loan_ids)
        for loan_id, (fields, before, served) in expected.items():
            after = await _stored(app, loan_id)
            got = {name: getattr(after, name) for name in FIELDS}
            context = f"loan {loan_id} served {served} closed for {day}: {before}"
            assert got == fields, context
            assert after.cob_date == day
            assert after.serviced_on == day
            assert after.fees_recorded == after.fees_charged
            bumped = before.fees_recorded != fields["fees_charged"]
            assert after.version == before.version + (1 if bumped else 0), context
        again = await close_of_business.run(app.state.sessions.writers, day=day, actor_id=admin.id)
        assert (again.loans, again.penalties_charged) == (0, 0)


async def test_penalty_events_record_each_fee_once(app, client, admin, book):
    rng, loan_ids = book
    day = today()
    for loan_id in loan_ids:
        await _rewind(app, loan_id, rng, day - timedelta(days=60))
    first = await close_of_business.run(app.state.sessions.writers, day=day, actor_id=admin.id)
    async with app.state.sessions.write() as session:
        events = (
            await session.execute(
                select(LoanEvent.loan_id, LoanEvent.changes).where(
                    LoanEvent.action == EventAction.penalty_charged
                )
            )
        ).all()
    counted = sum(changes["late_fees"]["to"]["count"] for _, changes in events)
    assert counted == first.penalties_charged
    assert len({loan_id for loan_id, _ in events}) == len(events)  # one event per loan per run
    for loan_id in loan_ids:
        history = await client.get(f"{V1}/admin/loans/{loan_id}/history", headers=admin.headers)
        versions = [item["version"] for item in history.json()["items"]]
        assert versions == list(range(1, len(versions) + 1))


async def test_loans_changed_after_the_day_are_replayed_and_keep_their_fields(
    app, client, agent, admin, book
):
    """A repayment today, close of business for yesterday: the loan's fees as of yesterday are
    recorded, its fields (as of today) stay."""
    _, loan_ids = book
    yesterday = today() - timedelta(days=1)
    before = {loan_id: await _stored(app, loan_id) for loan_id in loan_ids}
    result = await close_of_business.run(
        app.state.sessions.writers, day=yesterday, actor_id=admin.id
    )
    assert result.loans == len(loan_ids)
    for loan_id in loan_ids:
        after = await _stored(app, loan_id)
        assert after.cob_date == yesterday
        for name in FIELDS:
            assert getattr(after, name) == getattr(before[loan_id], name), name
