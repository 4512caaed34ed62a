"""The designer catalog: record shape, order, palette, one query per resolver family, every tenant at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mspflow.app import App
from mspflow.availability import Availability
from mspflow.catalog import build_catalog, build_catalogs, json_lines
from mspflow.db.engine import Database
from mspflow.db.models import RmmIntegration, TeamsIntegration, TenantAddon, TenantSecret
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


# -- every tenant at once (App.catalogs) --------------------------------------------------------------

DAY = timedelta(days=1)


def flag_beta(session: Any, tenant_id: str) -> bool:
    """A host resolver without a batch form: called once per tenant."""
    return tenant_id.startswith("teams")


flag_beta.key = "flag:beta"  # type: ignore[attr-defined]


def mixed_app(db: Database) -> App:
    """RMM modules, Teams, a host resolver without a batch form and a key nobody resolves."""
    from mspflow.availability import teams_integration
    from mspflow.plugins import Plugins

    plugins = Plugins(entry_points=[], strict=True)
    registry = plugins.registry
    for m in (rmm_module("ninjaone"), rmm_module("tacticalrmm", actions=3),
              Module("app:teams", label="Teams", availability=teams_integration(),
                     allowed_action_ids=("transform.text.render",)),
              Module("app:beta", label="Beta", availability=flag_beta,  # type: ignore[arg-type]
                     allowed_action_ids=("transform.text.render",)),
              Module("app:orphan", label="Orphan", availability="nobody:home",
                     allowed_action_ids=("transform.text.render",))):
        registry.add_module(m, f"mspflow-{m.group_key[4:]}")
    return App(db=db, plugins=plugins)


def seed_mixed_tenants(db: Database) -> list[str]:
    """Tenants in every availability state; returns them, plus one the database has never heard of."""
    now = datetime.now(UTC)
    rmm = {  # tenant: (provider, is_active, connected_at)
        "connected": [("ninjaone", True, now), ("tacticalrmm", True, now)],
        "inactive": [("ninjaone", False, now)],
        "never-connected": [("ninjaone", True, None), ("tacticalrmm", False, None)],
        "zürich ✓": [("tacticalrmm", True, now)],
    }
    addons = {"teams-active": None, "teams-expired": now - DAY, "teams-future": now + 30 * DAY,
              "teams-pending": None, "teams-not-configured": None, "teams-addon-only": None,
              "teams-error": None, "connected": None}
    installs = {"teams-active": "active", "teams-expired": "active", "teams-future": "active",
                "teams-pending": "install_pending", "teams-not-configured": "not_configured",
                "teams-error": "error", "teams-no-addon": "active", "connected": "active"}
    with db.session() as s:
        for tenant, rows in rmm.items():
            for provider, active, connected_at in rows:
                s.add(RmmIntegration(tenant=tenant, provider=provider, is_active=active,
                                     connected_at=connected_at, settings={}))
        for tenant, expires in addons.items():
            s.add(TenantAddon(tenant=tenant, addon_key="teams", expires_at=expires))
        for tenant, status in installs.items():
            s.add(TeamsIntegration(tenant=tenant, install_status=status))
        s.add(TenantSecret(tenant="secret-only", name="acme_api_key", value=b"ciphertext"))
    known = sorted({*rmm, *addons, *installs, "secret-only"})
    return [*known, "unknown"]


def test_all_tenant_catalogs_equal_the_per_tenant_catalogs(db: Database) -> None:
    app = mixed_app(db)
    tenants = seed_mixed_tenants(db)
    per_tenant = {t: app.catalog(t) for t in tenants}
    states = {t: {r.module.group_key: r.unavailable_reason for r in c.records if r.module.tile_kind == "app"}
              for t, c in per_tenant.items()}
    # The fixture covers what it claims to, so equality below is not vacuous.
    assert {s["app:teams"] for s in states.values()} == \
        {None, "addon_missing", "not_connected", "install_pending", "error"}
    assert {s["app:ninjaone"] for s in states.values()} == {None, "inactive", "not_connected"}
    assert {s["app:beta"] for s in states.values()} == {None, "not_connected"}
    assert {s["app:orphan"] for s in states.values()} == {"no_resolver"}

    asked = [*tenants, "connected"]  # order kept, a repeat answered again
    for chunk_size in (None, 1, 4):
        got = list(app.catalogs(asked, chunk_size=chunk_size))
        assert [c.to_json() for c in got] == [per_tenant[t].to_json() for t in asked], chunk_size
    everyone = list(app.catalogs())
    assert [c.tenant for c in everyone] == tenants[:-1]  # every known tenant, "unknown" is not one
    assert [c.to_json() for c in everyone] == [per_tenant[t].to_json() for t in tenants[:-1]]


def test_json_lines_are_the_per_tenant_json_one_object_per_line(db: Database) -> None:
    app = mixed_app(db)
    tenants = seed_mixed_tenants(db)
    for palette in (False, True):
        lines = list(json_lines(app.catalogs(tenants, chunk_size=5), palette=palette))
        assert len(lines) == len(tenants) and not any("\n" in line for line in lines)
        assert [json.loads(line) for line in lines] == [app.catalog(t).to_json(palette=palette) for t in tenants]
        assert lines == [json.dumps(app.catalog(t).to_json(palette=palette), separators=(",", ":"))
                         for t in tenants]


def test_catalogs_are_streamed_a_chunk_at_a_time(db: Database) -> None:
    app = mixed_app(db)
    seed_mixed_tenants(db)
    pulled: list[str] = []

    def tenants() -> Iterator[str]:
        for i in range(100):
            pulled.append(f"t{i}")
            yield f"t{i}"

    stream = app.catalogs(tenants(), chunk_size=10)
    first = next(stream)
    assert first.tenant == "t0" and len(pulled) == 10
    assert len(list(stream)) == 99 and len(pulled) == 100


@pytest.mark.parametrize("chunk_size", [None, 7])
def test_all_tenant_catalogs_cost_one_statement_per_family_per_chunk(db: Database, statements: list[str],
                                                                     chunk_size: int | None) -> None:
    from mspflow.availability import teams_integration
    from mspflow.plugins import Plugins

    plugins = Plugins(entry_points=[], strict=True)
    for m in [*(rmm_module(f"vendor{i:02d}", actions=1) for i in range(20)),
              Module("app:teams", label="Teams", availability=teams_integration(),
                     allowed_action_ids=("transform.text.render",))]:
        plugins.registry.add_module(m, f"mspflow-{m.group_key[4:]}")
    app = App(db=db, plugins=plugins)
    with db.session() as s:
        for t in range(30):
            connect(s, plugins.registry, f"t{t:02d}", f"vendor{t % 20:02d}")
            if t % 3 == 0:
                connect(s, plugins.registry, f"t{t:02d}", "teams")
    app.catalog("warm-up")  # the schema check, once per App

    def per_family(n_tenants: int) -> tuple[int, int, int]:
        statements.clear()
        catalogs = list(app.catalogs([f"t{t:02d}" for t in range(n_tenants)], chunk_size=chunk_size))
        assert len(catalogs) == n_tenants
        return (sum("rmm_integrations" in q for q in statements),
                sum("teams_integrations" in q for q in statements),
                sum(q.upper().startswith("SAVEPOINT") for q in statements))

    size = chunk_size or 1000
    for n in (3, 30):
        chunks = -(-n // size)
        assert per_family(n) == (chunks, chunks, 2 * chunks), n  # one savepoint per family query
    statements.clear()
    assert len(list(app.catalogs(chunk_size=chunk_size))) == 30
    assert sum("rmm_integrations" in q for q in statements) == 1 + -(-30 // size)  # + the tenant listing


def test_a_resolver_raising_system_exit_does_not_escape_the_catalog(db: Database,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    class Quits:
        key = "rmm:quits"

        def __call__(self, session: Any, tenant_id: str) -> bool:
            raise SystemExit(3)

    class QuitsInBatch(Quits):
        key = "rmm:quits_batch"

        def resolve_batch(self, session: Any, tenant_ids: Any) -> Any:
            raise SystemExit(4)

    registry = registry_with(rmm_module("ninjaone"), rmm_module("quits", availability=Quits()),
                             rmm_module("quits_batch", availability=QuitsInBatch()))
    with db.session() as s:
        connect(s, registry, "acme", "ninjaone")
    with db.sessions() as s:
        catalogs = [build_catalog(registry, s, "acme"), *build_catalogs(registry, s, ["acme", "globex"])]
    for catalog in catalogs:
        got = {r.module.group_key: (r.available, r.unavailable_reason) for r in catalog.records}
        assert got["app:quits"] == got["app:quits_batch"] == (False, "resolver_error")
        assert got["app:ninjaone"] == ((True, None) if catalog.tenant == "acme" else (False, "not_connected"))
    assert "rmm:quits" in caplog.text and "SystemExit: 3" in caplog.text and "SystemExit: 4" in caplog.text


def test_keyboard_interrupt_in_a_resolver_still_stops_the_caller(db: Database) -> None:
    def interrupted(session: Any, tenant_id: str) -> bool:
        raise KeyboardInterrupt

    interrupted.key = "rmm:ctrl_c"  # type: ignore[attr-defined]
    registry = registry_with(rmm_module("ctrl_c", availability=interrupted))
    with db.sessions() as s, pytest.raises(KeyboardInterrupt):
        build_catalog(registry, s, "acme")
    with db.sessions() as s, pytest.raises(KeyboardInterrupt):
        list(build_catalogs(registry, s, ["acme"]))


def core_app(db: Database) -> App:
    """RMM modules, Teams and a key nobody resolves: only the core's own resolvers."""
    from mspflow.availability import teams_integration
    from mspflow.plugins import Plugins

    plugins = Plugins(entry_points=[], strict=True)
    for m in (rmm_module("ninjaone"), rmm_module("tacticalrmm", actions=3),
              Module("app:teams", label="Teams", availability=teams_integration(),
                     allowed_action_ids=("transform.text.render",)),
              Module("app:orphan", label="Orphan", availability="nobody:home",
                     allowed_action_ids=("transform.text.render",))):
        plugins.registry.add_module(m, f"mspflow-{m.group_key[4:]}")
    return App(db=db, plugins=plugins)


