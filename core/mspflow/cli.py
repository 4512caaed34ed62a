"""The ``mspflow`` command line (Typer).

Human-readable tables by default, ``--json`` for scripts. Exit codes: 0 ok, 1 failure, 2 usage.
Heavy imports happen inside commands so ``mspflow --help`` and friends start fast.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from mspflow.app import App
    from mspflow.catalog import Catalog

app = typer.Typer(
    name="mspflow",
    help="Integration workflow modules for an MSP's PSA: catalogs, actions, tenants, workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenant connections and secrets (standalone use).", no_args_is_help=True)
outbox_app = typer.Typer(help="Events for the host (e.g. SCHEDULE_ENTRY_CREATED).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
sim_app = typer.Typer(help="Vendor sandbox simulators.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
app.add_typer(sim_app, name="sim")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


class CliFailure(Exception):
    """A failure to report in one line (exit 1); ``code`` is the machine-readable kind."""

    def __init__(self, message: str, code: str = "ERROR") -> None:
        super().__init__(message)
        self.code = code


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _fail(message: str, *, as_json: bool = False, code: str = "ERROR") -> NoReturn:
    if as_json:
        _print_json({"error": {"code": code, "message": message}})
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _load(as_json: bool = False) -> App:
    """The App, with plugin load errors reported on stderr (strict mode turns them into a failure)."""
    from mspflow.app import App
    from mspflow.plugins import PluginLoadFailure

    instance = App.from_env()
    try:
        errors = instance.plugins.errors
    except PluginLoadFailure as exc:
        _fail(str(exc), as_json=as_json, code="PLUGIN_LOAD_ERROR")
    if errors:
        typer.echo(f"warning: {len(errors)} plugin(s) failed to load; see `mspflow plugins`", err=True)
    return instance


def _db_guard(as_json: bool, instance: App) -> None:
    """Surface schema and connection problems as one helpful line instead of a traceback."""
    from sqlalchemy.exc import OperationalError

    from mspflow.db.migrate import SchemaNotCurrent

    try:
        instance.db  # noqa: B018 - first touch creates or checks the schema
    except SchemaNotCurrent as exc:
        _fail(str(exc), as_json=as_json, code="SCHEMA_NOT_CURRENT")
    except OperationalError as exc:
        _fail(f"cannot reach the database: {str(exc.orig).strip().splitlines()[0]}", as_json=as_json,
              code="DATABASE_UNAVAILABLE")


# -- db ------------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Create or migrate the schema (MSPFLOW_DATABASE_URL, or the embedded SQLite file)."""
    from sqlalchemy.exc import OperationalError

    from mspflow.db.engine import Database
    from mspflow.db.migrate import current_revision, upgrade

    db = Database()
    try:
        before = current_revision(db)
        upgrade(db, revision)
    except OperationalError as exc:
        _fail(f"cannot reach the database {db.display_url()}: {str(exc.orig).strip().splitlines()[0]}")
    except Exception as exc:
        _fail(f"migration failed on {db.display_url()}: {exc}")
    after = current_revision(db)
    typer.echo(f"{db.display_url()}: schema at {after} (was {before or 'empty'})")


# -- plugins, actions, describe ------------------------------------------------------------------------


@app.command("plugins")
def plugins_cmd(as_json: JsonOpt = False) -> None:
    """Installed plugins: distribution, version, modules, action count, load errors."""
    from mspflow.plugins import Plugins

    loaded = Plugins(strict=False)
    data: dict[str, list[dict[str, Any]]] = {
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version, "builtin": p.builtin,
             "modules": p.modules, "action_count": p.action_count}
            for p in loaded.loaded
        ],
        "load_errors": [
            {"distribution": e.distribution, "version": e.version, "entry_point": e.entry_point,
             "error": e.error}
            for e in loaded.errors
        ],
    }
    if as_json:
        _print_json(data)
    else:
        from rich.table import Table

        table = Table("plugin", "distribution", "version", "modules", "actions", title="Plugins")
        for p in data["plugins"]:
            name = f"{p['name']} (built-in)" if p["builtin"] else p["name"]
            table.add_row(name, p["distribution"], p["version"], ", ".join(p["modules"]) or "-",
                          str(p["action_count"]))
        console = _console()
        console.print(table)
        if not [p for p in data["plugins"] if not p["builtin"]]:
            console.print("No integration plugins installed. Install one, e.g. "
                          "[bold]pip install mspflow-ninjaone[/bold] (or a local plugins/<vendor> folder).")
        for e in data["load_errors"]:
            console.print(f"[red]load error[/red] {e['distribution']} {e['version']} "
                          f"({e['entry_point']}): {e['error']}")
    if loaded.errors:
        raise typer.Exit(1)


