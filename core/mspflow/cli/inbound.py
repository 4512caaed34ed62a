"""``mspflow serve``, ``mspflow inbound list|show|replay`` and ``mspflow tenant webhook``: the inbound side.

They parse, call :mod:`mspflow.inbound` and print.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from mspflow.cli import app, tenant_app
from mspflow.cli._output import JsonOpt, console, db_guard, fail, load, print_json, table

PUBLIC_URL_ENV = "MSPFLOW_PUBLIC_URL"

inbound_app = typer.Typer(help="Journaled webhook deliveries: list, show, replay.", no_args_is_help=True)
app.add_typer(inbound_app, name="inbound")


# -- serve ---------------------------------------------------------------------------------------------


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Uvicorn worker processes.")] = 1,
    max_body_bytes: Annotated[int | None, typer.Option(
        min=1, help="Largest body accepted (default MSPFLOW_INBOUND_MAX_BODY_BYTES or 1 MiB); larger: 413.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Receive vendor webhooks on /hooks/{provider}/{token}: verify, journal once, answer; workers process."""
    import contextlib
    import logging
    import threading
    from collections.abc import Iterator

    import uvicorn

    from mspflow.inbound.journal import MAX_BODY_ENV
    from mspflow.inbound.journal import max_body_bytes as default_max_body
    from mspflow.inbound.server import create_app

    if max_body_bytes is not None:
        os.environ[MAX_BODY_ENV] = str(max_body_bytes)  # for --workers > 1: each process reads it
    try:
        cap = default_max_body()
    except ValueError as exc:
        fail(str(exc))
    level = log_level.lower()
    if level not in ("debug", "info", "warning", "error"):
        fail(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    instance = load()
    db_guard(False, instance)
    registry = instance.registry
    receivers = ", ".join(f"{p} ({registry.owner_of('receiver', p)})" for p in sorted(registry.receivers))
    broker = instance.dispatcher.url
    if broker:
        from sqlalchemy.engine import make_url

        try:
            broker = make_url(broker).render_as_string(hide_password=True)
        except Exception:
            broker = broker.split("://", 1)[0] + "://…"
    where = f"http://{host}:{port}"
    summary = (f"receivers: {receivers or 'none'}; database {instance.db.display_url()}; broker "
               f"{broker or 'in-process (embedded): deliveries are processed by threads of this process'}; "
               f"body cap {cap} bytes")
    if not registry.receivers:
        typer.echo("warning: no installed plugin registers a receiver, so every /hooks/ URL answers 404",
                   err=True)
    log_config = _log_config(level)
    if workers > 1:
        instance.close()
        typer.echo(f"mspflow serve: starting {workers} worker processes on {where}; {summary}", err=True)
        uvicorn.run("mspflow.inbound.server:serve_app", factory=True, host=host, port=port, workers=workers,
                    access_log=False, log_config=log_config, log_level=level)
        return

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port
                typer.echo(f"mspflow serve {os.getpid()} listening on http://{host}:{bound}; {summary}", err=True)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # Uvicorn re-raises SIGTERM after a graceful shutdown (exit -15); like `mspflow worker`, a
            # stop asked for is a success.
            with super().capture_signals():
                yield
                if getattr(self, "_captured_signals", None):
                    typer.echo(f"mspflow serve {os.getpid()} stopped", err=True)
                    self._captured_signals.clear()

    config = uvicorn.Config(create_app(instance), host=host, port=port, access_log=False, log_config=log_config,
                            log_level=level, lifespan="on")
    logging.getLogger("mspflow").setLevel(level.upper())
    stop = threading.Event()
    polls = None
    if not broker:  # embedded: this process is the only long-running one, so it also does a worker's rounds
        threading.Thread(target=instance.workflows.watch, args=(stop,), name="mspflow-triggers", daemon=True).start()
        from mspflow.alerts.polling import PollLoop

        polls = PollLoop(instance).start()  # alert reconciliation; the poll lease keeps cron beside it harmless
    try:
        Server(config).run()
    finally:
        stop.set()
        if polls is not None:
            polls.stop()


def _log_config(level: str) -> dict[str, Any]:
    """Uvicorn's logging, plus mspflow's own loggers (one line per delivery at INFO) on stderr."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["mspflow"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["mspflow"] = {"formatter": "mspflow", "class": "logging.StreamHandler",
                                     "stream": "ext://sys.stderr"}
    for name in ("mspflow", "dramatiq"):
        config["loggers"][name] = {"handlers": ["mspflow"], "level": level.upper() if name == "mspflow"
                                   else "WARNING", "propagate": False}
    return config


# -- tenant webhook ------------------------------------------------------------------------------------


@tenant_app.command("webhook")
def tenant_webhook(
    tenant: str,
    provider: Annotated[str, typer.Argument(help="e.g. level, tacticalrmm, ninjaone")],
    base_url: Annotated[str | None, typer.Option(
        help=f"The public URL vendors reach `mspflow serve` at (default ${PUBLIC_URL_ENV}).")] = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="New token (the old URL stops working) and new "
                                         "secret.")] = False,
    secret_stdin: Annotated[bool, typer.Option("--secret-stdin", help="Store the secret read from stdin (one the "
                                               "vendor generated) instead of making one.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print a tenant's webhook URL for a provider; create (or --rotate) its token and signing secret."""
    from mspflow.inbound.journal import UnknownReceiver, ensure_webhook
    from mspflow.secrets import SecretKeyMissing

    given = None
    if secret_stdin:
        given = sys.stdin.read().strip()
        if not given:
            fail("--secret-stdin read an empty secret; pipe it in (e.g. `... --secret-stdin < secret.txt`)",
                  as_json=as_json)
    instance = load(as_json)
    db_guard(as_json, instance)
    try:
        with instance.db.session(write=True) as session:
            hook = ensure_webhook(session, instance.secrets, instance.registry, tenant, provider, rotate=rotate,
                                  secret=given)
    except UnknownReceiver as exc:
        fail(str(exc), as_json=as_json, code="NOT_FOUND")
    except SecretKeyMissing as exc:
        fail(str(exc), as_json=as_json)
    base = (base_url or os.environ.get(PUBLIC_URL_ENV) or "").rstrip("/")
    url = (base or "http://127.0.0.1:8000") + hook.path
    if not base:
        typer.echo(f"note: pass --base-url (or set {PUBLIC_URL_ENV}) to the https address vendors reach "
                   "`mspflow serve` at", err=True)
    if as_json:
        print_json({"tenant": tenant, "provider": provider, "url": url, "path": hook.path,
                     "created": hook.created, "rotated": hook.rotated, "secret_name": hook.secret_name,
                     "secret": hook.secret})
        return
    state = "created" if hook.created else "rotated: the old URL and secret no longer work" if hook.rotated \
        else "unchanged"
    typer.echo(f"{tenant}: {provider} webhook {state}")
    typer.echo(f"URL:    {url}")
    if hook.secret is not None:
        typer.echo(f"secret: {hook.secret}")
        typer.echo(f"        paste both into the vendor's webhook settings; the secret is stored encrypted as "
                   f"{hook.secret_name} and not shown again (`--rotate` makes new ones)")
    elif given is not None:
        typer.echo(f"secret: stored as {hook.secret_name} (encrypted)")
    elif hook.secret_name is not None:
        typer.echo(f"secret: unchanged, stored as {hook.secret_name} (`--rotate` makes a new one)")


# -- inbound list / show / replay ----------------------------------------------------------------------


@inbound_app.command("list")
def inbound_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's deliveries.")] = None,
    status: Annotated[str | None, typer.Option(
        help="RECEIVED, PROCESSING, PROCESSED, IGNORED or FAILED.")] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider's deliveries.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Journaled webhook deliveries, newest first (payloads are stored redacted; see `inbound show`)."""
    from mspflow.inbound.journal import STATUSES, recent

    if status is not None and status.upper() not in STATUSES:
        fail(f"--status must be one of {', '.join(STATUSES)}, not {status!r}", as_json=as_json)
    instance = load(as_json)
    db_guard(as_json, instance)
    with instance.db.sessions() as session:
        rows = recent(session, tenant=tenant, status=status, provider=provider, limit=limit)
    if as_json:
        print_json({"events": rows})
        return
    out = table("event", "tenant", "provider", "delivery id", "status", "attempt", "received", "note",
                title="Inbound deliveries", ids=("event",))
    for r in rows:
        note = f"{r['error']['code']}: {r['error']['message']}" if r["error"] else r["reason"] or (
            f"{r['event_count']} event(s)" if r["event_count"] is not None else "")
        out.add_row(r["event_id"], r["tenant"], r["provider"], _short(r["delivery_id"], 40), r["status"],
                    str(r["attempt"]), r["received_at"] or "", _short(note, 80))
    console().print(out)


@inbound_app.command("show")
def inbound_show(event_id: str, as_json: JsonOpt = False) -> None:
    """One journaled delivery with its (redacted) headers and payload."""
    from mspflow.inbound.journal import get

    instance = load(as_json)
    db_guard(as_json, instance)
    with instance.db.sessions() as session:
        record = get(session, event_id)
    if record is None:
        fail(f"no journaled delivery {event_id!r}; see `mspflow inbound list`", as_json=as_json, code="NOT_FOUND")
    print_json(record)


@inbound_app.command("replay")
def inbound_replay(
    event_id: str,
    force: Annotated[bool, typer.Option("--force", help="Replay a delivery already PROCESSED too (its handler "
                                        "runs again).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Process a journaled delivery again: now in this process, or through the workers with a broker."""
    from mspflow.inbound.journal import ReplayRefused, get, reset_for_replay
    from mspflow.inbound.processing import Processor

    instance = load(as_json)
    db_guard(as_json, instance)
    try:
        with instance.db.session(write=True) as session:
            reset = reset_for_replay(session, event_id, force=force)
    except ReplayRefused as exc:
        fail(str(exc), as_json=as_json, code="CONFLICT" if "--force" in str(exc) or "right now" in str(exc)
              else "NOT_FOUND")
    if not instance.dispatcher.embedded:
        instance.dispatcher.inbound.send(event_id, reset["provider"])
        if as_json:
            print_json({"event_id": event_id, "status": "RECEIVED", "queued": True, "was": reset["was"]})
        else:
            typer.echo(f"delivery {event_id} ({reset['was']} before) queued for the workers; see "
                       f"`mspflow inbound list --tenant {reset['tenant']}`")
        instance.close()
        return
    outcome = Processor(instance).process(event_id)
    with instance.db.sessions() as session:
        record = get(session, event_id)
    instance.close()
    assert record is not None
    record.pop("payload", None)
    record.pop("headers", None)
    if as_json:
        print_json(record | {"queued": False, "was": reset["was"]})
    else:
        note = f": {record['error']['code']}: {record['error']['message']}" if record["error"] else (
            f": {record['reason']}" if record["reason"] else f" ({record['event_count']} event(s))")
        typer.echo(f"delivery {event_id} ({reset['was']} before) processed again: {record['status']}{note}")
    if outcome.status == "FAILED":
        raise typer.Exit(1)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
