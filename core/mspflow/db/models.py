"""The reference schema: the host PSA's tables mspflow reads, named as a PSA has them.

A host with its own schema maps onto these names; standalone use creates them through the Alembic
migrations in ``mspflow/db/migrations`` (``mspflow db upgrade``). Every table carries ``tenant``
and every query the core makes filters on it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TEAMS_INSTALL_STATUSES = ("not_configured", "install_pending", "active", "error")


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class RmmIntegration(Timestamps, Base):
    """A tenant's connection to an RMM/security vendor (NinjaOne, Tactical RMM, Level, Huntress, ...)."""

    __tablename__ = "rmm_integrations"
    __table_args__ = (UniqueConstraint("tenant", "provider", name="uq_rmm_integrations_tenant_provider"),)

    integration_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(255), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    instance_url: Mapped[str | None] = mapped_column(String(2048))
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    connected_at: Mapped[datetime | None]
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TenantAddon(Base):
    """A paid add-on a tenant holds (e.g. ``teams``); ``expires_at`` NULL means it does not expire."""

    __tablename__ = "tenant_addons"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    addon_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime | None]


class TeamsIntegration(Timestamps, Base):
    """A tenant's Microsoft Teams app installation."""

    __tablename__ = "teams_integrations"
    __table_args__ = (
        CheckConstraint(
            "install_status IN ('not_configured', 'install_pending', 'active', 'error')",
            name="install_status",
        ),
    )

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    install_status: Mapped[str] = mapped_column(String(32), default="not_configured")
    enabled_capabilities: Mapped[list[str] | None] = mapped_column(JSON)
    selected_profile_id: Mapped[str | None] = mapped_column(String(255))
    app_id: Mapped[str | None] = mapped_column(String(255))
    bot_id: Mapped[str | None] = mapped_column(String(255))
    package_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Notification categories the tenant allows (``assignment``, ``customer_reply``, ...); NULL: all of them.
    allowed_notification_categories: Mapped[list[str] | None] = mapped_column(JSON)


TEAMS_CAPABILITIES = ("activity_notifications", "bot")
TEAMS_NOTIFICATION_CATEGORIES = ("assignment", "customer_reply", "approval_request", "escalation", "sla_risk")
MICROSOFT_CLOUDS = ("public", "gcch", "dod", "china")


class MicrosoftProfile(Timestamps, Base):
    """A named Entra app registration of a tenant (Graph and the Teams bot use it).

    ``client_secret_ref`` names the tenant secret holding the client secret (never the secret itself).
    ``cloud`` picks the token authority, scopes and ``serviceUrl`` hosts; ``bot_multi_tenant`` marks a
    legacy multi-tenant bot (token from the ``botframework.com`` authority). ``endpoints`` overrides the
    cloud's URLs (``graph``, ``login``, ``bot_login``, ``openid``) for a simulator or a sovereign set-up;
    each must still name an allowed host.
    """

    __tablename__ = "microsoft_profiles"
    __table_args__ = (CheckConstraint("cloud IN ('public', 'gcch', 'dod', 'china')", name="cloud"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    entra_tenant_id: Mapped[str] = mapped_column(String(255))
    client_secret_ref: Mapped[str] = mapped_column(String(255))
    cloud: Mapped[str] = mapped_column(String(16), default="public")
    bot_multi_tenant: Mapped[bool] = mapped_column(Boolean, default=False)
    endpoints: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False)


class UserAuthAccount(Timestamps, Base):
    """A PSA user's account at an identity provider (``microsoft``: the Entra object id)."""

    __tablename__ = "user_auth_accounts"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider_account_id: Mapped[str] = mapped_column(String(255))


class TeamsConversationReference(Base):
    """Where the Teams bot may write: a personal chat with one user, or a team's channel.

    Written only by the inbound receiver from activities whose JWT was verified (so ``service_url`` was
    vouched for by Microsoft), and when the bot re-creates a conversation. ``bot_team_id`` is Bot
    Framework's thread id (``19:…@thread.tacv2``); ``graph_team_id`` the team's Graph GUID: never mixed.
    """

    __tablename__ = "teams_conversation_references"
    __table_args__ = (
        CheckConstraint("conversation_type IN ('personal', 'channel')", name="conversation_type"),
        UniqueConstraint("tenant", "conversation_id", name="uq_teams_conversation_references_conversation"),
        Index("ix_teams_conversation_references_user", "tenant", "entra_user_id"),
        Index("ix_teams_conversation_references_channel", "tenant", "channel_id"),
    )

    reference_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(255))
    entra_user_id: Mapped[str | None] = mapped_column(String(255))
    conversation_id: Mapped[str] = mapped_column(String(512))
    conversation_type: Mapped[str] = mapped_column(String(16))
    service_url: Mapped[str] = mapped_column(String(2048))
    entra_tenant_id: Mapped[str | None] = mapped_column(String(255))
    bot_team_id: Mapped[str | None] = mapped_column(String(512))
    graph_team_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(512))
    last_activity_at: Mapped[datetime]


