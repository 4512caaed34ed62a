"""The reference PSA's business records: clients, contacts, ticket statuses, comments, attachments, entity links,
time entries, activity notes, projects, notifications, email messages, the audit log and record counters; the
core's minimal tickets and project_tasks rows are extended in place (never a second table for one record).

Revision ID: 0008_psa
Revises: 0006_invocation_sent_attempt
"""

import sqlalchemy as sa
from alembic import op


revision = "0008_psa"
down_revision = "0007_teams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activity_notes',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('note_id', sa.String(length=36), nullable=False),
    sa.Column('entity_type', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('note_type', sa.String(length=32), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('author_user_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'note_id', name=op.f('pk_activity_notes'))
    )
    with op.batch_alter_table('activity_notes', schema=None) as batch_op:
        batch_op.create_index('ix_activity_notes_tenant_entity', ['tenant', 'entity_type', 'entity_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('audit_id', sa.String(length=36), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('action_id', sa.String(length=255), nullable=False),
    sa.Column('action_version', sa.Integer(), nullable=False),
    sa.Column('target_ids', sa.JSON(), nullable=False),
    sa.Column('run_id', sa.String(length=255), nullable=True),
    sa.Column('invocation_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'audit_id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_tenant_created', ['tenant', 'created_at'], unique=False)

    op.create_table('clients',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.Column('is_inactive', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'client_id', name=op.f('pk_clients'))
    )
    op.create_table('contacts',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('contact_id', sa.String(length=36), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=True),
    sa.Column('full_name', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.Column('is_inactive', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'contact_id', name=op.f('pk_contacts'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index('ix_contacts_tenant_client', ['tenant', 'client_id'], unique=False)

    op.create_table('email_messages',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('message_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('from_address', sa.String(length=320), nullable=True),
    sa.Column('to_addresses', sa.JSON(), nullable=False),
    sa.Column('cc_addresses', sa.JSON(), nullable=True),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=True),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('ticket_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'sent')", name=op.f('ck_email_messages_status')),
    sa.PrimaryKeyConstraint('tenant', 'message_id', name=op.f('pk_email_messages'))
    )
    op.create_table('entity_links',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('link_id', sa.String(length=36), nullable=False),
    sa.Column('ticket_id', sa.String(length=36), nullable=False),
    sa.Column('entity_type', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=255), nullable=False),
    sa.Column('relation', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'link_id', name=op.f('pk_entity_links')),
    sa.UniqueConstraint('tenant', 'ticket_id', 'entity_type', 'entity_id', name='uq_entity_links_ticket_entity')
    )
    op.create_table('notifications',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('notification_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('link', sa.String(length=2048), nullable=True),
    sa.Column('dedupe_key', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'notification_id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('tenant', 'user_id', 'dedupe_key', name='uq_notifications_dedupe')
    )
    op.create_table('projects',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'project_id', name=op.f('pk_projects'))
    )
    op.create_table('record_counters',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'name', name=op.f('pk_record_counters'))
    )
    op.create_table('ticket_attachments',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('attachment_id', sa.String(length=36), nullable=False),
    sa.Column('ticket_id', sa.String(length=36), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_ref', sa.String(length=1024), nullable=False),
    sa.Column('source_url', sa.String(length=2048), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'attachment_id', name=op.f('pk_ticket_attachments'))
    )
    with op.batch_alter_table('ticket_attachments', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_attachments_tenant_ticket', ['tenant', 'ticket_id'], unique=False)

    op.create_table('ticket_comments',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('comment_id', sa.String(length=36), nullable=False),
    sa.Column('ticket_id', sa.String(length=36), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('is_internal', sa.Boolean(), nullable=False),
    sa.Column('author_kind', sa.String(length=16), nullable=False),
    sa.Column('author_user_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("author_kind IN ('human', 'automation')", name=op.f('ck_ticket_comments_author_kind')),
    sa.PrimaryKeyConstraint('tenant', 'comment_id', name=op.f('pk_ticket_comments'))
    )
    with op.batch_alter_table('ticket_comments', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_comments_tenant_ticket', ['tenant', 'ticket_id'], unique=False)

    op.create_table('ticket_statuses',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('status_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('is_closed', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'status_id', name=op.f('pk_ticket_statuses')),
    sa.UniqueConstraint('tenant', 'name', name='uq_ticket_statuses_tenant_name')
    )
    op.create_table('time_entries',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('time_entry_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('work_item_type', sa.String(length=16), nullable=False),
    sa.Column('work_item_id', sa.String(length=36), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('billable', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'time_entry_id', name=op.f('pk_time_entries'))
    )
    with op.batch_alter_table('time_entries', schema=None) as batch_op:
        batch_op.create_index('ix_time_entries_tenant_work_item', ['tenant', 'work_item_type', 'work_item_id'], unique=False)

    with op.batch_alter_table('project_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('project_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=32), server_default='open', nullable=False))
        batch_op.add_column(sa.Column('assigned_user_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('client_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('contact_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('board', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('status_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('priority', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('assigned_user_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('assigned_team_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('queue', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('tags', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('custom_fields', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('source_ref', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('human_touched', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('resolution', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_tickets_tenant_source', ['tenant', 'source', 'source_ref'], unique=False)
        batch_op.create_unique_constraint('uq_tickets_tenant_number', ['tenant', 'ticket_number'])


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint('uq_tickets_tenant_number', type_='unique')
        batch_op.drop_index('ix_tickets_tenant_source')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('resolution')
        batch_op.drop_column('human_touched')
        batch_op.drop_column('version')
        batch_op.drop_column('source_ref')
        batch_op.drop_column('source')
        batch_op.drop_column('custom_fields')
        batch_op.drop_column('tags')
        batch_op.drop_column('queue')
        batch_op.drop_column('assigned_team_id')
        batch_op.drop_column('assigned_user_id')
        batch_op.drop_column('priority')
        batch_op.drop_column('status_id')
        batch_op.drop_column('board')
        batch_op.drop_column('contact_id')
        batch_op.drop_column('client_id')
        batch_op.drop_column('description')

    with op.batch_alter_table('project_tasks', schema=None) as batch_op:
        batch_op.drop_column('due_at')
        batch_op.drop_column('assigned_user_id')
        batch_op.drop_column('status')
        batch_op.drop_column('description')
        batch_op.drop_column('project_id')

    with op.batch_alter_table('time_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_time_entries_tenant_work_item')

    op.drop_table('time_entries')
    op.drop_table('ticket_statuses')
    with op.batch_alter_table('ticket_comments', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_comments_tenant_ticket')

    op.drop_table('ticket_comments')
    with op.batch_alter_table('ticket_attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_attachments_tenant_ticket')

    op.drop_table('ticket_attachments')
    op.drop_table('record_counters')
    op.drop_table('projects')
    op.drop_table('notifications')
    op.drop_table('entity_links')
    op.drop_table('email_messages')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_contacts_tenant_client')

    op.drop_table('contacts')
    op.drop_table('clients')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_tenant_created')

    op.drop_table('audit_log')
    with op.batch_alter_table('activity_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_notes_tenant_entity')

    op.drop_table('activity_notes')

