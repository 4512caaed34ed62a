"""``tickets.*``: open, comment, update, assign, close, link and find tickets.

``tickets.create`` and ``tickets.close`` publish ``TICKET_CREATED`` / ``TICKET_CLOSED`` outbox events (ticket
id and number, tenant, source and source reference) in the call's transaction, for workflow triggers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mspflow import ActionContext, ActionError

from .base import (
    CATEGORY,
    Actor,
    TicketOut,
    check_client_contact,
    event_payload,
    psa,
    require,
    require_user,
    status_named,
    statuses,
    ticket_out,
    ticket_row,
    touched,
)

Text = Annotated[str, Field(min_length=1, max_length=1024)]
Tag = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Id = Annotated[str, Field(min_length=1, max_length=255)]


class CreateInput(BaseModel):
    title: Text
    description: str | None = Field(None, max_length=100_000)
    client_id: Id | None = None
    contact_id: Id | None = None
    board: Name | None = None
    status: Name | None = Field(None, description="A status name; default: the tenant's default status.")
    priority: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    assigned_user_id: Id | None = None
    assigned_team_id: Id | None = None
    queue: Name | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    source: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Where the ticket came from, e.g. `rmm_alert`, `email`, `workflow`.")
    source_ref: Id | None = Field(None, description="The source's own id (e.g. the alert id).")


class CreateOutput(BaseModel):
    ticket: TicketOut


@psa.action("tickets.create", label="Create ticket", category=CATEGORY, side_effectful=True,
            permission="ticket:create")
def create(params: CreateInput, ctx: ActionContext) -> CreateOutput:
    """Open a ticket with the next per-tenant number; publishes ``TICKET_CREATED``."""
    # The number first: its row lock serializes this tenant's creates (and the first one's status seeding).
    number = str(ctx.records.next_value("ticket_number"))
    check_client_contact(ctx, params.client_id, params.contact_id)
    if params.assigned_user_id is not None:
        require_user(ctx, params.assigned_user_id, "assigned_user_id")
    if params.status is not None:
        status = status_named(ctx, params.status, "status")
    else:
        known = statuses(ctx, seed=True).values()
        status = next((s for s in known if s["is_default"]), next(iter(known)))
    row = ctx.records.insert("tickets", {
        "ticket_number": number, "title": params.title, "description": params.description,
        "client_id": params.client_id, "contact_id": params.contact_id, "board": params.board,
        "status_id": status["status_id"], "priority": params.priority,
        "assigned_user_id": params.assigned_user_id, "assigned_team_id": params.assigned_team_id,
        "queue": params.queue, "tags": list(dict.fromkeys(params.tags)), "custom_fields": params.custom_fields,
        "source": params.source, "source_ref": params.source_ref, "version": 1, "human_touched": False,
        "closed_at": ctx.records.now() if status["is_closed"] else None,
    })
    ctx.records.emit("TICKET_CREATED", event_payload(ctx, row))
    ctx.records.audit({"ticket_id": row["ticket_id"]})
    return CreateOutput(ticket=ticket_out(ctx, row))


class CommentInput(BaseModel):
    ticket_id: Id
    body: Annotated[str, Field(min_length=1, max_length=100_000)]
    is_internal: bool = Field(False, description="Internal notes are hidden from the client.")
    author_kind: Actor = Field("automation", description="`human` marks the ticket as touched.")
    author_user_id: Id | None = None


class CommentOutput(BaseModel):
    comment_id: str
    ticket_id: str
    is_internal: bool
    author_kind: Actor


@psa.action("tickets.add_comment", label="Add ticket comment", category=CATEGORY, side_effectful=True,
            permission="ticket:update")
def add_comment(params: CommentInput, ctx: ActionContext) -> CommentOutput:
    """Add a public or internal comment to a ticket."""
    ticket_row(ctx, params.ticket_id)
    if params.author_user_id is not None:
        require(ctx, "users", "author_user_id", user_id=params.author_user_id)
    row = ctx.records.insert("ticket_comments", {
        "ticket_id": params.ticket_id, "body": params.body, "is_internal": params.is_internal,
        "author_kind": params.author_kind, "author_user_id": params.author_user_id})
    if params.author_kind == "human":
        ctx.records.update("tickets", {"ticket_id": params.ticket_id}, {"human_touched": True})
    ctx.records.audit({"ticket_id": params.ticket_id, "comment_id": row["comment_id"]})
    return CommentOutput(comment_id=row["comment_id"], ticket_id=params.ticket_id,
                         is_internal=params.is_internal, author_kind=params.author_kind)


class Fields(BaseModel):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    title: Text | None = None
    description: Annotated[str, Field(max_length=100_000)] | None = None
    status: Name | None = Field(None, description="A status name; a closed one closes the ticket.")
    priority: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    board: Name | None = None
    client_id: Id | None = None
    contact_id: Id | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    custom_fields: dict[str, Any] | None = Field(None, description="Merged into the ticket's custom fields.")


class UpdateInput(BaseModel):
    ticket_id: Id
    expected_version: int = Field(ge=1, description="The ticket's `version` you read (concurrency token); "
                                                    "a stale one is CONFLICT.")
    fields: Fields
    actor_kind: Actor = Field("automation", description="`human`: a status change marks the ticket touched.")

    @model_validator(mode="after")
    def _something(self) -> UpdateInput:
        if not self.fields.model_fields_set:
            raise ValueError("fields: name at least one field to change")
        return self


class TicketResult(BaseModel):
    ticket: TicketOut


def _write(ctx: ActionContext, row: dict[str, Any], changes: dict[str, Any], expected: int | None) -> dict[str, Any]:
    """Apply ``changes`` as one new version; ``CONFLICT`` when ``expected`` is not the current version."""
    current = row["version"] or 1
    if expected is not None and expected != current:
        raise ActionError.conflict(
            f"ticket {row['ticket_id']!r} changed since you read it (version {expected}, now {current}); "
            "read it again and retry", ticket_id=row["ticket_id"], expected_version=expected,
            current_version=current)
    changes = {**changes, "version": current + 1}
    if not ctx.records.update("tickets", {"ticket_id": row["ticket_id"]}, changes, expect={"version": current}):
        raise ActionError.conflict(f"ticket {row['ticket_id']!r} changed while this call ran; retry",
                                   ticket_id=row["ticket_id"])
    return {**row, **changes}


@psa.action("tickets.update_fields", label="Update ticket fields", category=CATEGORY, side_effectful=True,
            permission="ticket:update")
def update_fields(params: UpdateInput, ctx: ActionContext) -> TicketResult:
    """Change a ticket's fields, guarded by its concurrency token."""
    row = ticket_row(ctx, params.ticket_id, for_update=True)
    given = params.fields.model_dump(include=params.fields.model_fields_set)
    check_client_contact(ctx, given.get("client_id"), given.get("contact_id"), prefix="fields.")
    changes: dict[str, Any] = {k: v for k, v in given.items() if k not in ("status", "custom_fields")}
    if "tags" in changes:
        changes["tags"] = list(dict.fromkeys(changes["tags"] or []))
    if given.get("custom_fields") is not None:
        changes["custom_fields"] = {**(row.get("custom_fields") or {}), **given["custom_fields"]}
    if given.get("status") is not None:
        status = status_named(ctx, given["status"], "fields.status")
        if status["status_id"] != row["status_id"]:
            changes["status_id"] = status["status_id"]
            changes["closed_at"] = ctx.records.now() if status["is_closed"] else None
            if params.actor_kind == "human":
                changes["human_touched"] = True
    if changes.get("title") is None:
        changes.pop("title", None)
    row = _write(ctx, row, changes, params.expected_version)
    ctx.records.audit({"ticket_id": params.ticket_id})
    return TicketResult(ticket=ticket_out(ctx, row))


