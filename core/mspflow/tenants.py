"""Tenant connection admin for standalone use (``mspflow tenant connect|disconnect|show``).

In a host PSA these rows are written by the host's own integration settings pages; mspflow only
reads them. Standalone, these helpers write the same rows so a tenant's palette can be tried out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from mspflow.db.models import RmmIntegration, TeamsIntegration, TenantAddon, TenantSecret
from mspflow.registry import Registry

TEAMS = "teams"
TEAMS_KEY = "integration:teams"  # the availability key of teams_integration()
RMM_PREFIX = "rmm:"


class UnknownProvider(ValueError):
    """The provider is not one any installed plugin offers."""


def known_providers(registry: Registry) -> dict[str, str]:
    """Provider name -> kind (``rmm`` or ``teams``) for every availability key installed modules use."""
    keys = set(registry.resolvers) | {m.availability_key for m in registry.modules.values()}
    out: dict[str, str] = {}
    for key in filter(None, keys):
        if key.startswith(RMM_PREFIX):
            out[key[len(RMM_PREFIX):]] = "rmm"
        elif key in (TEAMS, TEAMS_KEY):
            out[TEAMS] = "teams"
    return dict(sorted(out.items()))


def _kind(registry: Registry, provider: str) -> str:
    kinds = known_providers(registry)
    if provider not in kinds:
        offered = ", ".join(kinds) or "none: install an integration plugin first (e.g. mspflow-ninjaone)"
        raise UnknownProvider(f"no installed plugin offers provider {provider!r}; known providers: {offered}")
    return kinds[provider]


def connect(session: Session, registry: Registry, tenant: str, provider: str,
            instance_url: str | None = None) -> None:
    """Mark ``provider`` connected and active for ``tenant`` (idempotent).

    An ``instance_url`` is checked against the provider's vendor declaration and stored normalized;
    a bad one is :class:`~mspflow.ActionError` ``VALIDATION_ERROR`` (see ``mspflow.vendor.check_instance_url``).
    """
    now = datetime.now(UTC)
    if instance_url is not None:
        instance_url = _checked_url(registry, provider, instance_url)
    if _kind(registry, provider) == "teams":
        addon = session.get(TenantAddon, (tenant, TEAMS))
        if addon is None:
            session.add(TenantAddon(tenant=tenant, addon_key=TEAMS, expires_at=None))
        else:
            addon.expires_at = None
        row = session.get(TeamsIntegration, tenant)
        if row is None:
            session.add(TeamsIntegration(tenant=tenant, install_status="active"))
        else:
            row.install_status = "active"
        return
    source = registry.alert_sources.get(provider)
    if source is not None and source.poll is not None:  # alert reconciliation polling, every 15 min
        from mspflow.alerts.polling import schedule

        schedule(session, tenant, provider, now=now)
    rmm = session.execute(
        select(RmmIntegration).where(RmmIntegration.tenant == tenant, RmmIntegration.provider == provider)
    ).scalar_one_or_none()
    if rmm is None:
        session.add(RmmIntegration(tenant=tenant, provider=provider, instance_url=instance_url,
                                   is_active=True, connected_at=now, settings={}))
        return
    rmm.is_active = True
    rmm.connected_at = rmm.connected_at or now
    if instance_url is not None:
        rmm.instance_url = instance_url


def _checked_url(registry: Registry, provider: str, url: str) -> str:
    from mspflow.vendor import check_instance_url, normalize_base_url

    vendor = next((m.vendor for m in registry.modules.values()
                   if m.vendor is not None and m.availability_key == RMM_PREFIX + provider), None)
    return normalize_base_url(url) if vendor is None else check_instance_url(vendor, url)


def disconnect(session: Session, registry: Registry, tenant: str, provider: str) -> bool:
    """Mark ``provider`` inactive for ``tenant``; rows are kept (history, settings). False if none."""
    if _kind(registry, provider) == "teams":
        row = session.get(TeamsIntegration, tenant)
        if row is None or row.install_status == "not_configured":
            return False
        row.install_status = "not_configured"
        return True
    rmm = session.execute(
        select(RmmIntegration).where(RmmIntegration.tenant == tenant, RmmIntegration.provider == provider)
    ).scalar_one_or_none()
    from mspflow.alerts.polling import unschedule

    unschedule(session, tenant, provider)
    if rmm is None or not rmm.is_active:
        return False
    rmm.is_active = False
    return True


def known_tenants(session: Session) -> list[str]:
    """Every tenant with a row in ``rmm_integrations``, ``tenant_addons``, ``teams_integrations`` or
    ``tenant_secrets`` (the tables that say what a tenant has connected), in code-point order.

    One statement. A tenant with none of these rows has only the core groups available; pass such
    tenants to ``App.catalogs`` explicitly.
    """
    stmt = union(select(RmmIntegration.tenant), select(TenantAddon.tenant), select(TeamsIntegration.tenant),
                 select(TenantSecret.tenant))
    return sorted(session.execute(stmt).scalars())


def describe(session: Session, tenant: str) -> dict[str, Any]:
    """What the database holds for ``tenant`` (never secret values)."""
    rmm = session.execute(
        select(RmmIntegration).where(RmmIntegration.tenant == tenant).order_by(RmmIntegration.provider)
    ).scalars()
    teams = session.get(TeamsIntegration, tenant)
    addons = session.execute(select(TenantAddon).where(TenantAddon.tenant == tenant)).scalars()
    return {
        "tenant": tenant,
        "rmm_integrations": [
            {
                "provider": r.provider,
                "integration_id": r.integration_id,
                "instance_url": r.instance_url,
                "is_active": r.is_active,
                "connected_at": _iso(r.connected_at),
            }
            for r in rmm
        ],
        "teams_integration": None if teams is None else {"install_status": teams.install_status},
        "addons": [{"addon_key": a.addon_key, "expires_at": _iso(a.expires_at)} for a in addons],
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
