"""`mspflow run` and `mspflow invocations` as an operator uses them (embedded default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.distributions import Distributions
from tests.test_cli import Cli, counter_cli

SECRET = "tok_live_Zk29xQv7Lp0aa"


@pytest.fixture
def cli(tmp_path: Path, dists: Distributions) -> Cli:
    return counter_cli(tmp_path / "home", dists)


def run(cli: Cli, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = cli("run", *args, "--json")
    return result.returncode, json.loads(result.stdout)


def test_run_prints_the_contract_and_replays_with_the_same_step(cli: Cli) -> None:
    args = ("counter.effects.apply", "--tenant", "acme", "--input", '{"label": "x"}', "--run-id", "r",
            "--step-path", "s")
    code, first = run(cli, *args)
    assert code == 0 and list(first) == ["ok", "output", "invocation_id", "replayed"]
    assert first["ok"] is True and first["replayed"] is False and first["output"] == {"label": "x", "attempt": 1}
    code, second = run(cli, *args)
    assert code == 0 and second["replayed"] is True and second["invocation_id"] == first["invocation_id"]


def test_run_failure_prints_the_error_shape_and_exits_1(cli: Cli, tmp_path: Path) -> None:
    code, data = run(cli, "counter.effects.apply", "--tenant", "acme", "--input", '{"label": 3}')
    assert code == 1 and data["ok"] is False
    assert list(data["error"]) == ["code", "message", "retryable", "details"]
    assert data["error"]["code"] == "VALIDATION_ERROR" and data["error"]["details"]["fields"][0]["path"] == "label"
    code, data = run(cli, "counter.effects.apply", "--tenant", "acme", "--input", "{not json")
    assert code == 1 and data["error"]["code"] == "VALIDATION_ERROR" and "not valid JSON" in data["error"]["message"]
    (tmp_path / "in.json").write_text('{"label": "from-file"}')
    code, data = run(cli, "counter.effects.apply", "--tenant", "acme", "--input", f"@{tmp_path / 'in.json'}")
    assert code == 0 and data["output"]["label"] == "from-file"


def test_secret_planted_in_an_exception_never_reaches_cli_output_or_records(cli: Cli) -> None:
    assert cli("tenant", "set-secret", "acme", "counter_api_key", stdin=SECRET).returncode == 0
    result = cli("run", "counter.effects.apply", "--tenant", "acme", "--input", '{"label": "s", "fail": "secret"}',
                 "--json")
    assert result.returncode == 1 and json.loads(result.stdout)["error"]["code"] == "INTERNAL_ERROR"
    human = cli("run", "counter.effects.apply", "--tenant", "acme", "--input", '{"label": "s", "fail": "secret"}')
    listed = cli("invocations", "--tenant", "acme", "--json")
    for output in (result, human, listed):
        assert SECRET not in output.stdout + output.stderr
    assert "[REDACTED]" in result.stderr + human.stderr  # the scrubbed log lines


def test_invocations_lists_newest_first_and_filters_by_status(cli: Cli) -> None:
    run(cli, "counter.effects.apply", "--tenant", "acme", "--input", '{"label": "ok1"}')
    run(cli, "counter.effects.apply", "--tenant", "acme", "--input", '{"label": "bad", "fail": "permanent"}')
    data = json.loads(cli("invocations", "--tenant", "acme", "--json").stdout)
    assert [i["status"] for i in data["invocations"]] == ["FAILED", "SUCCEEDED"]
    failed = json.loads(cli("invocations", "--tenant", "acme", "--status", "failed", "--json").stdout)
    assert [i["input"]["label"] for i in failed["invocations"]] == ["bad"]
    assert json.loads(cli("invocations", "--tenant", "globex", "--json").stdout)["invocations"] == []


def test_embedded_enqueue_waits_in_process(cli: Cli) -> None:
    result = cli("run", "counter.effects.apply", "--tenant", "acme", "--input", '{"label": "q"}', "--enqueue",
                 "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["output"]["label"] == "q"
    assert "no MSPFLOW_BROKER_URL" in result.stderr


def test_worker_without_a_broker_says_what_to_set(cli: Cli) -> None:
    result = cli("worker")
    assert result.returncode == 1 and "MSPFLOW_BROKER_URL=redis://" in result.stderr
