"""When the Teams tile is available: the tenant's ``teams`` add-on is active AND its Teams app install is
``active``; one query for the whole catalog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from mspflow.app import App
from mspflow.db.models import TeamsIntegration, TenantAddon

NOW = datetime.now(UTC)
ADDONS = {"absent": ..., "expired": NOW - timedelta(days=1), "never expires": None,
          "expires later": NOW + timedelta(days=30)}
STATUSES = [None, "not_configured", "install_pending", "active", "error"]


@pytest.mark.parametrize("addon", list(ADDONS))
@pytest.mark.parametrize("status", STATUSES)
def test_availability_matrix(app: App, addon: str, status: str | None) -> None:
    with app.db.session() as s:
        if ADDONS[addon] is not ...:
            s.add(TenantAddon(tenant="acme", addon_key="teams", expires_at=ADDONS[addon]))
        if status is not None:
            s.add(TeamsIntegration(tenant="acme", install_status=status))
    record = app.catalog("acme").record("app:teams")
    assert record is not None
    active_addon = addon in ("never expires", "expires later")
    assert record.available is (active_addon and status == "active")
    if not record.available:
        expected = "addon_missing" if not active_addon else \
            "not_connected" if status in (None, "not_configured") else status
        assert record.unavailable_reason == expected


def test_the_tile(app: App) -> None:
    module = app.registry.modules["app:teams"]
    assert (module.label, module.icon, module.default_action_id, module.availability_key) == (
        "Microsoft Teams", "teams", "teams.notify_user", "integration:teams")
    assert set(module.action_ids) == {"teams.notify_user", "teams.send_dm", "teams.post_to_channel"}
    assert all(a.side_effectful for a in module.actions)


def test_one_query_per_catalog(app: App) -> None:
    with app.db.session() as s:
        for t in range(5):
            s.add(TenantAddon(tenant=f"t{t}", addon_key="teams"))
            s.add(TeamsIntegration(tenant=f"t{t}", install_status="active" if t % 2 else "error"))
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if "teams_integrations" in statement:
            statements.append(statement)

    event.listen(app.db.engine, "before_cursor_execute", seen)
    try:
        catalogs = list(app.catalogs([f"t{t}" for t in range(5)]))
    finally:
        event.remove(app.db.engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    assert [c.record("app:teams").available for c in catalogs] == [False, True, False, True, False]  # type: ignore[union-attr]
