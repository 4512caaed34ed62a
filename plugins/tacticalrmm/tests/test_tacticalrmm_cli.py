"""Black box, as an operator runs it: ``mspflow sim serve tacticalrmm``, ``tenant connect``, ``set-secret``, ``run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mspflow_tacticalrmm.sim import FILESERVER_ID, FRONTDESK_ID, LAPTOP_ID, TacticalRMMSimulator

MSPFLOW = str(Path(sys.executable).with_name("mspflow"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    return clean | {"MSPFLOW_HOME": str(tmp_path / "home"), "MSPFLOW_LOAD_PLUGINS": "tacticalrmm",
                    "MSPFLOW_ALLOW_HTTP_VENDOR_URLS": "1", "COLUMNS": "200"}


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    """``mspflow sim serve tacticalrmm`` in a subprocess; yields its base URL."""
    proc = subprocess.Popen([MSPFLOW, "sim", "serve", "tacticalrmm"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "listening on http://" in line, line
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def mspflow(env: dict[str, str], *args: str, stdin: str = "", ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([MSPFLOW, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


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
    assert first["output"] == {"agent_id": FRONTDESK_ID, "script_id": 1, "waited": True,
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
