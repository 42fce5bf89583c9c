"""The portfolio: the book's stock (as of the last close of business) and a month's flows.

Three aggregate statements, each answered from one covering index (models.py: ix_loans_book,
ix_loans_disbursed, ix_repayments_flows), so the cost does not grow with the repayments' history.
Sums are taken in whole cents (exact on SQLite too, where money is decimal text).
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loanapi.db import fetch
from loanapi.loans.ledger import Bucket
from loanapi.loans.models import Loan, LoanStatus, Repayment
from loanapi.sql import cents_sum

RATIO = Decimal("0.0001")
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Stock:
    loans: int
    principal_outstanding: Decimal


@dataclass(frozen=True, slots=True)
class Flow:
    count: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Portfolio:
    month: str
    as_of: date | None
    active_loans: int
    principal_outstanding: Decimal
    arrears: Decimal
    par30: Decimal
    par90: Decimal
    by_bucket: dict[str, Stock] = field(default_factory=dict)
    disbursed: Flow = Flow(0, Decimal("0.00"))
    repaid: Flow = Flow(0, Decimal("0.00"))


_STOCK = (
    select(
        Loan.bucket,
        func.count().label("loans"),
        cents_sum(Loan.principal_outstanding).label("principal"),
        cents_sum(Loan.arrears).label("arrears"),
        func.max(Loan.cob_date).label("as_of"),
    )
    .where(Loan.status == LoanStatus.active)
    .group_by(Loan.bucket)
)
_START = bindparam("start", type_=Loan.disbursed_on.type)
_END = bindparam("end", type_=Loan.disbursed_on.type)
_DISBURSED = select(func.count().label("count"), cents_sum(Loan.principal).label("amount")).where(
    Loan.disbursed_on >= _START, Loan.disbursed_on < _END
)
_REPAID = select(func.count().label("count"), cents_sum(Repayment.amount).label("amount")).where(
    Repayment.paid_on >= _START, Repayment.paid_on < _END, Repayment.reversed.is_(False)
)


def _money(amount_in_cents: Any) -> Decimal:
    return (Decimal(int(amount_in_cents or 0)) / 100).quantize(CENT)


def _ratio(part: int, whole: int) -> Decimal:
    if not whole:
        return Decimal("0.0000")
    return (Decimal(part) / Decimal(whole)).quantize(RATIO, rounding=ROUND_HALF_UP)


# dpd > 30 is exactly the buckets from 31-60 on, dpd > 90 the last one.
PAR30 = (Bucket.days_31_60, Bucket.days_61_90, Bucket.days_91_plus)
PAR90 = (Bucket.days_91_plus,)


async def portfolio(session: AsyncSession, *, month: str, start: date, end: date) -> Portfolio:
    """The stock of active loans (every bucket present) and the flows of [start, end)."""
    stock = {row["bucket"]: row for row in await fetch(session, _STOCK)}
    by_bucket = {
        bucket.value: Stock(
            int(stock[bucket]["loans"]) if bucket in stock else 0,
            _money(stock[bucket]["principal"] if bucket in stock else 0),
        )
        for bucket in Bucket
    }
    principal = sum(int(row["principal"] or 0) for row in stock.values())

    def at_risk(buckets: tuple[Bucket, ...]) -> int:
        return sum(int(stock[b]["principal"] or 0) for b in buckets if b in stock)

    window = {"start": start, "end": end}
    disbursed = (await fetch(session, _DISBURSED, window))[0]
    repaid = (await fetch(session, _REPAID, window))[0]
    dates = [row["as_of"] for row in stock.values() if row["as_of"] is not None]
    return Portfolio(
        month=month,
        as_of=max(dates) if dates else None,
        active_loans=sum(int(row["loans"]) for row in stock.values()),
        principal_outstanding=_money(principal),
        arrears=_money(sum(int(row["arrears"] or 0) for row in stock.values())),
        par30=_ratio(at_risk(PAR30), principal),
        par90=_ratio(at_risk(PAR90), principal),
        by_bucket=by_bucket,
        disbursed=Flow(int(disbursed["count"]), _money(disbursed["amount"])),
        repaid=Flow(int(repaid["count"]), _money(repaid["amount"])),
    )
