"""The tile as the designer sees it: entry point, module contract, and golden catalog records.

Regenerate the golden files after an intended change (then review the diff)::

    MSPFLOW_UPDATE_GOLDEN=1 python -m pytest plugins/ninjaone/tests -q -p no:cacheprovider -k golden
"""

from __future__ import annotations

import json
import os
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from mspflow_ninjaone import ninjaone

from mspflow.plugins import Plugins, discover
from mspflow.testing import check_module

GOLDEN = Path(__file__).parent / "golden"
ACTIONS = {  # id: (label, side effect)
    "ninjaone.devices.find": ("Find devices", False),
    "ninjaone.devices.sync": ("Sync device", True),
    "ninjaone.devices.reboot": ("Reboot device", True),
    "ninjaone.devices.scripting_options": ("List runnable scripts", False),
    "ninjaone.devices.run_script": ("Run script", True),
    "ninjaone.alerts.list_active": ("List active alerts", False),
    "ninjaone.alerts.get": ("Get alert", False),
    "ninjaone.alerts.reset": ("Acknowledge alert", True),
}


def test_module_meets_the_plugin_contract() -> None:
    check_module(ninjaone)


def test_the_tile_and_its_actions() -> None:
    assert (ninjaone.group_key, ninjaone.label, ninjaone.icon, ninjaone.tile_kind, ninjaone.availability_key,
            ninjaone.effective_default_action_id) == \
        ("app:ninjaone", "NinjaOne", "ninjaone", "app", "rmm:ninjaone", "ninjaone.devices.find")
    assert {a.id: (a.label, a.side_effectful) for a in ninjaone.actions} == ACTIONS
    assert {a.version for a in ninjaone.actions} == {1}
    assert all(a.idempotency == ("engine_provided" if a.side_effectful else "none") for a in ninjaone.actions)
    module, _, name = (ninjaone.simulator or "").partition(":")
    assert getattr(import_module(module), name).__name__ == "NinjaOneSimulator"
    oauth = ninjaone.oauth
    assert oauth is not None
    assert (oauth.authorize_path, oauth.token_path, oauth.scopes, oauth.credentials, oauth.client_id,
            oauth.client_secret) == ("/ws/oauth/authorize", "/ws/oauth/token",
                                     "monitoring management control offline_access", "ninjaone_credentials",
                                     "ninjaone_client_id", "ninjaone_client_secret")
    assert ninjaone.vendor is not None
    assert dict(ninjaone.vendor.regions) == {"us": "https://app.ninjarmm.com", "us2": "https://us2.ninjarmm.com",
                                   "eu": "https://eu.ninjarmm.com", "oc": "https://oc.ninjarmm.com",
                                   "ca": "https://ca.ninjarmm.com", "fed": "https://fed.ninjarmm.com"}


def test_installed_through_one_entry_point() -> None:
    eps = [ep for ep in discover() if ep.value == "mspflow_ninjaone"]
    assert [(ep.name, ep.dist and ep.dist.metadata["Name"]) for ep in eps] == [("ninjaone", "mspflow-ninjaone")]
    plugins = Plugins(strict=True)
    assert plugins.registry.modules["app:ninjaone"] == ninjaone
    assert plugins.info["ninjaone"].distribution == "mspflow-ninjaone"
    assert plugins.info["ninjaone"].action_count == len(ACTIONS)


def test_the_tile_follows_the_tenant_connection(mspflow_app: Any, mspflow_connect: Any) -> None:
    assert mspflow_app.catalog("acme").record("app:ninjaone").unavailable_reason == "not_connected"
    mspflow_connect("acme", "ninjaone")
    assert "app:ninjaone" in [r.module.group_key for r in mspflow_app.catalog("acme").palette]


def _record(app: Any, tenant: str) -> dict[str, Any]:
    record = app.catalog(tenant).record("app:ninjaone")
    assert record is not None
    return dict(json.loads(json.dumps(record.to_json())))


@pytest.mark.parametrize("state", ["connected", "disconnected"])
def test_catalog_record_matches_golden(mspflow_app: Any, mspflow_connect: Any, state: str) -> None:
    from mspflow import tenants

    mspflow_connect("acme", "ninjaone")
    if state == "disconnected":
        with mspflow_app.db.session() as s:
            tenants.disconnect(s, mspflow_app.registry, "acme", "ninjaone")
    record = _record(mspflow_app, "acme")
    assert record["available"] is (state == "connected")
    path = GOLDEN / f"catalog_{state}.json"
    if os.environ.get("MSPFLOW_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"{path} is missing; run with MSPFLOW_UPDATE_GOLDEN=1 to create it"
    assert record == json.loads(path.read_text()), (
        f"the app:ninjaone catalog record ({state}) changed; if that is intended, run with "
        "MSPFLOW_UPDATE_GOLDEN=1 and review the diff of tests/golden/")
