"""The tile as the designer sees it: entry point, module contract, vendor declaration, golden catalog records.

Regenerate the golden files after an intended change (then review the diff)::

    MSPFLOW_UPDATE_GOLDEN=1 python -m pytest plugins/levelio/tests -q -p no:cacheprovider -k golden
"""

from __future__ import annotations

import json
import os
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from mspflow_levelio import LEVEL_API, levelio, normalize_instance_url

from mspflow import CursorPaging
from mspflow.plugins import Plugins, discover
from mspflow.testing import check_module

GOLDEN = Path(__file__).parent / "golden"
ACTIONS = {  # id: (label, side effect)
    "levelio.devices.find": ("Find devices", False),
    "levelio.devices.get": ("Get device", False),
    "levelio.alerts.list_active": ("List active alerts", False),
    "levelio.alerts.resolve": ("Resolve alert", True),
    "levelio.updates.list": ("List updates", False),
    "levelio.automations.list": ("List automations", False),
    "levelio.automations.trigger": ("Trigger automation", True),
    "levelio.automations.run_status": ("Automation run status", False),
}


def test_module_meets_the_plugin_contract() -> None:
    check_module(levelio)


def test_the_tile_and_its_actions() -> None:
    assert (levelio.group_key, levelio.label, levelio.icon, levelio.tile_kind, levelio.availability_key,
            levelio.effective_default_action_id) == \
        ("app:levelio", "Level", "levelio", "app", "rmm:levelio", "levelio.devices.find")
    assert {a.id: (a.label, a.side_effectful) for a in levelio.actions} == ACTIONS
    assert {a.version for a in levelio.actions} == {1}
    assert all(a.idempotency == ("engine_provided" if a.side_effectful else "none") for a in levelio.actions)
    module, _, name = (levelio.simulator or "").partition(":")
    assert getattr(import_module(module), name).__name__ == "LevelSimulator"


def test_the_vendor_is_declared_once() -> None:
    assert levelio.vendor is LEVEL_API
    assert (LEVEL_API.name, LEVEL_API.base_url, LEVEL_API.self_hosted, LEVEL_API.rate_limit) == \
        ("Level", "https://api.level.io/v2", False, None)
    assert LEVEL_API.paging == CursorPaging(cursor="starting_after", size="limit", page_size=100, items_key="data",
                                            has_more="has_more")
    assert LEVEL_API.allowed_hosts == frozenset({"api.level.io"})
    assert (LEVEL_API.auth.header, LEVEL_API.auth.secret, LEVEL_API.auth.prefix) == \
        ("Authorization", "levelio_api_key", "")  # type: ignore[union-attr]


@pytest.mark.parametrize(("typed", "used"), [
    ("https://api.level.io", "https://api.level.io/v2"), ("https://api.level.io/", "https://api.level.io/v2"),
    ("https://api.level.io/v2", "https://api.level.io/v2"), ("api.level.io", "api.level.io/v2"),
    ("http://127.0.0.1:8765", "http://127.0.0.1:8765/v2"), ("https://proxy.example/level/v2/", "https://proxy.example/level/v2"),
])
def test_a_bare_host_gets_the_v2_prefix(typed: str, used: str) -> None:
    assert normalize_instance_url(typed) == used


def test_installed_through_one_entry_point() -> None:
    eps = [ep for ep in discover() if ep.value == "mspflow_levelio"]
    assert [(ep.name, ep.dist and ep.dist.metadata["Name"]) for ep in eps] == [("levelio", "mspflow-levelio")]
    plugins = Plugins(strict=True)
    assert plugins.registry.modules["app:levelio"] == levelio
    assert plugins.info["levelio"].distribution == "mspflow-levelio"
    assert plugins.info["levelio"].action_count == len(ACTIONS)


def test_the_tile_follows_the_tenant_connection(mspflow_app: Any, mspflow_connect: Any) -> None:
    assert mspflow_app.catalog("acme").record("app:levelio").unavailable_reason == "not_connected"
    mspflow_connect("acme", "levelio")
    assert "app:levelio" in [r.module.group_key for r in mspflow_app.catalog("acme").palette]


@pytest.mark.parametrize("state", ["connected", "disconnected"])
def test_catalog_record_matches_golden(mspflow_app: Any, mspflow_connect: Any, state: str) -> None:
    from mspflow import tenants

    mspflow_connect("acme", "levelio")
    if state == "disconnected":
        with mspflow_app.db.session() as s:
            tenants.disconnect(s, mspflow_app.registry, "acme", "levelio")
    record = json.loads(json.dumps(mspflow_app.catalog("acme").record("app:levelio").to_json()))
    assert record["available"] is (state == "connected")
    path = GOLDEN / f"catalog_{state}.json"
    if os.environ.get("MSPFLOW_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"{path} is missing; run with MSPFLOW_UPDATE_GOLDEN=1 to create it"
    assert record == json.loads(path.read_text()), (
        f"the app:levelio catalog record ({state}) changed; if that is intended, run with "
        "MSPFLOW_UPDATE_GOLDEN=1 and review the diff of tests/golden/")
