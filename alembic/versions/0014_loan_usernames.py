"""loans carry their customer's and agent's usernames beside the ids

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30

Usernames never change, so a loan keeps them (set when it is created and when an agent requests
it) rather than joining `users` twice on every list. Filled here for the loans that exist.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("loans", sa.Column("customer_username", sa.String(length=64), nullable=True))
    op.add_column("loans", sa.Column("agent_username", sa.String(length=64), nullable=True))
    op.execute(
        """
        UPDATE loans SET
            customer_username = (SELECT username FROM users WHERE users.id = loans.customer_id),
            agent_username = (SELECT username FROM users WHERE users.id = loans.agent_id)
        """
    )


def downgrade() -> None:
    op.drop_column("loans", "agent_username")
    op.drop_column("loans", "customer_username")
