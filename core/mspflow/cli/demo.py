"""``mspflow demo``: the five MSP stories as shipped workflow definitions, against the simulators."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from mspflow.cli import app
from mspflow.cli._output import JsonOpt, console, db_guard, fail, load, print_json, table

MARK = {True: "[green]ok[/green]", False: "[red]FAILED[/red]"}


@app.command("demo")
def demo_cmd(
    as_json: JsonOpt = False,
    database: Annotated[str | None, typer.Option(
        "--database", help="Run on this database (postgresql+psycopg://…) instead of MSPFLOW_DATABASE_URL or "
                           "the embedded SQLite file; its schema is upgraded first.")] = None,
    broker: Annotated[str | None, typer.Option(
        "--broker", help="Run the stories on `mspflow worker` processes over this Redis (redis://…); the demo "
                         "starts and stops them.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes to start with a broker.")] = 2,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each run.")] = 120.0,
) -> None:
    """The five MSP stories: two tenants' palettes, disk-full self-remediation, Huntress enrichment,
    dispatcher escalation, an outage healed by a retry; then the run history and what to try next."""
    from mspflow import demo

    if database:
        os.environ["MSPFLOW_DATABASE_URL"] = database
    if broker:
        os.environ["MSPFLOW_BROKER_URL"] = broker
    instance = load(as_json)
    if database:
        _upgrade(instance, as_json)
    db_guard(as_json, instance)
    with_workers = workers if os.environ.get("MSPFLOW_BROKER_URL") else 0
    screen = None if as_json else console()
    if screen is not None:
        how = f"{with_workers} `mspflow worker` process(es) on {_masked(os.environ['MSPFLOW_BROKER_URL'])}" \
            if with_workers else "this process"
        screen.print(f"[bold]mspflow demo[/bold] on {instance.db.display_url()}, runs advanced by {how}")
    try:
        result = demo.run(instance, workers=with_workers, timeout=timeout,
                          progress=None if screen is None else lambda story: _print_story(screen, instance, story))
    except RuntimeError as exc:
        fail(str(exc), as_json=as_json, code="DEMO_FAILED")
    if screen is None:
        print_json(result)
    else:
        _print_tail(screen, result)
    if not result["ok"]:
        raise typer.Exit(1)


def _upgrade(instance: Any, as_json: bool) -> None:
    from mspflow.cli._output import describe_failure
    from mspflow.db.engine import Database
    from mspflow.db.migrate import upgrade

    try:
        upgrade(Database())
    except Exception as exc:
        described = describe_failure(exc)
        if described is None:
            raise
        fail(described[1], as_json=as_json, code=described[0])


def _masked(url: str) -> str:
    import re

    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _print_story(screen: Any, instance: Any, story: dict[str, Any]) -> None:
    from mspflow import demo

    name = story["name"]
    if "skipped" in story:
        screen.print(f"[bold]{name}[/bold]: [yellow]skipped[/yellow], {story['skipped']}")
        return
    if name == "palettes":
        screen.print(f"[bold]1. palettes[/bold] {MARK[story['ok']]}: {demo.CONNECTED} has every integration "
                     f"connected; {demo.DISCONNECTED} has none and an expired Teams add-on.")
        screen.print(_palettes_table(instance))
        return
    again = " (ran in an earlier demo: shown from its record, nothing done twice)" if story["replayed"] else ""
    screen.print(f"[bold]{name}[/bold] {MARK[story['ok']]}: run {story['run_id']} {story['status']}, "
                 f"attempt {story['attempt']}{again}")
    for alert in story.get("alerts", []):
        ticket = alert["ticket"]
        who = "a technician wrote on it, so it stays open" if alert["technician_wrote"] else "untouched, so closed"
        screen.print(f"  Tactical RMM alert on {alert['host']} → {alert['decision'].replace('_', ' ')}: "
                     f"ticket {ticket['ticket_number']} '{ticket['title']}', run {alert['run_status']}; after the "
                     f"alert reset: {ticket['status']} ({who})", highlight=False, soft_wrap=True)
    if failed := story.get("failed_first"):
        tried = f" after {failed['tries']} tries" if failed.get("tries", 1) > 1 else ""
        screen.print(f"  first attempt: {failed['status']}{tried}: {(failed['error'] or {}).get('message', '')}",
                     highlight=False, soft_wrap=True)
    for step in story["steps"]:
        how = step["status"]
        if step["replayed"]:
            how += " (replayed: recorded result, nothing done twice)"
        colour = {"SUCCEEDED": "green", "SKIPPED": "yellow"}.get(step["status"], "red")
        screen.print(f"  {step['path']} {step['action_id']}: [{colour}]{how}[/{colour}]")
        if "output" in step:
            text = json.dumps(step["output"])
            screen.print("    " + (text if len(text) <= 300 else text[:300] + " …"), highlight=False,
                         soft_wrap=True)
        elif step.get("error"):
            screen.print(f"    {step['error'].get('code')}: {step['error'].get('message')}", highlight=False,
                         soft_wrap=True)


def _palettes_table(instance: Any) -> Any:
    from mspflow import demo

    connected, disconnected = instance.catalog(demo.CONNECTED), instance.catalog(demo.DISCONNECTED)
    out = table("tile", demo.CONNECTED, demo.DISCONNECTED, title="Palettes side by side")
    for a, b in zip(connected.records, disconnected.records, strict=False):
        out.add_row(a.module.label, _cell(a), _cell(b))
    return out


def _cell(record: Any) -> str:
    return "[green]in the palette[/green]" if record.available else f"[red]hidden[/red] ({record.unavailable_reason})"


def _print_tail(screen: Any, result: dict[str, Any]) -> None:
    ran = [s for s in result["stories"] if "skipped" not in s]
    screen.print(f"[bold]{sum(s['ok'] for s in ran)} of {len(ran)} stories ok[/bold]"
                 + (f", {len(result['stories']) - len(ran)} skipped" if len(ran) < len(result["stories"]) else ""))
    history = table("workflow", "status", "attempt", "trigger", "run", title="Run history for demo-connected",
                    ids=("run",))
    for run in result["runs"]:
        trigger = run["trigger"] or {}
        history.add_row(run["workflow"], run["status"], str(run["attempt"]),
                        trigger.get("event_id") or trigger.get("type", "-"), run["run_id"])
    screen.print(history)
    events = result["outbox"]
    screen.print(f"Outbox for the host: {len(events)} undelivered event(s) "
                 f"({', '.join(sorted({e['event_type'] for e in events})) or 'none'}).")
    screen.print("Next, try:")
    for command in result["next"]:
        screen.print(f"  [bold]{command}[/bold]", highlight=False)
