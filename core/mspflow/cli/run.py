"""One action call and the record of calls: ``run``, ``invocations``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mspflow.cli import app
from mspflow.cli._output import JsonOpt, console, db_guard, load, print_json, table

if TYPE_CHECKING:
    from mspflow.app import App

INVOCATIONS_TABLE = "workflow_action_invocations"


def read_input(raw: str) -> dict[str, Any]:
    """``--input``: a JSON object, ``@file`` or ``-`` (stdin); anything else is a VALIDATION_ERROR."""
    from pathlib import Path

    from mspflow.errors import ActionError

    try:
        text = sys.stdin.read() if raw == "-" else Path(raw[1:]).read_text() if raw.startswith("@") else raw
    except OSError as exc:
        raise ActionError.validation(f"cannot read the input file: {exc.strerror}", fields=["--input"]) from None
    except UnicodeDecodeError:
        raise ActionError.validation("the input is not valid UTF-8 text", fields=["--input"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ActionError.validation(f"--input is not valid JSON: {exc.msg} at line {exc.lineno} column "
                                     f"{exc.colno}", fields=["--input"]) from None
    except RecursionError:
        raise ActionError.validation("--input is nested too deeply", fields=["--input"],
                                     reason="INPUT_TOO_DEEP") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ActionError.validation(f"--input is not usable JSON: {exc}", fields=["--input"]) from None
    if not isinstance(data, dict):
        raise ActionError.validation("--input must be a JSON object", fields=["--input"])
    return data


def print_result(result: dict[str, Any], as_json: bool) -> None:
    """Success: the output (exit 0). Failure: one line on stderr, plus ``result`` on stdout with --json."""
    if as_json:
        print_json(result)
    if result["ok"]:
        if not as_json:
            screen = console()
            note = " (replayed: the recorded result of an earlier identical call)" if result.get("replayed") else ""
            screen.print(f"[green]ok[/green] invocation {result.get('invocation_id')}{note}")
            screen.print_json(data=result["output"])
        return
    err = result["error"]
    line = f"error: {err['code']}: {' '.join(str(err['message']).split())}"
    if err.get("retryable"):
        line += " (retryable: running the same call again may succeed)"
    if err.get("details") and not as_json:
        line += " (details: --json)"
    typer.echo(line, err=True)
    raise typer.Exit(1)


def _explain_database_failure(instance: App, result: dict[str, Any]) -> dict[str, Any]:
    """A call the runtime could not record: say so when the invocation table is missing (never "try again")."""
    error = result.get("error") or {}
    if (error.get("details") or {}).get("reason") != "DATABASE_UNAVAILABLE":
        return result
    from mspflow.db.errors import schema_problem

    problem = schema_problem(instance.db, [INVOCATIONS_TABLE])
    if problem is None or problem.code != "SCHEMA_NOT_CURRENT":
        return result
    return result | {"error": error | {"code": "INTERNAL_ERROR", "message": str(problem), "retryable": False,
                                       "details": {**error["details"], "reason": "SCHEMA_NOT_CURRENT"}}}


@app.command("run")
def run_cmd(
    action_id: Annotated[str, typer.Argument(help="e.g. transform.text.render")],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id.")],
    input: Annotated[str, typer.Option("--input", help="JSON object, @file, or - for stdin.")] = "{}",
    version: Annotated[int | None, typer.Option(help="Action version (default: latest).")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Workflow run id (replay key part).")] = None,
    step_path: Annotated[str | None, typer.Option("--step-path", help="Step path in the run.")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key", help="Explicit key.")] = None,
    enqueue: Annotated[bool, typer.Option("--enqueue", help="Queue it for a worker.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="With --enqueue: wait for the result.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Run one action call for a tenant, now or through a worker."""
    from mspflow.errors import ActionError

    instance = load(as_json)
    db_guard(as_json, instance)
    try:
        data = read_input(input)
        if not enqueue:
            try:
                result = instance.execute(action_id, tenant=tenant, input=data, version=version, run_id=run_id,
                                          step_path=step_path, idempotency_key=idempotency_key)
            except RecursionError:
                raise ActionError.validation("--input is nested too deeply", fields=["--input"],
                                             reason="INPUT_TOO_DEEP") from None
            print_result(_explain_database_failure(instance, result.to_json()), as_json)
            return
        from datetime import UTC, datetime

        asked_at = datetime.now(UTC)
        invocation_id = instance.enqueue(action_id, tenant=tenant, input=data, version=version, run_id=run_id,
                                         step_path=step_path, idempotency_key=idempotency_key)
    except ActionError as err:
        print_result({"ok": False, "error": err.to_dict(), "invocation_id": None, "replayed": False}, as_json)
        return
    if instance.dispatcher.embedded and not wait:
        typer.echo("note: no MSPFLOW_BROKER_URL, so the call runs in this process; waiting for it", err=True)
        wait = True
    if not wait:
        if as_json:
            print_json({"ok": True, "invocation_id": invocation_id, "status": "QUEUED"})
        else:
            typer.echo(f"queued invocation {invocation_id}; see `mspflow invocations --tenant {tenant}`")
        return
    try:
        record = instance.wait(invocation_id, timeout=timeout)
    except TimeoutError as exc:
        print_result({"ok": False, "invocation_id": invocation_id, "error": {
            "code": "TRANSIENT_FAILURE", "message": f"{exc}; is a worker running (`mspflow worker`)?",
            "retryable": True, "details": {"invocation_id": invocation_id}}}, as_json)
        return
    finally:
        instance.close()
    # An invocation recorded before this command asked is an earlier identical call's result.
    replayed = datetime.fromisoformat(record["created_at"]) < asked_at
    if record["status"] == "SUCCEEDED":
        print_result({"ok": True, "output": record["output"], "invocation_id": invocation_id,
                      "replayed": replayed}, as_json)
    else:
        print_result({"ok": False, "error": record["error"], "invocation_id": invocation_id,
                      "replayed": replayed}, as_json)


@app.command("invocations")
def invocations_cmd(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id.")],
    status: Annotated[str | None, typer.Option(help="QUEUED, RUNNING, SUCCEEDED or FAILED.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent action calls of a tenant, newest first (inputs are stored redacted)."""
    from mspflow.invocations import recent

    instance = load(as_json)
    db_guard(as_json, instance)
    with instance.db.sessions() as session:
        rows = recent(session, tenant, status=status, limit=limit)
    if as_json:
        print_json({"tenant": tenant, "invocations": rows})
        return
    out = table("invocation", "action", "status", "attempt", "created", "error", title=f"Invocations of {tenant}",
                ids=("invocation", "action"))
    for r in rows:
        error = f"{r['error']['code']}: {r['error']['message']}" if r["error"] else ""
        out.add_row(r["invocation_id"], f"{r['action_id']}@{r['version']}", r["status"], str(r["attempt"]),
                    r["created_at"] or "", error[:80])
    console().print(out)
