"""The RMM alert pipeline's acceptance criteria, through real HTTP deliveries to ``mspflow serve``.

NinjaOne and Tactical RMM simulators post their webhook payloads to a Uvicorn server on loopback; the
embedded worker runs the pipeline; tickets are the reference PSA's (``mspflow-psa``'s ``tickets.*``).
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from mspflow_ninjaone.sim import NinjaOneSimulator
from mspflow_tacticalrmm.sim import TacticalRMMSimulator

from mspflow import outbox
from mspflow import vendor as http
from mspflow import worker as worker_module
from mspflow.alerts.events import AlertEvent
from mspflow.alerts.polling import poll_due, reconcile
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.inbound.processing import Processor
from mspflow.inbound.server import create_app
from mspflow.plugins import Plugins
from tests.alerts_support import DISK, FILESERVER_ID, PLUGINS, TENANT, Desk, wait_final
from tests.inbound_support import LiveServer


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", PLUGINS)
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)
    monkeypatch.setattr(worker_module, "BACKOFF_BASE_S", 0.01)


@pytest.fixture
def sims() -> Iterator[tuple[NinjaOneSimulator, TacticalRMMSimulator]]:
    ninja, tactical = NinjaOneSimulator(seed=False), TacticalRMMSimulator()
    ninja.seed()
    ninja.alerts.clear()  # no alert is firing yet
    http.mount(ninja.base_url, ninja.transport())
    http.mount(tactical.base_url, tactical.transport())
    yield ninja, tactical
    http.unmount()


@pytest.fixture
def desk(db: Database, sims: tuple[NinjaOneSimulator, TacticalRMMSimulator]) -> Iterator[Desk]:
    app = App(db=db, plugins=Plugins(strict=True))
    server = LiveServer(create_app(app))
    yield Desk(app, server, *sims)
    server.stop()
    app.close()


def fire_disk(desk: Desk, device_id: int = 1042) -> dict:
    return desk.ninja.fire(device_id=device_id, source_type=DISK, severity="CRITICAL", priority="HIGH",
                           subject="Disk C: below 5% free", message="C: has 3.1 GB free on FS-01")


# -- NinjaOne: trigger, dedup, reset, close ---------------------------------------------------------------


def test_a_ninjaone_condition_webhook_for_a_mapped_organization_creates_an_alert_and_a_routed_ticket(
        desk: Desk) -> None:
    rule = desk.rule(notify_users=["u-tech"])
    activity = fire_disk(desk)
    desk.post("ninjaone", activity)
    [alert] = desk.alerts("ninjaone")
    assert (alert.external_alert_id, alert.status, alert.external_device_id, alert.asset_id) == (
        activity["seriesUid"], "active", "1042", "asset-1042")
    assert alert.dedup_key == f"1042|{activity['sourceConfigUid']}" and alert.matched_rule_id == rule["rule_id"]
    [ticket] = desk.tickets()
    assert alert.ticket_id == ticket["ticket_id"] and alert.ticket_open
    assert (ticket["client_id"], ticket["board"], ticket["priority"], ticket["source"], ticket["source_ref"]) == (
        "c-contoso", "Alerts", "P1", "rmm_alert", alert.alert_id)
    assert "FS-01" in ticket["title"] and "3.1 GB free" in ticket["title"]
    assert {("asset", "asset-1042"), ("rmm_alert", alert.alert_id)} <= desk.links(ticket["ticket_id"])
    [note] = desk.comments(ticket["ticket_id"])
    assert note.startswith(f"Created from ninjaone alert {activity['seriesUid']}")
    [event] = desk.events(outbox.RMM_ALERT_TRIGGERED)
    assert event["payload"]["ticket_id"] == ticket["ticket_id"] and event["payload"]["outcome"] == "ticket_created"
    notified = [(n["user_id"], n["dedupe_key"]) for n in desk.notifications()]
    assert notified == [("u-tech", f"rmm_alert:{alert.alert_id}")]


def test_refiring_while_the_ticket_is_open_adds_an_occurrence_comment_and_no_ticket(desk: Desk) -> None:
    desk.rule()
    desk.post("ninjaone", fire_disk(desk))
    desk.post("ninjaone", fire_disk(desk))
    desk.post("ninjaone", fire_disk(desk))
    [ticket] = desk.tickets()
    first, second, third = desk.alerts("ninjaone")
    assert first.ticket_id == second.ticket_id == third.ticket_id == ticket["ticket_id"]
    assert [a.occurrence_count for a in desk.alerts()] == [3, 3, 3]
    comments = desk.comments(ticket["ticket_id"])
    assert len(comments) == 3
    assert "re-triggered — 2nd occurrence" in comments[1] and "re-triggered — 3rd occurrence" in comments[2]
    assert [e["payload"]["outcome"] for e in desk.events(outbox.RMM_ALERT_TRIGGERED)] == [
        "ticket_created", "joined", "joined"]


def test_after_the_ticket_closed_a_new_firing_opens_a_new_ticket(desk: Desk) -> None:
    desk.rule()
    desk.post("ninjaone", fire_disk(desk))
    [ticket] = desk.tickets()
    desk.close_ticket(ticket["ticket_id"])
    desk.post("ninjaone", fire_disk(desk))
    old, new = desk.tickets()
    assert old["is_closed"] and not new["is_closed"] and old["ticket_id"] == ticket["ticket_id"]
    assert desk.alerts("ninjaone")[1].ticket_id == new["ticket_id"]


def test_a_reset_resolves_comments_and_closes_the_ticket_only_while_untouched(desk: Desk) -> None:
    desk.rule()
    untouched = fire_disk(desk, 1041)
    touched = fire_disk(desk, 1042)
    desk.post("ninjaone", untouched)
    desk.post("ninjaone", touched)
    first, second = desk.tickets()
    desk.human_comment(second["ticket_id"])
    desk.post("ninjaone", desk.ninja.clear(untouched["seriesUid"]))
    desk.post("ninjaone", desk.ninja.clear(touched["seriesUid"]))
    assert desk.alert(untouched["seriesUid"]).status == desk.alert(touched["seriesUid"]).status == "resolved"
    first, second = desk.ticket(first["ticket_id"]), desk.ticket(second["ticket_id"])
    assert first["is_closed"] and not second["is_closed"]
    assert "reset" in desk.comments(first["ticket_id"])[-1]
    assert "reset" in desk.comments(second["ticket_id"])[-1]
    assert [e["payload"]["outcome"] for e in desk.events(outbox.RMM_ALERT_RESOLVED)] == [
        "resolved_ticket_closed", "resolved_ticket_kept"]
    assert desk.ninja.alert_resets == []  # mspflow closed it because the RMM reset: nothing to reset back


def test_closing_an_alert_linked_ticket_resets_the_alert_in_ninjaone_unless_the_rule_opted_out(desk: Desk) -> None:
    desk.rule(conditions={"organizations": ["3"]}, name="Contoso")
    desk.rule(priority=20, name="others keep firing", reset_alert_on_ticket_close=False)
    resets = fire_disk(desk, 1042)
    desk.ninja.add_device(2001, organizationId=9, systemName="OTHER-01")
    kept = fire_disk(desk, 2001)
    desk.post("ninjaone", resets)
    desk.post("ninjaone", kept)
    first, second = desk.tickets()
    desk.close_ticket(first["ticket_id"])
    desk.close_ticket(second["ticket_id"])
    assert desk.ninja.alert_resets == [resets["seriesUid"]]
    assert kept["seriesUid"] in desk.ninja.alerts
    assert desk.alert(resets["seriesUid"]).reset_error is None


def test_a_reset_that_fails_in_the_rmm_is_recorded_on_the_alert_and_the_close_stands(desk: Desk) -> None:
    desk.rule()
    activity = fire_disk(desk)
    desk.post("ninjaone", activity)
    [ticket] = desk.tickets()
    desk.ninja.alerts.pop(activity["seriesUid"])  # gone at NinjaOne: its reset answers 404
    desk.close_ticket(ticket["ticket_id"])
    assert desk.ticket(ticket["ticket_id"])["is_closed"]
    assert (desk.alert(activity["seriesUid"]).reset_error or "").startswith("NOT_FOUND")


# -- Tactical RMM ------------------------------------------------------------------------------------------


def test_a_tactical_rmm_alert_flows_end_to_end(desk: Desk) -> None:
    desk.rule(conditions={"keywords": ["disk"]})
    alert = desk.tactical.add_alert(FILESERVER_ID, message='Disk space C: "3%" free', check_id=17,
                                    check_name="Disk space C:")
    desk.post("tacticalrmm", desk.tactical.webhook(alert, broken=True), content_type=None)
    [stored] = desk.alerts("tacticalrmm")
    assert (stored.external_alert_id, stored.dedup_key, stored.message) == (
        str(alert["id"]), f"{FILESERVER_ID}|check:17", 'Disk space C: "3%" free')
    assert stored.occurred_at is not None and stored.occurred_at.replace(tzinfo=UTC) == datetime(
        2026, 11, 29, 9, 42, 17, 503914, tzinfo=UTC)
    [ticket] = desk.tickets()
    assert ticket["client_id"] == "c-fabrikam" and "FS-01" in ticket["title"]
    desk.post("tacticalrmm", desk.tactical.webhook(alert, "resolve"), content_type=None)
    assert desk.alert(str(alert["id"])).status == "resolved" and desk.ticket(ticket["ticket_id"])["is_closed"]


def test_closing_a_tactical_ticket_resolves_the_alert_in_tactical(desk: Desk) -> None:
    desk.rule()
    alert = desk.tactical.add_alert(FILESERVER_ID, message="CPU 99%", check_id=3)
    desk.post("tacticalrmm", desk.tactical.webhook(alert))
    [ticket] = desk.tickets()
    desk.close_ticket(ticket["ticket_id"])
    assert desk.tactical.alert_resolves == [alert["id"]]


# -- maintenance windows and polling ------------------------------------------------------------------------


def test_inside_a_matching_window_no_ticket_no_notification_and_outside_it_normal_processing(desk: Desk) -> None:
    desk.rule(notify_users=["u-tech"])
    now = datetime.now(UTC)
    desk.window(name="FS-01 patching", provider="ninjaone", asset_id="asset-1042",
                starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1))
    inside = fire_disk(desk, 1042)
    outside = fire_disk(desk, 1041)  # another asset: not in the window's scope
    desk.post("ninjaone", inside)
    desk.post("ninjaone", outside)
    quiet = desk.alert(inside["seriesUid"])
    assert quiet.status == "suppressed" and quiet.suppressed_by_window_id is not None and quiet.ticket_id is None
    assert desk.alert(outside["seriesUid"]).ticket_id is not None
    assert len(desk.tickets()) == 1
    assert [e["payload"]["external_alert_id"] for e in desk.events(outbox.RMM_ALERT_TRIGGERED)] == [
        outside["seriesUid"]]
    assert len(desk.notifications()) == 1
    desk.post("ninjaone", desk.ninja.clear(inside["seriesUid"]))  # its reset resolves it quietly
    assert desk.alert(inside["seriesUid"]).status == "resolved" and desk.events(outbox.RMM_ALERT_RESOLVED) == []


def test_a_condition_still_firing_after_its_window_becomes_a_ticket_via_the_poller(desk: Desk) -> None:
    desk.rule()
    now = datetime.now(UTC)
    window = desk.window(name="patch night", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1))
    activity = fire_disk(desk)
    desk.post("ninjaone", activity)
    assert desk.alert(activity["seriesUid"]).status == "suppressed"
    assert reconcile(desk.app, TENANT, "ninjaone")["released"] == 0  # the window still holds
    from mspflow.alerts.windows import delete_window

    with desk.app.db.session(write=True) as s:  # the window is over
        delete_window(s, TENANT, window["window_id"])
    assert reconcile(desk.app, TENANT, "ninjaone")["released"] == 1
    alert = desk.alert(activity["seriesUid"])
    [ticket] = desk.tickets()
    assert alert.status == "active" and alert.ticket_id == ticket["ticket_id"]


def test_with_webhooks_off_a_poll_cycle_turns_active_alerts_into_tickets_and_closes_stale_ones(desk: Desk) -> None:
    desk.rule()
    ninja = desk.ninja.add_alert(device_id=1042, source_type=DISK, severity="CRITICAL", subject="Disk C: full")
    tactical = desk.tactical.add_alert(FILESERVER_ID, message="Disk C: full", check_id=17)
    reports = poll_due(desk.app)
    assert sorted((r["provider"], r["entered"]) for r in reports) == [("ninjaone", 1), ("tacticalrmm", 1)]
    assert poll_due(desk.app) == []  # not due again before its interval
    assert len(desk.tickets()) == 2
    desk.ninja.alerts.pop(ninja["uid"])  # both conditions cleared, and no webhook says so
    desk.tactical.alerts[tactical["id"]]["resolved"] = True
    later = datetime.now(UTC) + timedelta(minutes=16)
    assert sorted((r["provider"], r["reset"]) for r in poll_due(desk.app, now=later)) == [
        ("ninjaone", 1), ("tacticalrmm", 1)]
    assert all(t["is_closed"] for t in desk.tickets())
    assert {a.status for a in desk.alerts()} == {"resolved"}


def test_disconnecting_removes_the_poll_and_connecting_creates_it(desk: Desk) -> None:
    from mspflow.tenants import disconnect

    with desk.app.db.session(write=True) as s:
        disconnect(s, desk.app.registry, TENANT, "tacticalrmm")
    assert [r["provider"] for r in poll_due(desk.app)] == ["ninjaone"]


# -- exactly once -------------------------------------------------------------------------------------------


def test_the_same_event_delivered_5_times_makes_one_alert_and_one_ticket(desk: Desk) -> None:
    desk.rule()
    activity = fire_disk(desk)
    answers = [desk.post("ninjaone", activity) for _ in range(5)]
    assert [a["status"] for a in answers] == ["accepted"] + ["duplicate"] * 4
    again = dict(activity, id=activity["id"] + 1000)  # the same event under another delivery id
    desk.post("ninjaone", again)
    desk.app.ingest_alert(desk.app.registry.alert_sources["ninjaone"].normalize(_delivery(activity))[0])
    assert len(desk.alerts()) == 1 and len(desk.tickets()) == 1
    assert len(desk.comments(desk.tickets()[0]["ticket_id"])) == 1


def _delivery(payload: dict):  # type: ignore[no-untyped-def]
    from mspflow import Delivery

    return Delivery("e", TENANT, "ninjaone", "d", datetime.now(UTC), payload)


KILLED_WORKER = """
import sys, time
from mspflow.alerts import tickets
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.inbound.processing import Processor
from mspflow.plugins import Plugins

