"""``mspflow catalog --tenant`` answers from the registry snapshot without importing a plugin, and prints exactly
what loading the plugins prints; any change to the plugins, their selection or the file means a full load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert

from mspflow import snapshot
from mspflow.db.tables import tenant_addons
from mspflow.testing.cli import cli_env, run_cli
from tests.distributions import Distributions
from tests.test_plugins import ACME, BROKEN_IMPORT

REAL = "huntress,ninjaone,psa,tacticalrmm,teams"
PLUGIN_PACKAGES = ("mspflow_huntress", "mspflow_ninjaone", "mspflow_psa", "mspflow_tacticalrmm", "mspflow_teams")

# ACME that writes a line to $ACME_IMPORT_LOG each time a process imports it.
MARKED = '''
import os
if os.environ.get("ACME_IMPORT_LOG"):
    with open(os.environ["ACME_IMPORT_LOG"], "a") as log:
        log.write("imported\\n")
''' + ACME

GLOBEX = ACME.replace("acme", "globex").replace("Acme", "Globex")


# ``mspflow ARGS`` as the console script runs it, writing the modules the process ended with to $MODULES_LOG.
# (Not ``-X importtime``: it does not see ``importlib.import_module``, which is how entry points load.)
WRAPPER = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_LOG"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["mspflow", *sys.argv[1:]]
from mspflow.cli import main
main()
"""


