"""Workflows that run: publish, runs advanced step by step, conditions, $ref failures, retries, triggers
(on SQLite and PostgreSQL, in-process; the worker and crash paths are in test_workflow_crash.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from mspflow import outbox
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.errors import ActionError
from tests.runtime_support import effects, make_app, prepare

APPLY, READ = "counter.effects.apply", "counter.effects.read"


@pytest.fixture
def app(db: Database) -> App:
    prepare(db)
    return make_app(db)


def chain(name: str = "chain", **extra: Any) -> dict[str, Any]:
    return {"name": name, "steps": [
        {"path": "first", "action_id": APPLY, "input": {"label": "{{ trigger.prefix }}-1"}},
        {"path": "count", "action_id": READ, "input": {"label": {"$ref": "steps.first.output.label"}}},
        {"path": "second", "action_id": APPLY,
         "input": {"label": "{{ trigger.prefix }}-2 after {{ steps.count.output.count }}"}},
    ], **extra}


def test_publish_refuses_unknown_actions_versions_and_bad_static_input(app: App) -> None:
    bad = {"name": "bad", "steps": [
        {"path": "typo", "action_id": "counter.effects.aply"},
        {"path": "old", "action_id": APPLY, "version": 9, "input": {"label": "x"}},
        {"path": "static", "action_id": APPLY, "input": {"label": 5, "sleep": -1}},
        {"path": "later", "action_id": APPLY, "input": {"label": {"$ref": "steps.after.output.label"}}},
        {"path": "after", "action_id": APPLY, "input": {"label": "x"}},
    ]}
    with pytest.raises(ActionError) as refused:
        app.workflows.publish("acme", bad)
    assert refused.value.code == "VALIDATION_ERROR"
    assert [(e["step"], e["code"]) for e in refused.value.details["errors"]] == [
        ("typo", "NOT_FOUND"), ("old", "NOT_FOUND"), ("static", "VALIDATION_ERROR"), ("later", "VALIDATION_ERROR")]
    assert "step typo" in refused.value.message
    assert app.workflows.definitions("acme") == []
    with pytest.raises(ActionError, match="steps"):
        app.workflows.publish("acme", {"name": "empty", "steps": []})


def test_publish_versions_warns_on_a_disconnected_integration_and_disable(app: App, tmp_path: Path) -> None:
    file = tmp_path / "chain.yaml"
    file.write_text("name: chain\ntrigger: manual\nsteps:\n"
                    "  - {path: first, action_id: counter.effects.apply, input: {label: a}}\n")
    assert app.workflows.publish("acme", file) | {"warnings": []} == {
        "name": "chain", "version": 1, "created": True, "warnings": [], "trigger": {"event": None, "filter": {}}}
    assert app.workflows.publish("acme", file)["created"] is False  # the same definition: the same version
    assert app.workflows.publish("acme", chain())["version"] == 2
    other = app.workflows.publish("globex", chain())  # globex has not connected the counter integration
    assert other["version"] == 1
    assert {w["code"] for w in other["warnings"]} == {"INTEGRATION_INACTIVE"}
    assert [(w["name"], w["version"]) for w in app.workflows.definitions("acme")] == [("chain", 2)]
    assert app.workflows.get("acme", "chain", 1)["steps"][0]["input"] == {"label": "a"}
    app.workflows.disable("acme", "chain")
    with pytest.raises(ActionError) as disabled:
        app.workflows.start("chain", tenant="acme")
    assert disabled.value.details["reason"] == "DISABLED"
    with pytest.raises(ActionError) as other_tenant:
        app.workflows.get("initech", "chain")
    assert other_tenant.value.code == "NOT_FOUND"


def test_a_run_chains_refs_and_templates_and_records_each_step(app: App, db: Database) -> None:
    app.workflows.publish("acme", chain())
    run = app.workflows.start("chain", tenant="acme", payload={"prefix": "p"}, wait=True)
    assert run["status"] == "SUCCEEDED", run["error"]
    assert [(s["path"], s["status"]) for s in run["steps"]] == [
        ("first", "SUCCEEDED"), ("count", "SUCCEEDED"), ("second", "SUCCEEDED")]
    assert run["steps"][1]["output"] == {"count": 1}
    assert run["steps"][2]["output"]["label"] == "p-2 after 1"
    record = app.invocation(run["steps"][0]["invocation_id"])
    assert record is not None and record["run_id"] == run["run_id"] and record["step_path"] == "steps.first"
    assert effects(db, "p-1") == 1 and effects(db, "p-2 after 1") == 1
    assert [r["run_id"] for r in app.workflows.runs("acme")] == [run["run_id"]]
    assert app.workflows.runs("globex") == []
    with pytest.raises(ActionError):
        app.workflows.run("globex", run["run_id"])  # another tenant's run is not found


def test_conditions_skip_steps(app: App, db: Database) -> None:
    app.workflows.publish("acme", {"name": "cond", "steps": [
        {"path": "a", "action_id": APPLY, "input": {"label": "c-a"}, "if": {"gt": [{"$ref": "trigger.pct"}, 90]}},
        {"path": "b", "action_id": APPLY, "input": {"label": "c-b"},
         "if": {"all": [{"eq": [{"$ref": "steps.a.status"}, "SKIPPED"]}, {"exists": "trigger.device"}]}},
        {"path": "c", "action_id": APPLY, "input": {"label": "c-c"}, "if": {"not": "{{ trigger.quiet }}"}},
    ]})
    run = app.workflows.start("cond", tenant="acme", payload={"pct": 50, "device": "d1", "quiet": True}, wait=True)
    assert run["status"] == "SUCCEEDED"
    assert [s["status"] for s in run["steps"]] == ["SKIPPED", "SUCCEEDED", "SKIPPED"]
    assert (effects(db, "c-a"), effects(db, "c-b"), effects(db, "c-c")) == (0, 1, 0)


def test_a_ref_into_a_failed_steps_output_stops_the_run_naming_the_step(app: App, db: Database) -> None:
    app.workflows.publish("acme", {"name": "refs", "steps": [
        {"path": "lookup", "action_id": APPLY, "input": {"label": "r-1", "fail": "permanent"}, "on_error": "continue"},
        {"path": "noted", "action_id": APPLY, "input": {"label": "r-2"}},
        {"path": "use", "action_id": APPLY, "input": {"label": {"$ref": "steps.lookup.output.label"}}},
        {"path": "never", "action_id": APPLY, "input": {"label": "r-4"}},
    ]})
    run = app.workflows.start("refs", tenant="acme", wait=True)
    assert run["status"] == "FAILED"
    assert run["error"]["step"] == "use"
    assert "step use" in run["error"]["message"] and "step 'lookup', which failed (NOT_FOUND" in run["error"]["message"]
    assert [(s["path"], s["status"]) for s in run["steps"]] == [
        ("lookup", "FAILED"), ("noted", "SUCCEEDED"), ("use", "FAILED")]
    assert effects(db, "r-4") == 0


def test_a_failed_run_retried_replays_its_side_effects_and_heals(app: App, db: Database) -> None:
    app.workflows.publish("acme", {"name": "outage", "steps": [
        {"path": "before", "action_id": APPLY, "input": {"label": "o-1"}},
        {"path": "flaky", "action_id": APPLY, "input": {"label": "o-2", "fail": "transient"}, "retries": 0},
        {"path": "after", "action_id": APPLY, "input": {"label": "o-3"}},
    ]})
    run = app.workflows.start("outage", tenant="acme", wait=True)
    assert run["status"] == "FAILED" and run["error"]["step"] == "flaky"
    assert run["error"]["code"] == "TRANSIENT_FAILURE" and run["error"]["retryable"] is True
    healed = app.workflows.retry("acme", run["run_id"], wait=True)
    assert healed["status"] == "SUCCEEDED" and healed["attempt"] == 2
    assert [(s["path"], s["replayed"]) for s in healed["steps"]] == [
        ("before", True), ("flaky", False), ("after", False)]
    assert (effects(db, "o-1"), effects(db, "o-3")) == (1, 1)
    with pytest.raises(ActionError) as again:
        app.workflows.retry("acme", run["run_id"])
    assert again.value.details["reason"] == "ALREADY_SUCCEEDED"


def test_a_runs_secret_named_payload_fields_are_masked_when_shown_but_reach_its_steps(app: App) -> None:
    app.workflows.publish("acme", {"name": "keyed", "steps": [
        {"path": "a", "action_id": "transform.text.render",
         "input": {"template": "$n", "values": {"n": "{{ trigger.api_key }}"}}}]})
    run = app.workflows.start("keyed", tenant="acme", payload={"api_key": "k-123456789", "who": "ada"}, wait=True)
    assert run["status"] == "SUCCEEDED" and run["steps"][0]["output"]["text"] == "k-123456789"
    assert run["payload"] == {"api_key": "[REDACTED]", "who": "ada"}
    assert run == app.workflows.run("acme", run["run_id"])


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import mspflow.worker

    monkeypatch.setattr(mspflow.worker, "BACKOFF_BASE_S", 0.01)


def test_a_step_failing_with_a_retryable_error_is_called_again_and_the_run_goes_on(
        app: App, db: Database, quick_backoff: None) -> None:
    app.workflows.publish("acme", {"name": "blip", "steps": [
        {"path": "flaky", "action_id": APPLY, "input": {"label": "b-1", "fail": "transient", "fail_until_attempt": 2}},
        {"path": "after", "action_id": APPLY, "input": {"label": "b-2"}}]})
    run = app.workflows.start("blip", tenant="acme", wait=True)
    assert run["status"] == "SUCCEEDED", run["error"]
    flaky = run["steps"][0]
    assert (flaky["status"], flaky["tries"], flaky["output"]) == ("SUCCEEDED", 3, {"label": "b-1", "attempt": 3})
    assert (effects(db, "b-1"), effects(db, "b-2")) == (1, 1)  # the failed tries rolled back; one effect


def test_a_step_whose_retries_run_out_fails_the_run_and_a_permanent_error_is_not_retried(
        app: App, db: Database, quick_backoff: None) -> None:
    app.workflows.publish("acme", {"name": "down", "steps": [
        {"path": "flaky", "action_id": APPLY, "retries": 1,
         "input": {"label": "d-1", "fail": "transient", "fail_until_attempt": 10}}]})
    run = app.workflows.start("down", tenant="acme", wait=True)
    assert run["status"] == "FAILED" and run["error"]["code"] == "TRANSIENT_FAILURE"
    assert (run["steps"][0]["status"], run["steps"][0]["tries"]) == ("FAILED", 2)
    app.workflows.publish("acme", {"name": "gone", "steps": [
        {"path": "lookup", "action_id": APPLY, "input": {"label": "g-1", "fail": "permanent"}}]})
    gone = app.workflows.start("gone", tenant="acme", wait=True)
    assert gone["error"]["code"] == "NOT_FOUND" and gone["steps"][0]["tries"] == 1
    with pytest.raises(ActionError) as refused:
        app.workflows.publish("acme", {"name": "eager", "steps": [
            {"path": "a", "action_id": APPLY, "input": {"label": "e"}, "retries": 11}]})
    assert refused.value.code == "VALIDATION_ERROR"


TRIGGERED = {"name": "on-ticket", "trigger": {"event": "TICKET_CREATED", "filter": {"priority": ["high", "urgent"]}},
             "steps": [{"path": "note", "action_id": APPLY, "input": {"label": "t-{{ trigger.ticket_id }}"}}]}


def test_a_trigger_event_delivered_twice_starts_one_run(app: App, db: Database) -> None:
    app.workflows.publish("acme", TRIGGERED)
    event = {"event_id": "evt-1", "tenant": "acme", "event_type": "TICKET_CREATED",
             "payload": {"ticket_id": "T1", "priority": "high"}}
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(app.workflows.trigger(event))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert app.workflows.trigger(event) == []
    assert effects(db, "t-T1") == 1
    [run] = app.workflows.runs("acme")
    assert run["status"] == "SUCCEEDED" and run["trigger"] == {"type": "TICKET_CREATED", "event_id": "evt-1"}
    low = {**event, "event_id": "evt-2", "payload": {"ticket_id": "T2", "priority": "low"}}
    assert app.workflows.trigger(low) == []  # the filter does not match
    assert app.workflows.trigger({**event, "event_id": "evt-3", "tenant": "globex"}) == []  # not globex's workflow


def test_outbox_events_start_workflows_once(app: App, db: Database) -> None:
    app.workflows.publish("acme", TRIGGERED)
    with db.session() as s:
        outbox.emit(s, "acme", "TICKET_CREATED", {"ticket_id": "T9", "priority": "urgent"})
        outbox.emit(s, "acme", "TICKET_CLOSED", {"ticket_id": "T9"})
        outbox.emit(s, "acme", "TICKET_CREATED", ["not", "an", "object"])  # type: ignore[arg-type]
    started = app.workflows.dispatch_events()
    assert len(started) == 1
    assert app.workflows.dispatch_events() == []  # the malformed event was looked at once, not every time
    assert effects(db, "t-T9") == 1
    assert app.workflows.run("acme", started[0])["status"] == "SUCCEEDED"


def test_a_step_event_triggers_the_next_workflow_in_process(app: App, db: Database) -> None:
    """A workflow's step publishes an event (scheduling.create_entry's outbox event) that starts another."""
    from mspflow.db.models import User

    with db.session() as s:
        s.add(User(tenant="acme", user_id="u1", first_name="Ada", user_type="internal"))
    app.workflows.publish("acme", {"name": "schedule", "steps": [{
        "path": "entry", "action_id": "scheduling.create_entry",
        "input": {"assigned_user_ids": ["u1"], "title": "On-site",
                  "window": {"start": "2030-01-07T09:00:00", "end": "2030-01-07T10:00:00", "timezone": "UTC"}}}]})
    app.workflows.publish("acme", {"name": "follow", "trigger": {"event": "SCHEDULE_ENTRY_CREATED"},
                                   "steps": [{"path": "mark", "action_id": APPLY, "input": {"label": "followed"}}]})
    run = app.workflows.start("schedule", tenant="acme", wait=True)
    assert run["status"] == "SUCCEEDED"
    assert effects(db, "followed") == 1
    assert [r["workflow"] for r in app.workflows.runs("acme")] == ["follow", "schedule"]


def booking_step(db: Database) -> dict[str, object]:
    """A step booking user u1 (added here): its action emits SCHEDULE_ENTRY_CREATED, the event of the
    trigger-chain tests' workflows."""
    from mspflow.db.models import User

    with db.session() as s:
        s.add(User(tenant="acme", user_id="u1", first_name="Ada", user_type="internal"))
    return {"path": "entry", "action_id": "scheduling.create_entry",
            "input": {"assigned_user_ids": ["u1"], "title": "Echo", "conflict_mode": "override",
                      "window": {"start": "2030-01-07T09:00:00", "end": "2030-01-07T10:00:00", "timezone": "UTC"}}}


