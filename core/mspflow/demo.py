"""``mspflow demo``: the five MSP stories, run as the workflow definitions mspflow ships, against the simulators.

1. **palettes**: two tenants side by side, ``demo-connected`` (every integration connected) and
   ``demo-disconnected`` (nothing connected, and a Teams add-on that expired);
2. **disk-full-cleanup**: a Tactical RMM disk alert runs the clean-up script and writes the note;
3. **huntress-enrichment**: a Huntress incident is read with its agent, summarised, resolved;
4. **dispatcher-escalation**: an urgent ticket books the on-call technician (a schedule entry and its
   ``SCHEDULE_ENTRY_CREATED`` outbox event), posts to the service-desk channel and notifies them in Teams;
5. **outage-retry**: NinjaOne is down when the reboot is sent, the run fails; once the outage is over the
   retry heals it, replaying the booked window instead of booking it twice.

Every vendor is its plugin's simulator: mounted in this process on the embedded default, or served on
loopback for the ``mspflow worker`` processes the demo starts when a broker is configured (they reach it
through ``MSPFLOW_SIMULATOR_ROUTES``). What each simulator was asked is written to
``demo-simulators.json`` beside the embedded database (``MSPFLOW_HOME``), for tests and the curious.

Everything is idempotent: the stories start from events with fixed ids or runs with fixed ids, so running
the demo again shows the recorded runs and repeats no side effect.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mspflow import tenants

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from mspflow.app import App

CONNECTED = "demo-connected"
DISCONNECTED = "demo-disconnected"
ONCALL = "demo-tech-ada"
TICKET = "demo-ticket-1001"
SIM_LOG = "demo-simulators.json"
ROUTES_ENV = "MSPFLOW_SIMULATOR_ROUTES"

#: The stories, in the order they run; each workflow story names the plugins it needs.
STORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("palettes", ()),
    ("disk-full-cleanup", ("tacticalrmm", "psa")),
    ("huntress-enrichment", ("huntress", "psa")),
    ("dispatcher-escalation", ("teams",)),
    ("outage-retry", ("ninjaone",)),
)

DISK_ALERT_EVENT = "demo-disk-full-alert-1"
TICKET_EVENT = "demo-ticket-created-1001"
HUNTRESS_RUN = "demo-huntress-enrichment-1"
OUTAGE_RUN = "demo-outage-retry-1"
OUTAGE_DEVICE = 1041  # the NinjaOne simulator's demo device


# -- the simulators -----------------------------------------------------------------------------------------


@dataclass
class Simulators:
    """The installed plugins' simulators by provider, each recording what it was asked and answered."""

    by_provider: dict[str, Any] = field(default_factory=dict)
    log: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)  # vendor base URL -> loopback URL (served mode)
    servers: list[Any] = field(default_factory=list)

    def get(self, provider: str) -> Any:
        return self.by_provider.get(provider)

    def record(self) -> dict[str, Any]:
        return {"simulators": {p: {"requests": list(reqs)} for p, reqs in self.log.items()}}

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def _recorded(handle: Callable[[httpx.Request], httpx.Response], log: list[dict[str, Any]]
              ) -> Callable[[httpx.Request], httpx.Response]:
    def handle_and_record(request: httpx.Request) -> httpx.Response:
        response = handle(request)
        log.append({"method": request.method, "host": request.headers.get("host", request.url.host),
                    "path": request.url.raw_path.decode().split("?", 1)[0], "status": response.status_code})
        return response

    return handle_and_record


