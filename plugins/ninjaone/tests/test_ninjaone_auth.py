"""Connection, credentials and tokens: what a tenant sees when NinjaOne access is missing, stale or wrong."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from mspflow import vendor as http

LIVE_FIND = ("devices.find", {"live": True, "device_id": 1041})


def token_requests(ninja: Any) -> list[dict[str, str]]:
    return [dict(ninja.sim.body(r)) for r in ninja.sim.requests if r.url.path == "/ws/oauth/token"]


def test_a_tenant_that_never_connected_is_inactive(ninja: Any) -> None:
    err = ninja.fail(*LIVE_FIND, tenant="globex")
    assert err.code == "INTEGRATION_INACTIVE" and err.details["reason"] == "not_connected"
    assert "mspflow tenant connect globex ninjaone" in err.message
    assert ninja.fail("devices.find", tenant="globex").code == "INTEGRATION_INACTIVE"  # local reads too
    assert ninja.sim.requests == []


def test_a_disconnected_tenant_is_inactive(ninja: Any) -> None:
    ninja.disconnect()
    for action, params in (LIVE_FIND, ("devices.reboot", {"device_id": 1041}), ("alerts.list_active", {})):
        err = ninja.fail(action, params)
        assert (err.code, err.details["reason"]) == ("INTEGRATION_INACTIVE", "inactive")
    assert ninja.sim.requests == []


def test_missing_credentials_say_which_secret(ninja: Any) -> None:
    ninja.connect("globex")
    err = ninja.fail(*LIVE_FIND, tenant="globex")
    assert err.code == "INTEGRATION_INACTIVE"
    assert err.details["reason"] == "SECRET_MISSING"
    assert "'ninjaone_credentials'" in err.message and "mspflow tenant set-secret globex" in err.message
    assert ninja.ok("devices.find", tenant="globex") == {"devices": [], "count": 0}  # local reads need none
    assert ninja.sim.requests == []


def test_malformed_credentials_ask_for_a_reconnect(ninja: Any) -> None:
    ninja.set_secret("ninjaone_credentials", "not json")
    err = ninja.fail(*LIVE_FIND)
    assert (err.code, err.details["reason"]) == ("INTEGRATION_INACTIVE", "RECONNECT_REQUIRED")


def test_an_expired_token_is_refreshed_first_and_the_rotated_refresh_token_stored(ninja: Any) -> None:
    old = ninja.store_credentials(ninja.sim.issue_user_token(expires_in=-60))
    assert ninja.ok(*LIVE_FIND)["count"] == 1
    assert [r.url.path for r in ninja.sim.requests] == ["/ws/oauth/token", "/v2/device/1041"]
    assert token_requests(ninja) == [{"grant_type": "refresh_token", "refresh_token": old["refresh_token"],
                                      "client_id": ninja.sim.client_id, "client_secret": ninja.sim.client_secret}]
    new = ninja.credentials()
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert new["expires_at"] > time.time() + 3000 and new["instance_url"] == old["instance_url"]
    assert old["refresh_token"] not in ninja.sim.refresh_tokens and new["refresh_token"] in ninja.sim.refresh_tokens

    ninja.sim.requests.clear()
    assert ninja.ok(*LIVE_FIND)["count"] == 1  # the stored token is used as is
    assert [r.url.path for r in ninja.sim.requests] == ["/v2/device/1041"]


def test_a_token_about_to_expire_is_refreshed_before_a_write(ninja: Any) -> None:
    ninja.store_credentials(ninja.sim.issue_user_token(expires_in=120))
    ninja.ok("devices.sync", {"device_id": 1041})
    assert [r.url.path for r in ninja.sim.requests] == ["/ws/oauth/token", "/v2/device/1041"]


def test_a_401_refreshes_once_and_repeats_the_call(ninja: Any) -> None:
    old = ninja.credentials()
    ninja.sim.revoke(old["access_token"])
    assert ninja.ok("devices.reboot", {"device_id": 1041})["reboot_requested"] is True
    reboot = ("POST", "/v2/device/1041/reboot/NORMAL")
    assert [(r.method, r.url.path) for r in ninja.sim.requests] == [reboot, ("POST", "/ws/oauth/token"), reboot]
    assert ninja.sim.reboots[1041] == 1
    assert ninja.credentials()["refresh_token"] != old["refresh_token"]


def test_a_dead_refresh_token_means_reconnect(ninja: Any) -> None:
    old = ninja.store_credentials(ninja.sim.issue_user_token(expires_in=-60))
    ninja.sim.revoke_refresh(old["refresh_token"])
    err = ninja.fail(*LIVE_FIND)
    assert (err.code, err.details["reason"]) == ("INTEGRATION_INACTIVE", "RECONNECT_REQUIRED")
    assert "mspflow tenant authorize acme ninjaone" in err.message and "Invalid refresh token" in err.message
    assert old["refresh_token"] not in json.dumps(err.to_dict())
    assert [r.url.path for r in ninja.sim.requests] == ["/ws/oauth/token"]


def test_a_revoked_grant_means_reconnect_after_one_try(ninja: Any) -> None:
    creds = ninja.credentials()
    ninja.sim.revoke(creds["access_token"])
    ninja.sim.revoke_refresh(creds["refresh_token"])
    err = ninja.fail("devices.reboot", {"device_id": 1041})
    assert (err.code, err.details["reason"]) == ("INTEGRATION_INACTIVE", "RECONNECT_REQUIRED")
    assert ninja.sim.reboots[1041] == 0


def test_an_expired_token_without_refresh_token_means_reconnect(ninja: Any) -> None:
    ninja.store_credentials(ninja.sim.issue_client_token(expires_in=-60))
    err = ninja.fail(*LIVE_FIND)
    assert (err.code, err.details["reason"]) == ("INTEGRATION_INACTIVE", "RECONNECT_REQUIRED")
    assert ninja.sim.requests == []


def test_script_runs_need_a_user_context_token(ninja: Any) -> None:
    client = ninja.store_credentials(ninja.sim.issue_client_token())
    assert ninja.ok("devices.reboot", {"device_id": 1041})["reboot_requested"] is True  # other calls work
    err = ninja.fail("devices.run_script", {"device_id": 1041, "type": "SCRIPT", "script_id": 55})
    assert err.code == "PERMISSION_DENIED" and not err.retryable
    assert "Access key does not have user context which is required for this request" in err.message
    assert err.details == {"status": 403, "vendor_error": "user_context_required"}
    assert client["access_token"] not in err.message
    assert ninja.sim.script_runs == []
    assert [r.url.path for r in ninja.sim.requests].count("/ws/oauth/token") == 0  # a 403 is not a refresh


def test_tokens_stay_out_of_the_invocation_record(ninja: Any) -> None:
    creds = ninja.credentials()
    ninja.sim.revoke(creds["access_token"])
    result = ninja.run("devices.reboot", {"device_id": 1041})
    record = json.dumps(ninja.app.invocation(result.invocation_id), default=str)
    fresh = ninja.credentials()
    for value in (creds["access_token"], creds["refresh_token"], fresh["access_token"], fresh["refresh_token"],
                  ninja.sim.client_secret):
        assert value not in record


def test_the_tenants_instance_url_picks_the_region(ninja: Any) -> None:
    http.mount("https://eu.ninjarmm.com", ninja.sim.transport())
    ninja.connect(instance_url="https://eu.ninjarmm.com")
    assert ninja.ok(*LIVE_FIND)["count"] == 1
    assert {r.url.host for r in ninja.sim.requests} == {"eu.ninjarmm.com"}


def test_a_plain_http_instance_url_is_refused(ninja: Any) -> None:
    ninja.connect(instance_url="http://app.ninjarmm.com")
    err = ninja.fail(*LIVE_FIND)
    assert (err.code, err.details["reason"]) == ("VALIDATION_ERROR", "INSECURE_URL")
    assert ninja.sim.requests == []


def test_the_simulator_also_serves_on_loopback(ninja: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")
    server, url = ninja.sim.serve_in_thread()
    try:
        ninja.connect(instance_url=url)
        ninja.store_credentials(ninja.sim.issue_user_token(expires_in=-60))
        found = ninja.ok("devices.find", {"live": True, "query": "server"})
        assert sorted(d["hostname"] for d in found["devices"]) == ["FS-01", "WEB-01"]
        assert ninja.ok("devices.reboot", {"device_id": 1044, "mode": "FORCED"})["reboot_requested"]
        assert ninja.sim.reboots[1044] == 1
    finally:
        server.shutdown()
        server.server_close()
