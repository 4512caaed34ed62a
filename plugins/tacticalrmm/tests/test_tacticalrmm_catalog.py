"""The tile as the designer sees it: entry point, module contract, and the tile following the connection."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from mspflow_tacticalrmm import tacticalrmm

from mspflow.plugins import Plugins, discover
from mspflow.testing import check_module

ACTIONS = {  # id: (label, side effect, permission)
    "tacticalrmm.agents.find": ("Find agents", False, None),
    "tacticalrmm.agents.get": ("Get agent", False, None),
    "tacticalrmm.scripts.list": ("List scripts", False, None),
    "tacticalrmm.agents.run_script": ("Run script", True, None),
    "tacticalrmm.agents.run_command": ("Run command", True, "rmm:execute_command"),
    "tacticalrmm.agents.reboot": ("Reboot agent", True, None),
    "tacticalrmm.alerts.resolve": ("Resolve alert", True, None),
}


def test_module_meets_the_plugin_contract() -> None:
    check_module(tacticalrmm)


def test_the_tile_and_its_actions() -> None:
    assert (tacticalrmm.group_key, tacticalrmm.label, tacticalrmm.icon, tacticalrmm.availability_key,
            tacticalrmm.effective_default_action_id) == \
        ("app:tacticalrmm", "Tactical RMM", "tacticalrmm", "rmm:tacticalrmm", "tacticalrmm.agents.find")
    assert {a.id: (a.label, a.side_effectful, a.permission) for a in tacticalrmm.actions} == ACTIONS
    assert {a.version for a in tacticalrmm.actions} == {1}
    assert all(a.idempotency == ("engine_provided" if a.side_effectful else "none") for a in tacticalrmm.actions)
    assert tacticalrmm.simulator == "mspflow_tacticalrmm.sim:TacticalRMMSimulator"
    module, _, name = tacticalrmm.simulator.partition(":")
    assert getattr(import_module(module), name).__name__ == "TacticalRMMSimulator"


def test_installed_through_one_entry_point() -> None:
    eps = [ep for ep in discover() if ep.value == "mspflow_tacticalrmm"]
    assert [(ep.name, ep.dist and ep.dist.metadata["Name"]) for ep in eps] == [("tacticalrmm", "mspflow-tacticalrmm")]
    plugins = Plugins(strict=True)
    assert plugins.registry.modules["app:tacticalrmm"] == tacticalrmm
    assert plugins.info["tacticalrmm"].distribution == "mspflow-tacticalrmm"
    assert plugins.info["tacticalrmm"].action_count == len(ACTIONS)


def test_the_tile_follows_the_tenant_connection(trmm: Any) -> None:
    trmm.disconnect()
    assert trmm.app.catalog("acme").record("app:tacticalrmm").unavailable_reason == "inactive"
    trmm.connect()
    assert "app:tacticalrmm" in [r.module.group_key for r in trmm.app.catalog("acme").palette]