url, event_id, marker = sys.argv[1:4]

def stuck(self, *args, **kwargs):  # the ticket exists; the worker dies before its first comment
    open(marker, "w").write("ticket created")
    time.sleep(600)

tickets.Tickets.comment = stuck
Processor(App(db=Database(url), plugins=Plugins(strict=True))).process(event_id)
"""


def test_an_event_whose_worker_is_sigkilled_mid_processing_makes_one_alert_and_one_ticket(
        db: Database, sims: tuple[NinjaOneSimulator, TacticalRMMSimulator], tmp_path: Path) -> None:
    app = App(db=db, plugins=Plugins(strict=True))
    server = LiveServer(create_app(app, enqueue=False))  # journal only: the worker below takes it
    try:
        desk = Desk(app, server, *sims)
        desk.rule()
        activity = fire_disk(desk)
        event_id = desk.post("ninjaone", activity, wait=False)["event_id"]
        script, marker = tmp_path / "worker.py", tmp_path / "marker"
        script.write_text(KILLED_WORKER)
        worker = subprocess.Popen([sys.executable, str(script), db.url, event_id, str(marker)], env=os.environ.copy())
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert worker.poll() is None, "the worker ended before it was killed"
            assert time.monotonic() < deadline, "the worker never got to the ticket"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert len(desk.tickets()) == 1 and desk.alert(activity["seriesUid"]).pipeline_state == "pending"
        answers = [desk.post("ninjaone", activity, wait=False)["status"] for _ in range(4)]
        assert answers == ["duplicate"] * 4
        later = datetime.now(UTC) + timedelta(hours=1)  # the dead worker's lease has run out
        outcome = Processor(app, clock=lambda: later).process(event_id)
        assert outcome.status == "PROCESSED"
        [alert] = desk.alerts()
        [ticket] = desk.tickets()
        assert alert.ticket_id == ticket["ticket_id"] and alert.pipeline_state == "done"
        assert len(desk.comments(ticket["ticket_id"])) == 1
        assert len(desk.events(outbox.RMM_ALERT_TRIGGERED)) == 1
    finally:
        server.stop()
        app.close()


def test_rmm_alerts_create_ticket_makes_the_ticket_of_a_stored_alert_once(desk: Desk) -> None:
    desk.rule(create_ticket=None, auto_resolve_ticket=False)  # matched, but this rule makes no tickets
    activity = fire_disk(desk)
    desk.post("ninjaone", activity)
    alert = desk.alert(activity["seriesUid"])
    assert alert.ticket_id is None and desk.tickets() == []
    made = desk.app.execute("rmm.alerts.create_ticket", tenant=TENANT, input={"alert_id": alert.alert_id})
    assert made.ok, made.error
    [ticket] = desk.tickets()
    assert made.output == {"alert_id": alert.alert_id, "ticket_id": ticket["ticket_id"], "outcome": "ticket_created"}
    assert ticket["client_id"] == "c-contoso" and desk.alert(activity["seriesUid"]).ticket_open
    again = desk.app.execute("rmm.alerts.create_ticket", tenant=TENANT, input={"alert_id": alert.alert_id})
    assert again.ok and again.output["outcome"] == "existing" and len(desk.tickets()) == 1  # type: ignore[index]
    missing = desk.app.execute("rmm.alerts.create_ticket", tenant="other", input={"alert_id": alert.alert_id})
    assert not missing.ok and missing.error.code == "NOT_FOUND"  # type: ignore[union-attr]


# -- Level -------------------------------------------------------------------------------------------------


def test_a_signed_level_alert_webhook_makes_a_ticket_and_closing_it_resolves_the_alert_in_level(
        desk: Desk) -> None:
    from mspflow_levelio.sim import LevelSimulator

    from mspflow.inbound.journal import ensure_webhook
    from mspflow.inbound.verify import sign
    from mspflow.tenants import connect

    level = LevelSimulator()
    level.alerts.clear()
    http.mount(level.base_url, level.transport())
    with desk.app.db.session(write=True) as s:
        connect(s, desk.app.registry, TENANT, "levelio")
        desk.app.secrets.set(s, TENANT, "levelio_api_key", level.api_key)
        hook = ensure_webhook(s, desk.app.secrets, desk.app.registry, TENANT, "levelio")
    desk.rule()
    device = next(iter(level.devices))
    alert = level.add_alert(device, "Disk C: below 5% free", "C: has 3.1 GB free", severity="critical")
    raw = json.dumps(level.webhook(alert)).encode()
    assert hook.secret is not None
    forged = desk.client.post(hook.path, content=raw, headers={"X-Level-Signature": "sha256=" + "0" * 64,
                                                               "Content-Type": "application/json"})
    assert forged.status_code == 401
    answer = desk.client.post(hook.path, content=raw, headers={
        "X-Level-Signature": sign(hook.secret, raw, prefix="sha256="), "Content-Type": "application/json"})
    assert answer.status_code == 200
    wait_final(desk.app, answer.json()["event_id"])
    stored = desk.alert(alert["id"])
    assert stored.dedup_key == f"{device}|Disk C: below 5% free" and stored.ticket_id is not None
    desk.close_ticket(stored.ticket_id)
    assert level.resolved == [alert["id"]]
    assert desk.alert(alert["id"]).status == "resolved"  # levelio.alerts.resolve records it resolved
    assert reconcile(desk.app, TENANT, "levelio") == {"active": 0, "entered": 0, "released": 0, "reset": 0,
                                                      "waiting": 0}


def test_an_acknowledged_event_stamps_the_alert_and_an_alert_no_rule_matches_gets_no_ticket(desk: Desk) -> None:
    desk.rule(conditions={"severities": ["MINOR"]})
    activity = fire_disk(desk)  # CRITICAL: the rule does not match
    desk.post("ninjaone", activity)
    acknowledged = desk.ninja.webhook(desk.ninja.alerts[activity["seriesUid"]], "ACKNOWLEDGED")
    acknowledged["userId"] = 77
    desk.post("ninjaone", acknowledged)
    alert = desk.alert(activity["seriesUid"])
    assert alert.matched_rule_id is None and alert.ticket_id is None and desk.tickets() == []
    assert alert.acknowledged_at is not None and alert.acknowledged_by == "77" and alert.status == "active"
    [event] = desk.events(outbox.RMM_ALERT_TRIGGERED)
    assert event["payload"]["outcome"] == "no_ticket"
    other = desk.ninja.webhook(desk.ninja.alerts[activity["seriesUid"]])
    other["activityType"] = "ACTIONSET"
    answer = desk.post("ninjaone", other, wait=False)
    assert wait_final(desk.app, answer["event_id"])["status"] == "IGNORED"


def test_many_pollers_at_once_take_each_integrations_round_exactly_once(desk: Desk) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mspflow.alerts.polling import claim_due

    with ThreadPoolExecutor(8) as pool:
        won = [w for got in pool.map(lambda i: claim_due(desk.app, owner=f"worker-{i}"), range(8)) for w in got]
    assert sorted(won) == [(TENANT, "ninjaone"), (TENANT, "tacticalrmm")]
    later = datetime.now(UTC) + timedelta(minutes=16)  # the next interval: due again, taken once again
    with ThreadPoolExecutor(8) as pool:
        again = [w for got in pool.map(lambda i: claim_due(desk.app, now=later, owner=f"w-{i}"), range(8))
                 for w in got]
    assert sorted(again) == [(TENANT, "ninjaone"), (TENANT, "tacticalrmm")]


def disk_firing(external_id: str) -> AlertEvent:
    """A NinjaOne disk-space alert firing on device 1041: every such firing shares one dedup key."""
    return AlertEvent(kind="triggered", tenant=TENANT, provider="ninjaone", external_alert_id=external_id,
                      device_id="1041", condition_id=DISK, severity="MAJOR", message="Disk C: below 10%")


def test_two_firings_of_one_condition_decided_at_the_same_instant_open_one_ticket(
        desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alert A is opening its ticket when alert B (same device and condition) is decided: B must not find
    "no open ticket" and open a second one. It waits (retryable CONFLICT), then joins A's ticket."""
    import threading

    from mspflow.alerts.pipeline import CLAIM_WAIT_S, AlertPipeline
    from mspflow.alerts.tickets import Tickets
    from mspflow.errors import ActionError

    desk.rule()
    creating, other_decided = threading.Event(), threading.Event()
    real_create = Tickets.create

    def first_create_waits(self: Tickets, data: dict[str, object], *, key: str) -> str:
        if not creating.is_set():
            creating.set()
            other_decided.wait(30)  # alert B is decided while A's ticket is being opened
        return real_create(self, data, key=key)

    monkeypatch.setattr(Tickets, "create", first_create_waits)

    pipeline = AlertPipeline(desk.app)
    first = threading.Thread(target=pipeline.handle, args=(disk_firing("a-1"),))
    first.start()
    assert creating.wait(30)
    try:
        with pytest.raises(ActionError) as waited:
            pipeline.handle(disk_firing("a-2"))
    finally:
        other_decided.set()
    first.join(30)
    err = waited.value
    assert err.code == "CONFLICT" and err.retryable and err.details["reason"] == "ALERT_BEING_TICKETED"
    assert err.retry_after is not None and 0 < err.retry_after <= CLAIM_WAIT_S
    assert pipeline.handle(disk_firing("a-2")).outcome == "joined"  # its retry, once A's decision is recorded
    [ticket] = desk.tickets()
    assert {a.external_alert_id: a.ticket_id for a in desk.alerts("ninjaone")} == {
        "a-1": ticket["ticket_id"], "a-2": ticket["ticket_id"]}
    assert [a.occurrence_count for a in desk.alerts("ninjaone")] == [2, 2]


