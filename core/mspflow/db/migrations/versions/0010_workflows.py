"""Workflows: published definitions (versioned per tenant), durable runs, and event → run rows.

Revision ID: 0010_workflows
Revises: 0006_invocation_sent_attempt
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_workflows"
down_revision = "0009_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_definitions",
        sa.Column("tenant", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trigger_event", sa.String(length=64), nullable=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "name", "version", name=op.f("pk_workflow_definitions")),
    )
    op.create_index("ix_workflow_definitions_trigger", "workflow_definitions", ["tenant", "trigger_event"])
    op.create_table(
        "workflow_runs",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=255), nullable=False),
        sa.Column("workflow_name", sa.String(length=255), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('RUNNING', 'SUCCEEDED', 'FAILED')", name=op.f("ck_workflow_runs_status")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_workflow_runs")),
    )
    op.create_index("ix_workflow_runs_tenant_created", "workflow_runs", ["tenant", "created_at"])
    op.create_table(
        "workflow_event_runs",
        sa.Column("tenant", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("workflow_name", sa.String(length=255), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "event_id", "workflow_name", name=op.f("pk_workflow_event_runs")),
    )


def downgrade() -> None:
    op.drop_table("workflow_event_runs")
    op.drop_index("ix_workflow_runs_tenant_created", table_name="workflow_runs")
    op.drop_table("workflow_runs")
    op.drop_index("ix_workflow_definitions_trigger", table_name="workflow_definitions")
    op.drop_table("workflow_definitions")