@app.command("actions")
def actions_cmd(
    module: Annotated[str | None, typer.Option("--module", help="Only this module's group key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Registered actions (every version), optionally of one module."""
    registry = _load(as_json).registry
    if module is not None:
        mod = registry.modules.get(module)
        if mod is None:
            _fail(f"no module {module!r}; known: {', '.join(sorted(registry.modules))}", as_json=as_json,
                  code="NOT_FOUND")
        actions = registry.actions_of(mod)
    else:
        actions = sorted(registry.actions.values(), key=lambda a: (a.id, a.version))
    rows: list[dict[str, Any]] = [
        {"id": a.id, "version": a.version, "label": a.label, "category": a.category,
         "module": (m.group_key if (m := registry.module_of(a.id)) else None),
         "side_effectful": a.side_effectful, "idempotency": a.idempotency, "permission": a.permission}
        for a in actions
    ]
    if as_json:
        _print_json({"actions": rows})
        return
    from rich.table import Table

    table = Table("id", "v", "label", "module", "side effect", title="Actions")
    for r in rows:
        table.add_row(r["id"], str(r["version"]), r["label"], r["module"] or "-",
                      "yes" if r["side_effectful"] else "no")
    _console().print(table)


@app.command("describe")
def describe_cmd(
    action_id: Annotated[str, typer.Argument(help="e.g. transform.text.render")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One action: metadata and its input/output JSON Schemas."""
    from mspflow.catalog import action_record

    registry = _load(as_json).registry
    action = registry.action(action_id, version)
    if action is None:
        known = sorted({a.id for a in registry.actions.values()})
        hint = f"; known actions: {', '.join(known)}" if len(known) <= 30 else "; see `mspflow actions`"
        _fail(f"no action {action_id!r}{f' version {version}' if version else ''}{hint}", as_json=as_json,
              code="NOT_FOUND")
    record = action_record(action)
    module = registry.module_of(action.id)
    record["module"] = module.group_key if module else None
    record["permission"] = action.permission
    if as_json:
        _print_json(record)
        return
    console = _console()
    console.print(f"[bold]{action.id}[/bold] v{action.version} — {action.label}")
    if action.description:
        console.print(action.description)
    console.print(f"module: {record['module'] or '-'}   category: {action.category}   "
                  f"side effect: {'yes' if action.side_effectful else 'no'}   "
                  f"idempotency: {action.idempotency}   permission: {action.permission or '-'}")
    console.print("input schema:")
    console.print_json(data=action.input_schema)
    console.print("output schema:")
    console.print_json(data=action.output_schema)


# -- catalog -------------------------------------------------------------------------------------------


def _catalog_table(catalog: Catalog, palette: bool) -> Any:
    from rich.table import Table

    title = f"{'Palette' if palette else 'Catalog'} for tenant {catalog.tenant}"
    table = Table("group", "tile", "kind", "available", "actions", "default action", title=title)
    for r in catalog.palette if palette else catalog.records:
        status = "[green]yes[/green]" if r.available else f"[red]no[/red] ({r.unavailable_reason})"
        table.add_row(r.module.group_key, r.module.label, r.module.tile_kind, status, str(len(r.actions)),
                      r.module.effective_default_action_id or "-")
    return table


@app.command("catalog")
def catalog_cmd(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id.")],
    palette: Annotated[bool, typer.Option("--palette", help="Only the available tiles.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The designer catalog of a tenant: every module with available true/false."""
    instance = _load(as_json)
    _db_guard(as_json, instance)
    catalog = instance.catalog(tenant)
    if as_json:
        _print_json(catalog.to_json(palette=palette))
    else:
        _console().print(_catalog_table(catalog, palette))


# -- tenant --------------------------------------------------------------------------------------------


@tenant_app.command("connect")
def tenant_connect(
    tenant: str,
    provider: Annotated[str, typer.Argument(help="e.g. ninjaone, tacticalrmm, teams")],
    instance_url: Annotated[str | None, typer.Option(help="The vendor instance/API URL.")] = None,
) -> None:
    """Mark an integration connected and active for a tenant."""
    from mspflow import tenants

    instance = _load()
    _db_guard(False, instance)
    try:
        with instance.db.session() as session:
            tenants.connect(session, instance.registry, tenant, provider, instance_url)
    except tenants.UnknownProvider as exc:
        _fail(str(exc))
    typer.echo(f"{tenant}: {provider} connected")


@tenant_app.command("disconnect")
def tenant_disconnect(tenant: str, provider: str) -> None:
    """Mark an integration inactive for a tenant (its row and settings are kept)."""
    from mspflow import tenants

    instance = _load()
    _db_guard(False, instance)
    try:
        with instance.db.session() as session:
            changed = tenants.disconnect(session, instance.registry, tenant, provider)
    except tenants.UnknownProvider as exc:
        _fail(str(exc))
    typer.echo(f"{tenant}: {provider} disconnected" if changed else f"{tenant}: {provider} was not connected")


@tenant_app.command("show")
def tenant_show(tenant: str, as_json: JsonOpt = False) -> None:
    """A tenant's integrations, add-ons and secret names (never secret values)."""
    from mspflow import tenants

    instance = _load(as_json)
    _db_guard(as_json, instance)
    with instance.db.session() as session:
        data = tenants.describe(session, tenant)
        from sqlalchemy import select

        from mspflow.db.models import TenantSecret

        data["secrets"] = list(session.execute(
            select(TenantSecret.name).where(TenantSecret.tenant == tenant).order_by(TenantSecret.name)
        ).scalars())
    if as_json:
        _print_json(data)
        return
    from rich.table import Table

    table = Table("provider", "active", "connected at", "instance url", title=f"Tenant {tenant}")
    for r in data["rmm_integrations"]:
        table.add_row(r["provider"], "yes" if r["is_active"] else "no", r["connected_at"] or "-",
                      r["instance_url"] or "-")
    if data["teams_integration"]:
        table.add_row("teams", data["teams_integration"]["install_status"], "-", "-")
    console = _console()
    console.print(table)
    console.print(f"add-ons: {', '.join(a['addon_key'] for a in data['addons']) or '-'}")
    console.print(f"secrets: {', '.join(data['secrets']) or '-'}")


@tenant_app.command("set-secret")
def tenant_set_secret(tenant: str, name: str) -> None:
    """Store a tenant secret. The value is read from stdin or a hidden prompt, never from argv."""
    from mspflow.secrets import SecretKeyMissing

    if sys.stdin.isatty():
        value = typer.prompt(f"value for {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not value:
        _fail("empty secret value; pipe it on stdin (e.g. `... set-secret T NAME < file`) or type it at "
              "the prompt")
    instance = _load()
    _db_guard(False, instance)
    try:
        store = instance.secrets
        with instance.db.session() as session:
            store.set(session, tenant, name, value)
    except SecretKeyMissing as exc:
        _fail(str(exc))
    typer.echo(f"{tenant}: secret {name} stored (encrypted)")


# -- run, invocations, worker -----------------------------------------------------------------------


def _read_input(raw: str) -> dict[str, Any]:
    from pathlib import Path

    from mspflow.errors import ActionError

    try:
        text = sys.stdin.read() if raw == "-" else Path(raw[1:]).read_text() if raw.startswith("@") else raw
    except OSError as exc:
        raise ActionError.validation(f"cannot read the input file: {exc.strerror}", fields=["--input"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ActionError.validation(f"--input is not valid JSON: {exc.msg} at line {exc.lineno} column "
                                     f"{exc.colno}", fields=["--input"]) from None
    if not isinstance(data, dict):
        raise ActionError.validation("--input must be a JSON object", fields=["--input"])
    return data


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(result)
    elif result["ok"]:
        console = _console()
        note = " (replayed: the recorded result of an earlier identical call)" if result.get("replayed") else ""
        console.print(f"[green]ok[/green] invocation {result.get('invocation_id')}{note}")
        console.print_json(data=result["output"])
    else:
        err = result["error"]
        typer.echo(f"error: {err['code']}: {err['message']}", err=True)
        if err.get("details"):
            typer.echo(json.dumps(err["details"], indent=2, default=str), err=True)
        if err.get("retryable"):
            typer.echo("(retryable: running the same call again may succeed)", err=True)
    if not result["ok"]:
        raise typer.Exit(1)


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

    instance = _load(as_json)
    _db_guard(as_json, instance)
    try:
        data = _read_input(input)
        if not enqueue:
            result = instance.execute(action_id, tenant=tenant, input=data, version=version, run_id=run_id,
                                      step_path=step_path, idempotency_key=idempotency_key)
            _print_result(result.to_json(), as_json)
            return
        from datetime import UTC, datetime

        asked_at = datetime.now(UTC)
        invocation_id = instance.enqueue(action_id, tenant=tenant, input=data, version=version, run_id=run_id,
                                         step_path=step_path, idempotency_key=idempotency_key)
    except ActionError as err:
        _print_result({"ok": False, "error": err.to_dict()}, as_json)
        return
    if instance.dispatcher.embedded and not wait:
        typer.echo("note: no MSPFLOW_BROKER_URL, so the call runs in this process; waiting for it", err=True)
        wait = True
    if not wait:
        if as_json:
            _print_json({"ok": True, "invocation_id": invocation_id, "status": "QUEUED"})
        else:
            typer.echo(f"queued invocation {invocation_id}; see `mspflow invocations --tenant {tenant}`")
        return
    try:
        record = instance.wait(invocation_id, timeout=timeout)
    except TimeoutError as exc:
        _print_result({"ok": False, "invocation_id": invocation_id, "error": {
            "code": "TRANSIENT_FAILURE", "message": f"{exc}; is a worker running (`mspflow worker`)?",
            "retryable": True, "details": {"invocation_id": invocation_id}}}, as_json)
        return
    finally:
        instance.close()
    # An invocation recorded before this command asked is an earlier identical call's result.
    replayed = datetime.fromisoformat(record["created_at"]) < asked_at
    if record["status"] == "SUCCEEDED":
        _print_result({"ok": True, "output": record["output"], "invocation_id": invocation_id,
                       "replayed": replayed}, as_json)
    else:
        _print_result({"ok": False, "error": record["error"], "invocation_id": invocation_id,
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

    instance = _load(as_json)
    _db_guard(as_json, instance)
    with instance.db.sessions() as session:
        rows = recent(session, tenant, status=status, limit=limit)
    if as_json:
        _print_json({"tenant": tenant, "invocations": rows})
        return
    from rich.table import Table

    table = Table("invocation", "action", "status", "attempt", "created", "error", title=f"Invocations of {tenant}")
    for r in rows:
        error = f"{r['error']['code']}: {r['error']['message']}" if r["error"] else ""
        table.add_row(r["invocation_id"], f"{r['action_id']}@{r['version']}", r["status"], str(r["attempt"]),
                      r["created_at"] or "", error[:80])
    _console().print(table)


@app.command("worker")
def worker_cmd(
    processes: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="Threads per process.")] = 8,
    queues: Annotated[list[str] | None, typer.Option("--queues", help="Only these queues (repeatable).")] = None,
) -> None:
    """Run Dramatiq workers for queued action calls (needs MSPFLOW_BROKER_URL=redis://…)."""
    import os
    import signal
    import subprocess
    import threading

    if not os.environ.get("MSPFLOW_BROKER_URL"):
        _fail("set MSPFLOW_BROKER_URL=redis://host:6379/0 to run workers; without a broker, "
              "`mspflow run --enqueue` runs calls inside its own process")
    if processes > 1:
        args = [sys.executable, "-m", "mspflow.cli", "worker", "--processes", "1", "--threads", str(threads)]
        for q in queues or []:
            args += ["--queues", q]
        children = [subprocess.Popen(args) for _ in range(processes)]

        def forward(signum: int, _frame: Any) -> None:
            for child in children:
                child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        codes = [child.wait() for child in children]
        raise typer.Exit(max(codes))
    instance = _load()
    _db_guard(False, instance)
    worker = instance.dispatcher.worker(threads=threads, queues=queues)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    names = sorted(queues) if queues else sorted(instance.dispatcher.broker.get_declared_queues())
    typer.echo(f"mspflow worker {os.getpid()} ready: {threads} thread(s), queues {', '.join(names)}", err=True)
    stop.wait()
    typer.echo(f"mspflow worker {os.getpid()} stopping", err=True)
    worker.stop()
    instance.close()


# -- outbox ------------------------------------------------------------------------------------------


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

    instance = _load(as_json)
    _db_guard(as_json, instance)
    with instance.db.sessions() as session:
        events = outbox.pending(session, tenant=tenant, event_type=event_type, limit=limit,
                                include_delivered=include_delivered)
    if as_json:
        _print_json({"events": events})
        return
    from rich.table import Table

    table = Table("event", "tenant", "type", "created", "delivered", title="Outbox")
    for e in events:
        table.add_row(e["event_id"], e["tenant"], e["event_type"], e["created_at"] or "", e["delivered_at"] or "-")
    _console().print(table)


@outbox_app.command("ack")
def outbox_ack(
    event_ids: Annotated[list[str], typer.Argument(help="Event ids to mark delivered.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only if they belong to this tenant.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark outbox events delivered (acking twice is harmless)."""
    from mspflow import outbox

    instance = _load(as_json)
    _db_guard(as_json, instance)
    with instance.db.session() as session:
        count = outbox.ack(session, event_ids, tenant=tenant)
    if as_json:
        _print_json({"acked": count})
    else:
        typer.echo(f"{count} event(s) marked delivered")


# -- simulators and OAuth authorization ------------------------------------------------------------------


def _module_for(instance: App, provider: str) -> Any:
    module = instance.registry.modules.get(f"app:{provider}")
    if module is None:
        known = sorted(m.provider for m in instance.registry.modules.values() if m.provider)
        _fail(f"no installed plugin offers {provider!r}; installed: {', '.join(known) or 'none'}")
    return module


@sim_app.command("serve")
def sim_serve(
    vendor: Annotated[str, typer.Argument(help="e.g. ninjaone")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 0,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only by default).")] = "127.0.0.1",
) -> None:
    """Serve a vendor's sandbox simulator over real HTTP, for the demo and black-box tests."""
    import importlib
    import signal

    instance = _load()
    module = _module_for(instance, vendor)
    if not module.simulator:
        _fail(f"the {vendor} plugin ships no simulator")
    mod_name, _, cls_name = module.simulator.partition(":")
    sim = getattr(importlib.import_module(mod_name), cls_name)()
    server = sim.serve(host=host, port=port)
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    url = f"http://{host}:{server.server_address[1]}"
    typer.echo(f"{module.label} simulator listening on {url}", err=True)
    typer.echo(f"point a tenant at it: MSPFLOW_ALLOW_HTTP_VENDOR_URLS=1 mspflow tenant connect T {vendor} "
               f"--instance-url {url}", err=True)
    sys.stderr.flush()
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.shutdown()
    server.server_close()


@tenant_app.command("authorize")
def tenant_authorize(
    tenant: str,
    provider: Annotated[str, typer.Argument(help="e.g. ninjaone")],
    region: Annotated[str | None, typer.Option(help="Vendor region (e.g. eu); default: the tenant's URL.")] = None,
    code: Annotated[str | None, typer.Option(help="The authorization code (else asked for).")] = None,
) -> None:
    """Authorize a user-context OAuth2 app: prints the authorize URL, takes the code, stores the tokens."""
    import json as _json
    import secrets as _secrets
    from urllib.parse import parse_qs, urlencode, urlparse

    from mspflow import tenants
    from mspflow.errors import ActionError
    from mspflow.redaction import Redactor
    from mspflow.secrets import SecretKeyMissing
    from mspflow.vendor import normalize_base_url
    from mspflow.vendor.auth import exchange_code

    instance = _load()
    _db_guard(False, instance)
    module = _module_for(instance, provider)
    oauth = module.oauth
    if oauth is None:
        _fail(f"the {provider} plugin does not use an authorization-code OAuth app")
    regions = dict(module.vendor.regions) if module.vendor is not None else {}
    with instance.db.session() as session:
        current = tenants.describe(session, tenant)
    row = next((r for r in current["rmm_integrations"] if r["provider"] == provider), None)
    if region is not None:
        if region not in regions:
            _fail(f"unknown region {region!r}; choose one of {', '.join(regions)}")
        base = regions[region]
    elif row and row["instance_url"]:
        base = row["instance_url"]
    elif regions:
        base = next(iter(regions.values()))
    else:
        _fail("pass --region or connect the tenant with --instance-url first")
    try:
        base = normalize_base_url(base)
        with instance.db.session() as session:
            client_id = instance.secrets.get(session, tenant, oauth.client_id)
            client_secret = instance.secrets.get(session, tenant, oauth.client_secret)
    except SecretKeyMissing as exc:
        _fail(str(exc))
    except Exception as exc:  # an ActionError about the URL
        _fail(str(exc))
    if not client_id or not client_secret:
        _fail(f"store the app's credentials first: mspflow tenant set-secret {tenant} {oauth.client_id}, "
              f"then {oauth.client_secret}")
    state = _secrets.token_urlsafe(16)
    url = f"{base}{oauth.authorize_path}?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": oauth.redirect_uri,
        "scope": oauth.scopes, "state": state})
    typer.echo(f"1. Open this URL as the {module.label} user whose rights scripts should run with:\n   {url}")
    typer.echo(f"2. After approving, the browser is sent to {oauth.redirect_uri}?code=...; paste that URL or "
               "just the code.")
    pasted = code or typer.prompt("code or redirect URL", hide_input=True)
    if "code=" in pasted:
        query = parse_qs(urlparse(pasted).query)
        if query.get("state", [state])[0] != state:
            _fail("the pasted URL belongs to another authorization attempt (state mismatch); start again")
        pasted = query["code"][0]
    redactor = Redactor({client_id, client_secret})
    try:
        creds = exchange_code(oauth, base, pasted, client_id=client_id, client_secret=client_secret,
                              vendor=module.label, redactor=redactor)
    except ActionError as exc:
        _fail(redactor.text(exc.message))
    with instance.db.session() as session:
        instance.secrets.set(session, tenant, oauth.credentials, _json.dumps(creds))
        tenants.connect(session, instance.registry, tenant, provider, base)
    typer.echo(f"{tenant}: {provider} authorized; tokens stored in secret {oauth.credentials} (encrypted)"
               + ("" if creds["refresh_token"] else "; no refresh token was issued, so this must be repeated "
                  "when the token expires"))


# -- demo ----------------------------------------------------------------------------------------------


@app.command("demo")
def demo_cmd(as_json: JsonOpt = False) -> None:
    """Catalogs of a connected and a disconnected tenant, and a small escalation workflow run."""
    from mspflow import demo

    instance = _load(as_json)
    _db_guard(as_json, instance)
    if not as_json:
        _console().print(f"[bold]mspflow demo[/bold] on {instance.db.display_url()}")
    result = demo.run(instance)
    if as_json:
        _print_json(result)
        return
    console = _console()
    providers = result["providers"]
    if providers:
        console.print(f"{demo.CONNECTED}: connected to {', '.join(providers)}; "
                      f"{demo.DISCONNECTED}: connected to nothing.")
    else:
        console.print("No integration plugins are installed, so only the core groups show. "
                      "Install one (pip install mspflow-<vendor>) and run the demo again.")
    for tenant in (demo.CONNECTED, demo.DISCONNECTED):
        console.print(_catalog_table(instance.catalog(tenant), palette=False))
    console.print(f"[bold]Workflow run {demo.RUN_ID}[/bold] for {demo.CONNECTED}:")
    for step in result["workflow"]["steps"]:
        if step["ok"]:
            how = "replayed (recorded result, nothing done twice)" if step["replayed"] else "ran"
            console.print(f"  {step['step']} {step['action_id']}: [green]{how}[/green]")
            text = json.dumps(step["output"])
            console.print("    " + (text if len(text) <= 400 else text[:400] + " …"), highlight=False, soft_wrap=True)
        else:
            console.print(f"  {step['step']} {step['action_id']}: [red]{step['error']['code']}[/red] "
                          f"{step['error']['message']}")
    console.print(f"Outbox for the host: {len(result['outbox'])} undelivered event(s) "
                  f"({', '.join(sorted({e['event_type'] for e in result['outbox']})) or 'none'}).")
    console.print("Next: [bold]mspflow catalog --tenant demo-connected --palette[/bold], "
                  "[bold]mspflow invocations --tenant demo-connected[/bold], "
                  "[bold]mspflow outbox list[/bold], [bold]mspflow describe scheduling.create_entry[/bold].")


from mspflow.inbound.commands import register as _register_inbound  # noqa: E402

_register_inbound(app, tenant_app)  # serve, inbound list|show|replay, tenant webhook


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
