"""Microsoft Teams: microsoft_profiles, user_auth_accounts, teams_conversation_references, and the
notification categories a tenant allows (teams_integrations.allowed_notification_categories).

Revision ID: 0007_teams
Revises: 0006_invocation_sent_attempt
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_teams"
down_revision = "0006_invocation_sent_attempt"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("teams_integrations") as batch:
        batch.add_column(sa.Column("allowed_notification_categories", sa.JSON(), nullable=True))
    op.create_table(
        "microsoft_profiles",
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("profile_id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("entra_tenant_id", sa.String(255), nullable=False),
        sa.Column("client_secret_ref", sa.String(255), nullable=False),
        sa.Column("cloud", sa.String(16), nullable=False, server_default="public"),
        sa.Column("bot_multi_tenant", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("endpoints", sa.JSON(), nullable=True),
        sa.Column("is_archived", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant", "profile_id", name="pk_microsoft_profiles"),
        sa.CheckConstraint("cloud IN ('public', 'gcch', 'dod', 'china')", name="ck_microsoft_profiles_cloud"),
    )
    op.create_table(
        "user_auth_accounts",
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_account_id", sa.String(255), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant", "user_id", "provider", name="pk_user_auth_accounts"),
    )
    op.create_table(
        "teams_conversation_references",
        sa.Column("reference_id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("entra_user_id", sa.String(255), nullable=True),
        sa.Column("conversation_id", sa.String(512), nullable=False),
        sa.Column("conversation_type", sa.String(16), nullable=False),
        sa.Column("service_url", sa.String(2048), nullable=False),
        sa.Column("entra_tenant_id", sa.String(255), nullable=True),
        sa.Column("bot_team_id", sa.String(512), nullable=True),
        sa.Column("graph_team_id", sa.String(64), nullable=True),
        sa.Column("channel_id", sa.String(512), nullable=True),
        sa.Column("last_activity_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("reference_id", name="pk_teams_conversation_references"),
        sa.UniqueConstraint("tenant", "conversation_id", name="uq_teams_conversation_references_conversation"),
        sa.CheckConstraint("conversation_type IN ('personal', 'channel')",
                           name="ck_teams_conversation_references_conversation_type"),
    )
    op.create_index("ix_teams_conversation_references_user", "teams_conversation_references",
                    ["tenant", "entra_user_id"])
    op.create_index("ix_teams_conversation_references_channel", "teams_conversation_references",
                    ["tenant", "channel_id"])


def downgrade() -> None:
    op.drop_index("ix_teams_conversation_references_channel", "teams_conversation_references")
    op.drop_index("ix_teams_conversation_references_user", "teams_conversation_references")
    op.drop_table("teams_conversation_references")
    op.drop_table("user_auth_accounts")
    op.drop_table("microsoft_profiles")
    with op.batch_alter_table("teams_integrations") as batch:
        batch.drop_column("allowed_notification_categories")
