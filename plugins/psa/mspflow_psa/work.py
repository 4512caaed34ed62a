"""Work on record: ``time.create_entry``, ``crm.create_activity_note``, ``projects.create_task`` and
``notifications.send_in_app``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field

from mspflow import ActionContext, ActionError

from .base import CATEGORY, psa, require, require_user, ticket_row

Id = Annotated[str, Field(min_length=1, max_length=255)]


class WorkItem(BaseModel):
    type: Literal["ticket", "project_task"]
    id: Id


class TimeInput(BaseModel):
    user_id: Id = Field(description="The technician (an active internal user).")
    work_item: WorkItem
    started_at: AwareDatetime = Field(description="ISO 8601 with an offset.")
    duration_minutes: int = Field(ge=1, le=24 * 60)
    notes: Annotated[str, Field(max_length=100_000)] | None = None
    billable: bool = True


class TimeOutput(BaseModel):
    time_entry_id: str
    user_id: str
    work_item_type: str
    work_item_id: str
    duration_minutes: int


@psa.action("time.create_entry", label="Log time", category=CATEGORY, side_effectful=True,
            permission="timeentry:create")
def create_time_entry(params: TimeInput, ctx: ActionContext) -> TimeOutput:
    """Record time a technician spent on a ticket or project task (a ticket with time is no longer untouched)."""
    require_user(ctx, params.user_id, "user_id")
    if params.work_item.type == "ticket":
        try:
            ticket_row(ctx, params.work_item.id)
        except ActionError as exc:
            exc.details["field"] = "work_item.id"
            raise
    else:
        require(ctx, "project_tasks", "work_item.id", task_id=params.work_item.id)
    row = ctx.records.insert("time_entries", {
        "user_id": params.user_id, "work_item_type": params.work_item.type, "work_item_id": params.work_item.id,
        "started_at": params.started_at, "duration_minutes": params.duration_minutes, "notes": params.notes,
        "billable": params.billable})
    if params.work_item.type == "ticket":
        ctx.records.update("tickets", {"ticket_id": params.work_item.id}, {"human_touched": True})
    ctx.records.audit({"time_entry_id": row["time_entry_id"], f"{params.work_item.type}_id": params.work_item.id})
    return TimeOutput(time_entry_id=row["time_entry_id"], user_id=params.user_id,
                      work_item_type=params.work_item.type, work_item_id=params.work_item.id,
                      duration_minutes=params.duration_minutes)


class NoteOn(BaseModel):
    type: Literal["client", "contact"]
    id: Id


class NoteInput(BaseModel):
    entity: NoteOn
    note_type: Literal["note", "call", "meeting", "email", "follow_up"] = "note"
    body: Annotated[str, Field(min_length=1, max_length=100_000)]
    author_user_id: Id | None = None


class NoteOutput(BaseModel):
    note_id: str
    entity_type: str
    entity_id: str
    note_type: str


@psa.action("crm.create_activity_note", label="Add activity note", category=CATEGORY, side_effectful=True,
            permission="crm:create")
def create_activity_note(params: NoteInput, ctx: ActionContext) -> NoteOutput:
    """Put a call, meeting, email or follow-up note on a client's or contact's record."""
    table, key = ("clients", "client_id") if params.entity.type == "client" else ("contacts", "contact_id")
    require(ctx, table, "entity.id", **{key: params.entity.id})
    if params.author_user_id is not None:
        require(ctx, "users", "author_user_id", user_id=params.author_user_id)
    row = ctx.records.insert("activity_notes", {
        "entity_type": params.entity.type, "entity_id": params.entity.id, "note_type": params.note_type,
        "body": params.body, "author_user_id": params.author_user_id})
    ctx.records.audit({"note_id": row["note_id"], key: params.entity.id})
    return NoteOutput(note_id=row["note_id"], entity_type=params.entity.type, entity_id=params.entity.id,
                      note_type=params.note_type)


class TaskInput(BaseModel):
    project_id: Id
    name: Annotated[str, Field(min_length=1, max_length=1024)]
    description: Annotated[str, Field(max_length=100_000)] | None = None
    assigned_user_id: Id | None = None
    due_at: AwareDatetime | None = Field(None, description="ISO 8601 with an offset.")


class TaskOutput(BaseModel):
    task_id: str
    project_id: str
    name: str
    status: str
    assigned_user_id: str | None = None


@psa.action("projects.create_task", label="Create project task", category=CATEGORY, side_effectful=True,
            permission="project:update")
def create_task(params: TaskInput, ctx: ActionContext) -> TaskOutput:
    """Add a task to a project (it can then be scheduled with ``scheduling.create_entry``)."""
    require(ctx, "projects", "project_id", project_id=params.project_id)
    if params.assigned_user_id is not None:
        require_user(ctx, params.assigned_user_id, "assigned_user_id")
    row = ctx.records.insert("project_tasks", {
        "project_id": params.project_id, "task_name": params.name, "description": params.description,
        "assigned_user_id": params.assigned_user_id, "due_at": params.due_at, "status": "open"})
    ctx.records.audit({"task_id": row["task_id"], "project_id": params.project_id})
    return TaskOutput(task_id=row["task_id"], project_id=params.project_id, name=params.name, status="open",
                      assigned_user_id=params.assigned_user_id)


class NotifyInput(BaseModel):
    user_id: Id
    title: Annotated[str, Field(min_length=1, max_length=255)]
    body: Annotated[str, Field(max_length=10_000)] | None = None
    link: Annotated[str, Field(max_length=2048)] | None = None
    dedupe_key: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        None, description="A second notification with the same key for the same user is not created.")


class NotifyOutput(BaseModel):
    notification_id: str
    deduplicated: bool = Field(description="True when one with this dedupe key already existed.")


@psa.action("notifications.send_in_app", label="Send in-app notification", category=CATEGORY,
            side_effectful=True, permission="notification:send")
def send_in_app(params: NotifyInput, ctx: ActionContext) -> NotifyOutput:
    """Show a user a notification in the PSA; one per ``dedupe_key`` and user."""
    require(ctx, "users", "user_id", user_id=params.user_id)
    if params.dedupe_key is not None:
        existing = ctx.records.get("notifications", user_id=params.user_id, dedupe_key=params.dedupe_key)
        if existing is not None:
            ctx.records.audit({"notification_id": existing["notification_id"], "user_id": params.user_id})
            return NotifyOutput(notification_id=existing["notification_id"], deduplicated=True)
    row = ctx.records.insert("notifications", params.model_dump())
    ctx.records.audit({"notification_id": row["notification_id"], "user_id": params.user_id})
    return NotifyOutput(notification_id=row["notification_id"], deduplicated=False)
