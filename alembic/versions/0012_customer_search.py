"""customer search: prefix indexes on lower(username) and lower(email)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

The loan lists' `q` finds loans by their customer's username or e-mail prefix, ignoring case
(`lower(...) LIKE 'abc%'`); on PostgreSQL a pattern-ops index serves it whatever the database's
collation.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("username", "email"):
        op.create_index(
            f"ix_users_{column}_prefix",
            "users",
            [sa.text(f"lower({column}) text_pattern_ops")]
            if op.get_bind().dialect.name == "postgresql"
            else [sa.text(f"lower({column})")],
        )


def downgrade() -> None:
    for column in ("username", "email"):
        op.drop_index(f"ix_users_{column}_prefix", table_name="users")
