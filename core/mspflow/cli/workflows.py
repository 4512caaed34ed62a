"""``mspflow workflows publish|list|show|disable|run|dispatch`` and ``mspflow runs list|show|retry``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mspflow.cli import runs_app, workflows_app
from mspflow.cli._output import JsonOpt, console, db_guard, fail, load, note, print_json, table, warn

if TYPE_CHECKING:
    from mspflow.app import App

T = TypeVar("T")
TenantOpt = Annotated[str, typer.Option("--tenant", help="Tenant id.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait until the run is final.")]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds --wait waits.")]


@contextmanager
def _app(as_json: bool) -> Iterator[App]:
    instance = load(as_json)
    db_guard(as_json, instance)
    try:
        yield instance
    finally:
        instance.close()


def _call(as_json: bool, fn: Callable[[], T]) -> T:
    """``fn()``, with an :class:`mspflow.ActionError` (or a --wait timeout) as one ``error:`` line, exit 1."""
    from mspflow.errors import ActionError

    try:
        return fn()
    except ActionError as err:
        if as_json:
            print_json({"ok": False, "error": err.to_dict()})
        for problem in err.details.get("errors") or []:
            where = f"step {problem['step']}" if problem.get("step") else problem.get("path") or "workflow"
            typer.echo(f"  {where}: {problem['code']}: {problem['message']}", err=True)
        fail(f"{err.code}: {err.message}")
    except TimeoutError as exc:
        fail(str(exc), as_json=as_json, code="TRANSIENT_FAILURE")


def _payload(raw: str | None) -> dict[str, Any]:
    from mspflow.cli.run import read_input

    if raw is None:
        return {}
    try:
        return read_input(raw)
    except Exception as exc:
        fail(str(exc).replace("--input", "--payload"), code="VALIDATION_ERROR")


# -- workflows ------------------------------------------------------------------------------------------


@workflows_app.command("publish")
def publish_cmd(
    file: Annotated[Path, typer.Argument(help="A workflow definition, .yaml/.yml or .json.")],
    tenant: TenantOpt,
    as_json: JsonOpt = False,
) -> None:
    """Validate a workflow definition and store it as the tenant's next version."""
    with _app(as_json) as instance:
        published = _call(as_json, lambda: instance.workflows.publish(tenant, file))
    if as_json:
        print_json({"ok": True, **published})
        return
    for warning in published["warnings"]:
        warn(f"step {warning['step']}: {warning['message']}")
    what = "published" if published["created"] else "unchanged, already published as"
    trigger = published["trigger"].get("event") or "manual"
    typer.echo(f"{published['name']}: {what} version {published['version']} for {tenant} (trigger: {trigger})")


