"""money columns: exact on every engine, wide enough for the largest allowed terms

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Money columns become loanapi.orm.Money: NUMERIC on PostgreSQL (emi and the totals widened so
that the largest principal, rate and tenure the products allow fit), and decimal text on
SQLite, whose NUMERIC is a binary float underneath.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loanapi.orm

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> column -> (precision before, precision after); every scale is 2
MONEY = {
    "loan_products": {"annual_rate": (5, 5), "min_principal": (14, 14), "max_principal": (14, 14)},
    "loans": {
        "principal": (14, 14),
        "annual_rate": (5, 5),
        "emi": (14, 16),
        "total_payable": (16, 20),
        "total_interest": (16, 20),
    },
}


def _alter(to_money: bool) -> None:
    for table, columns in MONEY.items():
        with op.batch_alter_table(table) as batch_op:
            for name, (before, after) in columns.items():
                old, new = sa.Numeric(before, 2), loanapi.orm.Money(after)
                batch_op.alter_column(
                    name,
                    existing_type=old if to_money else new,
                    type_=new if to_money else old,
                    existing_nullable=False,
                )


def upgrade() -> None:
    _alter(to_money=True)


def downgrade() -> None:
    _alter(to_money=False)