class AssignInput(BaseModel):
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": [n]} for n in (
        "assigned_user_id", "assigned_team_id", "queue")]})

    ticket_id: Id
    assigned_user_id: Id | None = Field(None, description="An active internal user.")
    assigned_team_id: Id | None = None
    queue: Name | None = None
    expected_version: int | None = Field(None, ge=1, description="Optional concurrency token.")

    @model_validator(mode="after")
    def _someone(self) -> AssignInput:
        if not ({"assigned_user_id", "assigned_team_id", "queue"} & self.model_fields_set):
            raise ValueError("name assigned_user_id, assigned_team_id or queue")
        return self


@psa.action("tickets.assign", label="Assign ticket", category=CATEGORY, side_effectful=True,
            permission="ticket:update")
def assign(params: AssignInput, ctx: ActionContext) -> TicketResult:
    """Assign a ticket to a user, a team and/or a queue (``null`` clears one)."""
    row = ticket_row(ctx, params.ticket_id, for_update=True)
    if params.assigned_user_id is not None:
        require_user(ctx, params.assigned_user_id, "assigned_user_id")
    changes = params.model_dump(include={"assigned_user_id", "assigned_team_id", "queue"} & params.model_fields_set)
    row = _write(ctx, row, changes, params.expected_version)
    ctx.records.audit({"ticket_id": params.ticket_id, "user_id": params.assigned_user_id})
    return TicketResult(ticket=ticket_out(ctx, row))


