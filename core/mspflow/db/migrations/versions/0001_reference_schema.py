"""Reference schema: rmm_integrations, tenant_addons, teams_integrations, tenant_secrets.

Revision ID: 0001_reference_schema
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_reference_schema"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rmm_integrations",
        sa.Column("integration_id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("instance_url", sa.String(2048), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("connected_at", TZ, nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("integration_id", name="pk_rmm_integrations"),
        sa.UniqueConstraint("tenant", "provider", name="uq_rmm_integrations_tenant_provider"),
    )
    op.create_index("ix_rmm_integrations_tenant", "rmm_integrations", ["tenant"])
    op.create_table(
        "tenant_addons",
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("addon_key", sa.String(64), nullable=False),
        sa.Column("expires_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("tenant", "addon_key", name="pk_tenant_addons"),
    )
    op.create_table(
        "teams_integrations",
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("install_status", sa.String(32), nullable=False, server_default="not_configured"),
        sa.Column("enabled_capabilities", sa.JSON(), nullable=True),
        sa.Column("selected_profile_id", sa.String(255), nullable=True),
        sa.Column("app_id", sa.String(255), nullable=True),
        sa.Column("bot_id", sa.String(255), nullable=True),
        sa.Column("package_metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant", name="pk_teams_integrations"),
        sa.CheckConstraint(
            "install_status IN ('not_configured', 'install_pending', 'active', 'error')",
            name="ck_teams_integrations_install_status",
        ),
    )
    op.create_table(
        "tenant_secrets",
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant", "name", name="pk_tenant_secrets"),
    )


def downgrade() -> None:
    op.drop_table("tenant_secrets")
    op.drop_table("teams_integrations")
    op.drop_table("tenant_addons")
    op.drop_index("ix_rmm_integrations_tenant", table_name="rmm_integrations")
    op.drop_table("rmm_integrations")
