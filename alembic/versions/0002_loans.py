"""loans

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Loans, their append-only history, loan products (seeded with the original system's rates)
and stored Idempotency-Key responses.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import loanapi.orm

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


DEFAULT_RATES = {
    "home_loan": "6.90",
    "personal_loan": "10.75",
    "car_loan": "7.25",
    "education_loan": "14.70",
}


def upgrade() -> None:
    products = op.create_table(
        "loan_products",
        sa.Column(
            "loan_type",
            sa.Enum(
                "home_loan",
                "personal_loan",
                "car_loan",
                "education_loan",
                name="loan_type",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("annual_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("min_principal", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("max_principal", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("min_tenure_months", sa.Integer(), nullable=False),
        sa.Column("max_tenure_months", sa.Integer(), nullable=False),
        sa.Column("updated_at", loanapi.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("loan_type", name=op.f("pk_loan_products")),
    )
    seeded_at = datetime(2026, 11, 26, tzinfo=UTC)
    op.bulk_insert(
        products,
        [
            {
                "loan_type": loan_type,
                "annual_rate": Decimal(rate),
                "min_principal": Decimal("1000.00"),
                "max_principal": Decimal("10000000.00"),
                "min_tenure_months": 1,
                "max_tenure_months": 360,
                "updated_at": seeded_at,
            }
            for loan_type, rate in DEFAULT_RATES.items()
        ],
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", loanapi.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_idempotency_keys_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_created", ["created_at"], unique=False)

    op.create_table(
        "loans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column(
            "loan_type",
            sa.Enum(
                "home_loan",
                "personal_loan",
                "car_loan",
                "education_loan",
                name="loan_type",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("principal", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("annual_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("tenure_months", sa.Integer(), nullable=False),
        sa.Column("emi", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("total_payable", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("total_interest", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "new",
                "requested",
                "approved",
                "rejected",
                "withdrawn",
                name="loan_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", loanapi.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", loanapi.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name=op.f("fk_loans_agent_id_users")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["users.id"], name=op.f("fk_loans_customer_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
    )
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loans_agent_created", ["agent_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_loans_created", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_loans_customer_created", ["customer_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_loans_status_created", ["status", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_loans_type_created", ["loan_type", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_loans_updated", ["updated_at", "id"], unique=False)

    op.create_table(
        "loan_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "created",
                "edited",
                "requested",
                "approved",
                "rejected",
                "withdrawn",
                "rolled_back",
                name="event_action",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column(
            "actor_role",
            sa.Enum(
                "customer",
                "agent",
                "admin",
                name="user_role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("at", loanapi.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_loan_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_loan_events_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_events")),
    )
    with op.batch_alter_table("loan_events", schema=None) as batch_op:
        batch_op.create_index("uq_loan_events_loan_version", ["loan_id", "version"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("loan_events", schema=None) as batch_op:
        batch_op.drop_index("uq_loan_events_loan_version")

    op.drop_table("loan_events")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_index("ix_loans_updated")
        batch_op.drop_index("ix_loans_type_created")
        batch_op.drop_index("ix_loans_status_created")
        batch_op.drop_index("ix_loans_customer_created")
        batch_op.drop_index("ix_loans_created")
        batch_op.drop_index("ix_loans_agent_created")

    op.drop_table("loans")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_created")

    op.drop_table("idempotency_keys")
    op.drop_table("loan_products")
