"""users.public_id: a hyphenated UUID, as the original system sent it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

The column widens from 32 to 36 characters and every id is rewritten in the 8-4-4-4-12 form
(`0b91e6d3-5a44-4d88-afd5-88335fb0dd18`); the downgrade removes the hyphens again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HYPHENATED_SQLITE = (
    "lower(substr(public_id, 1, 8) || '-' || substr(public_id, 9, 4) || '-' || "
    "substr(public_id, 13, 4) || '-' || substr(public_id, 17, 4) || '-' || substr(public_id, 21))"
)


def _resize(before: int, after: int) -> None:
    # SQLite does not enforce a VARCHAR's length (and env.py's type comparison knows it):
    # there only the values change.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "users",
            "public_id",
            existing_type=sa.String(before),
            type_=sa.String(after),
            existing_nullable=False,
        )


def upgrade() -> None:
    _resize(32, 36)
    postgresql = op.get_bind().dialect.name == "postgresql"
    hyphenated = "public_id::uuid::text" if postgresql else HYPHENATED_SQLITE
    op.execute(f"UPDATE users SET public_id = {hyphenated} WHERE length(public_id) = 32")


def downgrade() -> None:
    op.execute("UPDATE users SET public_id = replace(public_id, '-', '')")
    _resize(36, 32)
