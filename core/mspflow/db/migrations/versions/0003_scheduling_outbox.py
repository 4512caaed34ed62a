"""PSA scheduling tables (users, tickets, project_tasks, schedule_entries, assignees, conflicts) and
the outbox of events for the host.

Revision ID: 0003_scheduling_outbox
Revises: 0002_invocations
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_scheduling_outbox"
down_revision = "0002_invocations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_events',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_outbox_events'))
    )
    op.create_index('ix_outbox_events_pending', 'outbox_events', ['delivered_at', 'created_at'], unique=False)
    op.create_index(op.f('ix_outbox_events_tenant'), 'outbox_events', ['tenant'], unique=False)
    op.create_table('project_tasks',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('task_name', sa.String(length=1024), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'task_id', name=op.f('pk_project_tasks'))
    )
    op.create_table('schedule_conflicts',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('conflict_id', sa.String(length=36), nullable=False),
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('conflicting_entry_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('resolution', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'conflict_id', name=op.f('pk_schedule_conflicts'))
    )
    op.create_index('ix_schedule_conflicts_tenant_entry', 'schedule_conflicts', ['tenant', 'entry_id'], unique=False)
    op.create_table('schedule_entries',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.String(length=1024), nullable=False),
    sa.Column('scheduled_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('scheduled_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('work_item_type', sa.String(length=16), nullable=False),
    sa.Column('work_item_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("work_item_type IN ('ticket', 'project_task', 'ad_hoc')", name=op.f('ck_schedule_entries_work_item_type')),
    sa.CheckConstraint('scheduled_end > scheduled_start', name=op.f('ck_schedule_entries_window')),
    sa.PrimaryKeyConstraint('tenant', 'entry_id', name=op.f('pk_schedule_entries'))
    )
    op.create_table('tickets',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('ticket_id', sa.String(length=36), nullable=False),
    sa.Column('ticket_number', sa.String(length=64), nullable=True),
    sa.Column('title', sa.String(length=1024), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'ticket_id', name=op.f('pk_tickets'))
    )
    op.create_table('users',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('first_name', sa.String(length=255), nullable=False),
    sa.Column('last_name', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('user_type', sa.String(length=16), nullable=False),
    sa.Column('is_inactive', sa.Boolean(), nullable=False),
    sa.CheckConstraint("user_type IN ('internal', 'client')", name=op.f('ck_users_user_type')),
    sa.PrimaryKeyConstraint('tenant', 'user_id', name=op.f('pk_users'))
    )
    op.create_table('schedule_entry_assignees',
    sa.Column('tenant', sa.String(length=255), nullable=False),
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['tenant', 'entry_id'], ['schedule_entries.tenant', 'schedule_entries.entry_id'], name='fk_schedule_entry_assignees_entry', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant', 'user_id'], ['users.tenant', 'users.user_id'], name='fk_schedule_entry_assignees_user'),
    sa.PrimaryKeyConstraint('tenant', 'entry_id', 'user_id', name=op.f('pk_schedule_entry_assignees'))
    )
    op.create_index('ix_schedule_entry_assignees_tenant_user', 'schedule_entry_assignees', ['tenant', 'user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_schedule_entry_assignees_tenant_user', table_name='schedule_entry_assignees')
    op.drop_table('schedule_entry_assignees')
    op.drop_table('users')
    op.drop_table('tickets')
    op.drop_table('schedule_entries')
    op.drop_index('ix_schedule_conflicts_tenant_entry', table_name='schedule_conflicts')
    op.drop_table('schedule_conflicts')
    op.drop_table('project_tasks')
    op.drop_index(op.f('ix_outbox_events_tenant'), table_name='outbox_events')
    op.drop_index('ix_outbox_events_pending', table_name='outbox_events')
    op.drop_table('outbox_events')