def importing(env: dict[str, str], *args: str, ok: bool = True) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``mspflow ARGS``: the result and every module the process imported."""
    log = Path(env["MSPFLOW_HOME"]).parent / "modules.json"
    result = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True,
                            env=env | {"MODULES_LOG": str(log)}, timeout=60, check=False)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    modules = set(json.loads(log.read_text()))
    log.unlink()
    return result, modules


def registry_file(env: dict[str, str]) -> Path:
    return Path(env["MSPFLOW_HOME"]) / "cache" / "registry.json"


# -- the snapshot path prints what the full load prints, and imports no plugin --------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> dict[str, str]:
    """Tenant acme: NinjaOne active, Tactical RMM inactive, the Teams add-on without an install, Huntress
    never connected; the real plugins of this repository installed."""
    env = cli_env(tmp_path / "home", plugin=REAL)
    run_cli(env, "tenant", "connect", "acme", "ninjaone")
    run_cli(env, "tenant", "connect", "acme", "tacticalrmm")
    run_cli(env, "tenant", "disconnect", "acme", "tacticalrmm")
    engine = create_engine(f"sqlite:///{tmp_path / 'home' / 'mspflow.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(insert(tenant_addons).values(tenant="acme", addon_key="teams", expires_at=None))
    engine.dispose()
    registry_file(env).unlink(missing_ok=True)
    return env


@pytest.mark.parametrize("args", [("--json",), (), ("--json", "--palette"), ("--palette",)],
                         ids=["json", "table", "json-palette", "table-palette"])
def test_the_snapshot_prints_byte_for_byte_what_loading_the_plugins_prints(mixed: dict[str, str],
                                                                           args: tuple[str, ...]) -> None:
    full, loaded = importing(mixed, "catalog", "--tenant", "acme", *args)
    assert set(PLUGIN_PACKAGES) <= loaded and "mspflow.builtin" in loaded  # the plugins loaded...
    assert registry_file(mixed).exists()  # ...and their snapshot was written
    again, imported = importing(mixed, "catalog", "--tenant", "acme", *args)
    assert again.stdout == full.stdout and again.stderr == full.stderr == ""
    plugin_code = {m for m in imported if m.startswith(PLUGIN_PACKAGES) or m.startswith("mspflow.builtin")}
    assert plugin_code == set()  # answered without importing a plugin (nor the core's built-in actions)
    if "--json" in args and "--palette" not in args:
        data = json.loads(again.stdout)
        records = {r["group_key"]: (r["available"], r["unavailable_reason"]) for r in data["records"]}
        assert records["app:ninjaone"] == (True, None)
        assert records["app:tacticalrmm"] == (False, "inactive")
        assert records["app:teams"] == (False, "not_connected")
        assert records["app:huntress"] == (False, "not_connected")
        assert records["transform"] == (True, None)


def test_a_tenant_without_records_gets_the_same_note_from_the_snapshot(mixed: dict[str, str]) -> None:
    full = run_cli(mixed, "catalog", "--tenant", "nobody", "--json")
    again, imported = importing(mixed, "catalog", "--tenant", "nobody", "--json")
    assert "mspflow_ninjaone" not in imported
    assert (again.stdout, again.stderr) == (full.stdout, full.stderr)
    assert "no records" in again.stderr and "mspflow tenant connect nobody" in again.stderr
    assert [r["available"] for r in json.loads(again.stdout)["records"]].count(True) == 3  # the core groups


def test_availability_is_resolved_on_every_run_from_the_database(mixed: dict[str, str]) -> None:
    run_cli(mixed, "catalog", "--tenant", "acme")  # writes the snapshot
    run_cli(mixed, "tenant", "connect", "acme", "tacticalrmm")  # a full load; the snapshot stays fresh
    result, imported = importing(mixed, "catalog", "--tenant", "acme", "--json")
    assert "mspflow_tacticalrmm" not in imported
    trmm = next(r for r in json.loads(result.stdout)["records"] if r["group_key"] == "app:tacticalrmm")
    assert (trmm["available"], trmm["unavailable_reason"]) == (True, None)


# -- what makes the next catalog load the plugins ------------------------------------------------------


@pytest.fixture
def acme(tmp_path: Path, dists: Distributions) -> dict[str, str]:
    """mspflow-acme (marked: each import is one line of $ACME_IMPORT_LOG) installed and selected."""
    dists.install("mspflow-acme", "mspflow_acme", MARKED)
    dists.install("mspflow-globex", "mspflow_globex", GLOBEX)
    env = cli_env(tmp_path / "home", plugin="mspflow_acme")
    env["ACME_IMPORT_LOG"] = str(tmp_path / "acme-imports.log")
    run_cli(env, "tenant", "connect", "acme", "acme")
    return env


def imports(env: dict[str, str]) -> int:
    log = Path(env["ACME_IMPORT_LOG"])
    return len(log.read_text().splitlines()) if log.exists() else 0


def catalog(env: dict[str, str], *args: str) -> dict[str, tuple[bool, str | None]]:
    data = json.loads(run_cli(env, "catalog", "--tenant", "acme", "--json", *args).stdout)
    return {r["group_key"]: (r["available"], r["unavailable_reason"]) for r in data["records"]}


def labels(env: dict[str, str]) -> list[str]:
    data = json.loads(run_cli(env, "catalog", "--tenant", "acme", "--json").stdout)
    return [a["label"] for r in data["records"] for a in r["actions"]]


def test_a_touched_or_edited_plugin_file_means_a_full_load(acme: dict[str, str], dists: Distributions) -> None:
    assert "Reboot device" in labels(acme)
    before = imports(acme)
    assert "Reboot device" in labels(acme) and imports(acme) == before  # the snapshot
    source = dists.site / "mspflow_acme.py"
    mtime = source.stat().st_mtime_ns + 1_000_000_000
    os.utime(source, ns=(mtime, mtime))  # touched only
    assert "Reboot device" in labels(acme) and imports(acme) == before + 1
    source.write_text(source.read_text().replace("Reboot device", "Restart device"))
    os.utime(source, ns=(mtime + 1_000_000_000, mtime + 1_000_000_000))
    assert "Restart device" in labels(acme) and "Reboot device" not in labels(acme)
    assert imports(acme) == before + 2  # loaded once for the edit, then from the new snapshot


def test_another_plugin_selection_means_a_full_load(acme: dict[str, str]) -> None:
    assert "app:acme" in catalog(acme) and "app:globex" not in catalog(acme)
    both = acme | {"MSPFLOW_LOAD_PLUGINS": "mspflow_acme,mspflow_globex"}
    assert {"app:acme", "app:globex"} <= set(catalog(both))
    none = acme | {"MSPFLOW_LOAD_PLUGINS": ""}
    assert list(catalog(none)) == ["transform", "scheduling"]
    every = {k: v for k, v in acme.items() if k != "MSPFLOW_LOAD_PLUGINS"}  # unset: every installed plugin
    assert {"app:acme", "app:globex", "app:ninjaone"} <= set(catalog(every))
    assert catalog(acme) == {"transform": (True, None), "scheduling": (True, None), "app:acme": (True, None)}


def corruptions(valid: str) -> list[str]:
    data = json.loads(valid)
    foreign = json.loads(valid)
    foreign["modules"][-1]["resolver"] = {"class": "Popen", "fields": {"args": "true"}}
    missing = json.loads(valid)
    del missing["modules"][-1]["record"]["label"]
    return ["not json", "[1, 2]", valid[: len(valid) // 2], json.dumps(foreign), json.dumps(missing),
            json.dumps(data | {"modules": []})]


def test_a_corrupt_registry_file_means_a_full_load_and_is_rewritten(acme: dict[str, str]) -> None:
    expected = run_cli(acme, "catalog", "--tenant", "acme", "--json").stdout
    path = registry_file(acme)
    valid = path.read_text()
    for junk in corruptions(valid):
        path.write_text(junk)
        before = imports(acme)
        assert run_cli(acme, "catalog", "--tenant", "acme", "--json").stdout == expected
        assert imports(acme) == before + 1
        assert json.loads(path.read_text()) == json.loads(valid)  # rewritten


def test_an_unwritable_cache_directory_only_costs_the_full_load(acme: dict[str, str]) -> None:
    cache = Path(acme["MSPFLOW_HOME"]) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "registry.json").mkdir()  # in the way of the file
    assert catalog(acme)["app:acme"] == (True, None)
    assert catalog(acme)["app:acme"] == (True, None)


# -- resolvers that are code of their own always run ------------------------------------------------------

# mspflow-acme, its tile decided by a resolver that logs each call to $RESOLVER_LOG.
OWN_RESOLVER = '''
import os
from dataclasses import dataclass
from mspflow import Availability

@dataclass(frozen=True)
class Flag:
    key: str = "flag:beta"
    def __call__(self, session, tenant_id):
        with open(os.environ["RESOLVER_LOG"], "a") as log:
            log.write(tenant_id + "\\n")
        return Availability.no("flag_off")
''' + ACME.replace('availability=rmm_integration("acme")', "availability=Flag()")

SUBCLASSED_RESOLVER = '''
import os
from mspflow import rmm_integration

class Logged(type(rmm_integration("acme"))):
    def __call__(self, session, tenant_id):
        with open(os.environ["RESOLVER_LOG"], "a") as log:
            log.write(tenant_id + "\\n")
        return super().__call__(session, tenant_id)
''' + ACME.replace('availability=rmm_integration("acme")', 'availability=Logged("acme")')


@pytest.mark.parametrize("source", [OWN_RESOLVER, SUBCLASSED_RESOLVER], ids=["own-class", "core-subclass"])
def test_a_module_with_a_resolver_of_its_own_never_gets_a_snapshot(tmp_path: Path, dists: Distributions,
                                                                     source: str) -> None:
    dists.install("mspflow-acme", "mspflow_acme", source)
    env = cli_env(tmp_path / "home", plugin="mspflow_acme") | {"RESOLVER_LOG": str(tmp_path / "resolver.log")}
    for run in range(1, 4):
        result, imported = importing(env, "catalog", "--tenant", "acme", "--json")
        assert "mspflow_acme" in imported and "error" not in result.stderr, result.stderr
        acme = json.loads(result.stdout)["records"][-1]
        assert (acme["group_key"], acme["available"]) == ("app:acme", False)
        assert (tmp_path / "resolver.log").read_text().splitlines() == ["acme"] * run
    assert not registry_file(env).exists()


# -- load errors are never hidden by a snapshot ---------------------------------------------------------


def test_strict_mode_still_fails_on_a_broken_plugin_after_a_snapshot_existed(acme: dict[str, str],
                                                                            dists: Distributions) -> None:
    strict = acme | {"MSPFLOW_STRICT_PLUGINS": "1"}
    assert catalog(strict)["app:acme"] == (True, None)
    written = registry_file(acme).read_text()
    dists.install("mspflow-broken", "mspflow_broken", BROKEN_IMPORT)  # a new plugin that cannot import
    with_broken = strict | {"MSPFLOW_LOAD_PLUGINS": "mspflow_acme,mspflow_broken"}
    failed = run_cli(with_broken, "catalog", "--tenant", "acme", "--json", ok=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["error"]["code"] == "PLUGIN_LOAD_ERROR"
    assert "mspflow-broken" in failed.stderr

    source = dists.site / "mspflow_acme.py"  # the snapshotted plugin itself breaks
    source.write_text(BROKEN_IMPORT)
    mtime = source.stat().st_mtime_ns + 1_000_000_000
    os.utime(source, ns=(mtime, mtime))
    for _ in range(2):  # a lenient run in between writes no snapshot with a load error
        failed = run_cli(strict, "catalog", "--tenant", "acme", "--json", ok=False)
        assert failed.returncode == 1 and json.loads(failed.stdout)["error"]["code"] == "PLUGIN_LOAD_ERROR"
        assert "mspflow-acme" in failed.stderr and "vendor SDK missing" in failed.stderr
        lenient = run_cli(acme, "catalog", "--tenant", "acme", "--json")
        assert "1 plugin(s) failed to load" in lenient.stderr
        assert "app:acme" not in [r["group_key"] for r in json.loads(lenient.stdout)["records"]]
    assert registry_file(acme).read_text() == written


# -- the fingerprint ----------------------------------------------------------------------------------------


def test_the_fingerprint_imports_no_plugin_and_follows_the_selection(dists: Distributions,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    first = snapshot.fingerprint()
    assert first is not None and "mspflow_acme" not in sys.modules
    assert snapshot.fingerprint() == first
    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "mspflow_acme,")  # the same plugins, another setting
    assert snapshot.fingerprint() not in (first, None)
    monkeypatch.delenv("MSPFLOW_LOAD_PLUGINS")
    everything = snapshot.fingerprint()
    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "")
    assert len({first, everything, snapshot.fingerprint()}) == 3


def test_an_entry_point_whose_code_cannot_be_found_gets_no_snapshot(tmp_path: Path, dists: Distributions) -> None:
    dists.install_many("mspflow-ghost", {}, {"ghost": "mspflow_ghost_not_installed"})
    assert snapshot.fingerprint() is None
    env = cli_env(tmp_path / "home", plugin="ghost")
    for _ in range(2):
        result = run_cli(env, "catalog", "--tenant", "acme", "--json")
        assert "1 plugin(s) failed to load" in result.stderr
    assert not registry_file(env).exists()


SPLIT_MODELS = '''
from pydantic import BaseModel

class RebootInput(BaseModel):
    device_id: str
'''


def test_models_from_a_package_that_is_no_entry_points_get_no_snapshot(tmp_path: Path, dists: Distributions) -> None:
    plugin = ACME.replace("class RebootInput(BaseModel):\n    device_id: str\n",
                          "from acme_models import RebootInput\n")
    dists.install_many("mspflow-acme", {"mspflow_acme": plugin, "acme_models": SPLIT_MODELS},
                       {"mspflow_acme": "mspflow_acme"})
    env = cli_env(tmp_path / "home", plugin="mspflow_acme")
    schema = json.loads(run_cli(env, "catalog", "--tenant", "acme", "--json").stdout)["records"][-1]["actions"][0]
    assert schema["input_schema"]["properties"]["device_id"]["type"] == "string"
    assert not registry_file(env).exists()  # an edit of acme_models would not change the fingerprint
    models = dists.site / "acme_models.py"
    models.write_text(SPLIT_MODELS.replace("device_id: str", "device_id: int"))
    mtime = models.stat().st_mtime_ns + 1_000_000_000
    os.utime(models, ns=(mtime, mtime))
    schema = json.loads(run_cli(env, "catalog", "--tenant", "acme", "--json").stdout)["records"][-1]["actions"][0]
    assert schema["input_schema"]["properties"]["device_id"]["type"] == "integer"
