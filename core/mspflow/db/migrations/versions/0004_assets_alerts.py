"""Assets synced from RMM vendors, external-entity mappings, and RMM alerts.

Revision ID: 0004_assets_alerts
Revises: 0003_scheduling_outbox
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_assets_alerts"
down_revision = "0003_scheduling_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('assets',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('asset_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('asset_type', sa.String(length=32), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=True),
    sa.Column('dns_name', sa.String(length=255), nullable=True),
    sa.Column('os_name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('rmm_provider', sa.String(length=64), nullable=True),
    sa.Column('rmm_device_id', sa.String(length=255), nullable=True),
    sa.Column('rmm_organization_id', sa.String(length=255), nullable=True),
    sa.Column('node_class', sa.String(length=64), nullable=True),
    sa.Column('agent_online', sa.Boolean(), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'asset_id', name=op.f('pk_assets'))
    )
    op.create_index('ix_assets_tenant_rmm', 'assets', ['tenant', 'rmm_provider', 'rmm_device_id'], unique=False)
    op.create_table('rmm_alerts',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('alert_id', sa.String(length=36), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('external_alert_id', sa.String(length=255), nullable=False),
    sa.Column('external_device_id', sa.String(length=255), nullable=True),
    sa.Column('asset_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=32), nullable=True),
    sa.Column('priority', sa.String(length=32), nullable=True),
    sa.Column('title', sa.String(length=1024), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('source_type', sa.String(length=128), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'alert_id', name=op.f('pk_rmm_alerts')),
    sa.UniqueConstraint('tenant', 'provider', 'external_alert_id', name='uq_rmm_alerts_external')
    )
    op.create_index('ix_rmm_alerts_tenant_status', 'rmm_alerts', ['tenant', 'provider', 'status'], unique=False)
    op.create_table('tenant_external_entity_mappings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('integration_type', sa.String(length=64), nullable=False),
    sa.Column('entity_type', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('external_entity_id', sa.String(length=255), nullable=False),
    sa.Column('external_realm_id', sa.String(length=255), nullable=True),
    sa.Column('sync_status', sa.String(length=32), nullable=False),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant_external_entity_mappings')),
    sa.UniqueConstraint('tenant', 'integration_type', 'entity_type', 'external_entity_id', name='uq_tenant_external_entity_mappings_external')
    )
    op.create_index('ix_tenant_external_entity_mappings_entity', 'tenant_external_entity_mappings', ['tenant', 'entity_type', 'entity_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_tenant_external_entity_mappings_entity', table_name='tenant_external_entity_mappings')
    op.drop_table('tenant_external_entity_mappings')
    op.drop_index('ix_rmm_alerts_tenant_status', table_name='rmm_alerts')
    op.drop_table('rmm_alerts')
    op.drop_index('ix_assets_tenant_rmm', table_name='assets')
    op.drop_table('assets')
