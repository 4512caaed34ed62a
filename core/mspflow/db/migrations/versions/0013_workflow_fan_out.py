"""A chain of runs started through the events their steps emit is bounded in number, not only in depth:
the chain's first run counts the runs started since.

Revision ID: 0013_workflow_fan_out
Revises: 0012_alert_dedup_claims
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_workflow_fan_out"
down_revision = "0012_alert_dedup_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workflow_runs", sa.Column("triggered_runs", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_column("triggered_runs")
