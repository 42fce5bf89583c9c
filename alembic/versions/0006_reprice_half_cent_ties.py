"""re-price loans whose figures change under the one rounding rule for a month's interest

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

A month's interest is now `balance * annual_rate / 1200` with the product taken first, so an
exact half cent rounds up (before, the balance was multiplied by a pre-divided monthly rate and
such a tie could round down). Loans that are not yet disbursed and not withdrawn get their
`emi`, `total_payable` and `total_interest` recomputed; only those whose figures change (rare:
a tie somewhere in their schedule) are written. Their terms, version and history are untouched:
this corrects arithmetic, it is not a change of terms. The downgrade leaves the figures as they
are (the old rounding is gone from the code).
"""

import functools
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from loanapi.loans import pricing

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000
PRICED = ("emi", "total_payable", "total_interest")
loans = sa.table(
    "loans",
    sa.column("id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("principal", sa.String),  # read as text on both engines: Decimal() parses it
    sa.column("annual_rate", sa.String),
    sa.column("tenure_months", sa.Integer),
    *(sa.column(name, sa.String) for name in PRICED),
)
NOT_DISBURSED = ("new", "requested", "rejected", "approved")


# A book repeats the same terms often (on the benchmark's 1M loans, 1,279 combinations): each is
# priced once, which takes the migration there from 158 s to a few seconds.
_price = functools.lru_cache(maxsize=100_000)(pricing.price)


def _changed(rows: Sequence[Any]) -> Iterator[dict[str, Any]]:
    for row in rows:
        terms = _price(Decimal(row.principal), Decimal(row.annual_rate), row.tenure_months)
        new = {"emi": terms.emi, "total_payable": terms.total_payable}
        new["total_interest"] = terms.total_interest
        if any(Decimal(getattr(row, name)) != new[name] for name in PRICED):
            yield {"loan_id": row.id, **{name: str(new[name]) for name in PRICED}}


def upgrade() -> None:
    connection = op.get_bind()
    text = sa.String()
    query = (
        sa.select(
            loans.c.id,
            sa.cast(loans.c.principal, text).label("principal"),
            sa.cast(loans.c.annual_rate, text).label("annual_rate"),
            loans.c.tenure_months,
            *(sa.cast(loans.c[name], text).label(name) for name in PRICED),
        )
        .where(loans.c.status.in_(NOT_DISBURSED))
        .order_by(loans.c.id)
    )
    # Money is NUMERIC on PostgreSQL and decimal text on SQLite (loanapi.orm.Money).
    money = sa.Numeric() if connection.dialect.name == "postgresql" else text
    update = (
        loans.update()
        .where(loans.c.id == sa.bindparam("loan_id"))
        .values({name: sa.cast(sa.bindparam(name), money) for name in PRICED})
    )
    last = 0
    while True:
        rows = connection.execute(query.where(loans.c.id > last).limit(BATCH)).all()
        if not rows:
            break
        last = rows[-1].id
        changed = list(_changed(rows))
        if changed:
            connection.execute(update, changed)


def downgrade() -> None:
    pass
