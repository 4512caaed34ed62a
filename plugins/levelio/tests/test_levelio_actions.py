"""The eight Level actions against the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from mspflow_levelio.sim import (
    CLEAR_TEMP,
    CONTOSO,
    CONTOSO_HQ,
    DESIGN_MAC,
    FABRIKAM,
    FILESERVER,
    FRONTDESK,
    NIGHTLY_REPORT,
    PATCH_NOW,
    RESTART_SPOOLER,
    WEB,
    gid,
)
from sqlalchemy import select

from mspflow.db.models import Asset, RmmAlert

DEVICE_FIELDS = {"external_device_id", "asset_id", "hostname", "nickname", "group_id", "role", "platform", "online",
                 "maintenance_mode", "last_seen_at", "last_logged_in_user", "serial_number", "tags", "included",
                 "source"}


def add_asset(level: Any, **fields: Any) -> str:
    with level.app.db.session() as s:
        asset = Asset(tenant="acme", **({"name": "Asset", "rmm_provider": "levelio"} | fields))
        s.add(asset)
        s.flush()
        return str(asset.asset_id)


def add_alert(level: Any, external_alert_id: str, **fields: Any) -> str:
    values = {"provider": "levelio", "status": "active", "severity": "warning", "title": "CPU high"} | fields
    with level.app.db.session() as s:
        row = RmmAlert(tenant="acme", external_alert_id=external_alert_id, **values)
        s.add(row)
        s.flush()
        return str(row.alert_id)


# -- levelio.devices.find / get ---------------------------------------------------------------------------


def test_find_reads_synced_assets_without_calling_level(level: Any) -> None:
    mine = add_asset(level, name="Front desk PC", hostname="FRONTDESK-01", rmm_device_id=FRONTDESK,
                     rmm_organization_id=CONTOSO_HQ, agent_online=True, os_name="Windows 11 Pro")
    add_asset(level, name="Ninja box", rmm_provider="ninjaone", rmm_device_id=FRONTDESK)
    out = level.ok("devices.find", {"query": "front"})
    assert out["count"] == 1 and level.sim.requests == []
    device = out["devices"][0]
    assert set(device) == DEVICE_FIELDS
    assert (device["external_device_id"], device["asset_id"], device["group_id"], device["online"],
            device["source"]) == (FRONTDESK, mine, CONTOSO_HQ, True, "local")
    assert device["included"] == {"operating_system": {"full_operating_system": "Windows 11 Pro"}}
    assert level.ok("devices.find", {"device_id": FILESERVER}) == {"devices": [], "count": 0}


def test_group_filters_and_include_flags_ask_level(level: Any) -> None:
    add_asset(level, name="Synced PC", rmm_device_id=FRONTDESK)  # synced assets carry no Level group
    for implied in ({"group_id": CONTOSO_HQ}, {"include_cpus": True, "query": "front"}):
        assert {d["source"] for d in level.ok("devices.find", implied)["devices"]} == {"levelio"}, implied
    level.sim.requests.clear()

    direct = level.ok("devices.find", {"live": True, "group_id": CONTOSO})
    assert {d["hostname"] for d in direct["devices"]} == {"DESIGN-MBP", "DC-01"}
    below = level.ok("devices.find", {"live": True, "ancestor_group_id": CONTOSO})
    assert {d["hostname"] for d in below["devices"]} == {"FRONTDESK-01", "FS-01", "DESIGN-MBP", "DC-01"}
    assert level.queries("/v2/devices") == [{"group_id": CONTOSO, "limit": "100"},
                                           {"ancestor_group_id": CONTOSO, "limit": "100"}]

    level.sim.requests.clear()
    detailed = level.ok("devices.find", {"live": True, "group_id": FABRIKAM, "include_operating_system": True,
                                         "include_disks": True, "include_security": True})
    assert level.queries("/v2/devices") == [{"group_id": FABRIKAM, "include_operating_system": "true",
                                            "include_disks": "true", "include_security": "true", "limit": "100"}]
    web = next(d for d in detailed["devices"] if d["external_device_id"] == WEB)
    assert set(web["included"]) == {"operating_system", "disk_partitions", "security"}
    assert web["included"]["operating_system"]["full_operating_system"] == "Ubuntu 24.04 LTS"


def test_find_live_pages_through_more_than_100_devices(level: Any) -> None:
    bulk = level.sim.add_devices(230)
    out = level.ok("devices.find", {"live": True, "limit": 1000})
    assert out["count"] == 236 and len({d["external_device_id"] for d in out["devices"]}) == 236
    cursors = [q.get("starting_after") for q in level.queries("/v2/devices")]
    assert cursors == [None, bulk[93], bulk[193]]  # has_more false on the third page ends the walk
    assert {q["limit"] for q in level.queries("/v2/devices")} == {"100"}

    level.sim.requests.clear()
    assert level.ok("devices.find", {"live": True, "limit": 150})["count"] == 150
    assert len(level.queries("/v2/devices")) == 2  # stops once the limit is in

    level.sim.requests.clear()
    found = level.ok("devices.find", {"live": True, "query": "bulk-122", "limit": 5})
    assert [d["hostname"] for d in found["devices"]] == [f"BULK-122{i}" for i in range(5)]


def test_find_live_by_device_or_asset(level: Any) -> None:
    asset_id = add_asset(level, name="Design Mac", rmm_device_id=DESIGN_MAC)
    out = level.ok("devices.find", {"live": True, "asset_id": asset_id})
    assert [(d["external_device_id"], d["asset_id"], d["source"]) for d in out["devices"]] == \
        [(DESIGN_MAC, asset_id, "levelio")]
    assert level.paths() == ["/v2/devices/" + DESIGN_MAC.replace("=", "%3D")]
    assert level.ok("devices.find", {"live": True, "device_id": DESIGN_MAC, "group_id": FABRIKAM})["count"] == 0
    assert level.ok("devices.find", {"live": True, "asset_id": "no-such-asset"}) == {"devices": [], "count": 0}
    missing = level.fail("devices.find", {"live": True, "device_id": gid("Device", 999)})
    assert missing.code == "NOT_FOUND" and "Level API 404" in missing.message


def test_get_one_device_with_its_details(level: Any) -> None:
    plain = level.ok("devices.get", {"device_id": FILESERVER})["device"]
    assert set(plain) == DEVICE_FIELDS and plain["included"] == {} and plain["role"] == "server"
    full = level.ok("devices.get", {"device_id": FILESERVER, "include_cpus": True, "include_memory": True,
                                    "include_network_interfaces": True})["device"]
    assert set(full["included"]) == {"cpus", "memory", "network_interfaces"}
    assert level.queries("/v2/devices/" + FILESERVER)[-1] == {"include_cpus": "true", "include_memory": "true",
                                                             "include_network_interfaces": "true"}
    assert level.fail("devices.get", {"device_id": gid("Device", 4242)}).code == "NOT_FOUND"
    assert level.fail("devices.get", {"device_id": ""}).code == "VALIDATION_ERROR"


# -- levelio.alerts.list_active / resolve --------------------------------------------------------------------


def test_list_active_live_only_active_optionally_per_device(level: Any) -> None:
    out = level.ok("alerts.list_active", {"live": True})
    assert [a["name"] for a in out["alerts"]] == ["CPU above 90%", "Disk C: below 5% free", "Device offline"]
    assert level.queries("/v2/alerts") == [{"status": "active", "limit": "100"}]
    cpu = out["alerts"][0]
    assert cpu == {"alert_id": gid("Alert", 1), "external_alert_id": gid("Alert", 1), "device_id": FRONTDESK,
                   "device_hostname": "FRONTDESK-01", "asset_id": None, "name": "CPU above 90%",
                   "description": "CPU has been above 90% for 15 minutes", "severity": "warning", "status": "active",
                   "started_at": "2026-01-01T01:00:00Z", "resolved_at": None, "source": "levelio"}
    per_device = level.ok("alerts.list_active", {"live": True, "device_id": FRONTDESK})
    assert [a["name"] for a in per_device["alerts"]] == ["CPU above 90%"]  # the resolved one is left out
    assert level.queries("/v2/alerts")[-1] == {"device_id": FRONTDESK, "status": "active", "limit": "100"}


def test_list_active_pages_through_more_than_100_alerts(level: Any) -> None:
    for i in range(140):
        level.sim.add_alert(WEB, f"Check {i} failing")
    out = level.ok("alerts.list_active", {"live": True, "device_id": WEB, "limit": 1000})
    assert out["count"] == 140
    assert [q.get("starting_after") for q in level.queries("/v2/alerts")] == [None, out["alerts"][99]["alert_id"]]


def test_list_active_local_rows_per_device(level: Any) -> None:
    mine = add_alert(level, "a-1", external_device_id=FRONTDESK)
    add_alert(level, "a-2", external_device_id=FILESERVER)
    add_alert(level, "a-3", external_device_id=FRONTDESK, status="resolved")
    out = level.ok("alerts.list_active", {"device_id": FRONTDESK})
    assert [(a["alert_id"], a["external_alert_id"], a["source"]) for a in out["alerts"]] == [(mine, "a-1", "local")]
    assert level.ok("alerts.list_active")["count"] == 2 and level.sim.requests == []
    linked = add_alert(level, gid("Alert", 2))
    live = {a["external_alert_id"]: a for a in level.ok("alerts.list_active", {"live": True})["alerts"]}
    assert live[gid("Alert", 2)]["alert_id"] == linked


def test_resolve_posts_and_marks_the_stored_copy(level: Any) -> None:
    alert = gid("Alert", 2)
    local = add_alert(level, alert, external_device_id=FILESERVER, title="Disk low")
    out = level.ok("alerts.resolve", {"alert_id": local})
    assert out == {"resolved": True, "alert_id": local, "external_alert_id": alert}
    assert level.sim.resolved == [alert] and level.sim.alerts[alert]["is_resolved"] is True
    assert level.sent("POST") == [("POST", f"/v2/alerts/{alert.replace('=', '%3D')}/resolve")]
    assert level.sim.requests[0].content == b""  # F8: no body
    with level.app.db.sessions() as s:
        row = s.execute(select(RmmAlert).where(RmmAlert.alert_id == local)).scalar_one()
    assert (row.status, row.title, row.external_device_id) == ("resolved", "Disk low", FILESERVER)
    assert level.ok("alerts.list_active")["count"] == 0

    other = gid("Alert", 3)
    assert level.ok("alerts.resolve", {"alert_id": other}) == \
        {"resolved": True, "alert_id": other, "external_alert_id": other}
    assert level.fail("alerts.resolve", {"alert_id": gid("Alert", 77)}).code == "NOT_FOUND"


# -- levelio.updates.list -------------------------------------------------------------------------------------


def test_updates_available_installed_or_both(level: Any) -> None:
    out = level.ok("updates.list")
    assert [u["name"] for u in out["updates"]][:1] == ["2026-01 Cumulative Update for Windows 11"]
    assert out["count"] == 3 and all(u["is_available"] for u in out["updates"])
    installed = level.ok("updates.list", {"device_id": FRONTDESK, "status": "installed"})["updates"]
    assert installed == [{"update_id": gid("Update", 2), "device_id": FRONTDESK, "device_hostname": "FRONTDESK-01",
                          "name": "Microsoft Defender definitions 1.421.10.0", "category": "Definition Updates",
                          "is_available": False, "installed_on": "2025-12-31T00:00:00Z"}]
    assert level.ok("updates.list", {"status": None})["count"] == 4
    assert level.queries("/v2/updates") == [{"status": "available", "limit": "100"},
                                           {"device_id": FRONTDESK, "status": "installed", "limit": "100"},
                                           {"limit": "100"}]
    assert level.fail("updates.list", {"status": "pending"}).code == "VALIDATION_ERROR"


def test_updates_page_past_100(level: Any) -> None:
    for i in range(120):
        level.sim.add_update(WEB, f"package-{i}", "security")
    assert level.ok("updates.list", {"device_id": WEB, "limit": 500})["count"] == 121
    assert len(level.queries("/v2/updates")) == 2


# -- levelio.automations.list ---------------------------------------------------------------------------------


def test_automations_with_their_webhook_triggers(level: Any) -> None:
    out = level.ok("automations.list")
    by_id = {a["automation_id"]: a for a in out["automations"]}
    assert out["count"] == 4 and by_id[PATCH_NOW] == {"automation_id": PATCH_NOW, "name": "Install updates now",
                                                      "has_webhook_trigger": False, "webhooks": []}
    clear = by_id[CLEAR_TEMP]
    assert clear["has_webhook_trigger"] is True and clear["webhooks"][0]["parameters"] == ["days"]
    assert by_id[NIGHTLY_REPORT]["webhooks"][0]["requires_auth_header"] is True
    assert level.sim.token_of(CLEAR_TEMP) not in str(out)  # a token starts the automation: never returned
    assert [a["name"] for a in level.ok("automations.list", {"query": "SPOOL"})["automations"]] == \
        ["Restart print spooler"]
    assert level.ok("automations.list", {"webhook_only": True})["count"] == 3


def test_automations_page_past_100(level: Any) -> None:
    for i in range(105):
        level.sim.add_automation(gid("Automation", 500 + i), f"Bulk {i}", webhook=i % 2 == 0)
    out = level.ok("automations.list")
    assert out["count"] == 109 and sum(a["has_webhook_trigger"] for a in out["automations"]) == 56
    assert [len(level.queries(p)) for p in ("/v2/automations", "/v2/automations/webhooks")] == [2, 1]


# -- levelio.automations.trigger / run_status ---------------------------------------------------------------


def test_trigger_by_automation_id_on_chosen_devices(level: Any) -> None:
    out = level.ok("automations.trigger", {"automation_id": CLEAR_TEMP, "device_ids": [FRONTDESK, FILESERVER],
                                           "parameters": {"days": 7, "verbose": True}})
    run_id = level.sim.triggers[0]["run_id"]
    assert out == {"triggered": True, "automation_id": CLEAR_TEMP, "device_ids": [FRONTDESK, FILESERVER],
                   "run_id": run_id, "run_id_reported": True, "note": None, "reply": {"automation_run_id": run_id}}
    token = level.sim.token_of(CLEAR_TEMP)
    assert level.sim.triggers == [{"token": token, "automation_id": CLEAR_TEMP, "run_id": run_id,
                                   "body": {"days": 7, "verbose": True, "device_ids": [FRONTDESK, FILESERVER]}}]
    assert level.sent("POST") == [("POST", f"/v2/automations/webhooks/{token}")]


def test_trigger_without_devices_sends_only_the_parameters(level: Any) -> None:
    token = level.sim.token_of(RESTART_SPOOLER)
    out = level.ok("automations.trigger", {"webhook_token": token})
    assert out["triggered"] and out["device_ids"] is None and out["automation_id"] is None and out["run_id"]
    assert level.sim.triggers[0]["body"] == {} and level.sim.requests[-1].content == b"{}"
    assert [p for p in level.paths() if "webhooks" in p] == [f"/v2/automations/webhooks/{token}"]  # no lookup
    level.ok("automations.trigger", {"webhook_token": token, "parameters": {"note": "x"}})
    assert level.sim.triggers[1]["body"] == {"note": "x"}


def test_an_automation_without_a_webhook_trigger_says_what_to_do(level: Any) -> None:
    err = level.fail("automations.trigger", {"automation_id": PATCH_NOW, "device_ids": [FRONTDESK]})
    assert (err.code, err.retryable, err.details["reason"]) == ("CONFLICT", False, "NO_WEBHOOK_TRIGGER")
    assert "add a Webhook trigger to that automation in Level, then retry" in err.message
    assert "Install updates now" in err.message and level.sim.triggers == []
    missing = level.fail("automations.trigger", {"automation_id": gid("Automation", 999)})
    assert missing.code == "NOT_FOUND" and level.sim.triggers == []

    level.sim.add_webhook(PATCH_NOW)  # the operator adds the trigger in Level, then retries
    assert level.ok("automations.trigger", {"automation_id": PATCH_NOW})["triggered"]
    level.sim.add_webhook(PATCH_NOW)
    several = level.fail("automations.trigger", {"automation_id": PATCH_NOW})
    assert several.code == "CONFLICT" and several.details["reason"] == "SEVERAL_WEBHOOK_TRIGGERS"


@pytest.mark.parametrize("bad", [
    {}, {"automation_id": CLEAR_TEMP, "webhook_token": "abc"}, {"automation_id": CLEAR_TEMP, "device_ids": []},
    {"automation_id": CLEAR_TEMP, "device_ids": [""]}, {"automation_id": CLEAR_TEMP, "device_ids": FRONTDESK},
    {"automation_id": CLEAR_TEMP, "parameters": {"device_ids": [FRONTDESK]}},
    {"automation_id": CLEAR_TEMP, "parameters": ["days", 7]},
])
def test_trigger_validates_before_calling(level: Any, bad: dict[str, Any]) -> None:
    assert level.fail("automations.trigger", bad).code == "VALIDATION_ERROR"
    assert level.sim.requests == []


def test_a_trigger_reply_without_a_run_id_says_so(level: Any) -> None:
    level.sim.trigger_reply_has_run_id = False
    out = level.ok("automations.trigger", {"automation_id": RESTART_SPOOLER, "device_ids": [FRONTDESK]})
    assert (out["triggered"], out["run_id"], out["run_id_reported"], out["reply"]) == \
        (True, None, False, {"success": True})
    assert "carried no run id" in out["note"] and "Run status" in out["note"]


def test_run_status_moves_from_running_to_a_final_state(level: Any) -> None:
    run_id = level.ok("automations.trigger", {"automation_id": CLEAR_TEMP, "device_ids": [FRONTDESK]})["run_id"]
    polls = [level.ok("automations.run_status", {"run_id": run_id}) for _ in range(3)]
    assert [(p["status"], p["finished"], p["ended_at"] is None) for p in polls] == \
        [("running", False, True), ("running", False, True), ("succeeded", True, False)]
    last = polls[-1]
    assert (last["run_id"], last["automation_id"], last["automation_name"], last["device_id"],
            last["device_hostname"], last["steps"]) == \
        (run_id, CLEAR_TEMP, "Clear temp files", FRONTDESK, "FRONTDESK-01", None)
    steps = level.ok("automations.run_status", {"run_id": run_id, "include_steps": True})["steps"]
    assert steps == [{"name": "Delete temp files", "status": "succeeded"},
                     {"name": "Report freed space", "status": "succeeded"}]
    assert level.queries("/v2/automation-runs/" + run_id)[-1] == {"include_steps": "true"}


def test_a_failing_run_ends_failed_with_its_steps(level: Any) -> None:
    run_id = level.ok("automations.trigger", {"automation_id": NIGHTLY_REPORT})["run_id"]
    first = level.ok("automations.run_status", {"run_id": run_id, "include_steps": True})
    assert first["steps"] == [{"name": "Collect", "status": "running"}, {"name": "Upload", "status": "pending"}]
    level.ok("automations.run_status", {"run_id": run_id})
    final = level.ok("automations.run_status", {"run_id": run_id})
    assert (final["status"], final["finished"], final["device_id"]) == ("failed", True, None)
    assert level.fail("automations.run_status", {"run_id": gid("AutomationRun", 12345)}).code == "NOT_FOUND"


def test_a_run_id_from_levels_ui_is_read_the_same_way(level: Any) -> None:
    earlier = gid("AutomationRun", f"7|{RESTART_SPOOLER}|{DESIGN_MAC}")  # minted before a restart
    out = level.ok("automations.run_status", {"run_id": earlier})
    assert (out["status"], out["finished"], out["device_hostname"]) == ("succeeded", True, "DESIGN-MBP")
