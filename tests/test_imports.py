"""The plugin import rule (mspflow.testing.check_imports) holds for every plugin in plugins/, and bites."""

from __future__ import annotations

from pathlib import Path

import pytest

from mspflow.testing import check_imports, import_offences

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(p for p in ROOT.glob("plugins/*/mspflow_*") if p.is_dir())


def test_there_are_plugins_to_check() -> None:
    assert {p.name for p in PACKAGES} >= {"mspflow_ninjaone", "mspflow_tacticalrmm"}


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_plugin_uses_only_the_public_api(package: Path) -> None:
    check_imports(package)


def _plant(tmp_path: Path, body: str, name: str = "__init__.py") -> Path:
    package = tmp_path / "mspflow_acme"
    package.mkdir(exist_ok=True)
    (package / name).write_text(f'"""Acme."""\n{body}\n')
    return package


@pytest.mark.parametrize("line", [
    "from mspflow.db.models import Asset", "import mspflow.db", "from mspflow import db",
    "import sqlalchemy", "from httpx import Client", "import mspflow\nx = mspflow.runtime",
    "from mspflow.testing import check_imports", "from mspflow.vendor import build_path",
])
def test_a_planted_plugin_reaching_past_the_api_is_named(tmp_path: Path, line: str) -> None:
    package = _plant(tmp_path, line)
    with pytest.raises(AssertionError, match=r"mspflow_acme/__init__\.py:\d+: imports "):
        check_imports(package)


def test_what_a_plugin_and_its_simulator_may_import(tmp_path: Path) -> None:
    package = _plant(tmp_path, "from __future__ import annotations\nimport json\nfrom datetime import UTC\n"
                     "from pydantic import BaseModel, Field\nfrom mspflow import ActionContext, Module, Vendor, auth\n"
                     "from . import sim\nfrom mspflow_acme.sim import AcmeSimulator")
    _plant(tmp_path, "import httpx\nfrom mspflow.testing.sim import Simulator\nfrom mspflow import testing",
           name="sim.py")
    assert import_offences(package) == []
    _plant(tmp_path, "import httpx", name="client.py")
    assert [(o.file.name, o.module) for o in import_offences(package)] == [("client.py", "httpx")]
