"""Plugin discovery through real entry points, load-error isolation, strict mode and selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from mspflow.plugins import PluginLoadFailure, Plugins, discover
from tests.distributions import Distributions

ACME = '''
from typing import Any
from pydantic import BaseModel
from mspflow import Module, hookimpl, rmm_integration

acme = Module("app:acme", label="Acme RMM", icon="acme", availability=rmm_integration("acme"),
              description="Reboot Acme devices.")

class RebootInput(BaseModel):
    device_id: str

class RebootOutput(BaseModel):
    reboot_requested: bool

@acme.action("acme.devices.reboot", label="Reboot device", side_effectful=True)
def reboot(params: RebootInput, ctx: Any) -> RebootOutput:
    """Reboot one device."""
    return RebootOutput(reboot_requested=True)

@hookimpl
def register_modules(register):
    register(acme)
'''

BROKEN_IMPORT = "raise ImportError('vendor SDK missing')\n"

BROKEN_REGISTER = '''
from mspflow import hookimpl

@hookimpl
def register_modules(register):
    raise RuntimeError("cannot read my config")
'''


def test_installed_plugin_is_found_through_its_entry_point(dists: Distributions) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME, version="2.3.0")
    assert "mspflow_acme" in [ep.name for ep in discover()]
    loaded = Plugins(strict=True)
    assert "app:acme" in loaded.registry.modules
    assert loaded.registry.owner_of("action", "acme.devices.reboot@1") == "mspflow-acme"
    info = next(p for p in loaded.loaded if p.name == "mspflow_acme")
    assert (info.distribution, info.version, info.modules, info.action_count) == \
        ("mspflow-acme", "2.3.0", ["app:acme"], 1)


def test_plugin_that_raises_on_import_is_reported_and_the_rest_load(dists: Distributions) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install("mspflow-broken", "mspflow_broken", BROKEN_IMPORT, version="0.1.0")
    loaded = Plugins(strict=False)
    assert "app:acme" in loaded.registry.modules and "transform" in loaded.registry.modules
    [error] = loaded.errors
    assert (error.distribution, error.version) == ("mspflow-broken", "0.1.0")
    assert error.entry_point == "mspflow_broken = mspflow_broken"
    assert error.error == "ImportError: vendor SDK missing"


def test_plugin_that_fails_to_register_is_removed_whole(dists: Distributions) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install("mspflow-bad", "mspflow_bad", BROKEN_REGISTER)
    loaded = Plugins(strict=False)
    assert [e.distribution for e in loaded.errors] == ["mspflow-bad"]
    assert "RuntimeError: cannot read my config" in loaded.errors[0].error
    assert "mspflow_bad" not in [p.name for p in loaded.loaded]
    assert "app:acme" in loaded.registry.modules


ROGUE_ACTION = '''
from typing import Any
from pydantic import BaseModel
from mspflow import action, hookimpl

class In(BaseModel):
    device_id: str

class Out(BaseModel):
    reboot_requested: bool

def evil(params: In, ctx: Any) -> Out:
    """Pretend to reboot."""
    return Out(reboot_requested=True)

@hookimpl
def register_actions(register):
    register(action("acme.devices.ACTION", label="Reboot", handler=evil, side_effectful=True))
'''

ROGUE_GROUP = ACME.replace("acme.devices.reboot", "rogue.devices.reboot")  # module app:acme, own namespace
ROGUE_CORE = ROGUE_ACTION.replace("acme.devices.ACTION", "transform.text.render")
ROGUE_CORE_GROUP = ACME.replace('"app:acme"', '"scheduling"').replace("acme.devices", "rogue.devices")
ROGUE_CORE_RESOLVER = '''
from mspflow import hookimpl

@hookimpl
def register_availability(register):
    register("core", lambda session, tenant_id: False)
'''


def _refused_both(loaded: Plugins, *dists: str) -> None:
    assert sorted(e.distribution for e in loaded.errors) == sorted(dists)
    for error in loaded.errors:  # one error, naming both distributions
        assert all(d in error.error for d in dists), error.error
        assert "refused" in error.error
    assert not any(k.startswith("acme.") for k in loaded.registry.actions)
    assert "app:acme" not in loaded.registry.modules
    assert {"transform", "scheduling"} <= set(loaded.registry.modules)  # the rest keeps working


@pytest.mark.parametrize("rogue_ep", ["aaa_rogue", "zzz_rogue"])  # loads before / after mspflow_acme
@pytest.mark.parametrize(("source", "what"), [
    (ROGUE_ACTION.replace("ACTION", "reboot"),
     "action-id namespace 'acme' (mspflow-acme: acme.devices.reboot; mspflow-rogue: acme.devices.reboot)"),
    (ROGUE_ACTION.replace("ACTION", "wipe"), "action-id namespace 'acme'"),
    (ROGUE_GROUP, "group 'app:acme'"),
])
def test_two_distributions_claiming_one_namespace_or_group_are_both_refused_in_either_order(
        dists: Distributions, rogue_ep: str, source: str, what: str) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install("mspflow-rogue", "mspflow_rogue", source, entry_point=rogue_ep)
    loaded = Plugins(strict=False)
    _refused_both(loaded, "mspflow-acme", "mspflow-rogue")
    assert what in loaded.errors[0].error
    assert not any(k.startswith("rogue.") for k in loaded.registry.actions)
    with pytest.raises(PluginLoadFailure, match=r"mspflow-rogue"):
        Plugins(strict=True)


@pytest.mark.parametrize("rogue_dist", ["mspflow-aaa", "mspflow-zzz"])
def test_two_distributions_with_one_entry_point_name_are_both_refused_unimported(
        dists: Distributions, rogue_dist: str) -> None:
    import sys

    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install(rogue_dist, "mspflow_rogue", "raise SystemExit('must never be imported')\n",
                  entry_point="mspflow_acme")
    loaded = Plugins(strict=False)
    _refused_both(loaded, "mspflow-acme", rogue_dist)
    assert "entry point 'mspflow_acme'" in loaded.errors[0].error
    assert "mspflow_rogue" not in sys.modules and "mspflow_acme" not in sys.modules


@pytest.mark.parametrize(("source", "what"), [
    (ROGUE_CORE, "action-id namespace 'transform' belongs to the mspflow core"),
    (ROGUE_CORE_GROUP, "group 'scheduling' belongs to the mspflow core"),
    (ROGUE_CORE_RESOLVER, "resolver 'core' belongs to the mspflow core"),
])
def test_the_core_keeps_its_namespaces(dists: Distributions, source: str, what: str) -> None:
    from mspflow.builtin.transform import transform

    dists.install("mspflow-rogue", "mspflow_rogue", source)
    loaded = Plugins(strict=False)
    [error] = loaded.errors
    assert error.distribution == "mspflow-rogue" and what in error.error
    assert loaded.registry.modules["transform"] is transform
    assert loaded.registry.owner_of("action", "transform.text.render@1") == "mspflow"
    assert loaded.registry.owner_of("module", "scheduling") == "mspflow"
    assert loaded.registry.owner_of("resolver", "core") == "mspflow"


SECOND_ENTRY_POINT_FAILS = '''
from mspflow import hookimpl

@hookimpl
def register_modules(register):
    raise RuntimeError("second entry point is broken")
'''


def test_entry_points_of_one_distribution_fail_alone_and_may_register_the_same_thing(
        dists: Distributions) -> None:
    dists.install_many("mspflow-acme", {"mspflow_acme": ACME, "mspflow_acme_bad": SECOND_ENTRY_POINT_FAILS,
                                        "mspflow_acme_again": "from mspflow_acme import register_modules\n"},
                       {"acme": "mspflow_acme", "acme_bad": "mspflow_acme_bad", "acme_again": "mspflow_acme_again"})
    loaded = Plugins(strict=False)
    [error] = loaded.errors
    assert error.entry_point == "acme_bad = mspflow_acme_bad" and "second entry point" in error.error
    assert loaded.registry.owner_of("module", "app:acme") == "mspflow-acme"  # not removed with acme_bad
    assert "acme.devices.reboot@1" in loaded.registry.actions
    assert [p.name for p in loaded.loaded] == ["mspflow.builtin", "acme", "acme_again"]


INCOMPATIBLE_MARKER = "raise SystemExit('code built for another plugin API must not be imported')\n"


@pytest.mark.parametrize(("requires", "message"), [
    ("mspflow>=0.1,<0.2", "mspflow-old is built for mspflow<0.2,>=0.1, not this mspflow"),
    ("mspflow>=1.0", "mspflow-old is built for mspflow>=1.0"),
    (None, "mspflow-old declares no supported mspflow range"),
    ("mspflow", "mspflow-old declares no supported mspflow range"),
])
def test_a_plugin_built_for_another_api_version_is_refused_before_import(
        dists: Distributions, monkeypatch: pytest.MonkeyPatch, requires: str | None, message: str) -> None:
    import sys

    from mspflow.plugins import supported_range

    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install("mspflow-old", "mspflow_old", INCOMPATIBLE_MARKER, version="0.1.0", requires=requires)
    loaded = Plugins(strict=False)
    [error] = loaded.errors
    assert error.error.startswith("IncompatiblePlugin: " + message), error.error
    assert f"mspflow{supported_range()}" in error.error  # says what to declare instead
    assert "mspflow_old" not in sys.modules and "app:acme" in loaded.registry.modules
    monkeypatch.setenv("MSPFLOW_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadFailure, match=r"mspflow-old"):
        Plugins()


def test_a_compatible_range_with_markers_and_extras_loads(dists: Distributions) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME,
                  requires='mspflow[redis]>=0.2,<0.3; python_version >= "3.11"')
    assert "app:acme" in Plugins(strict=True).registry.modules


def test_the_plugin_api_version_is_the_core_version_and_the_shipped_plugins_declare_it() -> None:
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    import mspflow
    from mspflow.plugins import PLUGIN_API_VERSION, supported_range

    assert mspflow.PLUGIN_API_VERSION == PLUGIN_API_VERSION
    assert tuple(int(p) for p in version("mspflow").split(".")[:2]) == PLUGIN_API_VERSION
    assert supported_range() == ">=0.2,<0.3"
    for pyproject in sorted(Path(__file__).parents[1].glob("plugins/*/pyproject.toml")):
        deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
        [core] = [Requirement(d) for d in deps if Requirement(d).name == "mspflow"]
        assert core.specifier.contains(version("mspflow")), pyproject
        assert not core.specifier.contains(f"{PLUGIN_API_VERSION[0]}.{PLUGIN_API_VERSION[1] + 1}.0"), pyproject


def test_strict_mode_turns_load_errors_into_a_failure(dists: Distributions,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dists.install("mspflow-broken", "mspflow_broken", BROKEN_IMPORT)
    monkeypatch.setenv("MSPFLOW_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadFailure, match=r"mspflow-broken.*vendor SDK missing"):
        Plugins()
    monkeypatch.setenv("MSPFLOW_STRICT_PLUGINS", "0")
    assert len(Plugins().errors) == 1


@pytest.mark.parametrize(("only", "expected"), [
    (None, {"app:acme", "app:zeta"}),
    ("mspflow_acme", {"app:acme"}),
    (" mspflow_zeta , nope", {"app:zeta"}),
    ("", set()),
])
def test_load_plugins_selects_entry_points(dists: Distributions, monkeypatch: pytest.MonkeyPatch,
                                           only: str | None, expected: set[str]) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install("mspflow-zeta", "mspflow_zeta", ACME.replace("acme", "zeta"))
    if only is None:
        monkeypatch.delenv("MSPFLOW_LOAD_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", only)
    modules = set(Plugins(strict=True).registry.modules)
    assert modules & {"app:acme", "app:zeta"} == expected
    assert {"transform", "scheduling"} <= modules  # built-ins always load


def test_entry_points_are_scanned_once_per_process(dists: Distributions,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import mspflow.plugins

    dists.install("mspflow-acme", "mspflow_acme", ACME)
    scans: list[str] = []
    real = mspflow.plugins.entry_points

    def counting(**kwargs: str):  # type: ignore[no-untyped-def]
        scans.append(kwargs["group"])
        return real(**kwargs)

    monkeypatch.setattr(mspflow.plugins, "entry_points", counting)
    discover.cache_clear()
    for _ in range(3):
        assert "app:acme" in Plugins(strict=True).registry.modules
    assert scans == ["mspflow"]


def test_builtins_register_through_the_same_hooks() -> None:
    loaded = Plugins(entry_points=[], strict=True)
    [builtin] = loaded.loaded
    assert builtin.builtin and builtin.modules == ["transform", "scheduling"]
    assert loaded.pm.get_plugin("mspflow.builtin") is not None
    assert {impl.plugin_name for impl in loaded.pm.hook.register_modules.get_hookimpls()} == \
        {"mspflow.builtin"}


MISSPELT = """
from mspflow import hookimpl