class CloseInput(BaseModel):
    ticket_id: Id
    resolution: Annotated[str, Field(min_length=1, max_length=100_000)]
    public_note: Annotated[str, Field(min_length=1, max_length=100_000)] | None = Field(
        None, description="Also added as a public comment (by automation).")
    status: Name | None = Field(None, description="A closed status name; default: the first closed status.")
    expected_version: int | None = Field(None, ge=1, description="Optional concurrency token.")


class CloseOutput(BaseModel):
    ticket: TicketOut
    comment_id: str | None = None


@psa.action("tickets.close", label="Close ticket", category=CATEGORY, side_effectful=True,
            permission="ticket:update")
def close(params: CloseInput, ctx: ActionContext) -> CloseOutput:
    """Close a ticket with a resolution; publishes ``TICKET_CLOSED``. A closed ticket is ``CONFLICT``."""
    row = ticket_row(ctx, params.ticket_id, for_update=True)
    known = statuses(ctx, seed=True)
    current = known.get(row["status_id"] or "")
    if current is not None and current["is_closed"]:
        raise ActionError.conflict(f"ticket {row['ticket_number']} is already closed", ticket_id=row["ticket_id"],
                                   reason="ALREADY_CLOSED")
    if params.status is not None:
        status = status_named(ctx, params.status, "status")
        if not status["is_closed"]:
            raise ActionError.validation(f"status {params.status!r} is not a closed status", fields=["status"])
    else:
        status = next(s for s in known.values() if s["is_closed"]) if any(
            s["is_closed"] for s in known.values()) else status_named(ctx, "Closed", "status")
    row = _write(ctx, row, {"status_id": status["status_id"], "resolution": params.resolution,
                            "closed_at": ctx.records.now()}, params.expected_version)
    comment_id = None
    if params.public_note is not None:
        comment_id = ctx.records.insert("ticket_comments", {
            "ticket_id": row["ticket_id"], "body": params.public_note, "is_internal": False,
            "author_kind": "automation"})["comment_id"]
    ctx.records.emit("TICKET_CLOSED", {**event_payload(ctx, row), "resolution": params.resolution})
    ctx.records.audit({"ticket_id": row["ticket_id"]})
    return CloseOutput(ticket=ticket_out(ctx, row), comment_id=comment_id)