def start_simulators(app: App, *, served: bool) -> Simulators:
    """One simulator per installed plugin that ships one: mounted here, or (``served``) on loopback."""
    from mspflow.vendor import mount

    sims = Simulators()
    for module in app.registry.modules.values():
        if not module.simulator or not module.provider:
            continue
        mod_name, _, cls_name = module.simulator.partition(":")
        sim = getattr(importlib.import_module(mod_name), cls_name)()
        log = sims.log.setdefault(module.provider, [])
        sim.handle = _recorded(sim.handle, log)  # both transport() and serve() call sim.handle
        hosts = sim.hosts()
        if served:
            server, url = sim.serve_in_thread()
            sims.servers.append(server)
            sims.routes.update({host: url for host in hosts})
        for host in hosts:
            mount(host, sim.transport())  # this process too (the demo reads and seeds through it)
        sims.by_provider[module.provider] = sim
    return sims


# -- the two tenants ----------------------------------------------------------------------------------------


def seed(app: App, sims: Simulators) -> list[str]:
    """Connect ``demo-connected`` to every provider (self-hosted ones at their simulator), disconnect
    ``demo-disconnected`` from all with an expired Teams add-on, seed the technician and the ticket.
    Returns the providers; ``RuntimeError`` when the tenant's secrets cannot be stored (no secret key)."""
    from mspflow.db.models import TeamsIntegration, TenantAddon, Ticket, User
    from mspflow.microsoft import bind_profile
    from mspflow.secrets import SecretKeyMissing

    kinds = tenants.known_providers(app.registry)
    providers = list(kinds)
    with app.db.session() as s:
        for provider in providers:
            sim = sims.get(provider)  # an RMM's instance URL: its simulator's
            url = sim.base_url if sim is not None and kinds[provider] == "rmm" else None
            tenants.connect(s, app.registry, CONNECTED, provider, url)
            tenants.disconnect(s, app.registry, DISCONNECTED, provider)
        if "teams" in providers:
            addon = s.get(TenantAddon, (DISCONNECTED, "teams"))
            expired = datetime.now(UTC) - timedelta(days=30)
            if addon is None:
                s.add(TenantAddon(tenant=DISCONNECTED, addon_key="teams", expires_at=expired))
            else:
                addon.expires_at = expired
            if s.get(TeamsIntegration, DISCONNECTED) is None:
                s.add(TeamsIntegration(tenant=DISCONNECTED, install_status="not_configured"))
        if s.get(User, (CONNECTED, ONCALL)) is None:
            s.add(User(tenant=CONNECTED, user_id=ONCALL, first_name="Ada", last_name="Lovelace",
                       email="ada@demo.example", user_type="internal"))
        if s.get(Ticket, (CONNECTED, TICKET)) is None:
            s.add(Ticket(tenant=CONNECTED, ticket_id=TICKET, ticket_number="T-1001",
                         title="Exchange server not responding"))
    for sim in sims.by_provider.values():
        try:
            with app.db.session() as s:
                if callable(getattr(sim, "demo_profile", None)):
                    bind_profile(s, CONNECTED, sim.demo_profile(ONCALL))
                for name, value in sim.demo_secrets().items():
                    app.secrets.set(s, CONNECTED, name, value)
        except SecretKeyMissing as exc:  # PostgreSQL without MSPFLOW_SECRET_KEY: say so before any story runs
            raise RuntimeError(f"{exc}; the demo stores each simulator's credentials for {CONNECTED}") from None
    return providers


# -- the stories --------------------------------------------------------------------------------------------


def palettes(app: App) -> dict[str, Any]:
    """Story 1: both tenants' catalogs; ok when the connected one has every tile and the other none of the
    integrations' tiles."""
    steps = []
    ok = True
    for tenant in (CONNECTED, DISCONNECTED):
        catalog = app.catalog(tenant)
        palette = [r.module.group_key for r in catalog.records if r.available]
        missing = {r.module.group_key: r.unavailable_reason for r in catalog.records if not r.available}
        integrations = [r for r in catalog.records if r.module.availability_key not in (None, "core")]
        wanted = not missing if tenant == CONNECTED else not any(r.available for r in integrations)
        ok = ok and wanted
        steps.append({"tenant": tenant, "palette": palette, "unavailable": missing})
    return {"name": "palettes", "ok": ok, "replayed": False, "steps": steps}


