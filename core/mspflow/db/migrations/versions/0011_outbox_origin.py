"""Outbox events name the run whose step emitted them (so a workflow that triggers itself is stopped), and
say when the workflow triggers looked at them (so finding new ones reads an index, not every event).

Revision ID: 0011_outbox_origin
Revises: 0010_workflows
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_outbox_origin"
down_revision = "0010_workflows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox_events", sa.Column("origin_run_id", sa.String(length=255), nullable=True))
    op.add_column("outbox_events", sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    # Events the triggers already looked at (an empty-name row in workflow_event_runs) stay looked at.
    op.execute("UPDATE outbox_events SET dispatched_at = created_at WHERE EXISTS (SELECT 1 FROM workflow_event_runs w "
               "WHERE w.tenant = outbox_events.tenant AND w.event_id = outbox_events.event_id "
               "AND w.workflow_name = '')")
    op.create_index("ix_outbox_events_undispatched", "outbox_events", ["dispatched_at", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_events_undispatched", table_name="outbox_events")
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("dispatched_at")
        batch.drop_column("origin_run_id")
