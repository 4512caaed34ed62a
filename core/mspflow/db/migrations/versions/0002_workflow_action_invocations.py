"""workflow_action_invocations: action calls, their idempotency claims and results.

Revision ID: 0002_invocations
Revises: 0001_reference_schema
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_invocations"
down_revision = "0001_reference_schema"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflow_action_invocations",
        sa.Column("invocation_id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=True),
        sa.Column("step_path", sa.String(1024), nullable=True),
        sa.Column("action_id", sa.String(255), nullable=False),
        sa.Column("action_version", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", TZ, nullable=True),
        sa.Column("input", sa.JSON(), nullable=True),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_details", sa.JSON(), nullable=True),
        sa.Column("error_retryable", sa.Boolean(), nullable=True),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("completed_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("invocation_id", name="pk_workflow_action_invocations"),
        sa.UniqueConstraint("tenant", "action_id", "action_version", "idempotency_key",
                            name="uq_workflow_action_invocations_idempotency"),
        sa.CheckConstraint("status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')",
                           name="ck_workflow_action_invocations_status"),
    )
    op.create_index("ix_workflow_action_invocations_tenant_created", "workflow_action_invocations",
                    ["tenant", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_workflow_action_invocations_tenant_created", table_name="workflow_action_invocations")
    op.drop_table("workflow_action_invocations")
