"""The six Tactical RMM actions against the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mspflow_tacticalrmm.sim import FILESERVER_ID, FRONTDESK_ID, LAPTOP_ID, WEB_ID

from mspflow.db.models import Asset

AGENT_FIELDS = {"agent_id", "asset_id", "hostname", "description", "client_name", "site_name", "status", "plat",
                "monitoring_type", "operating_system", "last_seen_at", "needs_reboot", "source"}
RUNSCRIPT_KEYS = {"script", "output", "args", "env_vars", "timeout", "run_as_user"}


def add_asset(trmm: Any, tenant: str = "acme", **fields: Any) -> str:
    values = {"name": "Asset", "rmm_provider": "tacticalrmm"} | fields
    with trmm.app.db.session() as s:
        asset = Asset(tenant=tenant, **values)
        s.add(asset)
        s.flush()
        return str(asset.asset_id)


def bodies(trmm: Any, suffix: str) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in trmm.sim.requests if r.url.path.endswith(suffix)]


# -- tacticalrmm.agents.find -----------------------------------------------------------------------------


def test_find_reads_synced_assets_without_calling_tactical(trmm: Any) -> None:
    seen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    mine = add_asset(trmm, name="Front desk PC", hostname="FRONTDESK-01", rmm_device_id=FRONTDESK_ID,
                     agent_online=True, last_seen_at=seen, os_name="Windows 11 Pro")
    add_asset(trmm, name="File server", hostname="FS-01", rmm_device_id=FILESERVER_ID)
    add_asset(trmm, name="Ninja box", rmm_provider="ninjaone", rmm_device_id=FRONTDESK_ID)
    add_asset(trmm, name="Theirs", tenant="globex", rmm_device_id=WEB_ID)
    add_asset(trmm, name="Not an RMM device", rmm_device_id=None)

    out = trmm.ok("agents.find")
    assert out["count"] == 2 and [a["description"] for a in out["agents"]] == ["File server", "Front desk PC"]
    front = out["agents"][1]
    assert set(front) == AGENT_FIELDS
    assert front["agent_id"] == FRONTDESK_ID and front["asset_id"] == mine and front["status"] == "online"
    assert front["source"] == "local" and front["last_seen_at"].startswith("2026-01-02T03:04:05")
    assert trmm.ok("agents.find", {"query": "desk"})["count"] == 1
    assert trmm.ok("agents.find", {"agent_id": FILESERVER_ID})["agents"][0]["hostname"] == "FS-01"
    assert trmm.sim.requests == []


def test_find_live_lists_agents_and_links_assets(trmm: Any) -> None:
    asset = add_asset(trmm, name="FS", rmm_device_id=FILESERVER_ID)
    out = trmm.ok("agents.find", {"live": True})
    assert out["count"] == 4 and {a["source"] for a in out["agents"]} == {"tacticalrmm"}
    fs = next(a for a in out["agents"] if a["agent_id"] == FILESERVER_ID)
    assert fs["asset_id"] == asset and fs["client_name"] == "Contoso" and fs["site_name"] == "HQ"
    assert fs["status"] == "online" and fs["monitoring_type"] == "server" and set(fs) == AGENT_FIELDS
    laptop = next(a for a in out["agents"] if a["agent_id"] == LAPTOP_ID)
    assert laptop["status"] == "offline"
    assert trmm.sent() == [("GET", "/agents/")]

    servers = trmm.ok("agents.find", {"live": True, "monitoring_type": "server", "query": "fabrikam"})
    assert [a["agent_id"] for a in servers["agents"]] == [WEB_ID]
    assert trmm.sim.requests[-1].url.params["monitoring_type"] == "server"
    assert trmm.ok("agents.find", {"live": True, "limit": 2})["count"] == 2


def test_find_live_by_agent_or_asset_id_reads_the_detail(trmm: Any) -> None:
    asset = add_asset(trmm, name="Web", rmm_device_id=WEB_ID)
    out = trmm.ok("agents.find", {"live": True, "asset_id": asset})
    assert out["agents"][0]["agent_id"] == WEB_ID and out["agents"][0]["client_name"] == "Fabrikam"
    assert out["agents"][0]["plat"] == "linux"
    assert trmm.sent() == [("GET", f"/agents/{WEB_ID}/")]
    assert trmm.ok("agents.find", {"live": True, "asset_id": "no-such-asset"}) == {"agents": [], "count": 0}


# -- tacticalrmm.agents.get ------------------------------------------------------------------------------


def test_get_returns_the_detail(trmm: Any) -> None:
    agent = trmm.ok("agents.get", {"agent_id": FILESERVER_ID})["agent"]
    assert agent["hostname"] == "FS-01" and agent["client_name"] == "Contoso" and agent["site_name"] == "HQ"
    assert agent["operating_system"].startswith("Windows Server 2022") and agent["time_zone"] == "Europe/London"
    assert agent["public_ip"] == "203.0.113.10" and agent["total_ram"] == 16 and agent["source"] == "tacticalrmm"
    assert trmm.sent() == [("GET", f"/agents/{FILESERVER_ID}/")]


def test_get_unknown_agent_is_not_found_with_tacticals_words(trmm: Any) -> None:
    err = trmm.fail("agents.get", {"agent_id": "x" * 40})
    assert err.code == "NOT_FOUND" and "No Agent matches the given query." in err.message


# -- tacticalrmm.scripts.list ----------------------------------------------------------------------------


def test_scripts_list_filters_by_name_and_community(trmm: Any) -> None:
    out = trmm.ok("scripts.list")
    assert [s["name"] for s in out["scripts"]] == ["Windows Update status", "Disk usage", "Clear temp files"]
    assert out["scripts"][2] == {
        "id": 1, "name": "Clear temp files", "description": "Clear temp files (simulated)", "category": "Maintenance",
        "shell": "powershell", "script_type": "userdefined", "args": [], "env_vars": [], "default_timeout": 90,
        "run_as_user": False, "supported_platforms": ["windows"]}
    assert [s["id"] for s in trmm.ok("scripts.list", {"name": "DISK"})["scripts"]] == [2]
    own = trmm.ok("scripts.list", {"include_community": False})
    assert {s["script_type"] for s in own["scripts"]} == {"userdefined"}
    assert trmm.sim.requests[-1].url.params["showCommunityScripts"] == "false"
    assert trmm.ok("scripts.list", {"limit": 1})["count"] == 1
    assert {p for _, p in trmm.sent()} == {"/scripts/"}


# -- tacticalrmm.agents.run_script -----------------------------------------------------------------------


def test_run_script_waits_and_returns_stdout_then_stderr(trmm: Any) -> None:
    out = trmm.ok("agents.run_script", {"agent_id": FILESERVER_ID, "script_id": 3, "args": ["-Verbose"],
                                        "env_vars": ["MODE=full"], "timeout": 120})
    assert out == {"agent_id": FILESERVER_ID, "script_id": 3, "waited": True, "delivered": "yes",
                   "output": "3 updates pending\nWARNING: reboot required\n"}
    assert trmm.sent() == [("POST", f"/agents/{FILESERVER_ID}/runscript/")]
    assert bodies(trmm, "/runscript/") == [{"script": 3, "output": "wait", "args": ["-Verbose"],
                                           "env_vars": ["MODE=full"], "timeout": 120, "run_as_user": False}]


def test_run_script_body_always_carries_every_required_key(trmm: Any) -> None:
    trmm.ok("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1})
    trmm.ok("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1, "wait_for_output": False})
    sent = bodies(trmm, "/runscript/")
    assert all(set(b) == RUNSCRIPT_KEYS for b in sent)
    assert sent[0] == {"script": 1, "output": "wait", "args": [], "env_vars": [], "timeout": 90, "run_as_user": False}


def test_run_script_without_waiting_returns_tacticals_confirmation(trmm: Any) -> None:
    out = trmm.ok("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1, "wait_for_output": False})
    assert out["waited"] is False and out["output"] == "Clear temp files will now be run on FRONTDESK-01"
    assert out["delivered"] == "unknown"
    assert bodies(trmm, "/runscript/")[0]["output"] == "forget"


def test_a_forgotten_run_is_confirmed_even_when_nothing_was_delivered(trmm: Any) -> None:
    """Issue 10.6: Tactical answers 200 to a fire-and-forget run on an agent that is not connected."""
    out = trmm.ok("agents.run_script", {"agent_id": LAPTOP_ID, "script_id": 1, "wait_for_output": False})
    assert out["delivered"] == "unknown" and "will now be run" in out["output"]
    description = trmm.app.registry.action("tacticalrmm.agents.run_script").description
    assert "even when the agent is not connected" in description


def test_a_silent_agent_timeout_is_an_error_not_output(trmm: Any) -> None:
    trmm.sim.set_silent(FRONTDESK_ID)
    err = trmm.fail("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1})
    assert err.code == "TRANSIENT_FAILURE" and not err.retryable
    assert err.details["reason"] == "AGENT_TIMEOUT" and err.details["outcome"] == "unknown"
    assert "'timeout'" in err.message and FRONTDESK_ID in err.message


@pytest.mark.parametrize("action", ["run_script", "run_command", "reboot_now", "reboot_later"])
def test_a_disconnected_agent_is_a_500_page_reported_as_unreachable(trmm: Any, action: str) -> None:
    """Issue 10.6: the real server fails with a 500 HTML page for an agent that is not connected."""
    future = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    agent = {"agent_id": LAPTOP_ID}
    inputs = {"run_script": ("agents.run_script", {**agent, "script_id": 1}),
              "run_command": ("agents.run_command", {**agent, "shell": "cmd", "cmd": "hostname"}),
              "reboot_now": ("agents.reboot", agent), "reboot_later": ("agents.reboot", {**agent, "at": future})}
    name, params = inputs[action]
    err = trmm.fail(name, params)
    assert err.code == "TRANSIENT_FAILURE" and err.retryable is False and err.details["outcome"] == "unknown"
    assert err.details["reason"] == "AGENT_NOT_CONNECTED" and err.details["status"] == 500
    assert "not connected" in err.message and "'Server Error (500)'" in err.message
    assert "<" not in err.message and "doctype" not in err.message.lower()  # never the page itself
    assert len(trmm.sim.requests) == 1  # not repeated


def test_natsdown_is_an_error_not_output(trmm: Any) -> None:
    trmm.sim.nats_down = True
    err = trmm.fail("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1})
    assert err.code == "TRANSIENT_FAILURE" and err.details["reason"] == "AGENT_NATSDOWN"
    assert "message bus" in err.message
    err = trmm.fail("agents.run_command", {"agent_id": FRONTDESK_ID, "shell": "cmd", "cmd": "hostname"})
    assert err.details["reason"] == "AGENT_NATSDOWN"


def test_unknown_script_is_not_found(trmm: Any) -> None:
    err = trmm.fail("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 999})
    assert err.code == "NOT_FOUND" and "No Script matches the given query." in err.message
    assert trmm.sim.script_runs == []


def test_run_script_input_is_validated_before_any_call(trmm: Any) -> None:
    for bad in ({"agent_id": FRONTDESK_ID, "script_id": 0}, {"agent_id": FRONTDESK_ID, "script_id": 1, "timeout": 0},
                {"agent_id": FRONTDESK_ID, "script_id": 1, "env_vars": ["NOEQUALS"]},
                {"agent_id": "", "script_id": 1}):
        assert trmm.fail("agents.run_script", bad).code == "VALIDATION_ERROR"
    assert trmm.sim.requests == []


def test_run_script_replays_instead_of_running_twice(trmm: Any) -> None:
    step = {"run_id": "run-1", "step_path": "steps.1"}
    first = trmm.run("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1}, **step)
    again = trmm.run("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1}, **step)
    assert first.ok and again.ok and again.replayed and again.output == first.output
    assert len(trmm.sim.script_runs) == 1


# -- tacticalrmm.agents.run_command ----------------------------------------------------------------------


def test_run_command_sends_the_four_keys_and_returns_output(trmm: Any) -> None:
    trmm.sim.command_outputs["Get-Date"] = "Thursday, January 1, 2026 9:00:00 AM\r\n"
    out = trmm.ok("agents.run_command", {"agent_id": FRONTDESK_ID, "shell": "powershell", "cmd": "Get-Date"})
    assert out == {"agent_id": FRONTDESK_ID, "output": "Thursday, January 1, 2026 9:00:00 AM\r\n"}
    assert bodies(trmm, "/cmd/") == [{"shell": "powershell", "cmd": "Get-Date", "timeout": 30, "run_as_user": False}]
    trmm.ok("agents.run_command", {"agent_id": WEB_ID, "shell": "custom", "custom_shell": "/bin/zsh", "cmd": "id"})
    assert bodies(trmm, "/cmd/")[1]["custom_shell"] == "/bin/zsh"
    err = trmm.fail("agents.run_command", {"agent_id": WEB_ID, "shell": "custom", "cmd": "id"})
    assert err.code == "VALIDATION_ERROR" and len(trmm.sim.commands) == 2


def test_run_command_on_a_silent_agent_is_unreachable(trmm: Any) -> None:
    trmm.sim.set_silent(FRONTDESK_ID)
    err = trmm.fail("agents.run_command", {"agent_id": FRONTDESK_ID, "shell": "cmd", "cmd": "hostname"})
    assert err.code == "TRANSIENT_FAILURE" and not err.retryable and err.details["reason"] == "AGENT_UNREACHABLE"
    assert "Unable to contact the agent" in err.message and err.details["status"] == 400


def test_run_command_needs_the_declared_permission(trmm: Any) -> None:
    asked: list[str] = []

    def checker(session: Any, tenant: str, permission: str, call: Any) -> bool:
        asked.append(permission)
        return permission != "rmm:execute_command"

    trmm.app.registry.set_permission_checker(checker, "host")
    err = trmm.fail("agents.run_command", {"agent_id": FRONTDESK_ID, "shell": "cmd", "cmd": "hostname"})
    assert err.code == "PERMISSION_DENIED" and err.details["permission"] == "rmm:execute_command"
    assert "rmm:execute_command" in asked and trmm.sim.requests == []
    assert trmm.ok("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1})["output"]


# -- tacticalrmm.agents.reboot ---------------------------------------------------------------------------


def test_reboot_now_posts(trmm: Any) -> None:
    out = trmm.ok("agents.reboot", {"agent_id": FRONTDESK_ID})
    assert out == {"reboot_requested": True, "agent_id": FRONTDESK_ID, "scheduled": False, "scheduled_for": None,
                   "task_name": None}
    assert trmm.sent() == [("POST", f"/agents/{FRONTDESK_ID}/reboot/")] and trmm.sim.reboots[FRONTDESK_ID] == 1


def test_reboot_scheduled_patches_the_local_time(trmm: Any) -> None:
    when = (datetime.now() + timedelta(days=2)).replace(hour=22, minute=30, second=0, microsecond=0)
    out = trmm.ok("agents.reboot", {"agent_id": FILESERVER_ID, "at": when.isoformat()})
    assert out["scheduled"] is True and out["task_name"].startswith("TacticalRMM_SchedReboot_")
    assert out["scheduled_for"] == when.strftime("%B %d, %Y at 10:30 PM")
    assert trmm.sent() == [("PATCH", f"/agents/{FILESERVER_ID}/reboot/")]
    assert bodies(trmm, "/reboot/") == [{"datetime": when.strftime("%Y-%m-%dT22:30")}]
    assert trmm.sim.reboots[FILESERVER_ID] == 0


def test_reboot_errors_are_tacticals_words(trmm: Any) -> None:
    future = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    err = trmm.fail("agents.reboot", {"agent_id": WEB_ID, "at": future})
    assert err.code == "VALIDATION_ERROR" and err.message.endswith("Not currently implemented for linux")
    err = trmm.fail("agents.reboot", {"agent_id": FILESERVER_ID, "at": "2020-01-01T10:00"})
    assert err.code == "VALIDATION_ERROR" and err.message.endswith("Date cannot be set in the past")
    trmm.sim.set_silent(FILESERVER_ID)
    err = trmm.fail("agents.reboot", {"agent_id": FILESERVER_ID})
    assert err.code == "TRANSIENT_FAILURE" and err.details["reason"] == "AGENT_UNREACHABLE"
    assert trmm.fail("agents.reboot", {"agent_id": FILESERVER_ID, "at": "2030-01-01T10:00:00+02:00"}).code \
        == "VALIDATION_ERROR"
    assert sum(trmm.sim.reboots.values()) == 0


@pytest.mark.parametrize(("state", "answer"), [("silent", "timeout"), ("natsdown", "natsdown")])
def test_a_scheduled_reboot_answered_400_timeout_or_natsdown_is_an_unknown_outcome(
        trmm: Any, state: str, answer: str) -> None:
    """Issue 10.6: PATCH reboot's 400 "timeout"/"natsdown" is an unreachable agent or bus, not bad input."""
    if state == "silent":
        trmm.sim.set_silent(FILESERVER_ID)
    else:
        trmm.sim.nats_down = True
    future = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    err = trmm.fail("agents.reboot", {"agent_id": FILESERVER_ID, "at": future})
    assert err.code == "TRANSIENT_FAILURE" and err.retryable is False
    assert err.details["outcome"] == "unknown" and err.details["reason"] == "AGENT_" + answer.upper()
    assert err.details["status"] == 400 and f"{answer!r}" in err.message and "check" in err.message
    assert len(trmm.sim.requests) == 1


