"""``mspflow outbox list`` and ``ack``: events for the host."""

from __future__ import annotations

from typing import Annotated

import typer

from mspflow.cli import outbox_app
from mspflow.cli._output import JsonOpt, console, db_guard, load, print_json, table


@outbox_app.command("list")
def outbox_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's events.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    include_delivered: Annotated[bool, typer.Option("--all", help="Delivered events too.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="How many, oldest first.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Undelivered outbox events, oldest first."""
    from mspflow import outbox

    instance = load(as_json)
    db_guard(as_json, instance)
    with instance.db.sessions() as session:
        events = outbox.pending(session, tenant=tenant, event_type=event_type, limit=limit,
                                include_delivered=include_delivered)
    if as_json:
        print_json({"events": events})
        return
    out = table("event", "tenant", "type", "created", "delivered", title="Outbox", ids=("event", "tenant"))
    for e in events:
        out.add_row(e["event_id"], e["tenant"], e["event_type"], e["created_at"] or "", e["delivered_at"] or "-")
    console().print(out)


@outbox_app.command("ack")
def outbox_ack(
    event_ids: Annotated[list[str], typer.Argument(help="Event ids to mark delivered.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only if they belong to this tenant.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark outbox events delivered (acking twice is harmless)."""
    from mspflow import outbox

    instance = load(as_json)
    db_guard(as_json, instance)
    with instance.db.session() as session:
        count = outbox.ack(session, event_ids, tenant=tenant)
    if as_json:
        print_json({"acked": count})
    else:
        typer.echo(f"{count} event(s) marked delivered")
