"""``mspflow demo``: two tenants' catalogs and a small escalation workflow on the configured database.

Everything it writes is idempotent: running the demo again replays the same workflow run instead of
scheduling the technician twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mspflow import outbox, tenants
from mspflow.db.models import Ticket, User

if TYPE_CHECKING:
    from mspflow.app import App

CONNECTED = "demo-connected"
DISCONNECTED = "demo-disconnected"
RUN_ID = "demo-escalation-1"
ONCALL = "demo-tech-ada"
TICKET = "demo-ticket-1001"


def seed(app: App) -> list[str]:
    """Connect the demo tenants and create the PSA rows the workflow uses; returns the providers."""
    providers = list(tenants.known_providers(app.registry))
    with app.db.session() as s:
        for provider in providers:
            tenants.connect(s, app.registry, CONNECTED, provider)
            tenants.disconnect(s, app.registry, DISCONNECTED, provider)
        if s.get(User, (CONNECTED, ONCALL)) is None:
            s.add(User(tenant=CONNECTED, user_id=ONCALL, first_name="Ada", last_name="Lovelace",
                       email="ada@demo.example", user_type="internal"))
        if s.get(Ticket, (CONNECTED, TICKET)) is None:
            s.add(Ticket(tenant=CONNECTED, ticket_id=TICKET, ticket_number="T-1001",
                         title="Exchange server not responding"))
    return providers


def escalation(app: App) -> list[dict[str, Any]]:
    """Two steps of a workflow run: render the escalation note, then put the on-call tech on the board."""
    steps: list[dict[str, Any]] = []
    note = app.execute("transform.text.render", tenant=CONNECTED, run_id=RUN_ID, step_path="steps.1", input={
        "template": "Escalated $number ($title): on-site check within 2 hours.",
        "values": {"number": "T-1001", "title": "Exchange server not responding"}})
    steps.append({"step": "steps.1", "action_id": "transform.text.render", **note.to_json()})
    if note.ok and note.output:
        entry = app.execute("scheduling.create_entry", tenant=CONNECTED, run_id=RUN_ID, step_path="steps.2", input={
            "assigned_user_ids": [ONCALL], "title": "On-site: T-1001",
            "window": {"start": "2030-01-07T09:00:00", "end": "2030-01-07T11:00:00", "timezone": "Europe/London"},
            "link": {"type": "ticket", "id": TICKET}, "notes": note.output["text"], "conflict_mode": "shift"})
        steps.append({"step": "steps.2", "action_id": "scheduling.create_entry", **entry.to_json()})
    return steps


def vendor_steps(app: App) -> list[dict[str, Any]]:
    """Each installed plugin's simulator, mounted in-process for the connected tenant, and its demo calls.

    Nothing leaves the machine: the plugin's real client talks to its real vendor URL, which this process
    routes to the simulator.
    """
    import importlib

    from mspflow.microsoft import bind_profile
    from mspflow.secrets import SecretKeyMissing
    from mspflow.vendor import mount

    steps: list[dict[str, Any]] = []
    for module in app.registry.modules.values():
        if not module.simulator:
            continue
        mod_name, _, cls_name = module.simulator.partition(":")
        sim = getattr(importlib.import_module(mod_name), cls_name)()
        hosts = sim.hosts() if callable(getattr(sim, "hosts", None)) else (sim.base_url,)  # several: Teams
        for url in hosts:
            mount(url, sim.transport())
        key = module.availability_key or ""
        try:
            store = app.secrets
            with app.db.session() as s:
                if key.startswith("rmm:") and module.provider:  # self-hosted vendors: point at the simulator
                    tenants.connect(s, app.registry, CONNECTED, module.provider, sim.base_url)
                if callable(getattr(sim, "demo_profile", None)):
                    bind_profile(s, CONNECTED, sim.demo_profile(ONCALL))
                for name, value in sim.demo_secrets().items():
                    store.set(s, CONNECTED, name, value)
        except SecretKeyMissing as exc:
            steps.append({"step": module.group_key, "action_id": None, "ok": False, "replayed": False,
                          "error": {"code": "INTEGRATION_INACTIVE", "message": str(exc), "retryable": False,
                                    "details": {}}})
            continue
        for index, (action_id, data) in enumerate(sim.demo_calls(), start=1):
            step = f"{module.group_key}.{index}"
            result = app.execute(action_id, tenant=CONNECTED, input=data, run_id=RUN_ID, step_path=step)
            steps.append({"step": step, "action_id": action_id, **result.to_json()})
    return steps


def run(app: App) -> dict[str, Any]:
    providers = seed(app)
    workflow = escalation(app) + vendor_steps(app)
    with app.db.sessions() as s:
        events = outbox.pending(s, tenant=CONNECTED)
    return {
        "providers": providers,
        "catalogs": [app.catalog(CONNECTED).to_json(), app.catalog(DISCONNECTED).to_json()],
        "workflow": {"run_id": RUN_ID, "steps": workflow},
        "outbox": events,
    }
