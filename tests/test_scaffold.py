"""``mspflow new-plugin``: refuses what it must, and what it writes ships as it is.

The slow test is the plugin-author kit's claim, proved end to end: scaffold a plugin, build its wheel and
the core's, install both into a fresh virtual environment, run the plugin's own tests there, see its tile
in ``mspflow catalog`` and run its side-effectful action with ``mspflow run`` against its simulator — and
no file of this repository changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

from mspflow.scaffold import ScaffoldError, check_name, core_requirement, new_plugin
from mspflow.testing.cli import MSPFLOW

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["Acme", "acme-rmm", "1acme", "a", "acme__rmm", "acme_", "class", "mspflow_acme",
                                  "mspflow-acme", "transform", "acmé", "a" * 41, "acme rmm", ""])
def test_a_name_that_makes_no_valid_distribution_is_refused(name: str) -> None:
    with pytest.raises(ScaffoldError):
        check_name(name)


def test_the_cli_refuses_an_existing_directory_and_a_bad_name(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")} | {"MSPFLOW_HOME": str(tmp_path)}
    for args, says in ((["acme", "--dir", str(taken)], "already exists"), (["Acme-RMM"], "not a valid plugin name"),
                       (["mspflow-acme"], "not the distribution's")):
        done = subprocess.run([MSPFLOW, "new-plugin", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 1 and says in done.stderr, done.stderr
    assert list(taken.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_the_scaffold_declares_one_entry_point_and_the_core_range(tmp_path: Path) -> None:
    written = new_plugin("acme_rmm", tmp_path / "p")
    assert sorted(str(p.relative_to(tmp_path / "p")) for p in written) == [
        "README.md", "mspflow_acme_rmm/__init__.py", "mspflow_acme_rmm/sim.py", "pyproject.toml",
        "tests/test_actions.py", "tests/test_contract.py"]
    project = tomllib.loads((tmp_path / "p" / "pyproject.toml").read_text())["project"]
    assert project["name"] == "mspflow-acme-rmm"
    assert project["entry-points"] == {"mspflow": {"acme_rmm": "mspflow_acme_rmm"}}
    assert project["dependencies"] == [core_requirement()]
    contract = (tmp_path / "p" / "tests" / "test_contract.py").read_text()
    assert "class TestContract(PluginContract):\n    module = acme_rmm\n" in contract
    for source in written:
        if source.suffix == ".py":
            compile(source.read_text(), str(source), "exec")
    with pytest.raises(ScaffoldError, match="already exists"):
        new_plugin("acme_rmm", tmp_path / "p")


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done  # type: ignore[no-any-return]


def _tree(path: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_a_scaffolded_plugin_ships_in_its_own_distribution(tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("kit")
    core_before = _tree(ROOT / "core")
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("MSPFLOW_", "VIRTUAL_ENV", "PYTHON")) and k != "PIP_REQUIRE_VIRTUALENV"}
    clean["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    # 1. scaffold, outside this repository; build both wheels
    _run([MSPFLOW, "new-plugin", "acme", "--dir", str(work / "mspflow-acme")], cwd=work, env=clean)
    wheels = work / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)], env=clean)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(work / "mspflow-acme")],
         env=clean)
    core_wheel = next(wheels.glob("mspflow-*.whl"))
    acme_wheel = next(wheels.glob("mspflow_acme-*.whl"))

    # 2. a fresh virtual environment with the two wheels (and what they need from the usual index)
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=clean)
    bin_ = venv / "bin"
    _run([str(bin_ / "python"), "-m", "pip", "install", "-q", str(core_wheel), f"{acme_wheel}[test]"], env=clean)

    # 3. the scaffold's own tests, there, against the installed wheel (pytest does not put the cwd on sys.path)
    tests = _run([str(bin_ / "pytest"), "-q", "-p", "no:cacheprovider", "tests"], cwd=work / "mspflow-acme",
                 env=clean | {"MSPFLOW_STRICT_PLUGINS": "1"})
    assert " passed" in tests.stdout and "failed" not in tests.stdout, tests.stdout
    where = _run([str(bin_ / "python"), "-c", "import mspflow_acme; print(mspflow_acme.__file__)"], cwd=work, env=clean)
    assert str(venv) in where.stdout

    # 4. the operator's view: its tile in the catalog, its side-effectful action run against its simulator
    env = clean | {"MSPFLOW_HOME": str(work / "home"), "MSPFLOW_ALLOW_HTTP_VENDOR_URLS": "1", "COLUMNS": "200"}
    cli = str(bin_ / "mspflow")
    server = subprocess.Popen([cli, "sim", "serve", "acme"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        assert "listening on http://" in line, line
        url = line.rsplit(" ", 1)[-1].strip()
        _run([cli, "tenant", "connect", "acme-corp", "acme", "--instance-url", url], env=env)
        _run([cli, "tenant", "set-secret", "acme-corp", "acme_api_key"], env=env, input="acme-sandbox-key-0123456789")
        catalog = json.loads(_run([cli, "catalog", "--tenant", "acme-corp", "--json"], env=env).stdout)
        tile = next(r for r in catalog["records"] if r["group_key"] == "app:acme")
        assert tile["available"] is True
        assert {a["id"] for a in tile["actions"]} == {"acme.devices.get", "acme.devices.reboot"}
        call = ["run", "acme.devices.reboot", "--tenant", "acme-corp", "--input", '{"device_id": "1041"}',
                "--run-id", "run-1", "--step-path", "steps.1", "--json"]
        first = json.loads(_run([cli, *call], env=env).stdout)
        again = json.loads(_run([cli, *call], env=env).stdout)
        assert first["ok"] and first["output"] == {"device_id": "1041", "reboot_requested": True}, first
        assert again["ok"] and again["replayed"], again
        with urllib.request.urlopen(f"{url}/_sim/requests", timeout=10) as answer:
            sent = json.loads(answer.read())
        assert sent == [{"method": "POST", "path": "/v1/devices/1041/reboot"}]
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert _tree(ROOT / "core") == core_before, "a file of the core changed"