def test_a_workflow_that_triggers_itself_stops_at_the_trigger_depth(
        app: App, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Its step emits the very event it is triggered by: each run starts the next one level deeper, and the
    event of the run at MSPFLOW_MAX_TRIGGER_DEPTH starts nothing (instead of booking entries forever)."""
    from mspflow import outbox

    monkeypatch.setenv("MSPFLOW_MAX_TRIGGER_DEPTH", "3")
    book = booking_step(db)
    app.workflows.publish("acme", {"name": "echo", "trigger": {"event": "SCHEDULE_ENTRY_CREATED"}, "steps": [book]})
    app.workflows.publish("acme", {"name": "start", "steps": [book]})
    first = app.workflows.start("start", tenant="acme", wait=True)
    assert first["status"] == "SUCCEEDED"
    runs = app.workflows.runs("acme")
    assert sorted((r["workflow"], r["trigger"].get("depth", 0)) for r in runs) == [
        ("echo", 1), ("echo", 2), ("echo", 3), ("start", 0)]
    assert all(r["status"] == "SUCCEEDED" for r in runs)
    with db.session() as s:
        events = outbox.pending(s, tenant="acme", event_type="SCHEDULE_ENTRY_CREATED")
    assert len(events) == 4 and {e["origin_run_id"] for e in events} == {r["run_id"] for r in runs}
    assert "more than MSPFLOW_MAX_TRIGGER_DEPTH=3 (a workflow that triggers itself?)" in caplog.text
    assert app.workflows.dispatch_events() == []  # the deepest event was looked at: it never comes back


def test_a_chain_of_runs_that_fans_out_stops_at_the_chains_run_bound(
        app: App, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Two workflows answer the event each of their runs emits: every run starts two, so the depth bound
    alone lets the chain double at each level. MSPFLOW_MAX_TRIGGERED_RUNS bounds the chain's runs in all."""
    monkeypatch.setenv("MSPFLOW_MAX_TRIGGER_DEPTH", "4")  # 2 + 4 + 8 + 16 = 30 runs without the bound
    monkeypatch.setenv("MSPFLOW_MAX_TRIGGERED_RUNS", "5")
    book = booking_step(db)
    for name in ("echo-a", "echo-b"):
        app.workflows.publish("acme", {"name": name, "trigger": {"event": "SCHEDULE_ENTRY_CREATED"}, "steps": [book]})
    app.workflows.publish("acme", {"name": "start", "steps": [book]})
    first = app.workflows.start("start", tenant="acme", wait=True)
    assert first["status"] == "SUCCEEDED"
    runs = app.workflows.runs("acme", limit=100)
    derived = [r for r in runs if r["workflow"] != "start"]
    assert len(derived) == 5 and all(r["status"] == "SUCCEEDED" for r in runs)
    assert {r["trigger"]["root_run_id"] for r in derived} == {first["run_id"]}
    assert "has started MSPFLOW_MAX_TRIGGERED_RUNS=5 runs" in caplog.text
    assert app.workflows.dispatch_events() == []  # the refused events were looked at: they never come back


def test_the_documented_example_definition_publishes(app: App) -> None:
    import re

    import yaml

    page = (Path(__file__).resolve().parent.parent / "docs" / "workflows.md").read_text()
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", page, re.S).group(1))  # type: ignore[union-attr]
    assert app.workflows.check(example, tenant="acme") == {"ok": True, "errors": [], "warnings": []}


def test_in_a_condition_a_missing_field_reads_as_null_but_in_an_input_it_stops_the_run(app: App, db: Database) -> None:
    app.workflows.publish("acme", {"name": "missing", "steps": [
        {"path": "a", "action_id": APPLY, "input": {"label": "m-a"}, "if": {"eq": [{"$ref": "trigger.nope"}, None]}},
        {"path": "b", "action_id": APPLY, "input": {"label": "m-b"}, "if": {"in": ["x", "{{ trigger.nope }}"]}},
        {"path": "c", "action_id": APPLY, "input": {"label": {"$ref": "trigger.nope"}}},
    ]})
    run = app.workflows.start("missing", tenant="acme", wait=True)
    assert [s["status"] for s in run["steps"]] == ["SUCCEEDED", "SKIPPED", "FAILED"]
    assert run["status"] == "FAILED" and run["error"]["message"] == "step c: trigger.nope: trigger has no 'nope'"


def test_a_rate_limited_step_waits_and_goes_on_instead_of_failing_the_run(app: App, db: Database) -> None:
    app.workflows.publish("acme", {"name": "limited", "steps": [
        {"path": "a", "action_id": APPLY, "input": {"label": "rl", "fail": "rate_limited"}}]})
    run = app.workflows.start("limited", tenant="acme", wait=True)
    assert run["status"] == "SUCCEEDED" and run["steps"][0]["output"] == {"label": "rl", "attempt": 2}


def _pinned_plugin(versions: tuple[int, ...], calls: list[int]) -> object:
    """A tile-less side-effectful action ``pinned.things.apply`` in the given versions, counting its calls."""
    import types

    from pydantic import BaseModel

    from mspflow import action, hookimpl

    class In(BaseModel):
        label: str

    class Out(BaseModel):
        label: str

    def make(version: int) -> Any:
        def handler(params, ctx):  # type: ignore[no-untyped-def]  # models given below
            calls.append(version)
            return Out(label=params.label)
        return action("pinned.things.apply", label="Apply", handler=handler, version=version, side_effectful=True,
                      input_model=In, output_model=Out)

    module = types.ModuleType("mspflow_pinned")

    @hookimpl
    def register_actions(register: Any) -> None:
        for v in versions:
            register(make(v))

    module.register_actions = register_actions  # type: ignore[attr-defined]
    return module


def test_a_retry_after_a_plugin_upgrade_keeps_the_version_a_step_ran_with(db: Database) -> None:
    from mspflow.plugins import Plugins
    from tests.runtime_support import counter_plugin

    prepare(db)
    calls: list[int] = []
    before = App(db=db, plugins=Plugins(entry_points=[], strict=True, extra=[
        ("mspflow-counter", counter_plugin()), ("mspflow-pinned", _pinned_plugin((1,), calls))]))
    before.workflows.publish("acme", {"name": "pin", "steps": [
        {"path": "effect", "action_id": "pinned.things.apply", "input": {"label": "x"}},
        {"path": "flaky", "action_id": APPLY, "input": {"label": "pin-flaky", "fail": "transient"}, "retries": 0}]})
    failed = before.workflows.start("pin", tenant="acme", wait=True)
    assert failed["status"] == "FAILED" and calls == [1]
    after = App(db=db, plugins=Plugins(entry_points=[], strict=True, extra=[  # the plugin now has a version 2
        ("mspflow-counter", counter_plugin()), ("mspflow-pinned", _pinned_plugin((1, 2), calls))]))
    healed = after.workflows.retry("acme", failed["run_id"], wait=True)
    assert healed["status"] == "SUCCEEDED"
    assert healed["steps"][0]["replayed"] is True and healed["steps"][0]["version"] == 1
    assert calls == [1]  # the side effect was not repeated under version 2