class TenantSecret(Timestamps, Base):
    """A tenant-scoped secret; ``value`` is ciphertext (Fernet), never plain text."""

    __tablename__ = "tenant_secrets"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


INVOCATION_STATUSES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED")


class WorkflowActionInvocation(Base):
    """One action call and its idempotency claim; owned by mspflow (revision 0002).

    ``input`` is stored redacted. ``lease_owner``/``lease_expires_at`` fence the worker running it:
    a RUNNING row whose lease expired belonged to a worker that died and may be taken over — unless
    ``sent_attempt`` says that attempt had already sent a side-effectful request to its vendor (revision
    0006): then the outcome is unknown and the call is never sent again.
    """

    __tablename__ = "workflow_action_invocations"
    __table_args__ = (
        UniqueConstraint("tenant", "action_id", "action_version", "idempotency_key",
                         name="uq_workflow_action_invocations_idempotency"),
        CheckConstraint("status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')", name="status"),
        Index("ix_workflow_action_invocations_tenant_created", "tenant", "created_at"),
    )

    invocation_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str | None] = mapped_column(String(255))
    step_path: Mapped[str | None] = mapped_column(String(1024))
    action_id: Mapped[str] = mapped_column(String(255))
    action_version: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    input_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    input: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_retryable: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    sent_attempt: Mapped[int | None] = mapped_column(Integer)


# -- the host PSA's people, work items and dispatch board (revision 0003) ------------------------------

USER_TYPES = ("internal", "client")
WORK_ITEM_TYPES = ("ticket", "project_task", "ad_hoc")


