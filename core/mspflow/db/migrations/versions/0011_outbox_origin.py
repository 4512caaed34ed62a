"""Outbox events name the run whose step emitted them, so a workflow that triggers itself is stopped.

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


def downgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("origin_run_id")
