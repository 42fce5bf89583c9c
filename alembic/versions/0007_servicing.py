"""servicing: disbursement, repayments, late fees, delinquency, write-off

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Loans gain the states active, closed and written_off and their servicing fields (all null until
a loan is disbursed, so every existing loan, approved ones included, is unchanged); products
gain `late_fee` (0.00) and `grace_days` (5); events gain the servicing actions (the column is
widened to hold `repayment_reversed`); repayments get their table. The enum CHECKs are replaced
by widened ones. The downgrade refuses to run while any loan has been disbursed: dropping the
table of repayments would lose money records.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loanapi.orm

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("new", "requested", "approved", "rejected", "withdrawn")
NEW_STATUSES = (*OLD_STATUSES, "active", "closed", "written_off")
OLD_ACTIONS = ("created", "edited", "requested", "approved", "rejected", "withdrawn", "rolled_back")
NEW_ACTIONS = (
    *OLD_ACTIONS,
    "disbursed",
    "repaid",
    "repayment_reversed",
    "closed",
    "reopened",
    "written_off",
    "penalty_charged",
)
BUCKETS = ("current", "1-30", "31-60", "61-90", "91+")


def _enum(values: Sequence[str], name: str, length: int = 16) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def _money(precision: int) -> loanapi.orm.Money:
    return loanapi.orm.Money(precision)


LOAN_COLUMNS = (
    ("disbursed_on", sa.Date),
    ("first_due_on", sa.Date),
    ("first_due_given", sa.Boolean),
    ("closed_on", sa.Date),
    ("late_fee", lambda: _money(14)),
    ("grace_days", sa.Integer),
    ("principal_outstanding", lambda: _money(14)),
    ("interest_outstanding", lambda: _money(20)),
    ("penalty_outstanding", lambda: _money(20)),
    ("arrears", lambda: _money(20)),
    ("dpd", sa.Integer),
    ("bucket", lambda: _enum(BUCKETS, "loan_bucket")),
    ("cob_date", sa.Date),
    ("next_due_on", sa.Date),
    ("next_due_amount", lambda: _money(20)),
    ("written_off_on", sa.Date),
    ("written_off_principal", lambda: _money(14)),
    ("written_off_interest", lambda: _money(20)),
    ("written_off_penalty", lambda: _money(20)),
)


def _swap_check(table: str, column: str, name: str, old: sa.Enum, new: sa.Enum) -> None:
    """Replace an enum column's CHECK (and width) with one for the new values.

    On PostgreSQL the column's CHECK is dropped and created again; SQLite cannot alter a CHECK,
    so batch mode copies the table with the new type (Alembic recreates it)."""
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(table, recreate="always") as batch_op:
            batch_op.alter_column(column, existing_type=old, type_=new, existing_nullable=False)
        return
    # Given the old enum as existing_type, Alembic drops its CHECK before changing the type.
    op.alter_column(
        table, column, existing_type=old, type_=sa.String(new.length), existing_nullable=False
    )
    values = ", ".join(f"'{value}'" for value in new.enums)
    op.create_check_constraint(name, table, f"{column} IN ({values})")


def upgrade() -> None:
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.add_column(
            sa.Column("late_fee", _money(14), server_default=sa.text("'0.00'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("grace_days", sa.Integer(), server_default=sa.text("5"), nullable=False)
        )
    _swap_check(
        "loans",
        "status",
        "loan_status",
        _enum(OLD_STATUSES, "loan_status"),
        _enum(NEW_STATUSES, "loan_status"),
    )
    _swap_check(
        "loan_events",
        "action",
        "event_action",
        _enum(OLD_ACTIONS, "event_action"),
        _enum(NEW_ACTIONS, "event_action", 24),
    )
    with op.batch_alter_table("loans") as batch_op:
        for name, kind in LOAN_COLUMNS:
            batch_op.add_column(sa.Column(name, kind(), nullable=True))
        batch_op.create_index("ix_loans_bucket_created", ["bucket", "created_at", "id"])
        batch_op.create_index("ix_loans_dpd", ["dpd"])
    op.create_table(
        "repayments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("amount", _money(20), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("principal", _money(14), nullable=False),
        sa.Column("interest", _money(20), nullable=False),
        sa.Column("penalty", _money(20), nullable=False),
        sa.Column("reversed", sa.Boolean(), nullable=False),
        sa.Column("reversed_at", loanapi.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("created_at", loanapi.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_repayments_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_repayments_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repayments")),
    )
    with op.batch_alter_table("repayments") as batch_op:
        batch_op.create_index("ix_repayments_loan_paid", ["loan_id", "paid_on", "id"])
        batch_op.create_index("ix_repayments_created", ["created_at", "id"])
        batch_op.create_index("ix_repayments_paid", ["paid_on", "id"])


def downgrade() -> None:
    disbursed = op.get_bind().execute(
        sa.text("SELECT count(*) FROM loans WHERE disbursed_on IS NOT NULL")
    )
    if disbursed.scalar_one():
        raise RuntimeError(
            "cannot downgrade below 0007: loans have been disbursed, and their repayments and "
            "servicing fields would be lost"
        )
    op.drop_table("repayments")
    with op.batch_alter_table("loans") as batch_op:
        batch_op.drop_index("ix_loans_dpd")
        batch_op.drop_index("ix_loans_bucket_created")
        batch_op.drop_constraint(op.f("ck_loans_loan_bucket"), type_="check")
        for name, _kind in reversed(LOAN_COLUMNS):
            batch_op.drop_column(name)
    _swap_check(
        "loan_events",
        "action",
        "event_action",
        _enum(NEW_ACTIONS, "event_action", 24),
        _enum(OLD_ACTIONS, "event_action"),
    )
    _swap_check(
        "loans",
        "status",
        "loan_status",
        _enum(NEW_STATUSES, "loan_status"),
        _enum(OLD_STATUSES, "loan_status"),
    )
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.drop_column("grace_days")
        batch_op.drop_column("late_fee")