@hookimpl
def register_module(register):
    pass
"""

NO_ARGUMENT = ACME.replace("def register_modules(register):\n    register(acme)",
                           "def register_modules():\n    pass")

EXITS = "import sys\nsys.exit('no licence file')\n"


def test_a_misspelt_hook_is_a_load_error_not_silence(dists: Distributions) -> None:
    dists.install("mspflow-typo", "mspflow_typo", MISSPELT)
    [error] = Plugins(strict=False).errors
    assert error.distribution == "mspflow-typo" and "register_module" in error.error


def test_a_plugin_calling_sys_exit_is_reported_not_fatal(dists: Distributions) -> None:
    dists.install("mspflow-exits", "mspflow_exits", EXITS)
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    loaded = Plugins(strict=False)
    assert [e.error for e in loaded.errors] == ["SystemExit: no licence file"]
    assert "app:acme" in loaded.registry.modules


def test_a_hook_may_leave_out_its_argument(dists: Distributions) -> None:
    dists.install("mspflow-quiet", "mspflow_quiet", NO_ARGUMENT)
    loaded = Plugins(strict=True)
    assert [p.name for p in loaded.loaded] == ["mspflow.builtin", "mspflow_quiet"]


OVERRIDE_THEN_FAIL = """
from mspflow import hookimpl

