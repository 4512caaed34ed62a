"""Black box, as an operator runs it: ``mspflow sim serve ninjaone``, ``tenant authorize``, ``run``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mspflow_ninjaone import ninjaone
from mspflow_ninjaone.sim import NinjaOneSimulator

from mspflow.testing.cli import cli_env, run_cli, served_simulator


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home", plugin="ninjaone")


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    with served_simulator("ninjaone", env) as url:
        yield url


mspflow = run_cli


def test_an_operator_authorizes_a_tenant_and_runs_actions(env: dict[str, str], served: str) -> None:
    oauth = ninjaone.oauth
    assert oauth is not None
    mspflow(env, "tenant", "connect", "acme", "ninjaone", "--instance-url", served)
    mspflow(env, "tenant", "set-secret", "acme", oauth.client_id, stdin=NinjaOneSimulator.client_id)
    mspflow(env, "tenant", "set-secret", "acme", oauth.client_secret, stdin=NinjaOneSimulator.client_secret)

    consent = httpx.get(f"{served}{oauth.authorize_path}", params={
        "response_type": "code", "client_id": NinjaOneSimulator.client_id, "redirect_uri": oauth.redirect_uri,
        "scope": oauth.scopes})
    assert consent.status_code == 302
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    authorized = mspflow(env, "tenant", "authorize", "acme", "ninjaone", "--code", code)
    assert "tokens stored in secret ninjaone_credentials" in authorized.stdout
    assert "no refresh token" not in authorized.stdout

    def run(action: str, payload: dict[str, object], *extra: str) -> dict[str, object]:
        out = mspflow(env, "run", f"ninjaone.{action}", "--tenant", "acme", "--input", json.dumps(payload),
                      "--json", *extra)
        return dict(json.loads(out.stdout))

    found = run("devices.find", {"live": True, "query": "front"})
    assert found["ok"] and found["output"]["devices"][0]["external_device_id"] == "1041"  # type: ignore[index]
    step = ("--run-id", "run-1", "--step-path", "steps.1")
    first = run("devices.run_script", {"device_id": 1041, "type": "SCRIPT", "script_id": 55, "run_as": "system"},
                *step)
    assert first["ok"] and first["output"] == {"run_requested": True, "external_device_id": "1041"}
    again = run("devices.run_script", {"device_id": 1041, "type": "SCRIPT", "script_id": 55, "run_as": "system"},
                *step)
    assert again["replayed"] is True
    assert run("devices.reboot", {"device_id": "1042", "mode": "FORCED"})["ok"]

    # The check: reboot 1041 through the CLI, then the same step again: one reboot at the simulator.
    reboot_step = ("--run-id", "run-2", "--step-path", "steps.reboot")
    rebooted = run("devices.reboot", {"device_id": 1041}, *reboot_step)
    replay = run("devices.reboot", {"device_id": 1041}, *reboot_step)
    assert rebooted["ok"] and rebooted["replayed"] is False and replay["replayed"] is True
    assert replay["output"] == rebooted["output"] == {"reboot_requested": True, "external_device_id": "1041"}
    log = httpx.get(f"{served}/_sim/requests").json()
    assert [r for r in log if r["method"] == "POST" and r["path"] == "/v2/device/1041/reboot/NORMAL"] == [
        {"method": "POST", "path": "/v2/device/1041/reboot/NORMAL"}]
