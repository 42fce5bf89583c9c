"""token revocation and password resets

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

A password change or an admin's reset revokes the user's earlier tokens (`tokens_valid_after`,
except `kept_token`); a reset makes the user choose a new password first
(`must_change_password`); a logout ends one token (`revoked_tokens`, until it would expire).
Existing users keep their tokens and passwords.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from loanapi.orm import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE on both engines (SQLite >= 3.35 drops columns too): a batch copy of
    # `users` on SQLite would lose its expression indexes (unique lower(username), lower(email)),
    # which SQLAlchemy cannot reflect.
    op.add_column("users", sa.Column("tokens_valid_after", UTCDateTime(), nullable=True))
    op.add_column("users", sa.Column("kept_token", sa.String(length=64), nullable=True))
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_revoked_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_tokens")),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")
    for column in ("must_change_password", "kept_token", "tokens_valid_after"):
        op.drop_column("users", column)
