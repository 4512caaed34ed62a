"""Assets synced from RMM vendors: what a plugin reads and writes through ``ctx.assets``.

Every query is scoped to the call's tenant and the tile's provider; every value written passes the call's
redactor first (a vendor that echoes a token into a device name does not get it stored).

Examples::

    rows = ctx.assets.find(query="front", limit=50)
    device_id = ctx.assets.device_of(asset_id)
    asset_ids = ctx.assets.by_device(["1041", "1042"])        # device id → asset id
    asset = ctx.assets.upsert("1041", name="FRONT-DESK", hostname="front-desk", asset_type="workstation")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # SQLAlchemy and the models load when a store is used, not when a plugin imports SyncedAsset
    from sqlalchemy.orm import Session

    from mspflow.db.models import Asset
    from mspflow.redaction import Redactor


@dataclass(frozen=True)
class SyncedAsset:
    """A PSA asset linked to a vendor's device."""

    asset_id: str
    device_id: str
    name: str
    asset_type: str
    hostname: str | None
    dns_name: str | None
    os_name: str | None
    status: str
    organization_id: str | None
    node_class: str | None
    agent_online: bool | None
    last_seen_at: datetime | None

    @classmethod
    def of(cls, a: Asset) -> SyncedAsset:
        return cls(asset_id=a.asset_id, device_id=str(a.rmm_device_id), name=a.name, asset_type=a.asset_type,
                   hostname=a.hostname, dns_name=a.dns_name, os_name=a.os_name, status=a.status,
                   organization_id=a.rmm_organization_id, node_class=a.node_class, agent_online=a.agent_online,
                   last_seen_at=a.last_seen_at)


def fit(value: str | None, limit: int) -> str | None:
    """``value`` cut to a column's length (after scrubbing: callers pass scrubbed text)."""
    return value if value is None or len(value) <= limit else value[: limit - 1] + "…"


class AssetStore:
    """The tenant's assets synced from one provider (``ctx.assets``)."""

    def __init__(self, session: Callable[[], Session], tenant: str, provider: str, redactor: Redactor,
                 clock: Callable[[], datetime]) -> None:
        self._session, self.tenant, self.provider, self._redactor, self._clock = (
            session, tenant, provider, redactor, clock)

    def _mine(self) -> Any:
        from mspflow.db.models import Asset

        return (Asset.tenant == self.tenant) & (Asset.rmm_provider == self.provider) & Asset.rmm_device_id.is_not(None)

    def find(self, *, device_id: str | None = None, asset_id: str | None = None, query: str | None = None,
             limit: int = 50) -> list[SyncedAsset]:
        """Synced assets; filters combine; ``query`` matches name, host or DNS name (no wildcards)."""
        from sqlalchemy import or_, select

        from mspflow.db.models import Asset

        q = select(Asset).where(self._mine())
        if device_id is not None:
            q = q.where(Asset.rmm_device_id == device_id)
        if asset_id is not None:
            q = q.where(Asset.asset_id == asset_id)
        if query is not None:
            q = q.where(or_(*(c.icontains(query, autoescape=True) for c in (Asset.name, Asset.hostname,
                                                                              Asset.dns_name))))
        rows = self._session().execute(q.order_by(Asset.name, Asset.asset_id).limit(limit)).scalars()
        return [SyncedAsset.of(a) for a in rows]

    def device_of(self, asset_id: str) -> str | None:
        """The vendor's device id of a synced asset, or None."""
        from sqlalchemy import select

        from mspflow.db.models import Asset

        return self._session().execute(select(Asset.rmm_device_id).where(
            self._mine(), Asset.asset_id == asset_id)).scalar()

    def by_device(self, device_ids: Sequence[str]) -> dict[str, str]:
        """Vendor device id → asset id, for those of ``device_ids`` that are synced."""
        from sqlalchemy import select

        from mspflow.db.models import Asset

        if not device_ids:
            return {}
        rows = self._session().execute(select(Asset.rmm_device_id, Asset.asset_id).where(
            self._mine(), Asset.rmm_device_id.in_(list(device_ids))))
        return {str(device): asset for device, asset in rows}

    def upsert(self, device_id: str, *, name: str, asset_type: str = "workstation", hostname: str | None = None,
               dns_name: str | None = None, os_name: str | None = None, organization_id: str | None = None,
               node_class: str | None = None, agent_online: bool | None = None,
               last_seen_at: datetime | None = None, metadata: Mapping[str, Any] | None = None) -> SyncedAsset:
        """Create or update the asset of ``device_id`` and its external-entity mapping; returns it.

        The mapping (``tenant_external_entity_mappings``) finds the asset first, then the device id; a
        new asset is created otherwise. Text is scrubbed of every secret of the tenant and cut to fit.
        """
        from sqlalchemy import select

        from mspflow.db.models import Asset, TenantExternalEntityMapping

        s, clean = self._session(), self._redactor.text
        link = s.execute(select(TenantExternalEntityMapping).where(
            TenantExternalEntityMapping.tenant == self.tenant,
            TenantExternalEntityMapping.integration_type == self.provider,
            TenantExternalEntityMapping.entity_type == "asset",
            TenantExternalEntityMapping.external_entity_id == device_id)).scalar()
        asset = s.get(Asset, (self.tenant, link.entity_id)) if link else None
        if asset is None:
            asset = s.execute(select(Asset).where(self._mine(), Asset.rmm_device_id == device_id)
                              .order_by(Asset.created_at).limit(1)).scalar()
        if asset is None:
            asset = Asset(tenant=self.tenant, rmm_provider=self.provider, rmm_device_id=device_id, status="active")
            s.add(asset)

        def text(value: str | None, limit: int = 255) -> str | None:
            return fit(None if value is None else clean(str(value)), limit)

        asset.name = text(name) or device_id
        asset.asset_type = text(asset_type, 32) or "workstation"
        asset.hostname, asset.dns_name, asset.os_name = text(hostname), text(dns_name), text(os_name)
        asset.rmm_organization_id, asset.node_class = text(organization_id), text(node_class, 64)
        asset.agent_online, asset.last_seen_at = agent_online, last_seen_at
        s.flush()
        if link is None:
            link = TenantExternalEntityMapping(tenant=self.tenant, integration_type=self.provider,
                                               entity_type="asset", external_entity_id=device_id,
                                               entity_id=asset.asset_id)
            s.add(link)
        link.entity_id, link.sync_status, link.last_synced_at = asset.asset_id, "synced", self._clock()
        link.metadata_json = self._redactor.data(dict(metadata)) if metadata is not None else link.metadata_json
        s.flush()
        return SyncedAsset.of(asset)
