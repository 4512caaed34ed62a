"""Plugin faults and collisions: broken plugins are reported and the rest keep working; two distributions
claiming one namespace, action id or entry-point name are both refused (fail closed)."""

from __future__ import annotations

import pytest

from mspflow.plugins import Plugins
from tests.distributions import Distributions
from tests.reliability.conftest import Figures

GOOD = '''
from pydantic import BaseModel
from mspflow import Module, hookimpl, rmm_integration

acme = Module("app:acme", label="Acme", icon="acme", availability=rmm_integration("acme"), description="Acme.")

class In(BaseModel):
    device_id: str

class Out(BaseModel):
    ok: bool

@acme.action("acme.devices.reboot", label="Reboot", side_effectful=True)
def reboot(params: In, ctx) -> Out:
    """Reboot."""
    return Out(ok=True)

@hookimpl
def register_modules(register):
    register(acme)
'''

ROGUE = '''
from pydantic import BaseModel
from mspflow import hookimpl, action

class In(BaseModel):
    agent_id: str

class Out(BaseModel):
    reboot_requested: bool

def steal(params: In, ctx) -> Out:
    """Not Tactical's reboot."""
    return Out(reboot_requested=True)

@hookimpl
def register_actions(register):
    register(action("{action_id}", label="Reboot agent", handler=steal, side_effectful=True))
'''

FAULTY = {
    "mspflow-importerror": "raise ImportError('vendor SDK missing')\n",
    "mspflow-exits": "import sys\nsys.exit(3)\n",
    "mspflow-badregister": "from mspflow import hookimpl\n\n@hookimpl\ndef register_modules(register):\n"
                           "    raise RuntimeError('no config')\n",
    "mspflow-misspelt": "from mspflow import hookimpl\n\n@hookimpl\ndef register_module(register):\n    pass\n",
    "mspflow-notamodule": "from mspflow import hookimpl\n\n@hookimpl\ndef register_modules(register):\n"
                          "    register(object())\n",
}


def test_plugin_faults_and_collisions(dists: Distributions, monkeypatch: pytest.MonkeyPatch,
                                      figures: Figures) -> None:
    dists.install("mspflow-acme", "mspflow_acme", GOOD)
    for dist, source in FAULTY.items():
        dists.install(dist, dist.replace("-", "_"), source)
    # collisions with an installed plugin: an action id in its namespace, and its entry-point name
    dists.install("mspflow-rogue", "mspflow_rogue", ROGUE.replace("{action_id}", "tacticalrmm.agents.reboot"))
    dists.install("mspflow-squatter", "mspflow_squatter", GOOD.replace("acme", "squat"), entry_point="tacticalrmm")
    # a plugin claiming a core namespace
    dists.install("mspflow-corejack", "mspflow_corejack", ROGUE.replace("{action_id}", "scheduling.entries.delete"))
    names = [*dists.entry_points, "tacticalrmm"]
    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", ",".join(dict.fromkeys(names)))
    loaded = Plugins(strict=False)
    registry = loaded.registry
    errors = {e.distribution: str(e) for e in loaded.errors}
    reported = [d for d in FAULTY if d in errors]
    good_works = "app:acme" in registry.modules and "transform" in registry.modules
    tactical_safe = registry.owner_of("action", "tacticalrmm.agents.reboot@1") in (None, "mspflow-tacticalrmm") \
        and "mspflow-rogue" in errors
    both_named = any("mspflow-rogue" in text and "mspflow-tacticalrmm" in text for text in errors.values())
    squatter_refused = "mspflow-squatter" in errors and "app:squat" not in registry.modules
    core_kept = registry.owner_of("action", "scheduling.entries.delete@1") is None and "mspflow-corejack" in errors
    ok = figures.record(
        "plugin faults and collisions",
        f"{len(FAULTY)} broken plugins: {len(reported)} reported, host up, good plugin "
        f"{'works' if good_works else 'BROKEN'}; hijack refused: {tactical_safe and both_named}, entry-point "
        f"squatter refused: {squatter_refused}, core namespace kept: {core_kept}",
        len(reported) == len(FAULTY) and good_works and tactical_safe and both_named and squatter_refused
        and core_kept)
    assert ok, errors
