"""`mspflow workflows …` and `mspflow runs …` as an operator uses them (embedded default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.distributions import Distributions
from tests.test_cli import Cli, counter_cli

FLOW = """\
# a workflow file, as an operator writes it
name: nightly
trigger: manual
steps:
  - path: mark
    action_id: counter.effects.apply
    input: {label: "{{ trigger.label }}"}
  - path: flaky
    action_id: counter.effects.apply
    if: {eq: [{$ref: trigger.flaky}, true]}
    retries: 0
    input: {label: "{{ trigger.label }}-flaky", fail: transient}
  - path: echo
    action_id: transform.text.render
    input: {template: "done $label", values: {label: {$ref: steps.mark.output.label}}}
"""


@pytest.fixture
def cli(tmp_path: Path, dists: Distributions) -> Cli:
    (tmp_path / "nightly.yaml").write_text(FLOW)
    return counter_cli(tmp_path / "home", dists)


def test_publish_list_show_disable(cli: Cli, tmp_path: Path) -> None:
    file = str(tmp_path / "nightly.yaml")
    first = cli("workflows", "publish", file, "--tenant", "acme")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "nightly: published version 1 for acme (trigger: manual)"
    assert "unchanged, already published as version 1" in cli("workflows", "publish", file, "--tenant", "acme").stdout
    other = cli("workflows", "publish", file, "--tenant", "globex")  # globex has no counter integration
    assert other.returncode == 0 and "warning: step mark: Counter is not connected" in other.stderr
    listed = cli.json("workflows", "list", "--tenant", "acme")
    assert [(w["name"], w["version"], w["enabled"]) for w in listed["workflows"]] == [("nightly", 1, True)]  # type: ignore[index]
    shown = cli("workflows", "show", "nightly", "--tenant", "acme")
    assert "mark: counter.effects.apply" in shown.stdout and "flaky: counter.effects.apply if {\"eq\"" in shown.stdout
    assert cli("workflows", "disable", "nightly", "--tenant", "acme").returncode == 0
    refused = cli("workflows", "run", "nightly", "--tenant", "acme")
    assert refused.returncode == 1 and "disabled" in refused.stderr


def test_publish_refuses_with_each_problem_listed(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "steps": [
        {"path": "a", "action_id": "counter.effects.aply"},
        {"path": "b", "action_id": "counter.effects.apply", "input": {"label": 5}}]}))
    result = cli("workflows", "publish", str(bad), "--tenant", "acme", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["error"]["code"] == "VALIDATION_ERROR"
    assert [(e["step"], e["code"]) for e in data["error"]["details"]["errors"]] == [
        ("a", "NOT_FOUND"), ("b", "VALIDATION_ERROR")]
    assert "step a: NOT_FOUND" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    unreadable = cli("workflows", "publish", str(broken), "--tenant", "acme")
    assert unreadable.returncode == 1 and "is not valid YAML" in unreadable.stderr
    assert "Traceback" not in unreadable.stderr


def test_run_retry_and_history(cli: Cli, tmp_path: Path) -> None:
    assert cli("workflows", "publish", str(tmp_path / "nightly.yaml"), "--tenant", "acme").returncode == 0
    ok = cli("workflows", "run", "nightly", "--tenant", "acme", "--payload", '{"label": "n1"}', "--wait", "--json")
    assert ok.returncode == 0, ok.stderr
    run = json.loads(ok.stdout)
    assert run["status"] == "SUCCEEDED"
    assert [(s["path"], s["status"]) for s in run["steps"]] == [
        ("mark", "SUCCEEDED"), ("flaky", "SKIPPED"), ("echo", "SUCCEEDED")]
    failed = cli("workflows", "run", "nightly", "--tenant", "acme", "--payload", '{"label": "n2", "flaky": true}')
    assert failed.returncode == 1
    assert "flaky counter.effects.apply: FAILED TRANSIENT_FAILURE: vendor answered 503" in failed.stdout
    assert "error: step flaky (counter.effects.apply) failed: TRANSIENT_FAILURE" in failed.stderr
    history = cli.json("runs", "list", "--tenant", "acme", "--status", "failed")
    [failed_run] = history["runs"]  # type: ignore[index]
    assert failed_run["error"]["step"] == "flaky"
    healed = cli("runs", "retry", failed_run["run_id"], "--tenant", "acme", "--wait")
    assert healed.returncode == 0, healed.stderr
    assert "mark counter.effects.apply: SUCCEEDED (replayed" in " ".join(healed.stdout.split())
    shown = cli.json("runs", "show", failed_run["run_id"], "--tenant", "acme")
    assert shown["status"] == "SUCCEEDED" and shown["steps"][2]["output"] == {"text": "done n2"}  # type: ignore[index]
    assert cli("runs", "show", failed_run["run_id"], "--tenant", "globex").returncode == 1
    assert len(cli.json("runs", "list", "--tenant", "acme")["runs"]) == 2  # type: ignore[index]
    bad_payload = cli("workflows", "run", "nightly", "--tenant", "acme", "--payload", "[1]")
    assert bad_payload.returncode == 1 and "--payload must be a JSON object" in bad_payload.stderr