class User(Base):
    """A PSA user. Only active ``internal`` users (technicians) can be scheduled."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("user_type IN ('internal', 'client')", name="user_type"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    first_name: Mapped[str] = mapped_column(String(255), default="")
    last_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    user_type: Mapped[str] = mapped_column(String(16), default="internal")
    is_inactive: Mapped[bool] = mapped_column(Boolean, default=False)


class Ticket(Timestamps, Base):
    """A ticket: the row a schedule entry links to, extended by revision 0008 into the reference PSA's ticket.

    ``ticket_number`` is per tenant; ``version`` is the optimistic-concurrency token; ``human_touched``
    is set by a human comment, a time entry or a manual status change (automation's own changes leave it).
    """

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("tenant", "ticket_number", name="uq_tickets_tenant_number"),
        Index("ix_tickets_tenant_source", "tenant", "source", "source_ref"),
    )

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ticket_number: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(1024), default="")
    description: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(36))
    contact_id: Mapped[str | None] = mapped_column(String(36))
    board: Mapped[str | None] = mapped_column(String(255))
    status_id: Mapped[str | None] = mapped_column(String(36))
    priority: Mapped[str | None] = mapped_column(String(32))
    assigned_user_id: Mapped[str | None] = mapped_column(String(36))
    assigned_team_id: Mapped[str | None] = mapped_column(String(255))
    queue: Mapped[str | None] = mapped_column(String(255))
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    custom_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source: Mapped[str | None] = mapped_column(String(64))
    source_ref: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    human_touched: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    resolution: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]


class ProjectTask(Timestamps, Base):
    """The minimal project task row a schedule entry can link to."""

    __tablename__ = "project_tasks"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    task_name: Mapped[str] = mapped_column(String(1024), default="")
    project_id: Mapped[str | None] = mapped_column(String(36))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default="open", server_default="open")
    assigned_user_id: Mapped[str | None] = mapped_column(String(36))
    due_at: Mapped[datetime | None]


class ScheduleEntry(Timestamps, Base):
    """An entry on the dispatch board; times are stored in UTC."""

    __tablename__ = "schedule_entries"
    __table_args__ = (
        CheckConstraint("work_item_type IN ('ticket', 'project_task', 'ad_hoc')", name="work_item_type"),
        CheckConstraint("scheduled_end > scheduled_start", name="window"),
    )

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(1024))
    scheduled_start: Mapped[datetime]
    scheduled_end: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(32), default="scheduled")
    notes: Mapped[str | None] = mapped_column(Text)
    work_item_type: Mapped[str] = mapped_column(String(16), default="ad_hoc")
    work_item_id: Mapped[str | None] = mapped_column(String(36))


class ScheduleEntryAssignee(Base):
    __tablename__ = "schedule_entry_assignees"
    __table_args__ = (
        ForeignKeyConstraint(["tenant", "entry_id"], ["schedule_entries.tenant", "schedule_entries.entry_id"],
                             ondelete="CASCADE", name="fk_schedule_entry_assignees_entry"),
        ForeignKeyConstraint(["tenant", "user_id"], ["users.tenant", "users.user_id"],
                             name="fk_schedule_entry_assignees_user"),
        Index("ix_schedule_entry_assignees_tenant_user", "tenant", "user_id"),
    )

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class ScheduleConflict(Base):
    """An overlap the scheduler accepted (``conflict_mode: override``), kept for the dispatcher to see."""

    __tablename__ = "schedule_conflicts"
    __table_args__ = (Index("ix_schedule_conflicts_tenant_entry", "tenant", "entry_id"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    conflict_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    entry_id: Mapped[str] = mapped_column(String(36))
    conflicting_entry_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str] = mapped_column(String(36))
    resolution: Mapped[str] = mapped_column(String(32), default="override")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxEvent(Base):
    """An event for the host (e.g. SCHEDULE_ENTRY_CREATED), written in the transaction that caused it."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_pending", "delivered_at", "created_at"),
                      Index("ix_outbox_events_undispatched", "dispatched_at", "created_at"))

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(255), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]
    #: The run id of the action call whose handler emitted the event (revision 0011): for a workflow step,
    #: its run, so the runs this event starts are one level deeper (``MSPFLOW_MAX_TRIGGER_DEPTH``).
    origin_run_id: Mapped[str | None] = mapped_column(String(255))
    #: When the workflow triggers looked at the event (revision 0011); ``delivered_at`` stays the host's.
    dispatched_at: Mapped[datetime | None]


# -- assets synced from RMM vendors and their alerts (revision 0004) -------------------------------------