def test_a_catalog_of_core_resolvers_reads_through_a_connection_with_the_session_answers(db: Database) -> None:
    from mspflow.catalog import needs_session

    app = core_app(db)
    assert not needs_session(app.registry) and needs_session(mixed_app(db).registry)  # a host resolver: Session
    tenants = seed_mixed_tenants(db)
    reasons = set()
    for tenant in tenants:
        with db.sessions() as s:
            expected = build_catalog(app.registry, s, tenant).to_json()
        got = app.catalog(tenant).to_json()  # a Connection, no ORM Session
        assert got == expected, tenant
        reasons |= {r["unavailable_reason"] for r in got["records"]}
    assert reasons == {None, "addon_missing", "not_connected", "inactive", "install_pending", "error", "no_resolver"}


def test_a_failing_family_on_a_connection_fails_only_its_own_modules(db: Database) -> None:
    from sqlalchemy import text

    app = core_app(db)
    seed_mixed_tenants(db)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE rmm_integrations"))
    got = {r.module.group_key: (r.available, r.unavailable_reason) for r in app.catalog("connected").records}
    assert got["app:ninjaone"] == got["app:tacticalrmm"] == (False, "resolver_error")
    assert got["app:teams"] == (True, None)  # the savepoint kept the transaction usable (PostgreSQL)


def test_a_tenant_catalog_opens_savepoints_only_for_queries(db: Database, statements: list[str]) -> None:
    from mspflow.availability import teams_integration

    registry = registry_with(*(rmm_module(f"vendor{i}", actions=1) for i in range(10)),
                             Module("app:teams", label="Teams", availability=teams_integration(),
                                    allowed_action_ids=("transform.text.render",)))
    with db.session() as s:
        connect(s, registry, "acme", "teams")
    statements.clear()
    with db.sessions() as s:
        catalog = build_catalog(registry, s, "acme")
    assert catalog.record("app:teams").available  # type: ignore[union-attr]
    queries = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
    savepoints = [q for q in statements if q.upper().startswith("SAVEPOINT")]
    # core groups run no SQL; ten RMM modules share one query; Teams is one query with its add-on
    assert len(queries) == 2 and len(savepoints) == 2, statements


def test_known_tenants_are_those_with_integration_addon_or_secret_rows(db: Database) -> None:
    from mspflow.tenants import known_tenants

    seed_mixed_tenants(db)
    with db.sessions() as s:
        known = known_tenants(s)
    assert "secret-only" in known and "teams-no-addon" in known and "unknown" not in known
    assert known == sorted(set(known))