# -- base URL ----------------------------------------------------------------------------------------------


def test_missing_instance_url_is_inactive_and_says_what_to_set(trmm: Any) -> None:
    trmm.set_instance_url(None)
    for action, params in (("agents.find", {"live": True}), ("scripts.list", {}),
                           ("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1})):
        err = trmm.fail(action, params)
        assert err.code == "INTEGRATION_INACTIVE" and err.details["reason"] == "INSTANCE_URL_MISSING"
        assert "instance URL" in err.message and "--instance-url" in err.message
    assert trmm.sim.requests == []


@pytest.mark.parametrize("url", ["api.rmm.example.com", "https://api.rmm.example.com/", "api.rmm.example.com/api",
                                 "https://api.rmm.example.com/api/", "  https://api.rmm.example.com/api  "])
def test_the_instance_url_is_normalized(trmm: Any, url: str) -> None:
    trmm.set_instance_url(url)
    assert trmm.ok("scripts.list", {"name": "disk"})["count"] == 1
    assert str(trmm.sim.requests[-1].url).startswith("https://api.rmm.example.com/scripts/?")


def test_a_plain_http_instance_url_is_refused(trmm: Any) -> None:
    trmm.set_instance_url("http://api.rmm.example.com")
    err = trmm.fail("scripts.list")
    assert err.code == "VALIDATION_ERROR" and err.details["reason"] == "INSECURE_URL"


# -- replies of the wrong shape (issue 9.9) ------------------------------------------------------------------


@pytest.mark.parametrize(("action", "params", "body", "field"), [
    ("agents.get", {"agent_id": FRONTDESK_ID}, None, "(the whole reply)"),
    ("agents.get", {"agent_id": FRONTDESK_ID}, [], "(the whole reply)"),
    ("agents.get", {"agent_id": FRONTDESK_ID}, {"hostname": "x"}, "agent_id"),
    ("agents.get", {"agent_id": FRONTDESK_ID}, {"agent_id": FRONTDESK_ID, "needs_reboot": "perhaps"},
     "needs_reboot"),
    ("agents.find", {"live": True}, {"agents": []}, "(the whole reply)"),
    ("agents.find", {"live": True}, [{"agent_id": 7}], "0.agent_id"),
    ("scripts.list", {}, [{"name": "no id"}], "0.id"),
])
def test_a_reply_of_the_wrong_shape_is_a_vendor_error_naming_the_field(
        trmm: Any, action: str, params: dict[str, Any], body: Any, field: str) -> None:
    import httpx

    from mspflow import vendor

    def odd(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body) if request.method == "GET" else trmm.sim.handle(request)

    vendor.mount(trmm.sim.base_url, httpx.MockTransport(odd))
    err = trmm.fail(action, params)
    assert err.code == "TRANSIENT_FAILURE" and err.details["reason"] == "VENDOR_REPLY_SHAPE", err.to_dict()
    assert err.details["field"] == field and "outcome" not in err.details


def test_a_scheduled_reboot_with_an_unreadable_reply_was_done(trmm: Any) -> None:
    import httpx

    from mspflow import vendor

    def odd(request: httpx.Request) -> httpx.Response:
        trmm.sim.handle(request)
        return httpx.Response(200, json=["not", "the", "schedule"])

    vendor.mount(trmm.sim.base_url, httpx.MockTransport(odd))
    future = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    err = trmm.fail("agents.reboot", {"agent_id": FILESERVER_ID, "at": future})
    assert err.details["outcome"] == "done" and err.retryable is False and len(trmm.sim.reboot_log) == 1