class Asset(Timestamps, Base):
    """A managed device as the PSA knows it; ``rmm_*`` columns say where it was synced from."""

    __tablename__ = "assets"
    __table_args__ = (Index("ix_assets_tenant_rmm", "tenant", "rmm_provider", "rmm_device_id"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    asset_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    asset_type: Mapped[str] = mapped_column(String(32), default="workstation")
    hostname: Mapped[str | None] = mapped_column(String(255))
    dns_name: Mapped[str | None] = mapped_column(String(255))
    os_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default="active")
    rmm_provider: Mapped[str | None] = mapped_column(String(64))
    rmm_device_id: Mapped[str | None] = mapped_column(String(255))
    rmm_organization_id: Mapped[str | None] = mapped_column(String(255))
    node_class: Mapped[str | None] = mapped_column(String(64))
    agent_online: Mapped[bool | None] = mapped_column(Boolean)
    last_seen_at: Mapped[datetime | None]


class TenantExternalEntityMapping(Timestamps, Base):
    """Links a PSA entity (e.g. an asset) to its id in a vendor system."""

    __tablename__ = "tenant_external_entity_mappings"
    __table_args__ = (
        UniqueConstraint("tenant", "integration_type", "entity_type", "external_entity_id",
                         name="uq_tenant_external_entity_mappings_external"),
        Index("ix_tenant_external_entity_mappings_entity", "tenant", "entity_type", "entity_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(255))
    integration_type: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(36))
    external_entity_id: Mapped[str] = mapped_column(String(255))
    external_realm_id: Mapped[str | None] = mapped_column(String(255))
    sync_status: Mapped[str] = mapped_column(String(32), default="synced")
    last_synced_at: Mapped[datetime | None]
    metadata_json: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)


class RmmAlert(Timestamps, Base):
    """An alert raised by an RMM vendor, as the PSA keeps it."""

    __tablename__ = "rmm_alerts"
    __table_args__ = (
        UniqueConstraint("tenant", "provider", "external_alert_id", name="uq_rmm_alerts_external"),
        Index("ix_rmm_alerts_tenant_status", "tenant", "provider", "status"),
        Index("ix_rmm_alerts_dedup", "tenant", "provider", "dedup_key"),
    )

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(64))
    external_alert_id: Mapped[str] = mapped_column(String(255))
    external_device_id: Mapped[str | None] = mapped_column(String(255))
    asset_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(32), default="active")
    severity: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(String(1024))
    message: Mapped[str | None] = mapped_column(Text)
    source_type: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None]
    # the alert pipeline (revision 0009_alerts): status also takes ``suppressed`` and ``resolved``
    activity_type: Mapped[str | None] = mapped_column(String(128))
    alert_class: Mapped[str | None] = mapped_column(String(128))
    organization: Mapped[str | None] = mapped_column(String(255))
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    dedup_key: Mapped[str | None] = mapped_column(String(512))
    occurrence_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    occurred_at: Mapped[datetime | None]
    last_occurrence_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    matched_rule_id: Mapped[str | None] = mapped_column(String(36))
    auto_ticket: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    suppressed_by_window_id: Mapped[str | None] = mapped_column(String(36))
    ticket_id: Mapped[str | None] = mapped_column(String(64))
    ticket_open: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    auto_resolve_ticket: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    reset_on_ticket_close: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    reset_error: Mapped[str | None] = mapped_column(Text)
    pipeline_state: Mapped[str] = mapped_column(String(16), default="done", server_default="done")
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AlertDedupClaim(Base):
    """Which alert is deciding the ticket of a dedup key right now: one row per key while it does.

    Two alerts with one dedup key decided at the same instant would each find no open ticket and each
    open one; the alert that holds this row decides (opens or joins), the other waits and then joins.
    The row goes with the decision's commit; one left by a worker that died expires (revision 0012).
    """

    __tablename__ = "rmm_alert_dedup_claims"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36))
    claimed_at: Mapped[datetime]


class AlertRule(Timestamps, Base):
    """A tenant's alert rule: first active match by ``priority`` (ascending) decides what an alert does.

    ``conditions`` and ``actions`` are JSON validated by :mod:`mspflow.alerts.rules` when saved.
    """

    __tablename__ = "rmm_alert_rules"
    __table_args__ = (Index("ix_rmm_alert_rules_tenant_priority", "tenant", "priority"),)

    rule_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MaintenanceWindow(Timestamps, Base):
    """A quiet period: alerts inside it (for its scope) are stored ``suppressed``, without tickets.

    Scope: ``provider`` (the integration), ``client_id``, ``asset_id``; NULL means all. One-off
    (``starts_at``/``ends_at``) or weekly (``weekdays`` 0=Monday…6, ``start_time`` ``HH:MM``,
    ``duration_minutes``, in ``timezone``).
    """

    __tablename__ = "maintenance_windows"
    __table_args__ = (Index("ix_maintenance_windows_tenant", "tenant"),)

    window_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(255))
    asset_id: Mapped[str | None] = mapped_column(String(36))
    recurrence: Mapped[str] = mapped_column(String(16), default="once")
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    weekdays: Mapped[list[int] | None] = mapped_column(JSON)
    start_time: Mapped[str | None] = mapped_column(String(5))
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class AlertPoll(Base):
    """One connected integration's alert polling: when it is next due and who holds this round's lease.

    Created when the integration connects, removed when it disconnects. A worker takes a due row with a
    conditional UPDATE (due and unleased, or its lease expired), so one poll runs per interval however
    many worker processes look.
    """

    __tablename__ = "rmm_alert_polls"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    interval_minutes: Mapped[int] = mapped_column(Integer, default=15)
    next_due_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