def publish(app: App) -> dict[str, dict[str, Any]]:
    """Publish each shipped story for ``demo-connected`` (unchanged ones stay at their version); a story
    whose actions no installed plugin offers is left out."""
    from mspflow.errors import ActionError
    from mspflow.workflows import story_files

    published = {}
    for file in story_files():
        try:
            answer = app.workflows.publish(CONNECTED, file)
        except ActionError:
            continue
        published[answer["name"]] = answer
    return published


def _event_run(app: App, event_id: str, workflow: str) -> str | None:
    from mspflow.db.models import WorkflowEventRun

    with app.db.sessions() as s:
        row = s.get(WorkflowEventRun, (CONNECTED, event_id, workflow))
        return None if row is None else row.run_id


def _by_event(app: App, workflow: str, event: dict[str, Any], timeout: float) -> tuple[dict[str, Any], bool]:
    """Hand ``event`` to the triggers (once ever: its id is fixed); the run it started, and whether it was
    started by an earlier demo."""
    started = app.workflows.trigger({"tenant": CONNECTED, **event})
    run_id = _event_run(app, event["event_id"], workflow)
    if run_id is None:
        raise RuntimeError(f"event {event['event_id']} started no {workflow} run")
    return app.workflows.wait(CONNECTED, run_id, timeout=timeout), run_id not in started


def disk_full(app: App, sims: Simulators, timeout: float) -> dict[str, Any]:
    """Story 2: a Tactical RMM disk alert runs the clean-up script once and notes its output. With the alert
    pipeline and ``tickets.*`` installed the whole loop: the alert's webhook → a ticket by the tenant's rule →
    the workflow (script, note on the ticket) → the alert resets → the ticket closes, as no one touched it."""
    tactical = sims.get("tacticalrmm")
    from_sim = importlib.import_module(type(tactical).__module__)
    if "tacticalrmm" in app.registry.alert_sources and app.registry.action("tickets.add_comment") is not None:
        return _disk_full_loop(app, tactical, (from_sim.FRONTDESK_ID, from_sim.FILESERVER_ID), timeout)
    event = {"event_id": DISK_ALERT_EVENT, "event_type": "RMM_ALERT_TRIGGERED", "payload": {
        "provider": "tacticalrmm", "device_id": from_sim.FRONTDESK_ID, "title": "Disk C: is 96% full",
        "severity": "error"}}
    run, replayed = _by_event(app, "disk-full-cleanup", event, timeout)
    return _story("disk-full-cleanup", run, replayed, ok=run["status"] == "SUCCEEDED")


DISK_RULE = "Demo: disk alerts become tickets"


def _disk_full_loop(app: App, tactical: Any, agents: tuple[str, str], timeout: float) -> dict[str, Any]:
    """Two disk alerts through the pipeline and the workflow; a technician writes on the second ticket
    before the alerts reset, so only the first (untouched) ticket closes."""
    from mspflow.db.models import AlertRule

    with app.db.session() as s:  # the tenant's rule: Tactical disk alerts open a ticket, closed on reset
        if s.query(AlertRule).filter_by(tenant=CONNECTED, name=DISK_RULE).first() is None:
            from mspflow.alerts.rules import add_rule

            add_rule(s, CONNECTED, name=DISK_RULE, priority=10, conditions={"keywords": ["disk"]}, actions={
                "create_ticket": {"board": "Alerts", "priority": "P3",
                                  "title_template": "{{severity}}: {{message}} on {{device}}"},
                "auto_resolve_ticket": True})
    front, files = agents
    alerts = [_disk_alert(app, tactical, front, "C", timeout, touched=False),
              _disk_alert(app, tactical, files, "D", timeout, touched=True)]
    first = alerts[0]
    run = app.workflows.run(CONNECTED, first["run_id"])
    ok = (all(a["run_status"] == "SUCCEEDED" for a in alerts)
          and [a["ticket"].get("is_closed") for a in alerts] == [True, False])
    story = _story("disk-full-cleanup", run, all(a["decision"] == "duplicate" for a in alerts), ok=ok)
    story["alerts"] = alerts
    return story


