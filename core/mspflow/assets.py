"""Assets synced from RMM vendors, as every RMM plugin's ``find`` action reads them first.

Examples::

    rows = synced_assets(ctx.session, ctx.tenant_id, "ninjaone", query="front", limit=50)
    device_id = device_of_asset(ctx.session, ctx.tenant_id, "ninjaone", asset_id)
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mspflow.db.models import Asset


def synced_assets(session: Session, tenant: str, provider: str, *, device_id: str | None = None,
                  asset_id: str | None = None, query: str | None = None, limit: int = 50) -> Sequence[Asset]:
    """The tenant's assets synced from ``provider``; filters combine; ``query`` matches names (no wildcards)."""
    q = select(Asset).where(Asset.tenant == tenant, Asset.rmm_provider == provider, Asset.rmm_device_id.is_not(None))
    if device_id is not None:
        q = q.where(Asset.rmm_device_id == device_id)
    if asset_id is not None:
        q = q.where(Asset.asset_id == asset_id)
    if query is not None:
        q = q.where(or_(*(c.icontains(query, autoescape=True) for c in (Asset.name, Asset.hostname, Asset.dns_name))))
    return session.execute(q.order_by(Asset.name, Asset.asset_id).limit(limit)).scalars().all()


def device_of_asset(session: Session, tenant: str, provider: str, asset_id: str) -> str | None:
    """The vendor's device id of a synced asset, or None."""
    return session.execute(select(Asset.rmm_device_id).where(
        Asset.tenant == tenant, Asset.rmm_provider == provider, Asset.asset_id == asset_id)).scalar()


def assets_by_device(session: Session, tenant: str, provider: str, device_ids: Sequence[str]) -> dict[str, str]:
    """Vendor device id → asset id, for the tenant's assets synced from ``provider`` among ``device_ids``."""
    if not device_ids:
        return {}
    rows = session.execute(select(Asset.rmm_device_id, Asset.asset_id).where(
        Asset.tenant == tenant, Asset.rmm_provider == provider, Asset.rmm_device_id.in_(list(device_ids))))
    return {str(device): asset for device, asset in rows}
