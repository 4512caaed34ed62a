"""What must never happen: ids steering requests, repeated resolutions, and vendor plumbing (retries,
throttles, 429 handling, scrubbing) creeping into the plugin."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from mspflow.testing import check_imports

PACKAGE = Path(__file__).parent.parent / "mspflow_huntress"
HOSTILE = ["../account", "1/resolution", "..", "1?x=1", "%2e%2e", "1#", " 1 2", "-1", "0", "1e3", "", "90001/../1"]


def test_the_plugin_leaves_vendor_plumbing_to_the_core() -> None:
    check_imports(PACKAGE)
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    names = {n.attr if isinstance(n, ast.Attribute) else n.id for n in ast.walk(tree)
             if isinstance(n, ast.Attribute | ast.Name)}
    assert not names & {"sleep", "monotonic", "retry_after", "throttle"}  # waiting is the core's job
    assert 429 not in {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_ids_are_integers_so_nothing_else_reaches_a_path(hunt: Any, hostile: str) -> None:
    for action, field in (("incidents.get", "incident_report_id"), ("incidents.resolve", "incident_report_id"),
                          ("agents.get", "agent_id"), ("incidents.find", "agent_id")):
        assert hunt.fail(action, {field: hostile}).code == "VALIDATION_ERROR", (action, hostile)
    assert hunt.sim.requests == [] and hunt.sim.resolutions == {}
