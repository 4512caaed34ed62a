"""``mspflow alerts``: a tenant's RMM alerts, alert rules and maintenance windows; polls and ingestion.

They parse, call :mod:`mspflow.alerts` and print. Every rule and window is validated when saved, with
errors naming the field (``conditions.message_regex: not a valid regular expression: ...``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from mspflow.cli import app
from mspflow.cli._output import JsonOpt, console, db_guard, fail, load, print_json, table

alerts_app = typer.Typer(help="RMM alerts: list them; their rules, maintenance windows, polls.", no_args_is_help=True)
rules_app = typer.Typer(help="Alert rules: first match by priority decides (empty conditions: catch-all).",
                        no_args_is_help=True)
windows_app = typer.Typer(help="Maintenance windows: alerts inside one are stored suppressed, nothing else.",
                          no_args_is_help=True)
alerts_app.add_typer(rules_app, name="rules")
alerts_app.add_typer(windows_app, name="windows")
app.add_typer(alerts_app, name="alerts")

TenantOpt = Annotated[str, typer.Option("--tenant", help="The tenant.")]
T = TypeVar("T")


def _json_arg(value: str | None, name: str, as_json: bool) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        fail(f"{name} is not valid JSON: {exc}", as_json=as_json, code="VALIDATION_ERROR")


def _write(as_json: bool, work: Callable[[Any], T]) -> T:
    """Run ``work(session)`` in a write transaction; an ActionError is one clear line (exit 1)."""
    from mspflow.errors import ActionError

    instance = load(as_json)
    db_guard(as_json, instance)
    try:
        with instance.db.session(write=True) as session:
            return work(session)
    except ActionError as exc:
        fail(exc.message, as_json=as_json, code=exc.code)


# -- alerts list / poll / ingest ---------------------------------------------------------------------------


@alerts_app.command("list")
def alerts_list(
    tenant: TenantOpt,
    status: Annotated[str | None, typer.Option(help="active, acknowledged, suppressed or resolved.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider's alerts.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """A tenant's alerts, newest first."""
    from sqlalchemy import select

    from mspflow.db.models import RmmAlert

    statuses = ("active", "acknowledged", "suppressed", "resolved")
    if status is not None and status not in statuses:
        fail(f"--status must be one of {', '.join(statuses)}, not {status!r}", as_json=as_json,
             code="VALIDATION_ERROR")
    instance = load(as_json)
    db_guard(as_json, instance)
    q = select(RmmAlert).where(RmmAlert.tenant == tenant)
    if status is not None:
        q = q.where(RmmAlert.status == status)
    if provider is not None:
        q = q.where(RmmAlert.provider == provider)
    with instance.db.sessions() as session:
        rows = [_alert_json(r) for r in session.execute(
            q.order_by(RmmAlert.created_at.desc(), RmmAlert.alert_id).limit(limit)).scalars()]
    if as_json:
        print_json(rows)
        return
    out = table("alert_id", "provider", "status", "severity", "device", "occurrences", "ticket", "title",
                title=f"alerts of {tenant}", ids=("alert_id", "ticket"))
    for r in rows:
        out.add_row(r["alert_id"], r["provider"], r["status"], r["severity"] or "", r["device_id"] or "",
                    str(r["occurrence_count"]), r["ticket_id"] or "", r["title"] or "")
    console().print(out)


def _alert_json(r: Any) -> dict[str, Any]:
    from mspflow.alerts.pipeline import payload

    data = payload(r, outcome=r.pipeline_state)
    data.pop("outcome")
    return data | {"suppressed_by_window_id": r.suppressed_by_window_id, "acknowledged_at":
                   None if r.acknowledged_at is None else r.acknowledged_at.isoformat(),
                   "acknowledged_by": r.acknowledged_by, "reset_error": r.reset_error}


