"""ctx.alerts (AlertStore): active alerts of one tenant and provider, optionally of one device."""

from __future__ import annotations

from datetime import UTC, datetime

from mspflow.alerts.store import AlertStore
from mspflow.db.engine import Database
from mspflow.redaction import Redactor


def test_active_alerts_of_one_device(db: Database) -> None:
    with db.session() as s:
        store = AlertStore(lambda: s, "acme", "acmermm", Redactor(), lambda: datetime.now(UTC))
        store.record("a1", device_id="d1", title="CPU")
        store.record("a2", device_id="d2", title="Disk")
        store.record("a3", device_id="d1", title="Old", status="resolved")
        AlertStore(lambda: s, "globex", "acmermm", Redactor(), lambda: datetime.now(UTC)).record("g1", device_id="d1")
        assert [a.external_alert_id for a in store.active(device_id="d1")] == ["a1"]
        assert sorted(a.external_alert_id for a in store.active()) == ["a1", "a2"]
        assert store.active(device_id="nope") == []
