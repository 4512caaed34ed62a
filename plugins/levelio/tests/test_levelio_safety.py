"""What must never happen: device, alert and run ids (or webhook tokens) steering requests, a replayed trigger
starting a second run, one tenant seeing another's rows, and vendor plumbing creeping into the plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from mspflow_levelio.sim import CLEAR_TEMP, FRONTDESK, RESTART_SPOOLER, gid
from sqlalchemy import select

from mspflow.db.models import Asset, RmmAlert
from mspflow.testing import check_imports

HOSTILE = ["../alerts", f"{FRONTDESK}/resolve", "..", ".", f"{FRONTDESK}?status=resolved", "%2e%2e", f"{FRONTDESK}#",
           f" {FRONTDESK}", f"{FRONTDESK}/../{gid('Device', 102)}", "../automations/webhooks/x", "a b&c=d"]
PACKAGE = Path(__file__).parent.parent / "mspflow_levelio"


def only_segment(path: str, prefix: str, suffix: str = "") -> str:
    """The single segment between ``prefix`` and ``suffix``, decoded; fails if the id added segments."""
    assert path.startswith(prefix) and path.endswith(suffix), path
    segment = path[len(prefix):len(path) - len(suffix)]
    assert segment and "/" not in segment and "?" not in segment and "#" not in segment, path
    assert segment not in (".", ".."), path
    return unquote(segment)


def the_one_request(level: Any, method: str) -> str:
    """The raw path (percent-encoding kept, query left off) of the only request the simulator saw."""
    sent = [(r.method, r.url.raw_path.decode().split("?", 1)[0]) for r in level.sim.requests]
    assert len(sent) == 1 and sent[0][0] == method, sent
    return sent[0][1]


def test_the_plugin_leaves_vendor_plumbing_to_the_core() -> None:
    check_imports(PACKAGE)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_device_ids_stay_one_path_segment_or_one_query_value(level: Any, hostile: str) -> None:
    for action, params in (("devices.get", {"device_id": hostile}),
                           ("devices.find", {"device_id": hostile, "live": True})):
        level.sim.requests.clear()
        assert level.fail(action, params).code == "NOT_FOUND", action
        assert only_segment(the_one_request(level, "GET"), "/v2/devices/") == hostile
        assert not level.sim.requests[0].url.query
    for action, path in (("alerts.list_active", "/v2/alerts"), ("updates.list", "/v2/updates")):
        level.sim.requests.clear()
        assert level.ok(action, {"device_id": hostile, "live": True} if "alerts" in action
                        else {"device_id": hostile})["count"] == 0
        assert the_one_request(level, "GET") == path
        assert level.sim.requests[0].url.params["device_id"] == hostile


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_alert_ids_stay_one_path_segment(level: Any, hostile: str) -> None:
    level.sim.requests.clear()
    assert level.fail("alerts.resolve", {"alert_id": hostile}).code == "NOT_FOUND"
    assert only_segment(the_one_request(level, "POST"), "/v2/alerts/", "/resolve") == hostile
    assert level.sim.resolved == [] and not any(a["is_resolved"] for a in list(level.sim.alerts.values())[:3])


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_run_ids_and_tokens_stay_one_path_segment(level: Any, hostile: str) -> None:
    level.sim.requests.clear()
    assert level.fail("automations.run_status", {"run_id": hostile, "include_steps": True}).code == "NOT_FOUND"
    assert only_segment(the_one_request(level, "GET"), "/v2/automation-runs/") == hostile
    assert dict(level.sim.requests[0].url.params) == {"include_steps": "true"}
    level.sim.requests.clear()
    assert level.fail("automations.trigger", {"webhook_token": hostile}).code == "NOT_FOUND"
    assert only_segment(the_one_request(level, "POST"), "/v2/automations/webhooks/") == hostile
    assert level.sim.triggers == [] and level.sim.runs == {}


def test_hostile_device_ids_in_a_trigger_stay_in_the_body(level: Any) -> None:
    level.ok("automations.trigger", {"automation_id": CLEAR_TEMP, "device_ids": HOSTILE})
    assert level.sim.triggers[0]["body"] == {"device_ids": HOSTILE}
    assert only_segment(level.sent("POST")[0][1], "/v2/automations/webhooks/") == level.sim.token_of(CLEAR_TEMP)


def test_a_replayed_trigger_starts_one_run(level: Any) -> None:
    call = {"run_id": "run-7", "step_path": "steps.2"}
    params = {"automation_id": RESTART_SPOOLER, "device_ids": [FRONTDESK]}
    first = level.run("automations.trigger", params, **call)
    second = level.run("automations.trigger", params, **call)
    assert first.ok and second.ok and second.replayed and not first.replayed
    assert second.output == first.output and len(level.sim.runs) == 1 and len(level.sim.triggers) == 1
    assert level.sim.count("POST", "/automations/webhooks/" + level.sim.token_of(RESTART_SPOOLER)) == 1
    conflict = level.run("automations.trigger", {"automation_id": CLEAR_TEMP}, **call)
    assert conflict.error is not None and conflict.error.code == "CONFLICT" and len(level.sim.triggers) == 1


def test_a_replayed_resolve_posts_once(level: Any) -> None:
    call = {"run_id": "run-8", "step_path": "steps.1"}
    alert = gid("Alert", 1)
    assert level.ok("alerts.resolve", {"alert_id": alert}, **call) == \
        level.ok("alerts.resolve", {"alert_id": alert}, **call)
    assert level.sim.resolved == [alert]


def test_the_webhook_token_is_never_recorded(level: Any) -> None:
    token = level.sim.token_of(CLEAR_TEMP)
    level.ok("automations.trigger", {"automation_id": CLEAR_TEMP})
    level.sim.faults.fail_next = 1
    err = level.fail("automations.trigger", {"webhook_token": token})
    assert token not in str(err.to_dict())
    with level.app.db.sessions() as s:
        from mspflow.db.models import WorkflowActionInvocation as Inv

        rows = [str((r.input, r.output, r.error_message, r.error_details)) for r in s.execute(select(Inv)).scalars()]
    assert rows and not any(token in r for r in rows)


def test_tenants_see_only_their_own_assets_and_alerts(level: Any) -> None:
    level.connect("globex")
    level.use_key(level.sim.api_key, tenant="globex")
    with level.app.db.session() as s:
        s.add(Asset(tenant="globex", name="Globex PC", rmm_provider="levelio", rmm_device_id=FRONTDESK))
        s.add(RmmAlert(tenant="globex", provider="levelio", external_alert_id=gid("Alert", 1), status="active",
                       external_device_id=FRONTDESK))
    assert level.ok("devices.find") == {"devices": [], "count": 0}
    assert level.ok("alerts.list_active", {"device_id": FRONTDESK}) == {"alerts": [], "count": 0}
    assert level.ok("devices.get", {"device_id": FRONTDESK})["device"]["asset_id"] is None
    level.ok("alerts.resolve", {"alert_id": gid("Alert", 1)})
    with level.app.db.sessions() as s:
        assert s.execute(select(RmmAlert.status).where(RmmAlert.tenant == "globex")).scalar_one() == "active"
    assert level.ok("devices.find", tenant="globex")["count"] == 1
