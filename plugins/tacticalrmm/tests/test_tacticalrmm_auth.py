"""Both auth modes: X-API-KEY (default) and knox tokens with one unattended re-login after a 401."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mspflow_tacticalrmm.sim import FRONTDESK_ID, LAPTOP_ID, TacticalRMMSimulator

KNOX = "tacticalrmm_knox_token"


class SlowLoginTactical(TacticalRMMSimulator):
    def checkcreds(self, request: Any) -> Any:
        time.sleep(0.3)  # a login slow enough that every call meets the expired token first
        return super().checkcreds(request)


def auth_headers(trmm: Any) -> list[tuple[str | None, str | None]]:
    return [(r.headers.get("X-API-KEY"), r.headers.get("Authorization")) for r in trmm.sim.requests
            if not r.url.path.startswith("/v2/")]


def test_api_key_mode_is_the_default_and_sends_x_api_key(trmm: Any) -> None:
    trmm.ok("agents.find", {"live": True})
    assert auth_headers(trmm) == [(trmm.sim.api_key, None)]


def test_a_missing_api_key_names_the_secret(trmm: Any) -> None:
    trmm.delete_secret("tacticalrmm_api_key")
    err = trmm.fail("scripts.list")
    assert err.code == "INTEGRATION_INACTIVE" and err.details["reason"] == "SECRET_MISSING"
    assert "'tacticalrmm_api_key'" in err.message and "mspflow tenant set-secret acme" in err.message
    assert trmm.sim.requests == []


def test_a_wrong_api_key_is_permission_denied_with_drfs_words(trmm: Any) -> None:
    trmm.set_secret("tacticalrmm_api_key", "WRONGKEY")
    err = trmm.fail("scripts.list")
    assert err.code == "PERMISSION_DENIED" and "Invalid token." in err.message and err.details["status"] == 401
    assert "WRONGKEY" not in json.dumps(err.to_dict())
    assert len(trmm.sim.requests) == 1  # an API key cannot be refreshed: no second try


def test_knox_mode_logs_in_through_checkcreds_and_sends_token(trmm: Any) -> None:
    trmm.use_knox()
    out = trmm.ok("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1})
    assert out["output"] == "Removed 42 files (118 MB)\n"
    token = trmm.secret(KNOX)
    assert token and token in trmm.sim.tokens
    assert [(r.method, r.url.path) for r in trmm.sim.requests] == [
        ("POST", "/v2/checkcreds/"), ("POST", f"/agents/{FRONTDESK_ID}/runscript/")]
    assert json.loads(trmm.sim.requests[0].content) == {"username": trmm.sim.username,
                                                        "password": trmm.sim.password}
    assert auth_headers(trmm) == [(None, f"Token {token}")]

    trmm.sim.requests.clear()
    trmm.ok("scripts.list")
    assert [r.url.path for r in trmm.sim.requests] == ["/scripts/"] and trmm.sim.logins == [trmm.sim.username]


def test_knox_token_expired_logs_in_again_once_and_repeats_the_call(trmm: Any) -> None:
    trmm.use_knox()
    trmm.ok("scripts.list")
    old = trmm.secret(KNOX)
    trmm.sim.expire_tokens()
    trmm.sim.requests.clear()
    out = trmm.ok("agents.run_command", {"agent_id": FRONTDESK_ID, "shell": "cmd", "cmd": "hostname"})
    assert out["output"] == "FRONTDESK-01\n"
    new = trmm.secret(KNOX)
    assert new and new != old
    assert [(r.method, r.url.path) for r in trmm.sim.requests] == [
        ("POST", f"/agents/{FRONTDESK_ID}/cmd/"), ("POST", "/v2/checkcreds/"), ("POST", f"/agents/{FRONTDESK_ID}/cmd/")]
    assert [h for _, h in auth_headers(trmm)] == [f"Token {old}", f"Token {new}"]
    assert len(trmm.sim.commands) == 1


def test_a_stored_token_the_server_forgot_is_replaced(trmm: Any) -> None:
    trmm.use_knox()
    trmm.set_secret(KNOX, "stale-token")
    assert trmm.ok("agents.get", {"agent_id": FRONTDESK_ID})["agent"]["hostname"] == "FRONTDESK-01"
    assert trmm.secret(KNOX) != "stale-token" and trmm.sim.logins == [trmm.sim.username]


def test_a_totp_account_cannot_log_in_unattended(trmm: Any) -> None:
    trmm.use_knox(username=trmm.sim.totp_username)
    err = trmm.fail("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1})
    assert err.code == "PERMISSION_DENIED" and err.details["reason"] == "TOTP_REQUIRED" and not err.retryable
    assert "API key" in err.message and "tacticalrmm_api_key" in err.message and "auth_mode" in err.message
    assert [r.url.path for r in trmm.sim.requests] == ["/v2/checkcreds/"]
    assert trmm.sim.script_runs == [] and trmm.secret(KNOX) is None


def test_a_totp_account_whose_token_expires_is_denied_after_one_login_attempt(trmm: Any) -> None:
    trmm.use_knox(username=trmm.sim.totp_username)
    trmm.set_secret(KNOX, "expired-token")
    err = trmm.fail("agents.reboot", {"agent_id": FRONTDESK_ID})
    assert err.code == "PERMISSION_DENIED" and err.details["reason"] == "TOTP_REQUIRED"
    assert [r.url.path for r in trmm.sim.requests] == [f"/agents/{FRONTDESK_ID}/reboot/", "/v2/checkcreds/"]
    assert sum(trmm.sim.reboots.values()) == 0


def test_bad_credentials_are_permission_denied_without_the_password(trmm: Any) -> None:
    trmm.use_knox(password="hunter2-wrong")
    err = trmm.fail("scripts.list")
    assert err.code == "PERMISSION_DENIED" and err.details["reason"] == "LOGIN_FAILED"
    assert "Bad credentials" in err.message and "hunter2-wrong" not in json.dumps(err.to_dict())


def test_knox_mode_needs_username_and_password_secrets(trmm: Any) -> None:
    trmm.use_knox()
    trmm.delete_secret("tacticalrmm_password")
    err = trmm.fail("scripts.list")
    assert err.code == "INTEGRATION_INACTIVE" and "'tacticalrmm_password'" in err.message
    assert trmm.sim.requests == []


def test_an_unknown_auth_mode_is_inactive(trmm: Any) -> None:
    trmm.set_auth_mode("oauth")
    err = trmm.fail("scripts.list")
    assert err.code == "INTEGRATION_INACTIVE" and err.details["reason"] == "BAD_AUTH_MODE"


def test_the_auth_mode_is_read_for_the_calling_tenant_only(trmm: Any) -> None:
    trmm.connect("globex", instance_url=trmm.sim.base_url)
    trmm.set_auth_mode("knox", tenant="globex")
    assert trmm.ok("scripts.list")["count"] == 3  # acme stays on its API key
    assert auth_headers(trmm) == [(trmm.sim.api_key, None)]


def test_secrets_stay_out_of_the_invocation_record(trmm: Any) -> None:
    trmm.use_knox()
    result = trmm.run("agents.run_script", {"agent_id": LAPTOP_ID, "script_id": 1})
    assert not result.ok
    record = json.dumps(trmm.app.invocation(result.invocation_id, tenant="acme"), default=str)
    token = trmm.secret(KNOX)
    assert token and token not in record and trmm.sim.password not in record


def test_a_tenant_that_is_not_connected_is_inactive(trmm: Any) -> None:
    trmm.disconnect()
    assert trmm.fail("scripts.list").code == "INTEGRATION_INACTIVE"
    assert trmm.sim.requests == []


def test_eight_concurrent_calls_on_an_expired_token_share_one_login(trmm: Any) -> None:
    """Issue 10.2: every call hits the expired token; exactly one logs in again, the rest use its token."""
    from mspflow import vendor

    trmm.sim = SlowLoginTactical()  # calls meet the expired token while the login is under way
    vendor.mount(trmm.sim.base_url, trmm.sim.transport())
    trmm.use_knox()
    trmm.ok("scripts.list")
    old = trmm.secret(KNOX)
    trmm.sim.expire_tokens()
    trmm.sim.logins.clear()
    trmm.sim.requests.clear()
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def call() -> None:
        barrier.wait()
        results.append(trmm.run("scripts.list"))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert trmm.sim.logins == [trmm.sim.username]  # one login for eight calls
    assert sum(1 for r in trmm.sim.requests if r.url.path == "/v2/checkcreds/") == 1
    new = trmm.secret(KNOX)
    assert new != old and new in trmm.sim.tokens


WORKER = """
import json, sys, threading, time
from pathlib import Path
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.plugins import Plugins

