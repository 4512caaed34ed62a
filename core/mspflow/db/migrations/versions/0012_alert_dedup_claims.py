"""Alerts with one dedup key decided at the same instant open one ticket: the alert deciding a key's ticket
holds a row here until its decision commits.

Revision ID: 0012_alert_dedup_claims
Revises: 0011_outbox_origin
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_alert_dedup_claims"
down_revision = "0011_outbox_origin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rmm_alert_dedup_claims",
        sa.Column("tenant", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("dedup_key", sa.String(length=512), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "provider", "dedup_key", name=op.f("pk_rmm_alert_dedup_claims")),
    )


def downgrade() -> None:
    op.drop_table("rmm_alert_dedup_claims")
