"""the worker writes webhook deliveries from the feed: a cursor per endpoint

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01

Changes write their events only; the worker follows the feed and writes each endpoint's
deliveries (webhooks/queue.py). An endpoint's cursor is the feed position through which its
deliveries are written; `until` bounds what a deactivated endpoint still gets, `resume`
where it goes on once that is written, when it was activated again before. Existing endpoints
start at the feed's head: the events before have their deliveries already.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.add_column(
            sa.Column("fanout_txid", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("fanout_id", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("until_txid", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("until_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resume_txid", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("resume_id", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # the events of transactions older than this one had their deliveries written with them
        op.execute(
            "UPDATE webhook_endpoints SET "
            "fanout_txid = CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT), fanout_id = 0"
        )
    else:
        op.execute(
            "UPDATE webhook_endpoints SET fanout_txid = 0, "
            "fanout_id = (SELECT coalesce(max(id), 0) FROM events)"
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.drop_column("resume_id")
        batch_op.drop_column("resume_txid")
        batch_op.drop_column("until_id")
        batch_op.drop_column("until_txid")
        batch_op.drop_column("fanout_id")
        batch_op.drop_column("fanout_txid")