EntityType = Literal["asset", "rmm_alert", "client", "contact", "ticket", "project_task", "external"]
_CHECKED = {"asset": ("assets", "asset_id"), "rmm_alert": ("rmm_alerts", "alert_id"),
            "client": ("clients", "client_id"), "contact": ("contacts", "contact_id"),
            "ticket": ("tickets", "ticket_id"), "project_task": ("project_tasks", "task_id")}


class LinkIn(BaseModel):
    entity_type: EntityType = Field(description="`external` links an id the PSA does not hold (unchecked).")
    entity_id: Id
    relation: Annotated[str, Field(min_length=1, max_length=64)] = "related"


class LinkInput(BaseModel):
    ticket_id: Id
    links: Annotated[list[LinkIn], Field(min_length=1, max_length=100)]


class LinkOut(BaseModel):
    link_id: str
    entity_type: str
    entity_id: str
    relation: str
    created: bool = Field(description="False when the ticket was already linked to this entity.")


class LinkOutput(BaseModel):
    ticket_id: str
    links: list[LinkOut]


@psa.action("tickets.link_entities", label="Link entities to ticket", category=CATEGORY, side_effectful=True,
            permission="ticket:update")
def link_entities(params: LinkInput, ctx: ActionContext) -> LinkOutput:
    """Link a ticket to assets, RMM alerts, clients, contacts, tickets, project tasks or external ids."""
    ticket_row(ctx, params.ticket_id)
    out: list[LinkOut] = []
    for i, link in enumerate(params.links):
        if link.entity_type in _CHECKED:
            table, key = _CHECKED[link.entity_type]
            require(ctx, table, f"links.{i}.entity_id", **{key: link.entity_id})
        where = {"ticket_id": params.ticket_id, "entity_type": link.entity_type, "entity_id": link.entity_id}
        existing = ctx.records.get("entity_links", **where)
        created = existing is None
        if existing is None:
            existing = ctx.records.insert("entity_links", {**where, "relation": link.relation})
        out.append(LinkOut(link_id=existing["link_id"], entity_type=link.entity_type, entity_id=link.entity_id,
                           relation=existing["relation"], created=created))
    ctx.records.audit({"ticket_id": params.ticket_id, "link_ids": [link.link_id for link in out]})
    return LinkOutput(ticket_id=params.ticket_id, links=out)


class LinkedTo(BaseModel):
    entity_type: EntityType
    entity_id: Id


class FindInput(BaseModel):
    ticket_id: Id | None = None
    ticket_number: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    source: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    source_ref: Id | None = None
    client_id: Id | None = None
    linked_to: LinkedTo | None = Field(None, description="Only tickets linked to this entity.")
    state: Literal["open", "closed", "any"] = "any"
    limit: int = Field(50, ge=1, le=500)


class FindOutput(BaseModel):
    tickets: list[TicketOut]


@psa.action("tickets.find", label="Find tickets", category=CATEGORY, permission="ticket:read")
def find(params: FindInput, ctx: ActionContext) -> FindOutput:
    """Find tickets by id, number, source reference, client or linked entity; newest first. Each says
    whether it is still *untouched* by a human."""
    where = params.model_dump(include={"ticket_id", "ticket_number", "source", "source_ref", "client_id"},
                              exclude_none=True)
    if params.linked_to is not None:
        links = ctx.records.find("entity_links", {"entity_type": params.linked_to.entity_type,
                                                  "entity_id": params.linked_to.entity_id})
        where["ticket_id"] = [lk["ticket_id"] for lk in links if lk["ticket_id"] == where.get(
            "ticket_id", lk["ticket_id"])]
    known = statuses(ctx)
    if params.state != "any":
        wanted = [sid for sid, s in known.items() if s["is_closed"] == (params.state == "closed")]
        where["status_id"] = wanted
    rows = ctx.records.find("tickets", where, order_by=["-created_at", "-ticket_id"], limit=params.limit)
    ctx.records.audit({"ticket_ids": [r["ticket_id"] for r in rows]})
    human = touched(ctx, rows)
    return FindOutput(tickets=[ticket_out(ctx, r, known, human) for r in rows])