def _disk_alert(app: App, tactical: Any, agent_id: str, drive: str, timeout: float, *, touched: bool
                ) -> dict[str, Any]:
    from mspflow.alerts.pipeline import ingest_payload
    from mspflow.db.models import RmmAlert, WorkflowRun

    alert = tactical.add_alert(agent_id, severity="error", message=f"Disk space on {drive}: is 96% full",
                               check_id=7 if drive == "C" else 8, check_name=f"Disk Space Drive {drive}")
    [decision] = ingest_payload(app, CONNECTED, "tacticalrmm", tactical.webhook(alert))  # its webhook
    if app.workflows.in_process:
        app.workflows.dispatch_events()  # the alert's RMM_ALERT_TRIGGERED starts the workflow (workers: theirs)
    with app.db.sessions() as s:
        row = s.query(RmmAlert).filter_by(tenant=CONNECTED, provider="tacticalrmm",
                                          external_alert_id=str(alert["id"])).one()
        alert_id, ticket_id = row.alert_id, row.ticket_id
    run_id = _wait_for(lambda: _run_of(app, WorkflowRun, alert_id), timeout)
    run = app.workflows.wait(CONNECTED, run_id, timeout=timeout)
    if touched and ticket_id:  # a technician writes on the ticket: from now on it is theirs to close
        app.execute("tickets.add_comment", tenant=CONNECTED, idempotency_key=f"demo:technician-note:{alert_id}",
                    input={"ticket_id": ticket_id, "author_kind": "human", "author_user_id": ONCALL,
                           "body": "Looking at the file server's shares myself before closing this. Ada"})
    alert["resolved"] = True  # the clean-up freed the disk: Tactical resets the alert and says so
    ingest_payload(app, CONNECTED, "tacticalrmm", tactical.webhook(alert, "resolve"))
    found = app.execute("tickets.find", tenant=CONNECTED, input={"ticket_id": ticket_id}) if ticket_id else None
    state = ((found.output or {}).get("tickets") or [{}])[0] if found is not None and found.ok else {}
    return {"alert_id": alert_id, "agent_id": agent_id, "host": alert["hostname"], "decision": decision.outcome,
            "run_id": run_id, "run_status": run["status"], "technician_wrote": touched,
            "ticket": {k: state.get(k) for k in ("ticket_id", "ticket_number", "title", "status", "is_closed",
                                                 "untouched")}}


def _run_of(app: App, model: Any, alert_id: str) -> str | None:
    with app.db.sessions() as s:
        for run in s.query(model).filter_by(tenant=CONNECTED, workflow_name="disk-full-cleanup"):
            if (run.payload or {}).get("alert_id") == alert_id:
                return str(run.run_id)
    return None


