"""Availability: is a module's integration connected for a tenant?

A resolver is any callable ``(session, tenant_id) -> Availability | bool`` with a ``key`` attribute
(e.g. ``rmm:ninjaone``). The core calls resolvers inside :func:`resolve`, which fails closed: no
resolver, or a resolver that raises (missing table, database down), means *unavailable*, with a
machine-readable reason, and the error is logged rather than breaking the catalog.

Resolvers that read the same table share one query per request through :func:`memo`:
``rmm_integration("ninjaone")`` and ``rmm_integration("tacticalrmm")`` both read every
``rmm_integrations`` row of the tenant once, however many RMM modules are installed.

Examples::

    acme = Module("app:acme", label="Acme RMM", availability=rmm_integration("acme"))

    @dataclass(frozen=True)
    class FeatureFlag:                       # a host's own resolver
        key: str = "flag:beta"
        def __call__(self, session, tenant_id):
            return Availability.no("flag_off") if not flags.on(tenant_id) else Availability.yes()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy import select
from sqlalchemy.orm import Session

from mspflow.clock import aware
from mspflow.db.engine import autocommitting

log = logging.getLogger("mspflow.availability")

T = TypeVar("T")
_MEMO = "mspflow.availability.memo"

NOT_CONNECTED = "not_connected"
INACTIVE = "inactive"
NO_RESOLVER = "no_resolver"
RESOLVER_ERROR = "resolver_error"
ADDON_MISSING = "addon_missing"


@dataclass(frozen=True)
class Availability:
    """Whether a module is usable by a tenant; ``reason`` says why not (``not_connected``, ...)."""

    available: bool
    reason: str | None = None

    @classmethod
    def yes(cls) -> Availability:
        return cls(True)

    @classmethod
    def no(cls, reason: str) -> Availability:
        return cls(False, reason)


@runtime_checkable
class Resolver(Protocol):
    """``(session, tenant_id) -> Availability | bool``, registered under :attr:`key`."""

    @property
    def key(self) -> str: ...

    def __call__(self, session: Session, tenant_id: str) -> Availability | bool: ...


def memo(session: Session, key: Any, compute: Callable[[], T]) -> T:
    """Compute once per :func:`request_scope` on ``session`` (and re-raise a remembered failure).

    Outside a scope, compute every time: a long-lived host session must not serve stale answers.
    """
    store: dict[Any, tuple[bool, Any]] | None = session.info.get(_MEMO)
    if store is None:
        return compute()
    if key not in store:
        try:
            store[key] = (True, compute())
        except Exception as exc:
            store[key] = (False, exc)
    ok, value = store[key]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


@contextmanager
def request_scope(session: Session) -> Iterator[None]:
    """Share resolver queries for the duration of one catalog (or execute) request."""
    outer = session.info.get(_MEMO)
    if outer is not None:  # nested: the outer scope owns the memo
        yield
        return
    session.info[_MEMO] = {}
    try:
        yield
    finally:
        session.info.pop(_MEMO, None)


def resolve(
    session: Session, tenant_id: str, key: str | None, resolvers: dict[str, Resolver]
) -> Availability:
    """Availability of the resolver registered under ``key`` for ``tenant_id``; never raises."""
    resolver = resolvers.get(key) if key else None
    if resolver is None:
        return Availability.no(NO_RESOLVER)
    try:
        # A savepoint keeps one failing resolver (say, a missing table on PostgreSQL) from aborting
        # the transaction the others still need; in autocommit mode (the runtime's gate) there is none.
        with nullcontext() if autocommitting(session.connection()) else session.begin_nested():
            result = resolver(session, tenant_id)
    except Exception:
        log.warning("availability resolver %r failed for tenant %r; treating as unavailable",
                    key, tenant_id, exc_info=True)
        return Availability.no(RESOLVER_ERROR)
    if isinstance(result, Availability):
        return result
    if result is True:
        return Availability.yes()
    if result is False:
        return Availability.no(NOT_CONNECTED)
    log.warning("availability resolver %r returned %r, not a bool or Availability", key, result)
    return Availability.no(RESOLVER_ERROR)


def resolve_many(
    session: Session, tenant_id: str, keys: Iterable[str | None], resolvers: dict[str, Resolver]
) -> dict[str | None, Availability]:
    """Resolve several keys in one request scope (each resolver at most once)."""
    out: dict[str | None, Availability] = {}
    with request_scope(session):
        for key in keys:
            if key not in out:
                out[key] = resolve(session, tenant_id, key, resolvers)
    return out


@dataclass(frozen=True)
class AlwaysAvailable:
    """Core groups: available to every tenant."""

    key: str = "core"

    def __call__(self, session: Session, tenant_id: str) -> Availability:
        return Availability.yes()


@dataclass(frozen=True)
class RmmIntegrationResolver:
    """Available when ``rmm_integrations`` has an active, connected row for (tenant, provider)."""

    provider: str

    @property
    def key(self) -> str:
        return f"rmm:{self.provider}"

    def __call__(self, session: Session, tenant_id: str) -> Availability:
        rows = memo(session, ("rmm_integrations", tenant_id), lambda: _rmm_rows(session, tenant_id))
        row = rows.get(self.provider)
        if row is None:
            return Availability.no(NOT_CONNECTED)
        is_active, connected_at = row
        if not is_active:
            return Availability.no(INACTIVE)
        if connected_at is None:
            return Availability.no(NOT_CONNECTED)
        return Availability.yes()


def _rmm_rows(session: Session, tenant_id: str) -> dict[str, tuple[bool, datetime | None]]:
    from mspflow.db.models import RmmIntegration as R

    stmt = select(R.provider, R.is_active, R.connected_at).where(R.tenant == tenant_id)
    return {provider: (bool(active), connected) for provider, active, connected in session.execute(stmt)}


def rmm_integration(provider: str) -> RmmIntegrationResolver:
    """Resolver for an RMM-style integration, key ``rmm:<provider>``."""
    return RmmIntegrationResolver(provider)


@dataclass(frozen=True)
class TeamsIntegrationResolver:
    """Available when the tenant holds the ``teams`` add-on and its Teams app install is ``active``."""

    addon_key: str = "teams"

    @property
    def key(self) -> str:
        return "teams"

    def __call__(self, session: Session, tenant_id: str) -> Availability:
        from mspflow.db.models import TeamsIntegration, TenantAddon

        expires = session.execute(
            select(TenantAddon.expires_at).where(
                TenantAddon.tenant == tenant_id, TenantAddon.addon_key == self.addon_key
            )
        ).first()
        if expires is None or (expires[0] is not None and aware(expires[0]) <= datetime.now(UTC)):
            return Availability.no(ADDON_MISSING)
        status = session.execute(
            select(TeamsIntegration.install_status).where(TeamsIntegration.tenant == tenant_id)
        ).scalar()
        if status is None or status == "not_configured":
            return Availability.no(NOT_CONNECTED)
        if status != "active":
            return Availability.no(status)
        return Availability.yes()


def teams_integration() -> TeamsIntegrationResolver:
    """Resolver for Microsoft Teams, key ``teams``."""
    return TeamsIntegrationResolver()
