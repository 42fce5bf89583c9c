"""a rejected loan's reason, and the version a rollback restored

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

`loans.rejection_reason`: why the admin rejected it, while it is rejected (filled here from each
rejected loan's last rejection event). `loan_events.restored_version`: a rollback's; null for
the rollbacks recorded before this revision (their snapshot shows the terms restored).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("loans", sa.Column("rejection_reason", sa.String(length=500), nullable=True))
    op.add_column("loan_events", sa.Column("restored_version", sa.Integer(), nullable=True))
    op.execute(
        """
        UPDATE loans SET rejection_reason = (
            SELECT e.reason FROM loan_events e
            WHERE e.loan_id = loans.id AND e.action = 'rejected'
            ORDER BY e.version DESC LIMIT 1
        )
        WHERE status = 'rejected'
        """
    )


def downgrade() -> None:
    op.drop_column("loan_events", "restored_version")
    op.drop_column("loans", "rejection_reason")
