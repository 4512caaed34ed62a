"""The designer catalog: record shape, order, palette, and one shared rmm_integrations query."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mspflow.availability import Availability
from mspflow.catalog import build_catalog
from mspflow.db.engine import Database
from mspflow.modules import Module
from mspflow.registry import Registry
from mspflow.tenants import connect, disconnect
from tests.factories import rmm_module

RECORD_KEYS = ["group_key", "label", "description", "tile_kind", "icon", "default_action_id", "available",
               "unavailable_reason", "actions"]
CORE = ["transform", "scheduling"]  # the built-in core groups, in catalog order
ACTION_KEYS = ["id", "version", "label", "description", "category", "icon", "side_effectful", "idempotency",
               "input_schema", "output_schema"]


def registry_with(*modules: Module) -> Registry:
    from mspflow.plugins import Plugins

    registry = Plugins(entry_points=[], strict=True).registry  # built-ins: the core groups
    for m in modules:  # a bare group key is a core group: only the core (distribution mspflow) may add one
        registry.add_module(m, f"mspflow-{m.group_key[4:]}" if ":" in m.group_key else "mspflow")
    return registry


def test_catalog_json_has_exactly_the_contract_shape(db: Database) -> None:
    registry = registry_with(rmm_module("ninjaone", actions=2))
    with db.session() as s:
        connect(s, registry, "acme", "ninjaone")
    with db.sessions() as s:
        data = build_catalog(registry, s, "acme").to_json()
    assert list(data) == ["tenant", "records"] and data["tenant"] == "acme"
    for record in data["records"]:
        assert list(record) == RECORD_KEYS
        for act in record["actions"]:
            assert list(act) == ACTION_KEYS
    ninja = next(r for r in data["records"] if r["group_key"] == "app:ninjaone")
    assert ninja["available"] is True and ninja["unavailable_reason"] is None
    assert ninja["default_action_id"] == "ninjaone.devices.op0"
    assert [a["side_effectful"] for a in ninja["actions"]] == [False, True]
    assert [a["idempotency"] for a in ninja["actions"]] == ["none", "engine_provided"]
    assert ninja["actions"][0]["input_schema"]["properties"]["device_id"]["type"] == "string"
    json.dumps(data)


def test_core_groups_come_first_then_apps_by_label(db: Database) -> None:
    extra_core = Module("control", label="Control", tile_kind="core", availability="core",
                        allowed_action_ids=("transform.text.render",))
    registry = registry_with(rmm_module("zeta"), rmm_module("alpha"), extra_core)
    with db.sessions() as s:
        keys = [r.module.group_key for r in build_catalog(registry, s, "acme").records]
    assert keys == ["control", "transform", "scheduling", "app:alpha", "app:zeta"]


def test_disconnected_modules_stay_in_the_catalog_with_their_schemas(db: Database) -> None:
    registry = registry_with(rmm_module("ninjaone"), rmm_module("tacticalrmm"))
    with db.session() as s:
        connect(s, registry, "acme", "ninjaone")
        connect(s, registry, "acme", "tacticalrmm")
        disconnect(s, registry, "acme", "tacticalrmm")
    with db.sessions() as s:
        catalog = build_catalog(registry, s, "acme")
    trmm = catalog.record("app:tacticalrmm")
    assert trmm is not None and (trmm.available, trmm.unavailable_reason) == (False, "inactive")
    assert trmm.to_json()["actions"][0]["input_schema"]["title"] == "PingInput"
    assert [r.module.group_key for r in catalog.palette] == [*CORE, "app:ninjaone"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(connected=st.sets(st.sampled_from(["v0", "v1", "v2", "v3", "v4"])),
       tenant=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                      max_size=30))
def test_palette_is_exactly_the_available_subset_of_the_catalog(db: Database, connected: set[str],
                                                                  tenant: str) -> None:
    registry = registry_with(*(rmm_module(v, actions=1) for v in ["v0", "v1", "v2", "v3", "v4"]))
    with db.session() as s:
        for vendor in ["v0", "v1", "v2", "v3", "v4"]:
            (connect if vendor in connected else disconnect)(s, registry, tenant, vendor)
    with db.sessions() as s:
        catalog = build_catalog(registry, s, tenant)
    palette = catalog.palette
    assert set(palette) <= set(catalog.records)
    assert [r for r in catalog.records if r.available] == list(palette)
    assert {r.module.group_key for r in palette} == set(CORE) | {f"app:{v}" for v in connected}
    assert catalog.to_json(palette=True)["records"] == [r.to_json() for r in palette]


def test_catalog_of_50_rmm_modules_issues_one_rmm_integrations_query(db: Database,
                                                                     statements: list[str]) -> None:
    registry = registry_with(*(rmm_module(f"vendor{i:02d}", actions=2) for i in range(50)))
    with db.session() as s:
        for i in range(0, 50, 3):
            connect(s, registry, "acme", f"vendor{i:02d}")
    statements.clear()
    with db.sessions() as s:
        catalog = build_catalog(registry, s, "acme")
    assert len(catalog.palette) == len(CORE) + 17
    rmm_queries = [q for q in statements if "rmm_integrations" in q]
    assert len(rmm_queries) == 1, rmm_queries


def test_failing_shared_query_is_still_one_query_and_fails_every_rmm_module(db: Database,
                                                                              statements: list[str]) -> None:
    from sqlalchemy import text

    registry = registry_with(*(rmm_module(f"vendor{i}", actions=1) for i in range(5)))
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE rmm_integrations"))
    statements.clear()
    with db.sessions() as s:
        catalog = build_catalog(registry, s, "acme")
    assert [(r.available, r.unavailable_reason) for r in catalog.records] == \
        [(True, None)] * len(CORE) + [(False, "resolver_error")] * 5
    assert len([q for q in statements if "rmm_integrations" in q]) == 1


def test_host_resolver_overrides_module_resolver_in_the_catalog(db: Database) -> None:
    calls: list[str] = []

    class HostResolver:
        key = "rmm:ninjaone"

        def __call__(self, session: Any, tenant_id: str) -> Availability:
            calls.append(tenant_id)
            return Availability.no("host_says_no")

    registry = registry_with(rmm_module("ninjaone"))
    registry.add_resolver("rmm:ninjaone", HostResolver(), "host")  # type: ignore[arg-type]
    with db.session() as s:
        connect(s, registry, "acme", "ninjaone")
    with db.sessions() as s:
        record = build_catalog(registry, s, "acme").record("app:ninjaone")
    assert record is not None and record.unavailable_reason == "host_says_no" and calls == ["acme"]


@pytest.mark.parametrize("provider", ["ninjaone", "teams"])
def test_connect_is_idempotent_and_disconnect_keeps_the_row(db: Database, provider: str) -> None:
    from mspflow.availability import teams_integration

    module = rmm_module("ninjaone")
    teams = Module("app:teams", label="Teams", availability=teams_integration(),
                   allowed_action_ids=("transform.text.render",))
    registry = registry_with(module, teams)
    group = "app:teams" if provider == "teams" else "app:ninjaone"
    for _ in range(2):
        with db.session() as s:
            connect(s, registry, "acme", provider)
    with db.sessions() as s:
        assert build_catalog(registry, s, "acme").record(group).available  # type: ignore[union-attr]
    with db.session() as s:
        assert disconnect(s, registry, "acme", provider) is True
        assert disconnect(s, registry, "acme", provider) is False
    with db.sessions() as s:
        assert not build_catalog(registry, s, "acme").record(group).available  # type: ignore[union-attr]
