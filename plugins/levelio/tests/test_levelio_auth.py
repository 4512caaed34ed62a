"""The API key and Level's refusals: what a tenant sees when the key is missing, wrong or read-only (F2-F4),
and 429/5xx on the core's rails (F14)."""

from __future__ import annotations

from typing import Any

import pytest
from mspflow_levelio.sim import CLEAR_TEMP, FRONTDESK, gid

WRITES = [("alerts.resolve", {"alert_id": gid("Alert", 1)}),
          ("automations.trigger", {"automation_id": CLEAR_TEMP, "device_ids": [FRONTDESK]})]
READS = [("devices.find", {"live": True}), ("devices.get", {"device_id": FRONTDESK}),
         ("alerts.list_active", {"live": True}), ("updates.list", {}), ("automations.list", {}),
         ("automations.run_status", {"run_id": gid("AutomationRun", "1|x|")})]


def test_the_key_is_the_whole_authorization_header(level: Any) -> None:
    level.ok("devices.get", {"device_id": FRONTDESK})
    assert level.sim.requests[0].headers["Authorization"] == level.sim.api_key


def test_a_tenant_without_a_key_is_told_which_secret(level: Any) -> None:
    level.delete_secret("levelio_api_key")
    err = level.fail("devices.find", {"live": True})
    assert (err.code, err.details["reason"]) == ("INTEGRATION_INACTIVE", "SECRET_MISSING")
    assert "'levelio_api_key'" in err.message and "mspflow tenant set-secret acme" in err.message
    assert level.ok("devices.find") == {"devices": [], "count": 0}  # local reads need no key
    assert level.sim.requests == []


@pytest.mark.parametrize(("action", "params"), READS)
def test_a_refused_key_on_a_read_says_regenerate_it(level: Any, action: str, params: dict[str, Any]) -> None:
    level.use_key("lvl_revoked_0000000000000000")
    err = level.fail(action, params)
    assert (err.code, err.retryable, err.details["reason"], err.details["status"]) == \
        ("PERMISSION_DENIED", False, "KEY_REFUSED", 401)
    assert err.message.startswith("Level API 401: Access denied;") and "regenerate" in err.message
    assert "levelio_api_key" in err.message and "lvl_revoked" not in str(err.to_dict())
    assert len(level.sim.requests) == 1  # no refresh to try, nothing repeated


def test_a_bearer_prefix_is_refused_as_level_does(level: Any) -> None:
    level.use_key("Bearer " + level.sim.api_key)
    assert level.fail("devices.get", {"device_id": FRONTDESK}).details["reason"] == "KEY_REFUSED"


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize(("action", "params"), WRITES)
def test_a_read_only_key_on_a_write_asks_for_read_and_write(level: Any, status: int, action: str,
                                                            params: dict[str, Any]) -> None:
    level.sim.read_only_status = status  # F4: which one Level sends is unknown
    level.use_key(level.sim.read_only_key)
    assert level.ok("alerts.list_active", {"live": True})["count"] == 3  # reads work with a Read-only key
    err = level.fail(action, params)
    assert (err.code, err.retryable, err.details["reason"], err.details["status"]) == \
        ("PERMISSION_DENIED", False, "READ_WRITE_KEY_REQUIRED", status)
    assert '"Read and write"' in err.message and "Read-only" in err.message
    assert level.sim.triggers == [] and level.sim.resolved == []


def test_a_429_on_a_read_is_waited_out_by_the_core(level: Any) -> None:
    level.sim.faults.rate_limit_next, level.sim.faults.retry_after_s = 1, 0
    assert level.ok("devices.find", {"live": True})["count"] == 6
    assert [r.url.path for r in level.sim.requests] == ["/v2/devices"] * 2


def test_a_429_on_a_trigger_comes_back_rate_limited_and_runs_later(level: Any) -> None:
    token = level.sim.token_of(CLEAR_TEMP)
    level.sim.faults.rate_limit_next, level.sim.faults.retry_after_s = 1, 30
    call = {"run_id": "run-429", "step_path": "steps.1"}
    err = level.fail("automations.trigger", {"webhook_token": token}, **call)
    assert (err.code, err.retryable, err.retry_after) == ("RATE_LIMITED", True, 30.0)
    assert level.sim.triggers == [] and level.sim.count("POST", token) == 1
    again = level.run("automations.trigger", {"webhook_token": token}, **call)  # the worker's next attempt
    assert again.ok and again.attempt == 2 and len(level.sim.triggers) == 1


def test_a_5xx_is_repeated_for_reads_but_not_for_writes(level: Any) -> None:
    level.sim.faults.fail_next = 1
    assert level.ok("updates.list")["count"] == 3
    level.sim.faults.fail_next = 1
    err = level.fail("alerts.resolve", {"alert_id": gid("Alert", 1)})
    assert (err.code, err.retryable) == ("TRANSIENT_FAILURE", True) and level.sim.resolved == []


def test_a_trigger_whose_outcome_is_unknown_is_not_repeated(level: Any) -> None:
    level.sim.faults.timeout_next = 1
    err = level.fail("automations.trigger", {"webhook_token": level.sim.token_of(CLEAR_TEMP)})
    assert (err.code, err.retryable, err.details.get("outcome")) == ("TRANSIENT_FAILURE", False, "unknown")
    assert len(level.sim.triggers) == 1


def test_a_malformed_answer_is_transient(level: Any) -> None:
    level.sim.faults.malformed_next = 3
    err = level.fail("automations.list")
    assert (err.code, err.details["reason"]) == ("TRANSIENT_FAILURE", "MALFORMED_BODY")


def test_a_bare_host_instance_url_gets_v2(level: Any) -> None:
    from mspflow import vendor as http

    http.mount("https://api.level.io/v2", level.sim.transport())
    level.update_integration(instance_url="https://api.level.io")
    assert level.ok("devices.get", {"device_id": FRONTDESK})["device"]["hostname"] == "FRONTDESK-01"
    assert level.sim.requests[0].url.path.startswith("/v2/devices/")


@pytest.mark.parametrize("body", ["Access granted", ["not", "records"], [{"no_id": 1}], 42])
def test_a_reply_that_is_not_a_record_is_transient_not_a_crash(level: Any, body: Any) -> None:
    import httpx

    from mspflow import vendor as http

    http.mount(level.sim.base_url, httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
    for action, params in READS:
        err = level.fail(action, params)
        assert (err.code, err.retryable) == ("TRANSIENT_FAILURE", True), (action, err.to_dict())
        assert err.details["reason"] == "VENDOR_REPLY_SHAPE", (action, err.to_dict())
