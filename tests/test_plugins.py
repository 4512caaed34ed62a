"""Plugin discovery through real entry points, load-error isolation, strict mode and selection."""

from __future__ import annotations

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


def test_two_distributions_claiming_one_action_id_name_each_other(dists: Distributions) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install("mspflow-acme-fork", "mspflow_acme_fork", ACME.replace('"Acme RMM"', '"Acme Fork"'))
    loaded = Plugins(strict=False)
    [error] = loaded.errors
    assert error.distribution == "mspflow-acme-fork"
    assert "mspflow-acme" in error.error and "already registered" in error.error
    assert loaded.registry.modules["app:acme"].label == "Acme RMM"


def test_identical_registration_from_two_entry_points_is_a_noop(dists: Distributions) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    dists.install("mspflow-acme-again", "mspflow_acme_again", "from mspflow_acme import *\n"
                  "from mspflow_acme import register_modules\n")
    loaded = Plugins(strict=True)
    assert loaded.errors == [] and list(loaded.registry.modules) == ["transform", "scheduling", "app:acme"]


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