# -- the inbound side: webhook connections and the delivery journal (revision 0005) ----------------------

INBOUND_STATUSES = ("RECEIVED", "PROCESSING", "PROCESSED", "IGNORED", "FAILED")


class InboundConnection(Base):
    """One tenant's webhook endpoint for one provider: ``/hooks/{provider}/{token}``.

    The token is random (``secrets.token_urlsafe(32)``) and bound to one tenant's integration; rotating
    it replaces it, so the old URL answers 404. The signing key or shared secret is a tenant secret.
    """

    __tablename__ = "inbound_connections"
    __table_args__ = (UniqueConstraint("tenant", "provider", name="uq_inbound_connections_tenant_provider"),)

    connection_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    tenant: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    rotated_at: Mapped[datetime | None]


class InboundEvent(Base):
    """One verified delivery, journaled once per (tenant, provider, delivery id), then processed.

    ``payload`` and ``headers`` are stored redacted (every secret of the tenant, secret-named keys) and
    capped. Status: RECEIVED -> PROCESSING (attempt n, lease) -> PROCESSED | IGNORED | FAILED.
    """

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("tenant", "provider", "delivery_id", name="uq_inbound_events_delivery"),
        CheckConstraint("status IN ('RECEIVED', 'PROCESSING', 'PROCESSED', 'IGNORED', 'FAILED')", name="status"),
        Index("ix_inbound_events_tenant_received", "tenant", "received_at"),
        Index("ix_inbound_events_status", "status", "received_at"),
    )

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    connection_id: Mapped[str | None] = mapped_column(String(36))
    delivery_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime]
    content_type: Mapped[str | None] = mapped_column(String(255))
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    payload: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="RECEIVED")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    event_count: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_retryable: Mapped[bool | None] = mapped_column(Boolean)
    processed_at: Mapped[datetime | None]


# -- the reference PSA's business records (revision 0008; actions in plugins/psa) ------------------------


class Client(Timestamps, Base):
    """A customer organization of the MSP."""

    __tablename__ = "clients"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    is_inactive: Mapped[bool] = mapped_column(Boolean, default=False)


class Contact(Timestamps, Base):
    """A person at a client."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_tenant_client", "tenant", "client_id"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str | None] = mapped_column(String(36))
    full_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    is_inactive: Mapped[bool] = mapped_column(Boolean, default=False)


class TicketStatus(Base):
    """A tenant's ticket statuses; ``is_closed`` ones end a ticket, ``is_default`` is where new ones start."""

    __tablename__ = "ticket_statuses"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_ticket_statuses_tenant_name"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    status_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)


