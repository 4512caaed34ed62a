"""What must never happen: ids steering requests, repeated writes, one tenant seeing another's rows,
and vendor plumbing (retries, throttles, token caches, scrubbing) creeping into the plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from mspflow.db.models import Asset, RmmAlert
from mspflow.testing import check_imports

HOSTILE = ["../alert", "1041/reboot/FORCED?x=#", "..", ".", "1041?mode=FORCED", "%2e%2e", "1041#", " 1041",
           "1041/../1042"]
PACKAGE = Path(__file__).parent.parent / "mspflow_ninjaone"


def only_segment(path: str, prefix: str, suffix: str = "") -> str:
    """The single segment between ``prefix`` and ``suffix``, decoded; fails if the id added segments."""
    assert path.startswith(prefix) and path.endswith(suffix), path
    segment = path[len(prefix):len(path) - len(suffix)]
    assert segment and "/" not in segment and "?" not in segment and "#" not in segment, path
    assert segment not in (".", ".."), path
    return unquote(segment)


# -- the plugin stays a plugin -----------------------------------------------------------------------------


def test_the_plugin_leaves_vendor_plumbing_to_the_core() -> None:
    check_imports(PACKAGE)


# -- hostile ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_device_ids_stay_one_path_segment(ninja: Any, hostile: str) -> None:
    calls = [
        ("devices.reboot", {"device_id": hostile}, "POST", "/reboot/NORMAL"),
        ("devices.reboot", {"device_id": hostile, "mode": "FORCED"}, "POST", "/reboot/FORCED"),
        ("devices.run_script", {"device_id": hostile, "type": "SCRIPT", "script_id": 55}, "POST", "/script/run"),
        ("devices.scripting_options", {"device_id": hostile}, "GET", "/scripting/options"),
        ("devices.sync", {"device_id": hostile}, "GET", ""),
        ("devices.find", {"device_id": hostile, "live": True}, "GET", ""),
    ]
    for action, params, method, suffix in calls:
        ninja.sim.requests.clear()
        err = ninja.fail(action, params)
        assert err.code == "NOT_FOUND", (action, err.to_dict())
        sent = [(r.method, r.url.raw_path.decode()) for r in ninja.sim.requests]
        assert len(sent) == 1 and sent[0][0] == method, sent
        assert only_segment(sent[0][1], "/v2/device/", suffix) == hostile
        assert not ninja.sim.requests[0].url.query
    assert sum(ninja.sim.reboots.values()) == 0 and ninja.sim.script_runs == []
    with ninja.app.db.sessions() as s:
        assert s.execute(select(Asset)).first() is None


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_alert_ids_stay_one_path_segment(ninja: Any, hostile: str) -> None:
    before = dict(ninja.sim.alerts)
    for ref in ({"alert_uid": hostile}, {"external_alert_id": hostile}):
        ninja.sim.requests.clear()
        err = ninja.fail("alerts.reset", ref)
        assert err.code == "NOT_FOUND", err.to_dict()
        sent = [(r.method, r.url.raw_path.decode()) for r in ninja.sim.requests]
        assert len(sent) == 1 and sent[0][0] == "DELETE", sent
        assert only_segment(sent[0][1], "/v2/alert/") == hostile
        assert ninja.fail("alerts.get", ref).code == "NOT_FOUND"
    assert ninja.sim.alerts == before and ninja.sim.alert_resets == []


def test_ids_that_are_not_text_are_refused_before_any_call(ninja: Any) -> None:
    for bad in ({"device_id": None}, {"device_id": ["1041"]}, {"device_id": True}, {"device_id": "x" * 65}):
        assert ninja.fail("devices.reboot", bad).code == "VALIDATION_ERROR", bad
    assert ninja.sim.requests == []


def test_the_invented_control_reboot_path_is_never_used(ninja: Any) -> None:
    ninja.ok("devices.reboot", {"device_id": 1041})
    assert not any("control" in p for p in ninja.paths())


# -- writes happen once ------------------------------------------------------------------------------------


def test_a_replayed_reboot_reaches_ninjaone_once(ninja: Any) -> None:
    call = {"run_id": "run-7", "step_path": "steps.2"}
    first = ninja.run("devices.reboot", {"device_id": 1041, "mode": "FORCED"}, **call)
    second = ninja.run("devices.reboot", {"device_id": 1041, "mode": "FORCED"}, **call)
    assert first.ok and second.ok and second.replayed and not first.replayed
    assert second.output == first.output == {"reboot_requested": True, "external_device_id": "1041"}
    assert ninja.sim.reboots[1041] == 1 and ninja.sim.count("POST", "/reboot/FORCED") == 1
    conflict = ninja.run("devices.reboot", {"device_id": 1042}, **call)
    assert conflict.error is not None and conflict.error.code == "CONFLICT" and ninja.sim.reboots[1042] == 0


def test_a_replayed_acknowledge_resets_once(ninja: Any) -> None:
    uid = next(iter(ninja.sim.alerts))
    call = {"run_id": "run-8", "step_path": "steps.1"}
    assert ninja.ok("alerts.reset", {"alert_uid": uid}, **call) == ninja.ok("alerts.reset", {"alert_uid": uid}, **call)
    assert ninja.sim.alert_resets == [uid]


# -- rate limits and failures ----------------------------------------------------------------------------


def test_a_429_on_a_read_is_waited_out_by_the_core(ninja: Any) -> None:
    ninja.sim.faults.rate_limit_next, ninja.sim.faults.retry_after_s = 1, 0
    assert ninja.ok("devices.find", {"live": True})["count"] == 5
    # the 429, the page, then an empty page: a first short page may be the server capping pageSize
    assert [r.url.path for r in ninja.sim.requests] == ["/v2/devices"] * 3
    assert [r.url.params.get("after") for r in ninja.sim.requests] == [None, None, "1045"]


def test_a_429_on_a_write_comes_back_rate_limited_and_runs_later(ninja: Any) -> None:
    ninja.sim.faults.rate_limit_next, ninja.sim.faults.retry_after_s = 1, 30
    call = {"run_id": "run-9", "step_path": "steps.1"}
    err = ninja.fail("devices.reboot", {"device_id": 1041}, **call)
    assert (err.code, err.retryable, err.retry_after) == ("RATE_LIMITED", True, 30.0)
    assert "too_many_requests" in str(err.details) and ninja.sim.reboots[1041] == 0
    assert ninja.sim.count("POST", "/reboot/NORMAL") == 1  # a long Retry-After is not slept through

    again = ninja.run("devices.reboot", {"device_id": 1041}, **call)  # the worker's next attempt
    assert again.ok and again.attempt == 2 and ninja.sim.reboots[1041] == 1


def test_a_write_that_keeps_getting_429_stays_rate_limited(ninja: Any) -> None:
    ninja.sim.faults.rate_limit_next, ninja.sim.faults.retry_after_s = 10, 0
    err = ninja.fail("devices.run_script", {"device_id": 1041, "type": "SCRIPT", "script_id": 55})
    assert (err.code, err.retryable) == ("RATE_LIMITED", True)
    assert ninja.sim.script_runs == []


def test_a_5xx_is_repeated_for_reads_but_not_for_writes(ninja: Any) -> None:
    ninja.sim.faults.fail_next = 1
    assert ninja.ok("devices.scripting_options", {"device_id": 1041})["count"] == 3
    ninja.sim.faults.fail_next = 1
    err = ninja.fail("devices.reboot", {"device_id": 1041})
    assert (err.code, err.retryable) == ("TRANSIENT_FAILURE", True) and ninja.sim.reboots[1041] == 0


def test_a_write_whose_outcome_is_unknown_is_not_repeated(ninja: Any) -> None:
    ninja.sim.faults.timeout_next = 1
    err = ninja.fail("devices.reboot", {"device_id": 1041})
    assert (err.code, err.retryable, err.details.get("outcome")) == ("TRANSIENT_FAILURE", False, "unknown")
    assert ninja.sim.reboots[1041] == 1


def test_a_malformed_answer_is_transient(ninja: Any) -> None:
    ninja.sim.faults.malformed_next = 3
    err = ninja.fail("alerts.list_active", {"live": True})
    assert (err.code, err.details["reason"]) == ("TRANSIENT_FAILURE", "MALFORMED_BODY")


# -- tenant isolation --------------------------------------------------------------------------------------


def test_tenants_see_only_their_own_assets_and_alerts(ninja: Any) -> None:
    ninja.connect("globex")
    ninja.store_credentials(tenant="globex")
    uid = next(iter(ninja.sim.alerts))
    with ninja.app.db.session() as s:
        s.add(Asset(tenant="globex", name="Globex PC", rmm_provider="ninjaone", rmm_device_id="1041"))
        s.add(RmmAlert(tenant="globex", provider="ninjaone", external_alert_id=uid, status="active", title="G"))
        s.add(RmmAlert(tenant="globex", provider="ninjaone", external_alert_id="globex-only", status="active"))
    assert ninja.ok("devices.find") == {"devices": [], "count": 0}
    assert ninja.ok("devices.find", {"query": "Globex"})["count"] == 0
    assert ninja.ok("alerts.list_active") == {"alerts": [], "count": 0}
    assert ninja.fail("alerts.get", {"external_alert_id": "globex-only"}).code == "NOT_FOUND"
    live = ninja.ok("devices.find", {"live": True, "device_id": 1041})["devices"][0]
    assert live["asset_id"] is None  # globex's asset is not acme's
    assert ninja.ok("alerts.get", {"alert_uid": uid})["alert"]["source"] == "ninjaone"

    mine = ninja.ok("devices.sync", {"device_id": 1041})["asset_id"]
    theirs = ninja.ok("devices.sync", {"device_id": 1041}, tenant="globex")["asset_id"]
    assert mine != theirs
    ninja.ok("alerts.reset", {"external_alert_id": uid})
    with ninja.app.db.sessions() as s:
        statuses = dict(s.execute(select(RmmAlert.external_alert_id, RmmAlert.status)
                                  .where(RmmAlert.tenant == "globex")).all())
        names = dict(s.execute(select(Asset.tenant, Asset.name)).all())
    assert statuses == {uid: "active", "globex-only": "active"}
    assert names == {"acme": "Front desk PC", "globex": "Front desk PC"}
    assert ninja.ok("devices.find", tenant="globex")["devices"][0]["asset_id"] == theirs
