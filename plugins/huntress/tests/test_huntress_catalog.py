"""The tile as the designer sees it: entry point, module contract, and the tile following the connection."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from mspflow_huntress import huntress

from mspflow.plugins import Plugins, discover
from mspflow.testing import check_module

ACTIONS = {  # id: (label, side effect)
    "huntress.incidents.find": ("Find incidents", False),
    "huntress.incidents.get": ("Get incident", False),
    "huntress.incidents.resolve": ("Resolve incident", True),
    "huntress.organizations.list": ("List organizations", False),
    "huntress.agents.get": ("Get agent", False),
    "huntress.account.get": ("Get account", False),
}


def test_module_meets_the_plugin_contract() -> None:
    # The contract suite (issue 12) is one more line here once mspflow.testing offers it.
    check_module(huntress)


def test_the_tile_and_its_actions() -> None:
    assert (huntress.group_key, huntress.label, huntress.icon, huntress.availability_key,
            huntress.effective_default_action_id) == \
        ("app:huntress", "Huntress", "huntress", "rmm:huntress", "huntress.incidents.find")
    assert {a.id: (a.label, a.side_effectful) for a in huntress.actions} == ACTIONS
    assert {a.version for a in huntress.actions} == {1}
    assert all(a.idempotency == ("engine_provided" if a.side_effectful else "none") for a in huntress.actions)
    assert huntress.simulator == "mspflow_huntress.sim:HuntressSimulator"
    module, _, name = huntress.simulator.partition(":")
    assert getattr(import_module(module), name).__name__ == "HuntressSimulator"


def test_installed_through_one_entry_point() -> None:
    eps = [ep for ep in discover() if ep.value == "mspflow_huntress"]
    assert [(ep.name, ep.dist and ep.dist.metadata["Name"]) for ep in eps] == [("huntress", "mspflow-huntress")]
    plugins = Plugins(strict=True)
    assert plugins.registry.modules["app:huntress"] == huntress
    assert plugins.info["huntress"].distribution == "mspflow-huntress"
    assert plugins.info["huntress"].action_count == len(ACTIONS)


def test_the_tile_follows_the_tenant_connection(hunt: Any) -> None:
    hunt.disconnect()
    assert hunt.app.catalog("acme").record("app:huntress").unavailable_reason == "inactive"
    assert hunt.fail("account.get").code == "INTEGRATION_INACTIVE" and hunt.sim.requests == []
    hunt.connect()
    assert "app:huntress" in [r.module.group_key for r in hunt.app.catalog("acme").palette]
