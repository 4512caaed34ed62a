"""The RMM alert pipeline: alert lifecycle columns, alert rules, maintenance windows, alert polling.

Revision ID: 0009_alerts
Revises: 0008_psa (chained locally after merging psa; on its own: 0006_invocation_sent_attempt)
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_alerts"
down_revision = "0008_psa"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
def _alert_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("activity_type", sa.String(128), nullable=True),
        sa.Column("alert_class", sa.String(128), nullable=True),
        sa.Column("organization", sa.String(255), nullable=True),
        sa.Column("acknowledged_by", sa.String(255), nullable=True),
        sa.Column("dedup_key", sa.String(512), nullable=True),
        sa.Column("occurrence_count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("occurred_at", _TS, nullable=True),
        sa.Column("last_occurrence_at", _TS, nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("matched_rule_id", sa.String(36), nullable=True),
        sa.Column("auto_ticket", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("suppressed_by_window_id", sa.String(36), nullable=True),
        sa.Column("ticket_id", sa.String(64), nullable=True),
        sa.Column("ticket_open", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("auto_resolve_ticket", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("reset_on_ticket_close", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("reset_error", sa.Text(), nullable=True),
        sa.Column("pipeline_state", sa.String(16), server_default="done", nullable=False),
        sa.Column("raw", sa.JSON(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("rmm_alerts") as batch:
        for column in _alert_columns():
            batch.add_column(column)
    op.create_index("ix_rmm_alerts_dedup", "rmm_alerts", ["tenant", "provider", "dedup_key"], unique=False)
    op.create_table(
        "rmm_alert_rules",
        sa.Column("rule_id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", _TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_rmm_alert_rules")),
    )
    op.create_index("ix_rmm_alert_rules_tenant_priority", "rmm_alert_rules", ["tenant", "priority"], unique=False)
    op.create_table(
        "maintenance_windows",
        sa.Column("window_id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("asset_id", sa.String(36), nullable=True),
        sa.Column("recurrence", sa.String(16), nullable=False),
        sa.Column("starts_at", _TS, nullable=True),
        sa.Column("ends_at", _TS, nullable=True),
        sa.Column("weekdays", sa.JSON(), nullable=True),
        sa.Column("start_time", sa.String(5), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", _TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("window_id", name=op.f("pk_maintenance_windows")),
    )
    op.create_index("ix_maintenance_windows_tenant", "maintenance_windows", ["tenant"], unique=False)
    op.create_table(
        "rmm_alert_polls",
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("next_due_at", _TS, nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", _TS, nullable=True),
        sa.Column("last_polled_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "provider", name=op.f("pk_rmm_alert_polls")),
    )


def downgrade() -> None:
    op.drop_table("rmm_alert_polls")
    op.drop_index("ix_maintenance_windows_tenant", table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
    op.drop_index("ix_rmm_alert_rules_tenant_priority", table_name="rmm_alert_rules")
    op.drop_table("rmm_alert_rules")
    op.drop_index("ix_rmm_alerts_dedup", table_name="rmm_alerts")
    with op.batch_alter_table("rmm_alerts") as batch:
        for column in reversed(_alert_columns()):
            batch.drop_column(column.name)
