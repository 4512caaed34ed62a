"""Black box, as an operator runs it: ``mspflow sim serve tacticalrmm``, ``tenant connect``, ``set-secret``, ``run``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mspflow_tacticalrmm.sim import FILESERVER_ID, FRONTDESK_ID, LAPTOP_ID, TacticalRMMSimulator

from mspflow.testing.cli import cli_env, run_cli, served_simulator


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home", plugin="tacticalrmm")


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    with served_simulator("tacticalrmm", env) as url:
        yield url


mspflow = run_cli


def test_an_operator_runs_a_script_and_gets_its_output(env: dict[str, str], served: str) -> None:
    mspflow(env, "tenant", "connect", "acme", "tacticalrmm", "--instance-url", served + "/api/")
    mspflow(env, "tenant", "set-secret", "acme", "tacticalrmm_api_key", stdin=TacticalRMMSimulator.api_key)

    def run(action: str, payload: dict[str, object], *extra: str) -> dict[str, object]:
        out = mspflow(env, "run", f"tacticalrmm.{action}", "--tenant", "acme", "--input", json.dumps(payload),
                      "--json", *extra, ok=False)
        return dict(json.loads(out.stdout))

    step = ("--run-id", "run-1", "--step-path", "steps.1")
    first = run("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1, "args": ["-Days", "7"]}, *step)
    assert first["ok"], first
    assert first["output"] == {"agent_id": FRONTDESK_ID, "script_id": 1, "waited": True, "delivered": "yes",
                               "output": "Removed 42 files (118 MB)\n"}
    again = run("agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1, "args": ["-Days", "7"]}, *step)
    assert again["replayed"] is True and again["output"] == first["output"]

    found = run("agents.find", {"live": True, "query": "file"})
    assert found["ok"] and found["output"]["agents"][0]["agent_id"] == FILESERVER_ID  # type: ignore[index]
    offline = run("agents.run_script", {"agent_id": LAPTOP_ID, "script_id": 1})
    assert offline["ok"] is False and offline["error"]["code"] == "TRANSIENT_FAILURE"  # type: ignore[index]

    log = httpx.get(f"{served}/_sim/requests").json()
    assert [r for r in log if r["path"] == f"/agents/{FRONTDESK_ID}/runscript/"] == [
        {"method": "POST", "path": f"/agents/{FRONTDESK_ID}/runscript/"}]
