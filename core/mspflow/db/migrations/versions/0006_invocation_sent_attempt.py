"""workflow_action_invocations.sent_attempt: the attempt that sent a side-effectful request to its vendor.

Revision ID: 0006_invocation_sent_attempt
Revises: 0005_inbound_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_invocation_sent_attempt"
down_revision = "0005_inbound_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_action_invocations") as batch:
        batch.add_column(sa.Column("sent_attempt", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflow_action_invocations") as batch:
        batch.drop_column("sent_attempt")
