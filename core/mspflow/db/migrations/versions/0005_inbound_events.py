"""The inbound side: webhook connections (token per tenant and provider) and the delivery journal.

Revision ID: 0005_inbound_events
Revises: 0004_assets_alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_inbound_events"
down_revision = "0004_assets_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_connections',
    sa.Column('connection_id', sa.String(length=36), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('connection_id', name=op.f('pk_inbound_connections')),
    sa.UniqueConstraint('tenant', 'provider', name='uq_inbound_connections_tenant_provider'),
    sa.UniqueConstraint('token', name=op.f('uq_inbound_connections_token'))
    )
    op.create_table('inbound_events',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('connection_id', sa.String(length=36), nullable=True),
    sa.Column('delivery_id', sa.String(length=255), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('headers', sa.JSON(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=255), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('event_count', sa.Integer(), nullable=True),
    sa.Column('error_code', sa.String(length=32), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('error_retryable', sa.Boolean(), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('RECEIVED', 'PROCESSING', 'PROCESSED', 'IGNORED', 'FAILED')", name=op.f('ck_inbound_events_status')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_inbound_events')),
    sa.UniqueConstraint('tenant', 'provider', 'delivery_id', name='uq_inbound_events_delivery')
    )
    op.create_index('ix_inbound_events_status', 'inbound_events', ['status', 'received_at'], unique=False)
    op.create_index('ix_inbound_events_tenant_received', 'inbound_events', ['tenant', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbound_events_tenant_received', table_name='inbound_events')
    op.drop_index('ix_inbound_events_status', table_name='inbound_events')
    op.drop_table('inbound_events')
    op.drop_table('inbound_connections')
