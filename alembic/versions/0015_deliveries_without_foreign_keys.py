"""webhook deliveries without foreign keys

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30

A foreign key's check is a row trigger, and the outbox writes one delivery per endpoint in every
change's transaction: the checks cost PostgreSQL about as much as the rows (webhooks/models.py).
The references hold by construction instead: a delivery is written by the statement that writes
its event (events are never deleted), and deleting an endpoint deletes its deliveries, those of
changes still in flight too (webhooks/service.remove).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENDPOINT_KEY = "fk_webhook_deliveries_endpoint_id_webhook_endpoints"
EVENT_KEY = "fk_webhook_deliveries_event_id_events"


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_constraint(ENDPOINT_KEY, type_="foreignkey")
        batch_op.drop_constraint(EVENT_KEY, type_="foreignkey")


def downgrade() -> None:
    # deliveries left by an endpoint deleted meanwhile would break the key
    op.execute(
        "DELETE FROM webhook_deliveries WHERE endpoint_id NOT IN (SELECT id FROM webhook_endpoints)"
    )
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.create_foreign_key(
            ENDPOINT_KEY, "webhook_endpoints", ["endpoint_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(EVENT_KEY, "events", ["event_id"], ["id"])
