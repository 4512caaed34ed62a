"""The contract suite (mspflow.testing.PluginContract), run on a deliberately broken plugin, names each defect.

``tests/plugin_sources/mspflow_broken`` is installed as a throwaway distribution (a package and a
``.dist-info`` on ``PYTHONPATH``) and its one-line contract test runs in a pytest subprocess, exactly as
in the plugin's own repository; the JUnit report says which checks failed and why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mspflow.scaffold import core_requirement
from mspflow.testing.strategies import broken_inputs, unbounded_strings, valid_inputs

BROKEN = Path(__file__).parent / "plugin_sources" / "mspflow_broken"


def install(site: Path, package: Path, dist: str, entry_point: str) -> None:
    """What pip leaves behind: the package on ``site`` and a ``.dist-info`` with its entry point."""
    shutil.copytree(package, site / package.name)
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n"
                                   f"Requires-Dist: {core_requirement()}\n")
    (info / "entry_points.txt").write_text(f"[mspflow]\n{entry_point} = {package.name}\n")
    (info / "RECORD").write_text("")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """test id -> failure message (None: passed) of the broken plugin's contract run."""
    root = tmp_path_factory.mktemp("broken")
    install(root / "site", BROKEN, "mspflow-broken", "broken")
    (root / "tests").mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "tests" / "test_contract.py").write_text(
        "from mspflow_broken import broken\nfrom mspflow.testing import PluginContract\n\n\n"
        "class TestContract(PluginContract):\n    module = broken\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    env |= {"PYTHONPATH": str(root / "site"), "MSPFLOW_LOAD_PLUGINS": "broken", "MSPFLOW_STRICT_PLUGINS": "1",
            "MSPFLOW_HYPOTHESIS_PROFILE": "fast"}
    junit = root / "junit.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                           "tests"], cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert junit.is_file(), done.stdout + done.stderr
    outcome: dict[str, str | None] = {}
    for case in ET.parse(junit).iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        assert error is None, error.get("message")
        outcome[case.get("name", "")] = None if failure is None else (failure.get("message") or "")
    return outcome


def test_a_handler_calling_the_vendor_before_validating_is_named(report: dict[str, str | None]) -> None:
    message = report["test_broken_input_is_refused_before_the_vendor[broken.devices.reboot]"]
    assert message is not None and "reached the handler" in message and "request(s)" in message, message
    assert report["test_broken_input_is_refused_before_the_vendor[broken.devices.get]"] is None


def test_a_plugin_logging_an_echoed_secret_is_named(report: dict[str, str | None]) -> None:
    message = report["test_echoed_secrets_never_leak[broken.devices.get]"]
    assert message is not None and "appears in the logs" in message and "Broken answered" in message, message
    assert "broken-api-key-0123456789" not in message  # the report shows where, not the secret
    assert report["test_echoed_secrets_never_leak[broken.devices.reboot]"] is None


def test_a_plugin_importing_mspflow_db_is_named(report: dict[str, str | None]) -> None:
    message = report["test_sources_follow_the_import_rule"]
    assert message is not None and "imports mspflow.db.models" in message, message


def test_everything_else_about_the_broken_plugin_passes(report: dict[str, str | None]) -> None:
    failed = {name for name, message in report.items() if message is not None}
    assert failed == {"test_broken_input_is_refused_before_the_vendor[broken.devices.reboot]",
                      "test_echoed_secrets_never_leak[broken.devices.get]", "test_sources_follow_the_import_rule"}
    assert len(report) >= 20


SCHEMA = {"type": "object", "required": ["name"], "additionalProperties": False,
          "properties": {"name": {"type": "string", "maxLength": 8}, "count": {"type": "integer", "minimum": 1},
                         "tags": {"type": "array", "items": {"type": "string"}},
                         "day": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                         "note": {"type": "string", "pattern": "^a.*$"},
                         "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}}}


def test_broken_inputs_break_the_schema_and_valid_inputs_keep_it() -> None:
    from hypothesis import given, settings
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(SCHEMA)
    kinds: set[str] = set()

    # derandomize: the kinds seen must not depend on the run's luck (one run under load missed one)
    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(broken_inputs(SCHEMA), valid_inputs(SCHEMA))
    def check(broken: tuple[str, object], valid: object) -> None:
        kinds.add(broken[0].split(" '")[0].split(" at")[0])
        assert not validator.is_valid(broken[1]), broken
        assert validator.is_valid(valid), valid

    check()
    assert kinds >= {"non-object JSON", "missing field", "wrong type", "null", "1 MB string", "extra field"}, kinds
    assert unbounded_strings(SCHEMA) == ["note", "tags[]"]
