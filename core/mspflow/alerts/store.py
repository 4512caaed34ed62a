"""The tenant's RMM alerts from one provider, read and recorded through ``ctx.alerts``.

Examples::

    ctx.alerts.active(limit=50)                           # newest first
    ctx.alerts.active(device_id="1041")                   # one device's
    ctx.alerts.find("3f2c…")                              # by the vendor's alert id (or the PSA's, see below)
    ctx.alerts.record("3f2c…", device_id="1041", severity="CRITICAL", title="Disk full")
    ctx.alerts.acknowledge(alert.alert_id)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mspflow.assets import fit

if TYPE_CHECKING:  # SQLAlchemy and the models load when a store is used, not when a plugin imports StoredAlert
    from sqlalchemy.orm import Session

    from mspflow.db.models import RmmAlert
    from mspflow.redaction import Redactor


@dataclass(frozen=True)
class StoredAlert:
    """An alert as the PSA keeps it; ``alert_id`` is the PSA's, ``external_alert_id`` the vendor's."""

    alert_id: str
    external_alert_id: str
    device_id: str | None
    asset_id: str | None
    status: str
    severity: str | None
    priority: str | None
    title: str | None
    message: str | None
    source_type: str | None
    created_at: datetime | None
    updated_at: datetime | None
    acknowledged_at: datetime | None

    @property
    def acknowledged(self) -> bool:
        return self.status == "acknowledged" or self.acknowledged_at is not None

    @classmethod
    def of(cls, r: RmmAlert) -> StoredAlert:
        return cls(alert_id=r.alert_id, external_alert_id=r.external_alert_id, device_id=r.external_device_id,
                   asset_id=r.asset_id, status=r.status, severity=r.severity, priority=r.priority, title=r.title,
                   message=r.message, source_type=r.source_type, created_at=r.created_at,
                   updated_at=r.updated_at, acknowledged_at=r.acknowledged_at)


class AlertStore:
    """The tenant's alerts from one provider (``ctx.alerts``)."""

    def __init__(self, session: Callable[[], Session], tenant: str, provider: str, redactor: Redactor,
                 clock: Callable[[], datetime]) -> None:
        self._session, self.tenant, self.provider, self._redactor, self._clock = (
            session, tenant, provider, redactor, clock)

    def _mine(self) -> Any:
        from mspflow.db.models import RmmAlert

        return (RmmAlert.tenant == self.tenant) & (RmmAlert.provider == self.provider)

    def active(self, *, limit: int = 50, device_id: str | None = None) -> list[StoredAlert]:
        """Active alerts, newest first; with ``device_id``, only that vendor device's."""
        from sqlalchemy import select

        from mspflow.db.models import RmmAlert

        q = select(RmmAlert).where(self._mine(), RmmAlert.status == "active")
        if device_id is not None:
            q = q.where(RmmAlert.external_device_id == device_id)
        rows = self._session().execute(q.order_by(RmmAlert.created_at.desc(), RmmAlert.alert_id).limit(limit))
        return [StoredAlert.of(r) for r in rows.scalars()]

    def find(self, ref: str, *, or_alert_id: bool = False) -> StoredAlert | None:
        """The alert whose vendor id is ``ref`` (or, with ``or_alert_id``, whose PSA id is ``ref``)."""
        row = self._row(ref, or_alert_id=or_alert_id)
        return None if row is None else StoredAlert.of(row)

    def _row(self, ref: str, *, or_alert_id: bool = False) -> RmmAlert | None:
        from sqlalchemy import or_, select

        from mspflow.db.models import RmmAlert

        match = RmmAlert.external_alert_id == ref
        if or_alert_id:
            match = or_(match, RmmAlert.alert_id == ref)
        return self._session().execute(select(RmmAlert).where(self._mine(), match).limit(1)).scalar()

    def by_external_ids(self, ids: Sequence[str]) -> dict[str, StoredAlert]:
        """Vendor alert id → stored alert, for those of ``ids`` the PSA keeps."""
        from sqlalchemy import select

        from mspflow.db.models import RmmAlert

        if not ids:
            return {}
        rows = self._session().execute(select(RmmAlert).where(self._mine(),
                                                              RmmAlert.external_alert_id.in_(list(ids))))
        return {r.external_alert_id: StoredAlert.of(r) for r in rows.scalars()}

    def record(self, external_alert_id: str, *, device_id: str | None = None, status: str = "active",
               severity: str | None = None, priority: str | None = None, title: str | None = None,
               message: str | None = None, source_type: str | None = None,
               created_at: datetime | None = None) -> StoredAlert:
        """Create or update the alert ``external_alert_id``; its asset is found from ``device_id``.

        Text is scrubbed of every secret of the tenant and cut to fit its column.
        """
        from sqlalchemy import select

        from mspflow.db.models import Asset, RmmAlert

        s, clean = self._session(), self._redactor.text
        row = self._row(external_alert_id)
        if row is None:
            row = RmmAlert(tenant=self.tenant, provider=self.provider, external_alert_id=external_alert_id)
            if created_at is not None:
                row.created_at = created_at
            s.add(row)

        def text(value: str | None, limit: int) -> str | None:
            return fit(None if value is None else clean(str(value)), limit)

        row.external_device_id = device_id
        row.asset_id = s.execute(select(Asset.asset_id).where(
            Asset.tenant == self.tenant, Asset.rmm_provider == self.provider,
            Asset.rmm_device_id == device_id).limit(1)).scalar() if device_id is not None else None
        row.status, row.severity, row.priority = status, text(severity, 32), text(priority, 32)
        row.title, row.message = text(title, 1024), None if message is None else clean(message)
        row.source_type = text(source_type, 128)
        s.flush()
        return StoredAlert.of(row)

    def acknowledge(self, alert_id: str) -> StoredAlert:
        """Mark the stored alert ``alert_id`` acknowledged (now)."""
        from sqlalchemy import select

        from mspflow.db.models import RmmAlert

        row = self._session().execute(select(RmmAlert).where(self._mine(), RmmAlert.alert_id == alert_id)).scalar()
        if row is None:
            from mspflow.errors import ActionError

            raise ActionError.not_found(f"no stored {self.provider} alert {alert_id!r}", alert_id=alert_id)
        row.status, row.acknowledged_at = "acknowledged", self._clock()
        self._session().flush()
        return StoredAlert.of(row)
