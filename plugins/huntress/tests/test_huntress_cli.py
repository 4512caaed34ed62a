"""Black box, as an operator runs it: ``mspflow sim serve huntress``, ``tenant connect``, ``set-secret``, ``run``.
(``mspflow demo``'s stories are checked against the simulators in tests/test_demo.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mspflow_huntress.sim import SENT_ID, HuntressSimulator

from mspflow.testing.cli import cli_env, run_cli, served_simulator


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home", plugin="huntress")


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    with served_simulator("huntress", env) as url:
        yield url


mspflow = run_cli


def test_an_operator_reads_and_resolves_an_incident(env: dict[str, str], served: str) -> None:
    mspflow(env, "tenant", "connect", "acme", "huntress", "--instance-url", served + "/v1")
    mspflow(env, "tenant", "set-secret", "acme", "huntress_api_key", stdin=HuntressSimulator.api_key)
    mspflow(env, "tenant", "set-secret", "acme", "huntress_api_secret", stdin=HuntressSimulator.api_secret)

    def run(action: str, payload: dict[str, object], *extra: str) -> dict[str, object]:
        out = mspflow(env, "run", f"huntress.{action}", "--tenant", "acme", "--input", json.dumps(payload),
                      "--json", *extra, ok=False)
        return dict(json.loads(out.stdout))

    found = run("incidents.find", {"status": "sent"})
    assert found["ok"] and found["output"]["count"] == 2  # type: ignore[index]
    step = ("--run-id", "run-1", "--step-path", "steps.resolve")
    first = run("incidents.resolve", {"incident_report_id": SENT_ID}, *step)
    assert first["ok"] and first["output"]["status"] == "closed"  # type: ignore[index]
    again = run("incidents.resolve", {"incident_report_id": SENT_ID}, *step)
    assert again["replayed"] is True and again["output"] == first["output"]
    log = httpx.get(f"{served}/_sim/requests").json()
    assert [r for r in log if r["method"] == "POST"] == [
        {"method": "POST", "path": f"/v1/incident_reports/{SENT_ID}/resolution"}]
    assert httpx.get(f"{served}/_sim/limiter").json()["refused"] == 0