@workflows_app.command("list")
def list_cmd(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """The tenant's workflows (newest version of each)."""
    with _app(as_json) as instance:
        rows = instance.workflows.definitions(tenant)
    if as_json:
        print_json({"tenant": tenant, "workflows": rows})
        return
    out = table("workflow", "version", "trigger", "enabled", "steps", "warnings", title=f"Workflows of {tenant}",
                ids=("workflow",))
    for w in rows:
        out.add_row(w["name"], str(w["version"]), _trigger(w["trigger"]), "yes" if w["enabled"] else "no",
                    str(len(w["steps"])), str(len(w["warnings"])))
    console().print(out)


def _trigger(trigger: dict[str, Any] | None) -> str:
    if not trigger or not trigger.get("event"):
        return "manual"
    flt = trigger.get("filter") or {}
    return str(trigger["event"]) + (" where " + ", ".join(f"{k}={json.dumps(v)}" for k, v in flt.items())
                                    if flt else "")


@workflows_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    tenant: TenantOpt,
    version: Annotated[int | None, typer.Option(help="A version (default: the newest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One published workflow: trigger and steps."""
    with _app(as_json) as instance:
        w = _call(as_json, lambda: instance.workflows.get(tenant, name, version))
    if as_json:
        print_json(w)
        return
    screen = console()
    screen.print(f"[bold]{w['name']}[/bold] version {w['version']} ({'enabled' if w['enabled'] else 'disabled'}), "
                 f"trigger: {_trigger(w['trigger'])}")
    if w["description"]:
        screen.print(w["description"], highlight=False)
    for step in w["steps"]:
        extra = (f" if {json.dumps(step['if'])}" if "if" in step else "") + (
            " (on error: continue)" if step.get("on_error") == "continue" else "")
        screen.print(f"  {step['path']}: {step['action_id']}{extra}", highlight=False)
    for warning in w["warnings"]:
        screen.print(f"  [yellow]warning[/yellow] step {warning['step']}: {warning['message']}", highlight=False)


@workflows_app.command("disable")
def disable_cmd(name: Annotated[str, typer.Argument(help="Workflow name.")], tenant: TenantOpt,
                as_json: JsonOpt = False) -> None:
    """Stop a workflow from starting (publishing it again re-enables it)."""
    with _app(as_json) as instance:
        _call(as_json, lambda: instance.workflows.disable(tenant, name))
    if as_json:
        print_json({"ok": True, "name": name, "enabled": False})
    else:
        typer.echo(f"{name}: disabled for {tenant}")


@workflows_app.command("run")
def run_cmd(
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    tenant: TenantOpt,
    payload: Annotated[str | None, typer.Option("--payload", help="Trigger payload: JSON, @file or -.")] = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 600.0,
    as_json: JsonOpt = False,
) -> None:
    """Start a run of the tenant's workflow by hand."""
    data = _payload(payload)
    with _app(as_json) as instance:
        if instance.workflows.in_process and not wait:
            note("no MSPFLOW_BROKER_URL, so the run advances in this process; waiting for it")
        run = _call(as_json, lambda: instance.workflows.start(name, tenant=tenant, payload=data, wait=wait,
                                                              timeout=timeout))
    _print_run(run, as_json)


@workflows_app.command("dispatch")
def dispatch_cmd(as_json: JsonOpt = False) -> None:
    """Start the workflows that new outbox events trigger (`mspflow worker` and `serve` do it on their own)."""
    with _app(as_json) as instance:
        started = _call(as_json, lambda: instance.workflows.dispatch_events())
    if as_json:
        print_json({"started": started})
    else:
        typer.echo(f"{len(started)} run(s) started" + (f": {', '.join(started)}" if started else ""))


# -- runs -------------------------------------------------------------------------------------------------


@runs_app.command("list")
def runs_list_cmd(
    tenant: TenantOpt,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="RUNNING, SUCCEEDED or FAILED.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The tenant's workflow runs, newest first."""
    with _app(as_json) as instance:
        rows = instance.workflows.runs(tenant, workflow=workflow, status=status, limit=limit)
    if as_json:
        print_json({"tenant": tenant, "runs": rows})
        return
    out = table("run", "workflow", "status", "steps", "trigger", "created", "error", title=f"Runs of {tenant}",
                ids=("run", "workflow"))
    for r in rows:
        done = sum(1 for s in r["steps"] if s["status"] in ("SUCCEEDED", "SKIPPED"))
        out.add_row(r["run_id"], f"{r['workflow']}@{r['version']}", r["status"], f"{done}/{len(r['steps'])}",
                    r["trigger"].get("type", ""), r["created_at"], ((r["error"] or {}).get("message") or "")[:80])
    console().print(out)


@runs_app.command("show")
def runs_show_cmd(run_id: Annotated[str, typer.Argument(help="Run id.")], tenant: TenantOpt,
                  as_json: JsonOpt = False) -> None:
    """One run: status, each step's outcome and output, the error that stopped it."""
    with _app(as_json) as instance:
        run = _call(as_json, lambda: instance.workflows.run(tenant, run_id))
    _print_run(run, as_json, exit_on_failure=False)


@runs_app.command("retry")
def runs_retry_cmd(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    tenant: TenantOpt,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 600.0,
    as_json: JsonOpt = False,
) -> None:
    """Drive a run again: a failed one from its first step (succeeded steps replay, side effects are not
    repeated), a running one whose worker died from where it stopped."""
    with _app(as_json) as instance:
        run = _call(as_json, lambda: instance.workflows.retry(tenant, run_id, wait=wait, timeout=timeout))
    _print_run(run, as_json)


def _print_run(run: dict[str, Any], as_json: bool, *, exit_on_failure: bool = True) -> None:
    if as_json:
        print_json(run)
    else:
        screen = console()
        colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(run["status"], "yellow")
        screen.print(f"run {run['run_id']} of {run['workflow']}@{run['version']}: "
                     f"[{colour}]{run['status']}[/{colour}]")
        for step in run["steps"]:
            how = step["status"] + (" (replayed: recorded result, nothing done twice)" if step.get("replayed") else "")
            if (step.get("tries") or 1) > 1:
                how += f" after {step['tries']} tries"
            line = f"  {step['path']} {step['action_id']}: {how}"
            if step.get("error"):
                line += f" {step['error']['code']}: {step['error']['message']}"
            screen.print(line, highlight=False, soft_wrap=True)
    if run["status"] == "FAILED" and exit_on_failure:
        fail((run.get("error") or {}).get("message") or "the run failed")
