"""Availability gating, on SQLite and PostgreSQL: exact answer and reason for each case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from mspflow.availability import (
    Availability,
    resolve,
    resolve_many,
    resolve_tenants,
    rmm_integration,
    teams_integration,
)
from mspflow.db.engine import Database
from mspflow.db.models import RmmIntegration, TeamsIntegration, TenantAddon

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def add_rmm(db: Database, tenant: str, provider: str, *, active: bool = True,
            connected_at: datetime | None = NOW) -> None:
    with db.session() as s:
        s.add(RmmIntegration(tenant=tenant, provider=provider, is_active=active, connected_at=connected_at,
                             settings={}))


def ninja(db: Database, tenant: str = "acme") -> Availability:
    resolvers = {"rmm:ninjaone": rmm_integration("ninjaone")}
    with db.sessions() as session:
        return resolve(session, tenant, "rmm:ninjaone", resolvers)  # type: ignore[arg-type]


ROWS: dict[str, tuple[tuple[str, str, bool, datetime | None], ...]] = {
    "connected": (("acme", "ninjaone", True, NOW),),
    "inactive": (("acme", "ninjaone", False, NOW),),
    "connected_at NULL": (("acme", "ninjaone", True, None),),
    "other provider": (("acme", "tacticalrmm", True, NOW),),
    "other tenant": (("globex", "ninjaone", True, NOW),),
    "no row": (),
}
EXPECTED = {
    "connected": Availability(True, None),
    "inactive": Availability(False, "inactive"),
    "connected_at NULL": Availability(False, "not_connected"),
    "other provider": Availability(False, "not_connected"),
    "other tenant": Availability(False, "not_connected"),
    "no row": Availability(False, "not_connected"),
}


@pytest.mark.parametrize("case", list(ROWS))
def test_rmm_gating_matrix(db: Database, case: str) -> None:
    for tenant, provider, active, connected_at in ROWS[case]:
        add_rmm(db, tenant, provider, active=active, connected_at=connected_at)
    assert ninja(db) == EXPECTED[case]
    with db.sessions() as session:
        batch = resolve_tenants(session, ["globex", "acme"], ["rmm:ninjaone"],
                                {"rmm:ninjaone": rmm_integration("ninjaone")})
    assert batch["rmm:ninjaone"]["acme"] == EXPECTED[case]
    assert batch["rmm:ninjaone"]["globex"] == ninja(db, "globex")


def test_resolver_that_raises_means_unavailable_and_is_logged(db: Database,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    def broken(session: Any, tenant_id: str) -> bool:
        raise RuntimeError("database is down")

    with db.sessions() as session:
        result = resolve(session, "acme", "rmm:broken", {"rmm:broken": broken})  # type: ignore[dict-item]
    assert result == Availability(False, "resolver_error")
    assert "rmm:broken" in caplog.text and "database is down" in caplog.text


def test_a_worker_time_limit_inside_a_resolver_is_not_swallowed(db: Database) -> None:
    from dramatiq.middleware.time_limit import TimeLimitExceeded

    def slow(session: Any, tenant_id: str) -> bool:
        raise TimeLimitExceeded  # what Dramatiq raises into a worker thread past its time limit

    with db.sessions() as session, pytest.raises(TimeLimitExceeded):
        resolve(session, "acme", "rmm:slow", {"rmm:slow": slow})  # type: ignore[dict-item]


def test_no_resolver_means_unavailable(db: Database) -> None:
    with db.sessions() as session:
        assert resolve(session, "acme", "rmm:nobody", {}) == Availability(False, "no_resolver")
        assert resolve(session, "acme", None, {}) == Availability(False, "no_resolver")


def test_missing_table_means_unavailable_and_other_resolvers_still_answer(db: Database) -> None:
    add_rmm(db, "acme", "ninjaone")
    with db.session() as s:
        s.add(TenantAddon(tenant="acme", addon_key="teams"))
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE teams_integrations"))
    resolvers: dict[str, Any] = {"teams": teams_integration(), "rmm:ninjaone": rmm_integration("ninjaone")}
    with db.sessions() as session:
        got = resolve_many(session, "acme", ["teams", "rmm:ninjaone", "core"], resolvers)
        # On PostgreSQL the failed query would abort the transaction; the savepoint keeps it usable.
        by_tenant = resolve_tenants(session, ["acme", "globex"], ["teams", "rmm:ninjaone"], resolvers)
    assert got == {"teams": Availability(False, "resolver_error"), "rmm:ninjaone": Availability(True),
                   "core": Availability(False, "no_resolver")}
    assert by_tenant == {"teams": {"acme": Availability(False, "resolver_error"),
                                   "globex": Availability(False, "resolver_error")},
                         "rmm:ninjaone": {"acme": Availability(True), "globex": Availability(False, "not_connected")}}


def test_rmm_table_missing_means_resolver_error(empty_db: Database) -> None:
    assert ninja(empty_db) == Availability(False, "resolver_error")


def test_resolver_returning_bool_is_normalized(db: Database) -> None:
    with db.sessions() as session:
        yes = resolve(session, "t", "k", {"k": lambda s, t: True})  # type: ignore[dict-item]
        no = resolve(session, "t", "k", {"k": lambda s, t: False})  # type: ignore[dict-item]
        junk = resolve(session, "t", "k", {"k": lambda s, t: "yes"})  # type: ignore[dict-item]
    assert (yes, no, junk) == (Availability(True), Availability(False, "not_connected"),
                               Availability(False, "resolver_error"))


@pytest.mark.parametrize(("addon", "status", "expected"), [
    (None, "active", Availability(False, "addon_missing")),
    ("expired", "active", Availability(False, "addon_missing")),
    ("forever", None, Availability(False, "not_connected")),
    ("forever", "not_configured", Availability(False, "not_connected")),
    ("forever", "install_pending", Availability(False, "install_pending")),
    ("forever", "error", Availability(False, "error")),
    ("forever", "active", Availability(True)),
    ("future", "active", Availability(True)),
])
def test_teams_gating(db: Database, addon: str | None, status: str | None, expected: Availability) -> None:
    expiry = {"expired": datetime.now(UTC) - timedelta(days=1), "forever": None,
              "future": datetime.now(UTC) + timedelta(days=30)}
    with db.session() as s:
        if addon:
            s.add(TenantAddon(tenant="acme", addon_key="teams", expires_at=expiry[addon]))
        if status:
            s.add(TeamsIntegration(tenant="acme", install_status=status))
        s.add(TeamsIntegration(tenant="globex", install_status="active"))
        s.add(TenantAddon(tenant="globex", addon_key="teams"))
    with db.sessions() as session:
        assert resolve(session, "acme", "teams", {"teams": teams_integration()}) == expected
        batch = resolve_tenants(session, ["acme", "globex", "initech"], ["teams"], {"teams": teams_integration()})
    assert batch == {"teams": {"acme": expected, "globex": Availability(True),
                               "initech": Availability(False, "addon_missing")}}


def test_batch_resolvers_fail_closed_per_tenant_and_log_once(db: Database,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    class Partial:
        key = "flag:partial"

        def __call__(self, session: Any, tenant_id: str) -> bool:
            return True

        def resolve_batch(self, session: Any, tenant_ids: Any) -> dict[str, Any]:
            return {"a": True, "b": "yes"}  # no answer for "c", junk for "b"

    class Broken(Partial):
        key = "flag:broken"

        def resolve_batch(self, session: Any, tenant_ids: Any) -> dict[str, Any]:
            raise RuntimeError("database is down")

    calls: list[str] = []

    def plain(session: Any, tenant_id: str) -> bool:
        calls.append(tenant_id)
        return tenant_id == "a"

    resolvers: dict[str, Any] = {"flag:partial": Partial(), "flag:broken": Broken(), "flag:plain": plain}
    with db.sessions() as session:
        got = resolve_tenants(session, ["a", "b", "c", "a"], [*resolvers, "flag:nobody"], resolvers)
    error, no = Availability(False, "resolver_error"), Availability(False, "not_connected")
    assert got == {"flag:partial": {"a": Availability(True), "b": error, "c": error},
                   "flag:broken": {"a": error, "b": error, "c": error},
                   "flag:plain": {"a": Availability(True), "b": no, "c": no},
                   "flag:nobody": dict.fromkeys("abc", Availability(False, "no_resolver"))}
    assert calls == ["a", "b", "c"]  # without a batch form: once per (distinct) tenant
    warnings = [r.getMessage() for r in caplog.records if r.name == "mspflow.availability"]
    assert len(warnings) == 2 and "database is down" in caplog.text
    assert "'flag:partial' gave no answer for 1 and no bool or Availability for 1 of 3" in warnings[0]


tenant_ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mine=tenant_ids, other=tenant_ids)
def test_a_tenant_never_sees_another_tenants_connection(db: Database, mine: str, other: str) -> None:
    if mine == other:
        return
    with db.session() as s:
        s.query(RmmIntegration).delete()
        s.add(RmmIntegration(tenant=other, provider="ninjaone", is_active=True, connected_at=NOW,
                             settings={}))
    assert ninja(db, mine) == Availability(False, "not_connected")
    assert ninja(db, other) == Availability(True)
