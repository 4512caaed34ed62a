"""The Business Operations tile and what every action of it shares: the ticket shape, lookups, the audit entry."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mspflow import ActionContext, ActionError, Module

CATEGORY = "Business Operations"

psa = Module(
    "app:psa", label="Business Operations", icon="briefcase", availability="core", tile_kind="core",
    description="Tickets, clients, contacts, email, notifications, time, notes and tasks in the PSA.",
    default_action_id="tickets.create",
)

#: Statuses a tenant starts with, the first time a ticket is created for it.
DEFAULT_STATUSES = (("New", False, True), ("In Progress", False, False), ("Waiting", False, False),
                    ("Resolved", True, False), ("Closed", True, False))

Actor = Literal["human", "automation"]


class TicketOut(BaseModel):
    """A ticket as every ``tickets.*`` action returns it."""

    ticket_id: str
    ticket_number: str
    title: str
    description: str | None = None
    status: str | None = Field(None, description="The status name (per tenant).")
    is_closed: bool = False
    priority: str | None = None
    board: str | None = None
    client_id: str | None = None
    contact_id: str | None = None
    assigned_user_id: str | None = None
    assigned_team_id: str | None = None
    queue: str | None = None
    tags: list[str] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None
    source_ref: str | None = None
    version: int = Field(description="The concurrency token: pass it back as `expected_version` to update.")
    resolution: str | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    untouched: bool = Field(description="No human comment, no time entry and no manual status change yet "
                                        "(automation's own changes do not count).")


def statuses(ctx: ActionContext, *, seed: bool = False) -> dict[str, dict[str, Any]]:
    """The tenant's statuses by id (seeded with :data:`DEFAULT_STATUSES` on first write when it has none)."""
    rows = ctx.records.find("ticket_statuses", order_by=["position", "name"])
    if not rows and seed:
        for position, (name, closed, default) in enumerate(DEFAULT_STATUSES):
            rows.append(ctx.records.insert("ticket_statuses", {"name": name, "is_closed": closed,
                                                               "is_default": default, "position": position}))
    return {r["status_id"]: r for r in rows}


def status_named(ctx: ActionContext, name: str, field: str) -> dict[str, Any]:
    for row in statuses(ctx, seed=True).values():
        if row["name"].lower() == name.lower():
            return row
    known = ", ".join(r["name"] for r in statuses(ctx).values())
    raise ActionError.validation(f"no ticket status {name!r} for this tenant (known: {known})", fields=[field])


def ticket_row(ctx: ActionContext, ticket_id: str, *, for_update: bool = False) -> dict[str, Any]:
    row = ctx.records.get("tickets", ticket_id=ticket_id, for_update=for_update)
    if row is None:
        raise ActionError.not_found(f"no ticket {ticket_id!r}", ticket_id=ticket_id)
    return row


def touched(ctx: ActionContext, rows: list[dict[str, Any]]) -> set[str]:
    """Which of these tickets a human touched: a human comment, a time entry or a manual status change (two
    queries for any number of tickets)."""
    ids = [r["ticket_id"] for r in rows]
    out = {r["ticket_id"] for r in rows if r.get("human_touched")}
    if ids:
        out |= {c["ticket_id"] for c in ctx.records.find("ticket_comments", {"ticket_id": ids, "author_kind": "human"})}
        out |= {t["work_item_id"] for t in ctx.records.find("time_entries", {"work_item_type": "ticket",
                                                                             "work_item_id": ids})}
    return out


def ticket_out(ctx: ActionContext, row: dict[str, Any], known: dict[str, dict[str, Any]] | None = None,
               touched_ids: set[str] | None = None) -> TicketOut:
    if touched_ids is None:
        touched_ids = touched(ctx, [row])
    status = (known if known is not None else statuses(ctx)).get(row.get("status_id") or "")
    return TicketOut(
        ticket_id=row["ticket_id"], ticket_number=row["ticket_number"] or "", title=row["title"],
        description=row.get("description"), status=status["name"] if status else None,
        is_closed=bool(status and status["is_closed"]), priority=row.get("priority"), board=row.get("board"),
        client_id=row.get("client_id"), contact_id=row.get("contact_id"),
        assigned_user_id=row.get("assigned_user_id"), assigned_team_id=row.get("assigned_team_id"),
        queue=row.get("queue"), tags=list(row.get("tags") or []), custom_fields=dict(row.get("custom_fields") or {}),
        source=row.get("source"), source_ref=row.get("source_ref"), version=row.get("version") or 1,
        resolution=row.get("resolution"), created_at=row.get("created_at"), closed_at=row.get("closed_at"),
        untouched=row["ticket_id"] not in touched_ids,
    )


def require(ctx: ActionContext, table: str, field: str, **key: Any) -> dict[str, Any]:
    """The row, or ``NOT_FOUND`` naming the input field (another tenant's id is not found either)."""
    row = ctx.records.get(table, **key)
    if row is None:
        (name, value), = key.items()
        raise ActionError.not_found(f"no {table.rstrip('s').replace('_', ' ')} {value!r} (input {field})",
                                    field=field, **{name: value})
    return row


def require_user(ctx: ActionContext, user_id: str, field: str) -> dict[str, Any]:
    row = require(ctx, "users", field, user_id=user_id)
    if row["user_type"] != "internal" or row["is_inactive"]:
        raise ActionError.not_found(f"user {user_id!r} is not an active internal user (input {field})",
                                    field=field, user_id=user_id)
    return row


def check_client_contact(ctx: ActionContext, client_id: str | None, contact_id: str | None,
                         prefix: str = "") -> None:
    if client_id is not None:
        require(ctx, "clients", f"{prefix}client_id", client_id=client_id)
    if contact_id is not None:
        contact = require(ctx, "contacts", f"{prefix}contact_id", contact_id=contact_id)
        if client_id is not None and contact["client_id"] not in (None, client_id):
            raise ActionError.validation(f"contact {contact_id!r} belongs to another client",
                                         fields=[f"{prefix}contact_id"])


def event_payload(ctx: ActionContext, row: dict[str, Any]) -> dict[str, Any]:
    return {"tenant": ctx.tenant_id, "ticket_id": row["ticket_id"], "ticket_number": row["ticket_number"],
            "title": row["title"], "priority": row.get("priority"), "source": row.get("source"),
            "source_ref": row.get("source_ref"), "client_id": row.get("client_id")}