@alerts_app.command("poll")
def alerts_poll(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Poll this tenant's integration now "
                                               "(with --provider), whether due or not.")] = None,
    provider: Annotated[str | None, typer.Option(help="With --tenant: the integration to poll.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the reconciliation polls that are due (what `mspflow worker` does every 30 s), or one now."""
    from mspflow.alerts.polling import poll_due, reconcile
    from mspflow.errors import ActionError

    if (tenant is None) != (provider is None):
        fail("pass both --tenant and --provider to poll one integration now, or neither", as_json=as_json,
             code="VALIDATION_ERROR")
    instance = load(as_json)
    db_guard(as_json, instance)
    try:
        reports: list[dict[str, Any]] = [{"tenant": tenant, "provider": provider,
                                          **reconcile(instance, tenant, provider)}] \
            if tenant is not None and provider is not None else poll_due(instance)
    except ActionError as exc:
        fail(exc.message, as_json=as_json, code=exc.code)
    if as_json:
        print_json(reports)
        return
    if not reports:
        typer.echo("no poll was due")
    for r in reports:
        done = ", ".join(f"{k} {r[k]}" for k in ("active", "entered", "released", "reset", "waiting") if k in r)
        typer.echo(f"{r['tenant']} {r['provider']}: {r.get('error') or done}")


@alerts_app.command("ingest")
def alerts_ingest(
    tenant: TenantOpt,
    provider: Annotated[str, typer.Option(help="Whose webhook payload it is, e.g. tacticalrmm.")],
    payload_file: Annotated[str, typer.Argument(help="The webhook body as the vendor posts it; - for stdin.")],
    as_json: JsonOpt = False,
) -> None:
    """Run one webhook payload through the provider's normalizer and the alert pipeline now, in this process
    (what `mspflow serve` and a worker do with a delivery; for demos and tests)."""
    from pathlib import Path

    from mspflow.alerts.pipeline import ingest_payload
    from mspflow.errors import ActionError
    from mspflow.inbound.receivers import Ignore

    try:
        raw = sys.stdin.read() if payload_file == "-" else Path(payload_file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {payload_file}: {exc.strerror}", as_json=as_json)
    instance = load(as_json)
    db_guard(as_json, instance)
    try:
        decisions = ingest_payload(instance, tenant, provider, raw)
    except Ignore as exc:
        fail(f"ignored: {exc.reason}", as_json=as_json, code="IGNORED")
    except ActionError as exc:
        fail(exc.message, as_json=as_json, code=exc.code)
    rows = [{"alert_id": d.alert_id, "outcome": d.outcome, "ticket_id": d.ticket_id} for d in decisions]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        typer.echo(f"alert {r['alert_id']}: {r['outcome']}" + (f", ticket {r['ticket_id']}" if r["ticket_id"] else ""))


# -- rules -----------------------------------------------------------------------------------------------


@rules_app.command("list")
def rules_list(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """A tenant's alert rules in evaluation order."""
    from mspflow.alerts.rules import list_rules

    rows = _write(as_json, lambda s: list_rules(s, tenant))
    if as_json:
        print_json(rows)
        return
    out = table("rule_id", "priority", "name", "active", "conditions", "actions", title=f"alert rules of {tenant}",
                ids=("rule_id",))
    for r in rows:
        out.add_row(r["rule_id"], str(r["priority"]), r["name"], "yes" if r["is_active"] else "no",
                    json.dumps(r["conditions"]), json.dumps(r["actions"]))
    console().print(out)


@rules_app.command("add")
def rules_add(
    tenant: TenantOpt,
    name: Annotated[str, typer.Option(help="What the rule is for.")],
    priority: Annotated[int, typer.Option(help="Lower is tried first.")] = 100,
    conditions: Annotated[str | None, typer.Option(help='JSON, e.g. {"severities": ["CRITICAL"], '
                                                   '"message_regex": "disk"}; none: catch-all.')] = None,
    actions: Annotated[str | None, typer.Option(help='JSON, e.g. {"create_ticket": {"board": "Alerts"}, '
                                                '"auto_resolve_ticket": true}.')] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Save it switched off.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add an alert rule (validated: a bad regex is refused, naming the field)."""
    from mspflow.alerts.rules import add_rule

    cond, act = _json_arg(conditions, "--conditions", as_json), _json_arg(actions, "--actions", as_json)
    row = _write(as_json, lambda s: add_rule(s, tenant, name=name, priority=priority, conditions=cond, actions=act,
                                             is_active=not inactive))
    print_json(row) if as_json else typer.echo(f"rule {row['rule_id']} added: {row['name']} "
                                               f"(priority {row['priority']})")


@rules_app.command("update")
def rules_update(
    tenant: TenantOpt,
    rule_id: str,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    priority: Annotated[int | None, typer.Option(help="A new priority.")] = None,
    conditions: Annotated[str | None, typer.Option(help="Replace the conditions (JSON).")] = None,
    actions: Annotated[str | None, typer.Option(help="Replace the actions (JSON).")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Switch it on or off.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an alert rule (validated like `add`)."""
    from mspflow.alerts.rules import update_rule

    cond, act = _json_arg(conditions, "--conditions", as_json), _json_arg(actions, "--actions", as_json)
    row = _write(as_json, lambda s: update_rule(s, tenant, rule_id, name=name, priority=priority, conditions=cond,
                                                actions=act, is_active=active))
    print_json(row) if as_json else typer.echo(f"rule {row['rule_id']} updated")


@rules_app.command("delete")
def rules_delete(tenant: TenantOpt, rule_id: str, as_json: JsonOpt = False) -> None:
    """Delete an alert rule (alerts it matched keep its id)."""
    from mspflow.alerts.rules import delete_rule

    _write(as_json, lambda s: delete_rule(s, tenant, rule_id))
    print_json({"deleted": rule_id}) if as_json else typer.echo(f"rule {rule_id} deleted")


@rules_app.command("reorder")
def rules_reorder(
    tenant: TenantOpt,
    rule_ids: Annotated[list[str], typer.Argument(help="Every rule id of the tenant, first to be tried first.")],
    as_json: JsonOpt = False,
) -> None:
    """Put the tenant's rules in this order (priorities 10, 20, ...)."""
    from mspflow.alerts.rules import reorder_rules

    rows = _write(as_json, lambda s: reorder_rules(s, tenant, rule_ids))
    print_json(rows) if as_json else typer.echo("order: " + ", ".join(f"{r['name']} ({r['priority']})" for r in rows))


# -- windows ---------------------------------------------------------------------------------------------


@windows_app.command("list")
def windows_list(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """A tenant's maintenance windows."""
    from mspflow.alerts.windows import list_windows

    rows = _write(as_json, lambda s: list_windows(s, tenant))
    if as_json:
        print_json(rows)
        return
    out = table("window_id", "name", "scope", "when", title=f"maintenance windows of {tenant}", ids=("window_id",))
    for r in rows:
        scope = ", ".join(f"{k} {r[k]}" for k in ("provider", "client_id", "asset_id") if r[k]) or "everything"
        when = f"{r['starts_at']} to {r['ends_at']}" if r["recurrence"] == "once" else (
            f"weekly on {r['weekdays']} at {r['start_time']} for {r['duration_minutes']} min ({r['timezone']})")
        out.add_row(r["window_id"], r["name"], scope, when)
    console().print(out)


@windows_app.command("add")
def windows_add(
    tenant: TenantOpt,
    name: Annotated[str, typer.Option(help="What the window is for.")],
    provider: Annotated[str | None, typer.Option(help="Only this integration's alerts (default: all).")] = None,
    client_id: Annotated[str | None, typer.Option(help="Only this client's alerts.")] = None,
    asset_id: Annotated[str | None, typer.Option(help="Only this asset's alerts.")] = None,
    starts_at: Annotated[str | None, typer.Option(help="One-off: start (ISO-8601; no offset: --timezone).")] = None,
    ends_at: Annotated[str | None, typer.Option(help="One-off: end.")] = None,
    weekdays: Annotated[str | None, typer.Option(help="Weekly: days, 0=Monday ... 6=Sunday, e.g. 2,5.")] = None,
    start_time: Annotated[str | None, typer.Option(help="Weekly: HH:MM local time.")] = None,
    duration_minutes: Annotated[int | None, typer.Option(help="Weekly: how long.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Berlin.")] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    """Add a one-off (--starts-at/--ends-at) or weekly (--weekdays/--start-time/--duration-minutes) window."""
    from mspflow.alerts.windows import add_window

    days: list[Any] | None = None
    if weekdays is not None:
        days = [int(d) if d.strip().isdigit() else d.strip() for d in weekdays.split(",")]
    spec = {"name": name, "provider": provider, "client_id": client_id, "asset_id": asset_id,
            "recurrence": "weekly" if weekdays is not None else "once", "starts_at": starts_at, "ends_at": ends_at,
            "weekdays": days, "start_time": start_time, "duration_minutes": duration_minutes, "timezone": timezone}
    row = _write(as_json, lambda s: add_window(s, tenant, **spec))
    print_json(row) if as_json else typer.echo(f"window {row['window_id']} added: {row['name']}")


@windows_app.command("delete")
def windows_delete(tenant: TenantOpt, window_id: str, as_json: JsonOpt = False) -> None:
    """Delete a maintenance window."""
    from mspflow.alerts.windows import delete_window

    _write(as_json, lambda s: delete_window(s, tenant, window_id))
    print_json({"deleted": window_id}) if as_json else typer.echo(f"window {window_id} deleted")
