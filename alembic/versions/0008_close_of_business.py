"""close of business and the portfolio: a loan's as-of date and fees; the book's indexes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

`serviced_on` is the date a loan's stored servicing fields are as of (each change stores them as
of its day), `fees_charged` the late fees those fields include, `fees_recorded` how many of them
have a `penalty_charged` event. Loans disbursed before this revision are filled in from what
they store: their last change's day, and their fees from the penalties charged so far (unpaid
plus paid by repayments, divided by the fee). No fee has an event yet. Three covering indexes
let close of business walk the active loans and the portfolio read its figures from indexes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("status = 'active'")
NOT_REVERSED = sa.text("NOT reversed")

FILL = """
UPDATE loans SET
    serviced_on = {day},
    fees_recorded = 0,
    fees_charged = CASE WHEN CAST(late_fee AS NUMERIC) > 0 THEN CAST(round(
        (CAST(penalty_outstanding AS NUMERIC) + COALESCE((
            SELECT sum(CAST(r.penalty AS NUMERIC)) FROM repayments r
            WHERE r.loan_id = loans.id AND NOT r.reversed), 0))
        / CAST(late_fee AS NUMERIC)) AS INTEGER) ELSE 0 END
WHERE disbursed_on IS NOT NULL
"""


def upgrade() -> None:
    with op.batch_alter_table("loans") as batch_op:
        batch_op.add_column(sa.Column("serviced_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("fees_charged", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("fees_recorded", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_loans_active", ["id"], postgresql_where=ACTIVE, sqlite_where=ACTIVE
        )
        batch_op.create_index(
            "ix_loans_book",
            ["bucket", "dpd", "principal_outstanding", "arrears", "cob_date"],
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        )
        batch_op.create_index("ix_loans_disbursed", ["disbursed_on", "principal"])
    with op.batch_alter_table("repayments") as batch_op:
        batch_op.create_index(
            "ix_repayments_flows",
            ["paid_on", "amount"],
            postgresql_where=NOT_REVERSED,
            sqlite_where=NOT_REVERSED,
        )
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite keeps timestamps as text, and CAST(... AS DATE) would read a number out of it.
    op.execute(FILL.format(day="date(updated_at)" if sqlite else "CAST(updated_at AS DATE)"))


def downgrade() -> None:
    with op.batch_alter_table("repayments") as batch_op:
        batch_op.drop_index("ix_repayments_flows")
    with op.batch_alter_table("loans") as batch_op:
        batch_op.drop_index("ix_loans_disbursed")
        batch_op.drop_index("ix_loans_book")
        batch_op.drop_index("ix_loans_active")
        batch_op.drop_column("fees_recorded")
        batch_op.drop_column("fees_charged")
        batch_op.drop_column("serviced_on")
