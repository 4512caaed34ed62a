"""The simulator on its own: it must refuse what NinjaOne refuses, so the plugin's tests mean something."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mspflow_ninjaone.sim import NinjaOneSimulator


@pytest.fixture
def sim() -> NinjaOneSimulator:
    return NinjaOneSimulator()


@pytest.fixture
def api(sim: NinjaOneSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, transport=sim.transport()) as client:
        yield client


def token(api: httpx.Client, sim: NinjaOneSimulator, **form: str) -> httpx.Response:
    return api.post("/ws/oauth/token", data={"client_id": sim.client_id, "client_secret": sim.client_secret} | form)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def assert_error(response: httpx.Response, status: int, error: str, code: int | None = None) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == status and set(body) == {"error", "error_description", "error_code"}, body
    assert body["error"] == error and (code is None or body["error_code"] == code), body
    return dict(body)


def test_client_credentials_tokens_have_no_refresh_token(api: httpx.Client, sim: NinjaOneSimulator) -> None:
    body = token(api, sim, grant_type="client_credentials", scope="monitoring management control").json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and "refresh_token" not in body
    assert api.get("/v2/devices", headers=bearer(body["access_token"])).status_code == 200
    assert_error(token(api, sim, grant_type="client_credentials", scope="monitoring billing"), 400, "invalid_scope")
    assert_error(token(api, sim, grant_type="client_credentials", client_secret="nope"), 401, "invalid_client")
    assert_error(token(api, sim, grant_type="password"), 400, "unsupported_grant_type")
    basic = api.post("/ws/oauth/token", data={"grant_type": "client_credentials"},
                     auth=(sim.client_id, sim.client_secret))
    assert basic.status_code == 200


def test_authorization_codes_are_single_use_and_refresh_tokens_rotate(api: httpx.Client,
                                                                      sim: NinjaOneSimulator) -> None:
    code = sim.authorization_code()
    first = token(api, sim, grant_type="authorization_code", code=code).json()
    assert sim.tokens[first["access_token"]].user_context and first["refresh_token"]
    assert_error(token(api, sim, grant_type="authorization_code", code=code), 400, "invalid_grant")

    second = token(api, sim, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"] and sim.tokens[second["access_token"]].user_context
    reused = token(api, sim, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert_error(reused, 400, "invalid_grant")
    assert token(api, sim, grant_type="refresh_token", refresh_token=second["refresh_token"]).status_code == 200


def test_the_consent_page_redirects_with_a_code(api: httpx.Client, sim: NinjaOneSimulator) -> None:
    redirect = "http://localhost/callback"
    answer = api.get("/ws/oauth/authorize", params={"response_type": "code", "client_id": sim.client_id,
                                                    "redirect_uri": redirect, "scope": "monitoring offline_access",
                                                    "state": "xyz"})
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect and query["state"] == "xyz"
    assert_error(token(api, sim, grant_type="authorization_code", code=query["code"], redirect_uri="http://evil"),
                 400, "invalid_grant")
    code = sim.authorization_code("monitoring offline_access", redirect)
    granted = token(api, sim, grant_type="authorization_code", code=code, redirect_uri=redirect).json()
    assert granted["scope"] == "monitoring offline_access" and granted["refresh_token"]


def test_bearer_tokens_are_checked(api: httpx.Client, sim: NinjaOneSimulator) -> None:
    expired = sim.issue_user_token(expires_in=-1)["access_token"]
    for headers in ({}, bearer("made-up"), bearer(expired), {"Authorization": "Basic abc"}):
        assert_error(api.get("/v2/devices", headers=headers), 401, "not_authenticated", 10)
    live = sim.issue_user_token()["access_token"]
    sim.revoke(live)
    assert_error(api.get("/v2/alerts", headers=bearer(live)), 401, "not_authenticated", 10)


def test_script_runs_need_user_context(api: httpx.Client, sim: NinjaOneSimulator) -> None:
    run = {"type": "SCRIPT", "id": 55, "parameters": "-Days 7", "runAs": "system"}
    client = sim.issue_client_token()["access_token"]
    refused = api.post("/v2/device/1041/script/run", json=run, headers=bearer(client))
    body = assert_error(refused, 403, "user_context_required", 5)
    assert body["error_description"] == "Access key does not have user context which is required for this request"
    user = bearer(sim.issue_user_token()["access_token"])
    assert api.post("/v2/device/1041/script/run", json=run, headers=user).status_code == 204
    assert sim.script_runs == [{"device_id": 1041, **run}]
    for bad in ({**run, "parameters": {"Days": 7}}, {**run, "id": "55"}, {"type": "SHELL"}, {"type": "ACTION"}):
        assert_error(api.post("/v2/device/1041/script/run", json=bad, headers=user), 400, "invalid_request")
    assert_error(api.post("/v2/device/1041/script/run", json={**run, "id": 1}, headers=user), 404, "not_found")


def test_reboots_take_the_mode_in_the_path(api: httpx.Client, sim: NinjaOneSimulator) -> None:
    user = bearer(sim.issue_user_token()["access_token"])
    assert api.post("/v2/device/1041/reboot/NORMAL", headers=user).status_code == 204
    assert api.post("/v2/device/1041/reboot/FORCED", json={"reason": "patch"}, headers=user).status_code == 204
    assert sim.reboots[1041] == 2 and sim.reboot_log[1] == {"device_id": 1041, "mode": "FORCED", "reason": "patch"}
    assert_error(api.post("/v2/device/1041/reboot/HARD", headers=user), 400, "invalid_request")
    assert_error(api.post("/v2/device/1041/control/reboot", headers=user), 404, "not_found")
    assert_error(api.post("/v2/device/9/reboot/NORMAL", headers=user), 404, "not_found")
    assert_error(api.post("/v2/device/1041%2F..%2F1042/reboot/NORMAL", headers=user), 404, "not_found")
    assert_error(api.get("/v2/device/1041/reboot/NORMAL", headers=user), 405, "method_not_allowed")
    assert sim.reboots == {1041: 2}


def test_devices_page_by_last_id_in_bare_arrays(api: httpx.Client, sim: NinjaOneSimulator) -> None:
    user = bearer(sim.issue_user_token()["access_token"])
    first = api.get("/v2/devices", params={"pageSize": 2, "after": 1040}, headers=user).json()
    assert isinstance(first, list) and [d["id"] for d in first] == [1041, 1042]
    rest = api.get("/v2/devices", params={"pageSize": 2, "after": first[-1]["id"]}, headers=user).json()
    assert [d["id"] for d in rest] == [1043, 1044]
    assert [d["id"] for d in api.get("/v2/devices", params={"after": 1044}, headers=user).json()] == [1045]
    assert "os" not in first[0] and "os" not in api.get("/v2/device/1041", headers=user).json()  # not in the spec
    sim.max_page_size = 1
    assert len(api.get("/v2/devices", params={"pageSize": 2}, headers=user).json()) == 1
    assert_error(api.get("/v2/devices", params={"pageSize": "x"}, headers=user), 400, "invalid_request")
    device = api.get("/v2/device/1042", headers=user).json()
    assert {"id", "uid", "organizationId", "locationId", "nodeClass", "approvalStatus", "offline", "displayName",
            "systemName", "dnsName", "created", "lastContact", "lastUpdate"} <= set(device)
    assert isinstance(device["lastContact"], float)


def test_alerts_list_and_reset(api: httpx.Client, sim: NinjaOneSimulator) -> None:
    user = bearer(sim.issue_user_token()["access_token"])
    alerts = api.get("/v2/alerts", headers=user).json()
    assert len(alerts) == 3 and {"uid", "deviceId", "message", "subject", "sourceType", "createTime", "updateTime",
                                 "severity", "priority"} <= set(alerts[0])
    cpu = api.get("/v2/alerts", params={"sourceType": "CONDITION_AGENT_CPU"}, headers=user).json()
    assert [a["deviceId"] for a in cpu] == [1041]
    assert [a["uid"] for a in api.get("/v2/device/1042/alerts", headers=user).json()] == [alerts[1]["uid"]]
    assert api.delete(f"/v2/alert/{alerts[0]['uid']}", headers=user).status_code == 204
    assert_error(api.delete(f"/v2/alert/{alerts[0]['uid']}", headers=user), 404, "not_found")
    assert api.post(f"/v2/alert/{alerts[1]['uid']}/reset", json={}, headers=user).status_code == 204
    assert sim.alert_resets == [alerts[0]["uid"], alerts[1]["uid"]] and len(sim.alerts) == 1


def test_faults_answer_in_ninjaones_shape(api: httpx.Client, sim: NinjaOneSimulator) -> None:
    user = bearer(sim.issue_user_token()["access_token"])
    sim.faults.rate_limit_next, sim.faults.retry_after_s = 1, 7
    limited = api.get("/v2/devices", headers=user)
    assert_error(limited, 429, "too_many_requests")
    assert limited.headers["Retry-After"] == "7"
    sim.faults.fail_next = 1
    assert_error(api.get("/v2/devices", headers=user), 503, "service_unavailable")
    assert api.get("/v2/devices", headers=user).status_code == 200


def test_an_unseeded_simulator_is_empty(api: httpx.Client) -> None:
    empty = NinjaOneSimulator(seed=False)
    assert empty.devices == {} and empty.alerts == {}
