"""The shipped workflow definitions (the demo's stories) publish cleanly and run end to end against the
vendor simulators, in-process; outcomes are read from the simulators' records and the database."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from mspflow import outbox, tenants
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.models import ScheduleEntry, Ticket, User
from mspflow.plugins import Plugins
from mspflow.testing.sim import Simulator
from mspflow.vendor import mount
from mspflow.vendor.transport import unmount
from mspflow.workflows import story_files

TENANT, BARE = "acme", "globex"


@pytest.fixture
def world(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[App, dict[str, Simulator]]]:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    app = App(db=db, plugins=Plugins(strict=True))
    sims: dict[str, Simulator] = {}
    for module in app.registry.modules.values():
        if not module.simulator or not module.provider:
            continue
        mod_name, _, cls_name = module.simulator.partition(":")
        sim = getattr(importlib.import_module(mod_name), cls_name)()
        mount(sim.base_url, sim.transport())
        sims[module.provider] = sim
        with db.session() as s:
            tenants.connect(s, app.registry, TENANT, module.provider, sim.base_url)
            for name, value in sim.demo_secrets().items():
                app.secrets.set(s, TENANT, name, value)
    with db.session() as s:
        s.add(User(tenant=TENANT, user_id="tech-ada", first_name="Ada", user_type="internal"))
        s.add_all([Ticket(tenant=TENANT, ticket_id=t, ticket_number=f"T-{t}", title="Exchange down")
                   for t in ("t-1", "t-2")])
    yield app, sims
    unmount()
    app.close()


def test_every_story_publishes_and_warns_for_a_tenant_without_the_integrations(
        world: tuple[App, dict[str, Simulator]]) -> None:
    app, _ = world
    assert {f.stem for f in story_files()} >= {"disk-full-cleanup", "huntress-enrichment", "dispatcher-escalation",
                                               "outage-retry"}
    for published in app.workflows.publish_stories(TENANT):
        assert published["created"] and published["warnings"] == [], published
    bare = {p["name"]: p["warnings"] for p in app.workflows.publish_stories(BARE)}
    assert {w["step"] for w in bare["dispatcher-escalation"]} == {"channel", "notify"}  # the Teams steps only
    assert {w["code"] for w in bare["huntress-enrichment"]} == {"INTEGRATION_INACTIVE"}
    assert [p["created"] for p in app.workflows.publish_stories(TENANT)] == [False] * len(story_files())


def test_disk_full_alert_runs_the_cleanup_once(world: tuple[App, dict[str, Simulator]]) -> None:
    app, sims = world
    from mspflow_tacticalrmm.sim import FRONTDESK_ID

    app.workflows.publish_stories(TENANT)
    alert = {"event_id": "alert-1", "tenant": TENANT, "event_type": "RMM_ALERT_TRIGGERED",
             "payload": {"provider": "tacticalrmm", "device_id": FRONTDESK_ID, "title": "Disk C: is 96% full"}}
    [run_id] = app.workflows.trigger(alert)
    assert app.workflows.trigger(alert) == []  # delivered twice: one run
    run = app.workflows.run(TENANT, run_id)
    assert run["status"] == "SUCCEEDED", run["error"]
    assert len(sims["tacticalrmm"].script_runs) == 1  # type: ignore[attr-defined]
    assert "Self-remediation" in run["steps"][1]["output"]["text"]
    other = {**alert, "event_id": "alert-2", "payload": {**alert["payload"], "title": "CPU at 100%"}}
    [skipped] = app.workflows.trigger(other)
    assert [s["status"] for s in app.workflows.run(TENANT, skipped)["steps"]] == ["SKIPPED"] * 3
    assert len(sims["tacticalrmm"].script_runs) == 1  # type: ignore[attr-defined]


def test_huntress_enrichment_reads_summarises_and_resolves_once(world: tuple[App, dict[str, Simulator]]) -> None:
    app, sims = world
    from mspflow_huntress.sim import SENT_ID

    app.workflows.publish_stories(TENANT)
    run = app.workflows.start("huntress-enrichment", tenant=TENANT, payload={"incident_report_id": SENT_ID},
                              wait=True)
    assert run["status"] == "SUCCEEDED", run["error"]
    summary = next(s for s in run["steps"] if s["path"] == "summary")["output"]["text"]
    assert summary.startswith("Huntress ") and " on " in summary
    assert sims["huntress"].count("POST", "/resolution") == 1


def test_dispatcher_escalation_schedules_once_per_ticket_event(world: tuple[App, dict[str, Simulator]],
                                                               db: Database) -> None:
    app, _ = world
    app.workflows.publish_stories(TENANT)
    with db.session() as s:
        outbox.emit(s, TENANT, "TICKET_CREATED", _ticket("t-1", "urgent"))
        outbox.emit(s, TENANT, "TICKET_CREATED", _ticket("t-2", "low"))
    started = app.workflows.dispatch_events()
    assert len(started) == 1 and app.workflows.dispatch_events() == []
    run = app.workflows.run(TENANT, started[0])
    assert run["status"] == "SUCCEEDED", run["error"]
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ScheduleEntry)) == 1
        assert len(outbox.pending(s, tenant=TENANT, event_type="SCHEDULE_ENTRY_CREATED")) == 1


def _ticket(ticket_id: str, priority: str) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "ticket_number": f"T-{ticket_id}", "title": "Exchange down", "priority": priority,
            "oncall_user_id": "tech-ada", "window_start": "2030-01-07T09:00:00", "window_end": "2030-01-07T11:00:00"}


def test_an_outage_mid_run_is_healed_by_a_retry_that_replays_the_booked_window(
        world: tuple[App, dict[str, Simulator]], db: Database) -> None:
    app, sims = world
    ninja = sims["ninjaone"]
    app.workflows.publish_stories(TENANT)
    ninja.faults.fail_next = 50  # NinjaOne answers 503 for a while
    run = app.workflows.start("outage-retry", tenant=TENANT, wait=True, payload={
        "technician_id": "tech-ada", "device_id": 1041, "window_start": "2030-02-01T22:00:00",
        "window_end": "2030-02-01T23:00:00"})
    assert run["status"] == "FAILED" and run["error"]["step"] == "reboot" and run["error"]["retryable"] is True
    assert ninja.reboots[1041] == 0  # type: ignore[attr-defined]
    ninja.faults.fail_next = 0  # the outage is over
    healed = app.workflows.retry(TENANT, run["run_id"], wait=True)
    assert healed["status"] == "SUCCEEDED", healed["error"]
    assert [(s["path"], s["replayed"]) for s in healed["steps"]] == [("window", True), ("reboot", False)]
    assert ninja.reboots[1041] == 1  # type: ignore[attr-defined]
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ScheduleEntry)) == 1
        assert len(outbox.pending(s, tenant=TENANT, event_type="SCHEDULE_ENTRY_CREATED")) == 1


def test_a_start_with_a_chosen_run_id_happens_once(world: tuple[App, dict[str, Simulator]]) -> None:
    from mspflow_huntress.sim import SENT_ID

    from mspflow.errors import ActionError

    app, sims = world
    app.workflows.publish_stories(TENANT)
    payload = {"incident_report_id": SENT_ID}
    first = app.workflows.start("huntress-enrichment", tenant=TENANT, payload=payload, run_id="mine-1", wait=True)
    again = app.workflows.start("huntress-enrichment", tenant=TENANT, payload=payload, run_id="mine-1", wait=True)
    assert (first["run_id"], first["status"]) == ("mine-1", "SUCCEEDED") and again == first
    assert sims["huntress"].count("POST", "/resolution") == 1
    with pytest.raises(ActionError) as taken:
        app.workflows.start("outage-retry", tenant=TENANT, run_id="mine-1")
    assert taken.value.code == "CONFLICT"