def test_a_dedup_claim_left_by_a_worker_that_died_is_taken_over_after_it_expires(desk: Desk) -> None:
    from mspflow.alerts.pipeline import CLAIM_TTL_S, AlertPipeline
    from mspflow.db.models import AlertDedupClaim
    from mspflow.errors import ActionError

    desk.rule()
    event = disk_firing("b-1")
    now = datetime.now(UTC)
    with desk.app.db.session(write=True) as s:  # alert "gone" was deciding this key when its worker died
        s.add(AlertDedupClaim(tenant=TENANT, provider="ninjaone", dedup_key=event.dedup_key, alert_id="gone",
                              claimed_at=now))
    with pytest.raises(ActionError, match="same dedup key"):
        AlertPipeline(desk.app, clock=lambda: now + timedelta(seconds=CLAIM_TTL_S - 1)).handle(event)
    assert not desk.tickets()
    later = AlertPipeline(desk.app, clock=lambda: now + timedelta(seconds=CLAIM_TTL_S + 1)).handle(event)
    assert later.outcome == "ticket_created" and len(desk.tickets()) == 1
    with desk.app.db.sessions() as s:
        assert s.query(AlertDedupClaim).count() == 0  # gone with the decision


def test_an_alert_whose_worker_died_after_opening_its_ticket_is_finished_by_the_next_firing(
        desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """A's worker died between opening the ticket and recording it; B (same condition) comes after A's claim
    expired: B first finishes A's decision under A's own keys, so both alerts end on A's one ticket."""
    from mspflow.alerts.pipeline import CLAIM_TTL_S, AlertPipeline
    from mspflow.alerts.tickets import Tickets

    desk.rule()

    class WorkerDied(BaseException):
        pass

    def dies(self: Tickets, *args: object, **kwargs: object) -> None:
        raise WorkerDied

    with monkeypatch.context() as m:
        m.setattr(Tickets, "link", dies)
        with pytest.raises(WorkerDied):
            AlertPipeline(desk.app).handle(disk_firing("c-1"))
    [ticket] = desk.tickets()
    assert desk.alert("c-1").pipeline_state == "pending" and desk.alert("c-1").ticket_id is None
    later = datetime.now(UTC) + timedelta(seconds=CLAIM_TTL_S + 1)
    assert AlertPipeline(desk.app, clock=lambda: later).handle(disk_firing("c-2")).outcome == "joined"
    assert [t["ticket_id"] for t in desk.tickets()] == [ticket["ticket_id"]]
    assert desk.alert("c-1").ticket_id == desk.alert("c-2").ticket_id == ticket["ticket_id"]
    assert desk.alert("c-1").pipeline_state == "done"