app = App(db=Database(sys.argv[1]), plugins=Plugins(strict=True))
go, results = Path(sys.argv[2]), []
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
def call():
    r = app.execute("tacticalrmm.scripts.list", tenant="acme", input={})
    results.append(r.ok or r.error.to_dict())
threads = [threading.Thread(target=call) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(results), flush=True)
"""



@pytest.mark.postgres
@pytest.mark.redis
def test_two_worker_processes_on_redis_share_one_login(postgresql_url: str, redis_url: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10.2: 2 processes x 4 calls hit an expired knox token over real HTTP; one login in all."""
    import importlib.util

    from mspflow.app import App
    from mspflow.db.engine import Database
    from mspflow.db.migrate import upgrade
    from mspflow.plugins import Plugins

    # this directory's conftest by path: "conftest" alone names whichever plugin's conftest loaded last
    spec = importlib.util.spec_from_file_location("_tacticalrmm_conftest", Path(__file__).with_name("conftest.py"))
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    Tactical = conftest.Tactical
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")
    sim = SlowLoginTactical()
    server, url = sim.serve_in_thread()
    database = Database(postgresql_url)
    upgrade(database)
    app = App(db=database, plugins=Plugins(strict=True))
    try:
        t = Tactical(app, sim)
        t.connect(instance_url=url)
        t.use_knox()
        sim.tokens["expired-knox-token"] = (sim.username, 0.0)
        t.set_secret(KNOX, "expired-knox-token")
        env = {**os.environ, "MSPFLOW_BROKER_URL": redis_url, "MSPFLOW_LOAD_PLUGINS": "tacticalrmm"}
        go = tmp_path / "go"
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, postgresql_url, str(go)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        server.shutdown()
        server.server_close()
        app.close()
        database.dispose()
    results = [r for out, err in outputs for r in json.loads(out.strip().splitlines()[-1] if out.strip() else "[]")]
    assert results == [True] * 8, outputs
    assert sim.logins == [sim.username]  # one login across both processes
    stale = [r for r in sim.requests if r.headers.get("Authorization") == "Token expired-knox-token"]
    assert len(stale) >= 2  # more than one call met the expired token