class TicketComment(Base):
    """A comment on a ticket: public or internal, written by a human or by automation."""

    __tablename__ = "ticket_comments"
    __table_args__ = (
        CheckConstraint("author_kind IN ('human', 'automation')", name="author_kind"),
        Index("ix_ticket_comments_tenant_ticket", "tenant", "ticket_id"),
    )

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    comment_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ticket_id: Mapped[str] = mapped_column(String(36))
    body: Mapped[str] = mapped_column(Text)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    author_kind: Mapped[str] = mapped_column(String(16), default="automation")
    author_user_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TicketAttachment(Base):
    """A file on a ticket; ``storage_ref`` names where the bytes are (a file under the attachments directory)."""

    __tablename__ = "ticket_attachments"
    __table_args__ = (Index("ix_ticket_attachments_tenant_ticket", "tenant", "ticket_id"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    attachment_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ticket_id: Mapped[str] = mapped_column(String(36))
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_ref: Mapped[str] = mapped_column(String(1024))
    source_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class EntityLink(Base):
    """A ticket linked to another record (an asset, an RMM alert, a client, a contact, another ticket, ...)."""

    __tablename__ = "entity_links"
    __table_args__ = (UniqueConstraint("tenant", "ticket_id", "entity_type", "entity_id",
                                       name="uq_entity_links_ticket_entity"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    link_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ticket_id: Mapped[str] = mapped_column(String(36))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(255))
    relation: Mapped[str] = mapped_column(String(64), default="related")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TimeEntry(Base):
    """Time a user spent on a ticket or project task."""

    __tablename__ = "time_entries"
    __table_args__ = (Index("ix_time_entries_tenant_work_item", "tenant", "work_item_type", "work_item_id"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    time_entry_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(36))
    work_item_type: Mapped[str] = mapped_column(String(16))
    work_item_id: Mapped[str] = mapped_column(String(36))
    started_at: Mapped[datetime]
    duration_minutes: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    billable: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ActivityNote(Base):
    """A CRM activity note on a client or contact (a call, a meeting, a follow-up)."""

    __tablename__ = "activity_notes"
    __table_args__ = (Index("ix_activity_notes_tenant_entity", "tenant", "entity_type", "entity_id"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    note_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    entity_type: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[str] = mapped_column(String(36))
    note_type: Mapped[str] = mapped_column(String(32), default="note")
    body: Mapped[str] = mapped_column(Text)
    author_user_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Project(Timestamps, Base):
    """A project; its tasks are ``project_tasks`` rows."""

    __tablename__ = "projects"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str | None] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default="active")


class Notification(Base):
    """An in-app notification for a user; one per (user, dedupe key)."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("tenant", "user_id", "dedupe_key", name="uq_notifications_dedupe"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(36))
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2048))
    dedupe_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    read_at: Mapped[datetime | None]


class EmailMessage(Base):
    """An outbound email: ``sent`` through the tenant's SMTP server, or ``queued`` when none is configured."""

    __tablename__ = "email_messages"
    __table_args__ = (CheckConstraint("status IN ('queued', 'sent')", name="status"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(16))
    from_address: Mapped[str | None] = mapped_column(String(320))
    to_addresses: Mapped[list[str]] = mapped_column(JSON)
    cc_addresses: Mapped[list[str] | None] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(998))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]


class AuditLogEntry(Base):
    """One business-operations action call that changed or read PSA records: who, what, on which ids."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_created", "tenant", "created_at"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    audit_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    actor: Mapped[str] = mapped_column(String(255))
    action_id: Mapped[str] = mapped_column(String(255))
    action_version: Mapped[int] = mapped_column(Integer)
    target_ids: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_id: Mapped[str | None] = mapped_column(String(255))
    invocation_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RecordCounter(Base):
    """Per-tenant sequences (``ticket_number``)."""

    __tablename__ = "record_counters"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


# -- workflows: published definitions, runs, and which event started which run (revision 0010) ---------

WORKFLOW_RUN_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED")


class WorkflowDefinition(Base):
    """One published version of a tenant's workflow; the newest version of a name is the one that runs.

    ``trigger_event`` is the event type that starts it (NULL: started by hand only); ``enabled`` is
    cleared on every version by ``mspflow workflows disable``.
    """

    __tablename__ = "workflow_definitions"
    __table_args__ = (Index("ix_workflow_definitions_trigger", "tenant", "trigger_event"),)

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger_event: Mapped[str | None] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    warnings: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WorkflowRun(Base):
    """A run of one workflow version: durable state advanced one step at a time.

    ``steps`` maps a step path to its outcome (status, the invocation record it refers to, the error
    code); outputs stay in ``workflow_action_invocations``. ``attempt`` counts how often the run was
    driven (``mspflow runs retry`` adds one); a step message of an older attempt is ignored.
    """

    __tablename__ = "workflow_runs"
    __table_args__ = (
        CheckConstraint("status IN ('RUNNING', 'SUCCEEDED', 'FAILED')", name="status"),
        Index("ix_workflow_runs_tenant_created", "tenant", "created_at"),
    )

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(255))
    workflow_name: Mapped[str] = mapped_column(String(255))
    workflow_version: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    steps: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    # on a chain's first run: the runs started since, through events the chain's steps emitted (0013)
    triggered_runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WorkflowEventRun(Base):
    """"This event started this run": the unique key makes a twice-delivered event start one run.

    Rows with ``workflow_name = ''`` are the looked-at marks written before revision 0011 (now
    ``outbox_events.dispatched_at``).
    """

    __tablename__ = "workflow_event_runs"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    workflow_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
