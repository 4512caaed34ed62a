"""Black box, as an operator runs it: ``mspflow sim serve levelio``, ``tenant connect``, ``set-secret``, ``run``.
(``mspflow demo``'s stories are checked against the simulators in tests/test_demo.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mspflow_levelio.sim import FRONTDESK, PATCH_NOW, RESTART_SPOOLER, LevelSimulator

from mspflow.testing.cli import cli_env, run_cli, served_simulator


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home", plugin="levelio")


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    with served_simulator("levelio", env) as url:
        yield url


mspflow = run_cli


def test_an_operator_triggers_an_automation_and_reads_its_run(env: dict[str, str], served: str) -> None:
    # A bare host, as an operator types it: the plugin adds Level's /v2 prefix.
    mspflow(env, "tenant", "connect", "acme", "levelio", "--instance-url", served)
    mspflow(env, "tenant", "set-secret", "acme", "levelio_api_key", stdin=LevelSimulator.api_key)

    def run(action: str, payload: dict[str, object], *extra: str) -> dict[str, object]:
        out = mspflow(env, "run", f"levelio.{action}", "--tenant", "acme", "--input", json.dumps(payload),
                      "--json", *extra, ok=False)
        return dict(json.loads(out.stdout))

    step = ("--run-id", "run-1", "--step-path", "steps.restart")
    payload = {"automation_id": RESTART_SPOOLER, "device_ids": [FRONTDESK]}
    first = run("automations.trigger", payload, *step)
    assert first["ok"] and first["replayed"] is False, first
    output = first["output"]
    assert isinstance(output, dict) and output["run_id_reported"] is True
    run_id = output["run_id"]

    statuses = [run("automations.run_status", {"run_id": run_id}) for _ in range(3)]
    assert [s["ok"] for s in statuses] == [True] * 3
    assert [(s["output"]["run_id"], s["output"]["status"], s["output"]["finished"])  # type: ignore[index]
            for s in statuses] == [(run_id, "running", False), (run_id, "running", False), (run_id, "succeeded", True)]

    again = run("automations.trigger", payload, *step)  # the same run id and step path: a replay
    assert again["ok"] and again["replayed"] is True and again["output"] == output

    refused = run("automations.trigger", {"automation_id": PATCH_NOW})
    assert refused["ok"] is False and refused["error"]["code"] == "CONFLICT"  # type: ignore[index]
    assert "add a Webhook trigger" in refused["error"]["message"]  # type: ignore[index]

    log = httpx.get(f"{served}/_sim/requests").json()
    triggers = [r for r in log if r["method"] == "POST" and r["path"].startswith("/v2/automations/webhooks/")]
    assert len(triggers) == 1
    runs = [r for r in log if r["path"].startswith("/v2/automation-runs/")]
    assert len(runs) == 3 and all(r["path"].endswith(run_id.replace("=", "%3D")) for r in runs)


def test_mspflow_serve_on_the_embedded_default_polls_a_connected_integration(env: dict[str, str], served: str) -> None:
    """No worker on the embedded default: `mspflow serve` runs the reconciliation poll, so the simulator's
    active alerts reach the PSA without a webhook or cron."""
    import subprocess
    import time

    from mspflow.testing.cli import MSPFLOW
    from mspflow.testing.live import free_port

    mspflow(env, "tenant", "connect", "acme", "levelio", "--instance-url", served)
    mspflow(env, "tenant", "set-secret", "acme", "levelio_api_key", stdin=LevelSimulator.api_key)
    port = free_port()
    server = subprocess.Popen([MSPFLOW, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        while "listening on" not in (line := server.stderr.readline()):
            assert line, "mspflow serve exited before it listened"
        deadline = time.monotonic() + 60
        while len(alerts := json.loads(mspflow(env, "alerts", "list", "--tenant", "acme", "--json").stdout)) < 3:
            assert time.monotonic() < deadline, f"the simulator's 3 active alerts were not polled in 60 s: {alerts}"
            time.sleep(0.3)
        assert sorted((a["provider"], a["status"]) for a in alerts) == [("levelio", "active")] * 3
    finally:
        server.terminate()
        server.wait(timeout=30)
