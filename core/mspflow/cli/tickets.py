"""``mspflow tickets list`` and ``show``: the reference PSA's tickets, read through the reference schema.

Operator conveniences for standalone use (``mspflow-psa``); a host with its own ticket system has its own
screens. Only reads: tickets change through the ``tickets.*`` actions (``mspflow run``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from mspflow.cli import tickets_app
from mspflow.cli._output import JsonOpt, console, db_guard, fail, load, print_json, table


@tickets_app.command("list")
def tickets_list(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant whose tickets to list.")],
    status: Annotated[str | None, typer.Option("--status", help="Only tickets in this status (its name).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="How many, newest first.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """A tenant's tickets, newest first."""
    from mspflow.records import ticket_list

    instance = load(as_json)
    db_guard(as_json, instance)
    with instance.db.sessions() as session:
        rows = ticket_list(session, tenant, status=status, limit=limit)
    if as_json:
        print_json({"tickets": rows})
        return
    out = table("number", "title", "status", "priority", "assignee", "source", title=f"Tickets of {tenant}",
                ids=("number",))
    for r in rows:
        out.add_row(r["ticket_number"] or "-", r["title"], r["status"] or "-", r["priority"] or "-",
                    r["assigned_user_id"] or r["queue"] or "-",
                    f"{r['source']}:{r['source_ref']}" if r["source"] else "-")
    console().print(out)


@tickets_app.command("show")
def tickets_show(
    tenant: Annotated[str, typer.Argument(help="The tenant.")],
    number: Annotated[str, typer.Argument(help="The ticket's number (per tenant).")],
    as_json: JsonOpt = False,
) -> None:
    """One ticket with its comments, links, attachments and time entries."""
    from mspflow.records import ticket_detail

    instance = load(as_json)
    db_guard(as_json, instance)
    with instance.db.sessions() as session:
        ticket = ticket_detail(session, tenant, number)
    if ticket is None:
        fail(f"tenant {tenant!r} has no ticket {number!r}; `mspflow tickets list --tenant {tenant}` lists them",
             as_json=as_json, code="NOT_FOUND")
    if as_json:
        print_json({"ticket": ticket})
        return
    echo = typer.echo
    echo(f"#{ticket['ticket_number']} {ticket['title']}")
    for key in ("status", "priority", "board", "queue", "assigned_user_id", "client_id", "contact_id", "source",
                "source_ref", "version", "created_at", "closed_at", "resolution"):
        if ticket.get(key) not in (None, ""):
            echo(f"  {key}: {ticket[key]}")
    if ticket.get("description"):
        echo(f"\n{ticket['description']}")
    for c in ticket["comments"]:
        echo(f"\n[{c['created_at']}] {c['author_kind']}{' (internal)' if c['is_internal'] else ''}:\n{c['body']}")
    for link in ticket["links"]:
        echo(f"  linked {link['relation']}: {link['entity_type']} {link['entity_id']}")
    for a in ticket["attachments"]:
        echo(f"  attachment: {a['file_name']} ({a['size_bytes']} bytes, {a['storage_ref']})")
    for t in ticket["time_entries"]:
        echo(f"  time: {t['duration_minutes']} min by {t['user_id']} at {t['started_at']}")
