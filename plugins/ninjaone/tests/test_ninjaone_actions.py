"""The eight NinjaOne actions against the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from mspflow.db.models import Asset, RmmAlert, TenantExternalEntityMapping

DEVICE_FIELDS = {"external_device_id", "asset_id", "organization_id", "hostname", "display_name", "dns_name",
                 "agent_online", "last_seen_at", "os_name", "node_class", "source"}
ALERT_FIELDS = {"alert_id", "external_alert_id", "status", "severity", "priority", "title", "message", "device_id",
                "asset_id", "source_type", "created_at", "updated_at", "acknowledged", "source"}


def add_asset(ninja: Any, tenant: str = "acme", **fields: Any) -> str:
    values = {"name": "Asset", "rmm_provider": "ninjaone"} | fields
    with ninja.app.db.session() as s:
        asset = Asset(tenant=tenant, **values)
        s.add(asset)
        s.flush()
        return str(asset.asset_id)


def add_alert(ninja: Any, external_alert_id: str, tenant: str = "acme", **fields: Any) -> str:
    values = {"provider": "ninjaone", "status": "active", "severity": "MAJOR", "title": "CPU high"} | fields
    with ninja.app.db.session() as s:
        row = RmmAlert(tenant=tenant, external_alert_id=external_alert_id, **values)
        s.add(row)
        s.flush()
        return str(row.alert_id)


def alert_row(ninja: Any, alert_id: str, tenant: str = "acme") -> RmmAlert:
    with ninja.app.db.sessions() as s:
        return s.execute(select(RmmAlert).where(RmmAlert.tenant == tenant, RmmAlert.alert_id == alert_id)).scalar_one()


# -- ninjaone.devices.find -------------------------------------------------------------------------------


def test_find_reads_synced_assets_without_calling_ninjaone(ninja: Any) -> None:
    seen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    mine = add_asset(ninja, name="Front desk PC", hostname="FRONTDESK-01", dns_name="frontdesk-01.contoso.local",
                     rmm_device_id="1041", rmm_organization_id="3", node_class="WINDOWS_WORKSTATION",
                     agent_online=True, last_seen_at=seen, os_name="Windows 11 Pro")
    add_asset(ninja, name="File server", hostname="FS-01", rmm_device_id="1042")
    add_asset(ninja, name="Tactical box", rmm_provider="tacticalrmm", rmm_device_id="1041")
    add_asset(ninja, name="Not an RMM device", rmm_provider="ninjaone", rmm_device_id=None)

    out = ninja.ok("devices.find")
    assert out["count"] == 2 and [d["display_name"] for d in out["devices"]] == ["File server", "Front desk PC"]
    front = out["devices"][1]
    assert set(front) == DEVICE_FIELDS
    assert front == {"external_device_id": "1041", "asset_id": mine, "organization_id": "3",
                     "hostname": "FRONTDESK-01", "display_name": "Front desk PC",
                     "dns_name": "frontdesk-01.contoso.local", "agent_online": True,
                     "last_seen_at": "2026-01-02T03:04:05+00:00", "os_name": "Windows 11 Pro",
                     "node_class": "WINDOWS_WORKSTATION", "source": "local"}
    assert ninja.sim.requests == []

    assert [d["asset_id"] for d in ninja.ok("devices.find", {"device_id": 1041})["devices"]] == [mine]
    assert [d["asset_id"] for d in ninja.ok("devices.find", {"asset_id": mine})["devices"]] == [mine]
    assert [d["hostname"] for d in ninja.ok("devices.find", {"query": "fs-0"})["devices"]] == ["FS-01"]
    assert ninja.ok("devices.find", {"query": "%"})["count"] == 0  # LIKE wildcards are matched literally
    assert ninja.ok("devices.find", {"limit": 1})["count"] == 1


def test_find_validates_its_input(ninja: Any) -> None:
    for bad in ({"limit": 0}, {"limit": 201}, {"device_id": ""}, {"query": ""}, {"device_id": {"id": 1}}):
        assert ninja.fail("devices.find", bad).code == "VALIDATION_ERROR", bad
    assert ninja.sim.requests == []


def test_find_live_pages_through_devices(ninja: Any) -> None:
    for device_id in range(2000, 2250):
        ninja.sim.add_device(device_id)
    out = ninja.ok("devices.find", {"live": True, "limit": 200})
    assert out["count"] == 200
    assert [d["external_device_id"] for d in out["devices"][:6]] == ["1041", "1042", "1043", "1044", "1045", "2000"]
    pages = [dict(r.url.params) for r in ninja.sim.requests if r.url.path == "/v2/devices"]
    assert pages == [{"pageSize": "100"}, {"pageSize": "100", "after": "2094"}]

    ninja.sim.requests.clear()
    found = ninja.ok("devices.find", {"live": True, "query": "device-224", "limit": 200})
    assert [d["hostname"] for d in found["devices"]] == [f"DEVICE-224{i}" for i in range(10)]
    assert [r.url.params.get("after") for r in ninja.sim.requests] == [None, "2094", "2194"]  # short page ends it

    d = ninja.ok("devices.find", {"live": True, "query": "FRONTDESK"})["devices"][0]
    assert set(d) == DEVICE_FIELDS
    assert d == {"external_device_id": "1041", "asset_id": None, "organization_id": "3", "hostname": "FRONTDESK-01",
                 "display_name": "Front desk PC", "dns_name": "frontdesk-01.contoso.local", "agent_online": True,
                 "last_seen_at": "2026-01-01T00:17:21+00:00", "os_name": None,  # the list carries no os
                 "node_class": "WINDOWS_WORKSTATION", "source": "ninjaone"}


def test_find_live_one_device_links_its_asset(ninja: Any) -> None:
    asset_id = add_asset(ninja, name="Design Mac", rmm_device_id="1043")
    out = ninja.ok("devices.find", {"live": True, "device_id": 1043})
    assert out["count"] == 1
    device = out["devices"][0]
    assert (device["asset_id"], device["os_name"], device["agent_online"], device["source"]) == \
        (asset_id, None, False, "ninjaone")
    assert ninja.paths() == ["/v2/device/1043"]

    by_asset = ninja.ok("devices.find", {"live": True, "asset_id": asset_id})["devices"]
    assert [d["external_device_id"] for d in by_asset] == ["1043"]
    assert ninja.ok("devices.find", {"live": True, "asset_id": "no-such-asset"}) == {"devices": [], "count": 0}

    missing = ninja.fail("devices.find", {"live": True, "device_id": 9999})
    assert missing.code == "NOT_FOUND" and "NinjaOne API 404" in missing.message


def test_os_data_comes_only_from_fields_the_spec_defines(ninja: Any) -> None:
    """Issue 10.6: neither Device nor NodeWithDetailedReferences defines OS fields; an undocumented os is ignored."""
    ninja.sim.devices[1043]["os"] = {"name": "macOS 15.2"}  # as if the live API sent more than its spec
    assert ninja.ok("devices.find", {"live": True, "device_id": 1043})["devices"][0]["os_name"] is None
    assert ninja.ok("devices.find", {"live": True})["devices"][2]["os_name"] is None
    ninja.ok("devices.sync", {"device_id": 1043})
    assert ninja.ok("devices.find", {"device_id": 1043})["devices"][0]["os_name"] is None


def test_paging_survives_a_server_that_caps_the_page_size(ninja: Any) -> None:
    """Issue 10.6: a short first page is not the end when the server caps pageSize below the one asked for."""
    ninja.sim.max_page_size = 2  # mspflow asks for 100
    out = ninja.ok("devices.find", {"live": True, "limit": 200})
    assert [d["external_device_id"] for d in out["devices"]] == ["1041", "1042", "1043", "1044", "1045"]
    asked = [(r.url.params["pageSize"], r.url.params.get("after")) for r in ninja.sim.requests]
    assert asked == [("100", None), ("100", "1042"), ("100", "1044")]  # [2, 2, 1]: shorter than its cap


def test_paging_stops_on_an_empty_page_or_a_short_page_once_the_size_is_honoured(ninja: Any) -> None:
    out = ninja.ok("devices.find", {"live": True, "limit": 200})
    assert out["count"] == 5  # page one (5 < 100) proves nothing yet; page two is empty
    assert [r.url.params.get("after") for r in ninja.sim.requests] == [None, "1045"]
    ninja.sim.requests.clear()
    for device_id in range(2000, 2100):  # 105 devices: a full page, then a short one
        ninja.sim.add_device(device_id)
    assert ninja.ok("devices.find", {"live": True, "limit": 200})["count"] == 105
    assert [r.url.params.get("after") for r in ninja.sim.requests] == [None, "2094"]


@pytest.mark.parametrize(("body", "field"), [
    (None, "(the whole reply)"), ([], "(the whole reply)"), ({"id": "x"}, "id"),
    ({"id": 1043, "offline": "sometimes"}, "offline"), ({"id": 1043, "lastContact": 1e300}, "lastContact")])
def test_a_device_reply_of_the_wrong_shape_names_the_field(ninja: Any, body: Any, field: str) -> None:
    """Issue 9.9: a 200 with an empty or wrongly shaped body is a vendor error naming the field, never a crash."""
    import httpx

    from mspflow import vendor

    def odd(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body) if request.url.path.startswith("/v2/device") else \
            ninja.sim.handle(request)

    vendor.mount(ninja.sim.base_url, httpx.MockTransport(odd))
    for action in ("devices.find", "devices.sync"):
        err = ninja.fail(action, {"live": True, "device_id": 1043} if action == "devices.find" else {"device_id": 1043})
        assert err.code == "TRANSIENT_FAILURE" and err.details["reason"] == "VENDOR_REPLY_SHAPE", err.to_dict()
        assert err.details["field"] == field and "outcome" not in err.details


@pytest.mark.parametrize(("body", "field"), [({"devices": []}, "(the whole reply)"), ([{"name": "x"}], "0.id")])
def test_a_device_list_of_the_wrong_shape_names_the_field(ninja: Any, body: Any, field: str) -> None:
    import httpx

    from mspflow import vendor

    vendor.mount(ninja.sim.base_url, httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    err = ninja.fail("devices.find", {"live": True})
    assert err.details["reason"] == "VENDOR_REPLY_SHAPE" and err.details["field"] in (field, "id", "body")


# -- ninjaone.devices.sync -------------------------------------------------------------------------------


def test_sync_creates_then_updates_one_asset_and_its_mapping(ninja: Any) -> None:
    first = ninja.ok("devices.sync", {"device_id": 1042}, run_id="r1", step_path="s1")
    assert first["synced"] is True and first["external_device_id"] == "1042"
    ninja.sim.devices[1042].update(displayName="File server (new)", offline=True, lastContact=1767300000.0)
    again = ninja.ok("devices.sync", {"device_id": "1042"}, run_id="r1", step_path="s2")
    assert again == {**first}

    with ninja.app.db.sessions() as s:
        assets = s.execute(select(Asset).where(Asset.tenant == "acme")).scalars().all()
        links = s.execute(select(TenantExternalEntityMapping)).scalars().all()
    assert len(assets) == 1 and len(links) == 1
    asset, link = assets[0], links[0]
    assert (asset.asset_id, asset.name, asset.hostname, asset.asset_type, asset.agent_online, asset.os_name,
            asset.rmm_provider, asset.rmm_device_id, asset.rmm_organization_id, asset.node_class) == \
        (first["asset_id"], "File server (new)", "FS-01", "server", False, None,
         "ninjaone", "1042", "3", "WINDOWS_SERVER")
    assert asset.last_seen_at is not None and asset.last_seen_at.replace(tzinfo=UTC).timestamp() == 1767300000.0
    assert (link.tenant, link.integration_type, link.entity_type, link.entity_id, link.external_entity_id,
            link.sync_status) == ("acme", "ninjaone", "asset", first["asset_id"], "1042", "synced")
    assert link.last_synced_at is not None and link.metadata_json["uid"] == ninja.sim.devices[1042]["uid"]

    local = ninja.ok("devices.find", {"device_id": 1042})["devices"]
    assert [(d["asset_id"], d["display_name"], d["source"]) for d in local] == \
        [(first["asset_id"], "File server (new)", "local")]


def test_sync_adopts_an_asset_synced_before_mappings(ninja: Any) -> None:
    existing = add_asset(ninja, name="old name", rmm_device_id="1041")
    assert ninja.ok("devices.sync", {"device_id": 1041})["asset_id"] == existing


def test_sync_of_an_unknown_device_writes_nothing(ninja: Any) -> None:
    assert ninja.fail("devices.sync", {"device_id": 4242}).code == "NOT_FOUND"
    with ninja.app.db.sessions() as s:
        assert s.execute(select(Asset)).first() is None


# -- ninjaone.devices.reboot -----------------------------------------------------------------------------


def test_reboot_posts_the_mode_in_the_path(ninja: Any) -> None:
    out = ninja.ok("devices.reboot", {"device_id": 1041})
    assert out == {"reboot_requested": True, "external_device_id": "1041"}
    ninja.ok("devices.reboot", {"device_id": "1042", "mode": "FORCED", "reason": "Patch Tuesday"})
    assert ninja.paths("POST") == ["/v2/device/1041/reboot/NORMAL", "/v2/device/1042/reboot/FORCED"]
    assert ninja.sim.reboot_log == [{"device_id": 1041, "mode": "NORMAL", "reason": None},
                                    {"device_id": 1042, "mode": "FORCED", "reason": "Patch Tuesday"}]
    assert ninja.sim.requests[0].content == b""  # no reason, no body


def test_reboot_rejects_what_ninjaone_would(ninja: Any) -> None:
    assert ninja.fail("devices.reboot", {"device_id": 1041, "mode": "HARD"}).code == "VALIDATION_ERROR"
    assert ninja.sim.requests == []
    assert ninja.fail("devices.reboot", {"device_id": 7}).code == "NOT_FOUND"
    assert sum(ninja.sim.reboots.values()) == 0


# -- ninjaone.devices.scripting_options and run_script ---------------------------------------------------


def test_scripting_options_lists_scripts_and_actions(ninja: Any) -> None:
    out = ninja.ok("devices.scripting_options", {"device_id": 1044})
    assert out["count"] == 3 and ninja.paths() == ["/v2/device/1044/scripting/options"]
    assert out["scripts"][0] == {"id": "55", "uid": ninja.sim.scripting[1044]["scripts"][0]["uid"],
                                 "name": "Clear temp files", "type": "SCRIPT", "language": "sh"}
    action = out["scripts"][2]
    assert (action["id"], action["type"], action["uid"]) == \
        (None, "ACTION", ninja.sim.scripting[1044]["scripts"][2]["uid"])


def test_run_script_sends_a_run_script_request(ninja: Any) -> None:
    out = ninja.ok("devices.run_script", {"device_id": 1041, "type": "SCRIPT", "script_id": 55,
                                          "parameters": "-Days 7 -Verbose", "run_as": "system"})
    assert out == {"run_requested": True, "external_device_id": "1041"}
    uid = ninja.sim.scripting[1041]["scripts"][2]["uid"]
    ninja.ok("devices.run_script", {"device_id": "1041", "type": "ACTION", "action_uid": uid})
    assert ninja.paths("POST") == ["/v2/device/1041/script/run"] * 2
    assert ninja.sim.script_runs == [
        {"device_id": 1041, "type": "SCRIPT", "id": 55, "parameters": "-Days 7 -Verbose", "runAs": "system"},
        {"device_id": 1041, "type": "ACTION", "uid": uid},
    ]


@pytest.mark.parametrize("bad", [
    {"type": "SCRIPT"},
    {"type": "ACTION", "script_id": 55},
    {"type": "SCRIPT", "script_id": "fifty"},
    {"type": "SCRIPT", "script_id": 55, "parameters": {"Days": 7}},
    {"type": "SHELL", "script_id": 55},
])
def test_run_script_validates_before_calling(ninja: Any, bad: dict[str, Any]) -> None:
    assert ninja.fail("devices.run_script", {"device_id": 1041, **bad}).code == "VALIDATION_ERROR"
    assert ninja.sim.requests == []


def test_run_script_of_an_unknown_script_is_not_found(ninja: Any) -> None:
    assert ninja.fail("devices.run_script", {"device_id": 1041, "type": "SCRIPT", "script_id": 999}).code \
        == "NOT_FOUND"
    assert ninja.sim.script_runs == []


# -- ninjaone.alerts.list_active / get / reset ------------------------------------------------------------


def test_list_active_reads_local_active_alerts(ninja: Any) -> None:
    active = add_alert(ninja, "uid-1", external_device_id="1041", message="CPU 97%", source_type="CONDITION_AGENT_CPU")
    add_alert(ninja, "uid-2", status="acknowledged")
    add_alert(ninja, "uid-3", provider="tacticalrmm")
    out = ninja.ok("alerts.list_active")
    assert out["count"] == 1 and ninja.sim.requests == []
    alert = out["alerts"][0]
    assert set(alert) == ALERT_FIELDS
    assert {k: alert[k] for k in ALERT_FIELDS - {"created_at", "updated_at"}} == {
        "alert_id": active, "external_alert_id": "uid-1", "status": "active", "severity": "MAJOR",
        "priority": None, "title": "CPU high", "message": "CPU 97%", "device_id": "1041", "asset_id": None,
        "source_type": "CONDITION_AGENT_CPU", "acknowledged": False, "source": "local"}
    assert datetime.fromisoformat(alert["created_at"]).tzinfo is not None
    for _ in range(3):
        add_alert(ninja, f"more-{_}")
    assert ninja.ok("alerts.list_active", {"limit": 2})["count"] == 2


def test_list_active_live_asks_ninjaone_and_links_local_rows(ninja: Any) -> None:
    asset_id = add_asset(ninja, name="FS-01", rmm_device_id="1042")
    uid3 = next(u for u, a in ninja.sim.alerts.items() if a["deviceId"] == 1043)
    local = add_alert(ninja, uid3)
    out = ninja.ok("alerts.list_active", {"live": True})
    assert ninja.paths() == ["/v2/alerts"]
    assert [a["device_id"] for a in out["alerts"]] == ["1043", "1042", "1041"]  # newest first
    by_device = {a["device_id"]: a for a in out["alerts"]}
    disk = by_device["1042"]
    assert set(disk) == ALERT_FIELDS
    assert disk == {"alert_id": disk["external_alert_id"], "external_alert_id": disk["external_alert_id"],
                    "status": "active", "severity": "CRITICAL", "priority": "HIGH", "title": "Disk C: below 5% free",
                    "message": "C: has 3.1 GB free on FS-01", "device_id": "1042", "asset_id": asset_id,
                    "source_type": "CONDITION_AGENT_DISK_FREE_SPACE", "created_at": "2026-01-01T02:00:00+00:00",
                    "updated_at": "2026-01-01T02:00:00+00:00", "acknowledged": False, "source": "ninjaone"}
    assert by_device["1043"]["alert_id"] == local
    assert ninja.ok("alerts.list_active", {"live": True, "limit": 1})["count"] == 1


def test_get_needs_exactly_one_id(ninja: Any) -> None:
    for bad in ({}, {"alert_uid": "a", "external_alert_id": "a"}, {"alert_uid": ""}):
        err = ninja.fail("alerts.get", bad)
        assert err.code == "VALIDATION_ERROR", bad
    assert "exactly one" in ninja.fail("alerts.get", {}).message
    assert ninja.sim.requests == []


def test_get_prefers_the_local_row_then_asks_ninjaone(ninja: Any) -> None:
    local = add_alert(ninja, "uid-local", title="Local copy")
    for ref in ({"external_alert_id": "uid-local"}, {"alert_uid": "uid-local"}, {"alert_uid": local}):
        alert = ninja.ok("alerts.get", ref)["alert"]
        assert (alert["alert_id"], alert["title"], alert["source"]) == (local, "Local copy", "local"), ref
    assert ninja.sim.requests == []
    assert ninja.fail("alerts.get", {"external_alert_id": local}).code == "NOT_FOUND"  # not a NinjaOne uid

    uid = next(iter(ninja.sim.alerts))
    alert = ninja.ok("alerts.get", {"alert_uid": uid})["alert"]
    assert set(alert) == ALERT_FIELDS
    assert (alert["alert_id"], alert["external_alert_id"], alert["device_id"], alert["source"]) == \
        (uid, uid, "1041", "ninjaone")
    missing = ninja.fail("alerts.get", {"external_alert_id": "0f8fad5b-d9cb-469f-a165-70867728950e"})
    assert missing.code == "NOT_FOUND" and "0f8fad5b" in missing.message


def test_reset_deletes_the_alert_and_acknowledges_the_local_row(ninja: Any) -> None:
    uid = next(iter(ninja.sim.alerts))
    local = add_alert(ninja, uid)
    out = ninja.ok("alerts.reset", {"alert_uid": local})
    assert out == {"acknowledged": True, "alert_id": local}
    assert ninja.paths() == [f"/v2/alert/{uid}"] and ninja.sim.requests[0].method == "DELETE"
    assert uid not in ninja.sim.alerts and ninja.sim.alert_resets == [uid]
    row = alert_row(ninja, local)
    assert row.status == "acknowledged" and row.acknowledged_at is not None
    got = ninja.ok("alerts.get", {"external_alert_id": uid})["alert"]
    assert (got["status"], got["acknowledged"]) == ("acknowledged", True)
    assert ninja.ok("alerts.list_active")["count"] == 0


def test_reset_without_a_local_row_answers_ninjaones_uid(ninja: Any) -> None:
    uid = list(ninja.sim.alerts)[1]
    assert ninja.ok("alerts.reset", {"external_alert_id": uid}) == {"acknowledged": True, "alert_id": uid}
    assert uid not in [a["external_alert_id"] for a in ninja.ok("alerts.list_active", {"live": True})["alerts"]]
    again = ninja.fail("alerts.reset", {"external_alert_id": uid}, run_id="r", step_path="again")
    assert again.code == "NOT_FOUND"