@hookimpl
def register_availability(register):
    register("rmm:acme", lambda session, tenant_id: True)

@hookimpl
def register_modules(register):
    raise RuntimeError("boom")
"""


def test_a_failed_overriding_plugin_restores_the_module_resolver(dists: Distributions) -> None:
    from mspflow.availability import rmm_integration

    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install("mspflow-zz-override", "mspflow_zz_override", OVERRIDE_THEN_FAIL)
    loaded = Plugins(strict=False)
    assert [e.distribution for e in loaded.errors] == ["mspflow-zz-override"]
    assert loaded.registry.resolvers["rmm:acme"] == rmm_integration("acme")


def test_mspflow_plugins_shows_the_refusal_for_both(dists: Distributions, tmp_path: Path) -> None:
    import json

    from tests.test_cli import Cli

    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install("mspflow-rogue", "mspflow_rogue", ROGUE_ACTION.replace("ACTION", "reboot"), entry_point="aaa")
    cli = Cli(tmp_path / "home")
    result = cli("plugins")
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("load error")]
    assert len(lines) == 2 and all("mspflow-acme" in ln and "mspflow-rogue" in ln for ln in lines), result.stdout
    data = json.loads(cli("plugins", "--json").stdout)
    assert sorted(e["distribution"] for e in data["load_errors"]) == ["mspflow-acme", "mspflow-rogue"]
    assert [p["distribution"] for p in data["plugins"]] == ["mspflow"]


@pytest.mark.parametrize("rogue_ep", ["aaa_rogue", "zzz_rogue"])  # loads before / after tacticalrmm
def test_a_rogue_tacticalrmm_reboot_cannot_evict_the_real_plugin(dists: Distributions,
                                                               monkeypatch: pytest.MonkeyPatch, rogue_ep: str) -> None:
    dists.install("mspflow-rogue", "mspflow_rogue", ROGUE_ACTION.replace("acme.devices.ACTION",
                                                                         "tacticalrmm.agents.reboot"),
                  entry_point=rogue_ep)
    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", f"tacticalrmm,{rogue_ep}")
    loaded = Plugins(strict=False)
    assert sorted(e.distribution for e in loaded.errors) == ["mspflow-rogue", "mspflow-tacticalrmm"]
    assert all("mspflow-rogue and mspflow-tacticalrmm both claim action-id namespace 'tacticalrmm'" in e.error
               for e in loaded.errors)
    assert loaded.registry.action("tacticalrmm.agents.reboot") is None  # no rogue handler for any tenant
