"""The simulator on its own: it must refuse what Level refuses (F1-F13), so the plugin's tests mean something."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from mspflow_levelio.sim import CLEAR_TEMP, CONTOSO, FRONTDESK, LevelSimulator, gid


@pytest.fixture
def sim() -> LevelSimulator:
    return LevelSimulator()


@pytest.fixture
def api(sim: LevelSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, transport=sim.transport(),
                      headers={"Authorization": sim.api_key}) as client:
        yield client


def test_ids_are_base64_gids_that_need_encoding() -> None:
    assert gid("Device", 101) == "Z2lkOi8vbGV2ZWwvRGV2aWNlLzEwMQ=="
    assert any(c in gid("AutomationRun", f"1|{CLEAR_TEMP}|{FRONTDESK}") for c in "/+=")


def test_only_the_raw_key_is_accepted(api: httpx.Client, sim: LevelSimulator) -> None:
    for header in (f"Bearer {sim.api_key}", "", "nope"):
        r = api.get("/devices", headers={"Authorization": header})
        assert (r.status_code, r.json()) == (401, {"error": "Access denied"})
    assert api.get("/devices").status_code == 200


def test_a_read_only_key_reads_but_cannot_write(api: httpx.Client, sim: LevelSimulator) -> None:
    ro = {"Authorization": sim.read_only_key}
    assert api.get("/alerts", headers=ro).status_code == 200
    r = api.post(f"/alerts/{gid('Alert', 1)}/resolve", headers=ro)
    assert r.status_code == 403 and set(r.json()) == {"error"} and sim.resolved == []
    sim.read_only_status = 401
    r = api.post(f"/automations/webhooks/{sim.token_of(CLEAR_TEMP)}", headers=ro, json={})
    assert (r.status_code, r.json()) == (401, {"error": "Access denied"}) and sim.triggers == []


def test_lists_are_cursor_paged(api: httpx.Client, sim: LevelSimulator) -> None:
    sim.add_devices(30)
    first = api.get("/devices").json()
    assert len(first["data"]) == 20 and first["has_more"] is True  # default limit 20
    rest = api.get("/devices", params={"limit": 100, "starting_after": first["data"][-1]["id"]}).json()
    assert len(rest["data"]) == 16 and rest["has_more"] is False
    back = api.get("/devices", params={"limit": 5, "ending_before": rest["data"][0]["id"]}).json()
    assert [d["id"] for d in back["data"]] == [d["id"] for d in first["data"][-5:]] and back["has_more"] is True
    for bad in ({"limit": 101}, {"limit": 0}, {"limit": "x"}, {"starting_after": "nope"}):
        r = api.get("/devices", params=bad)
        assert r.status_code == 400 and set(r.json()) == {"error"}, bad


def test_devices_by_group_and_details_on_request(api: httpx.Client) -> None:
    direct = api.get("/devices", params={"group_id": CONTOSO}).json()["data"]
    below = api.get("/devices", params={"ancestor_group_id": CONTOSO}).json()["data"]
    assert len(direct) == 2 and len(below) == 4
    assert "operating_system" not in direct[0] and "_detail" not in direct[0]
    one = api.get(f"/devices/{FRONTDESK}", params={"include_cpus": "true", "include_security": "true"}).json()
    assert "cpus" in one and "security" in one and "operating_system" not in one


def test_alerts_updates_and_statuses(api: httpx.Client) -> None:
    assert len(api.get("/alerts", params={"status": "resolved"}).json()["data"]) == 1
    assert api.get("/alerts", params={"status": "open"}).status_code == 400
    assert api.get("/updates", params={"status": "pending"}).status_code == 400
    assert api.get(f"/alerts/{gid('Alert', 1)}").json()["is_resolved"] is False
    assert api.post(f"/alerts/{gid('Alert', 1)}/resolve").status_code == 204
    assert api.get(f"/alerts/{gid('Alert', 1)}").json()["is_resolved"] is True
    r = api.post(f"/alerts/{gid('Alert', 99)}/resolve")
    assert (r.status_code, set(r.json())) == (404, {"error"})


def test_triggers_start_runs_that_finish_over_polls(api: httpx.Client, sim: LevelSimulator) -> None:
    hooks = api.get("/automations/webhooks").json()["data"]
    assert {h["automation_name"] for h in hooks} == {"Clear temp files", "Restart print spooler",
                                                     "Nightly report (fails)"}
    token = hooks[0]["url"].rsplit("/", 1)[-1]
    assert api.post(f"/automations/webhooks/{token}", content=b"[1]").status_code == 400
    assert api.post(f"/automations/webhooks/{token}", json={"device_ids": FRONTDESK}).status_code == 400
    run_id = api.post(f"/automations/webhooks/{token}", json={"device_ids": [FRONTDESK]}).json()["automation_run_id"]
    seen = [api.get(f"/automation-runs/{run_id}").json() for _ in range(3)]
    assert [(s["status"], s["ended_at"] is None) for s in seen] == [("running", True), ("running", True),
                                                                    ("succeeded", False)]
    assert "steps" not in seen[0] and "steps" in api.get(f"/automation-runs/{run_id}?include_steps=true").json()
    sim.trigger_reply_has_run_id = False
    assert api.post(f"/automations/webhooks/{token}").json() == {"success": True}  # an empty body is {}
    assert api.post("/automations/webhooks/not-a-token", json={}).status_code == 404
    assert api.get(f"/automation-runs/{gid('AutomationRun', 'garbage')}").status_code == 404