def _wait_for(find: Callable[[], str | None], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while (found := find()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the alert started no disk-full-cleanup run; is a worker running?")
        time.sleep(0.1)
    return found


def huntress(app: App, sims: Simulators, timeout: float) -> dict[str, Any]:
    """Story 3: read a Huntress incident and its agent, summarise, note it on a ticket (with ``tickets.*``),
    resolve (once)."""
    from_sim = importlib.import_module(type(sims.get("huntress")).__module__)
    existed = _exists(app, HUNTRESS_RUN)
    payload: dict[str, Any] = {"incident_report_id": from_sim.SENT_ID}
    if not existed and app.registry.action("tickets.create") is not None:
        ticket = app.execute("tickets.create", tenant=CONNECTED, idempotency_key="demo:huntress-ticket", input={
            "title": "Huntress incident: foothold on FRONTDESK-01", "priority": "P2", "source": "huntress",
            "source_ref": str(from_sim.SENT_ID)})
        if ticket.ok and ticket.output:
            payload["ticket_id"] = ticket.output["ticket"]["ticket_id"]
    run = app.workflows.start("huntress-enrichment", tenant=CONNECTED, run_id=HUNTRESS_RUN, wait=True,
                              timeout=timeout, payload=payload)
    return _story("huntress-enrichment", run, existed, ok=run["status"] == "SUCCEEDED")


def dispatcher(app: App, sims: Simulators, timeout: float) -> dict[str, Any]:
    """Story 4: an urgent ticket books the on-call technician and, with Teams, posts and notifies."""
    payload: dict[str, Any] = {
        "ticket_id": TICKET, "ticket_number": "T-1001", "title": "Exchange server not responding",
        "priority": "urgent", "oncall_user_id": ONCALL,
        "window_start": "2030-01-07T09:00:00", "window_end": "2030-01-07T11:00:00"}
    teams = sims.get("teams")
    if teams is not None:
        payload["teams_channel_id"] = importlib.import_module(type(teams).__module__).SERVICE_DESK
    run, replayed = _by_event(app, "dispatcher-escalation",
                              {"event_id": TICKET_EVENT, "event_type": "TICKET_CREATED", "payload": payload},
                              timeout)
    return _story("dispatcher-escalation", run, replayed, ok=run["status"] == "SUCCEEDED")


def outage(app: App, sims: Simulators, timeout: float) -> dict[str, Any]:
    """Story 5: NinjaOne is down at the reboot; the step's own retries do not outlast the outage, so the run
    fails; once the outage is over, the run's retry replays the window and reboots."""
    ninja = sims.get("ninjaone")
    existed = _exists(app, OUTAGE_RUN)
    payload = {"technician_id": ONCALL, "device_id": OUTAGE_DEVICE,
               "window_start": "2030-02-01T22:00:00", "window_end": "2030-02-01T23:00:00"}
    if not existed:
        ninja.faults.fail_next = 1_000_000  # the outage: NinjaOne answers 503 until it is over
    try:
        first = app.workflows.start("outage-retry", tenant=CONNECTED, run_id=OUTAGE_RUN, wait=True,
                                    timeout=timeout, payload=payload)
    finally:
        ninja.faults.fail_next = 0  # the outage is over
    if existed and first["status"] == "SUCCEEDED":
        return _story("outage-retry", first, True, ok=True)
    failed = first
    healed = app.workflows.retry(CONNECTED, OUTAGE_RUN, wait=True, timeout=timeout)
    replays = {s["path"]: s.get("replayed") for s in healed["steps"]}
    ok = (healed["status"] == "SUCCEEDED" and (existed or failed["status"] == "FAILED")
          and replays.get("window") is True)
    story = _story("outage-retry", healed, existed, ok=ok)
    tries = max((s.get("tries") or 1 for s in failed["steps"] if s.get("status") == "FAILED"), default=1)
    story["failed_first"] = {"status": failed["status"], "error": failed["error"], "tries": tries}
    return story


def _exists(app: App, run_id: str) -> bool:
    from mspflow.db.models import WorkflowRun

    with app.db.sessions() as s:
        return s.get(WorkflowRun, run_id) is not None


def _story(name: str, run: dict[str, Any], replayed: bool, *, ok: bool) -> dict[str, Any]:
    steps = []
    for step in run["steps"]:
        shown = {"path": step["path"], "action_id": step.get("action_id"), "status": step.get("status"),
                 "replayed": bool(step.get("replayed"))}
        if "output" in step:
            shown["output"] = step["output"]
        if step.get("error"):
            shown["error"] = step["error"]
        steps.append(shown)
    return {"name": name, "ok": ok, "replayed": replayed, "run_id": run["run_id"], "status": run["status"],
            "attempt": run["attempt"], "error": run["error"], "steps": steps}


RUNNERS: dict[str, Callable[[App, Simulators, float], dict[str, Any]]] = {
    "disk-full-cleanup": disk_full, "huntress-enrichment": huntress,
    "dispatcher-escalation": dispatcher, "outage-retry": outage,
}

NEXT = [
    "mspflow runs list --tenant demo-connected",
    "mspflow workflows list --tenant demo-connected",
    "mspflow catalog --tenant demo-disconnected",
    "mspflow invocations --tenant demo-connected",
    "mspflow outbox list",
    "mspflow demo",
]


# -- workers (a broker is configured) -----------------------------------------------------------------------


def start_workers(count: int, routes: dict[str, str], *, timeout: float = 60.0) -> list[subprocess.Popen[str]]:
    """``count`` ``mspflow worker`` processes that reach the simulators through ``routes``; returns once
    each says it is ready."""
    env = {**os.environ, ROUTES_ENV: json.dumps(routes)}
    env.setdefault("MSPFLOW_TRIGGER_POLL_S", "0.2")
    procs = [subprocess.Popen([sys.executable, "-m", "mspflow.cli", "worker", "--threads", "4"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(count)]
    deadline = time.monotonic() + timeout
    for proc in procs:
        assert proc.stderr is not None
        while True:
            line = proc.stderr.readline()
            if "ready" in line:
                break
            if not line or time.monotonic() > deadline:
                stop_workers(procs)
                raise RuntimeError(f"an `mspflow worker` did not start: {line.strip() or 'it exited'}")
    return procs


def stop_workers(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- the whole demo -----------------------------------------------------------------------------------------


def run(app: App, *, workers: int = 0, timeout: float = 120.0,
        progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the five stories; ``workers`` > 0 (a broker is configured) starts that many ``mspflow worker``
    processes for the runs. ``progress`` is called with each story as it finishes. The JSON contract:
    ``{"stories": [{"name", "ok", "steps": [...]}, …], "runs", "next", …}``."""
    from mspflow import outbox
    from mspflow.db.engine import default_home
    from mspflow.vendor.transport import unmount

    with ExitStack() as stack:
        sims = start_simulators(app, served=workers > 0)
        stack.callback(unmount)
        stack.callback(sims.close)
        providers = seed(app, sims)
        published = publish(app)
        installed = {m.provider for m in app.registry.modules.values() if m.provider}
        procs: list[subprocess.Popen[str]] = []
        if workers > 0:
            procs = start_workers(workers, sims.routes)
            stack.callback(stop_workers, procs)
        stories = []
        for name, needs in STORIES:
            if name == "palettes":
                story = palettes(app)
            elif missing := [p for p in needs if p not in installed]:
                plural = "s" if len(missing) > 1 else ""
                story = {"name": name, "ok": False, "replayed": False, "steps": [],
                         "skipped": f"needs the {', '.join(missing)} plugin{plural} (pip install "
                                    f"{' '.join('mspflow-' + m for m in missing)})"}
            elif name not in published:
                story = {"name": name, "ok": False, "replayed": False, "steps": [],
                         "skipped": "its workflow could not be published for this set of plugins"}
            else:
                story = RUNNERS[name](app, sims, timeout)
            stories.append(story)
            if progress is not None:
                progress(story)
        log = Path(default_home()) / SIM_LOG
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps(sims.record(), indent=1))
        with app.db.sessions() as s:
            events = outbox.pending(s, tenant=CONNECTED)
        return {
            "stories": stories,
            "ok": all(s["ok"] for s in stories if "skipped" not in s),
            "providers": providers,
            "catalogs": [app.catalog(CONNECTED).to_json(), app.catalog(DISCONNECTED).to_json()],
            "runs": app.workflows.runs(CONNECTED, limit=20),
            "outbox": events,
            "workers": workers,
            "pid": os.getpid(),
            "simulator_log": str(log),
            "next": NEXT,
        }
