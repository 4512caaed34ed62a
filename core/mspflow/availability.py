"""Availability: is a module's integration connected for a tenant?

A resolver is any callable ``(session, tenant_id) -> Availability | bool`` with a ``key`` attribute
(e.g. ``rmm:ninjaone``). The core calls resolvers inside :func:`resolve`, which fails closed: no
resolver, or a resolver that raises (missing table, database down, even ``SystemExit``), means
*unavailable*, with a machine-readable reason, and the error is logged rather than breaking the
catalog. Only ``KeyboardInterrupt``, ``GeneratorExit`` and Dramatiq's thread interrupts (time limit,
shutdown) pass through: they stop the caller, they are not a resolver's answer.

Resolvers that read the same table form a *family* and share one query per request through
:func:`memo`: ``rmm_integration("ninjaone")`` and ``rmm_integration("tacticalrmm")`` both read the
tenant's ``rmm_integrations`` rows once, however many RMM modules are installed.

A resolver may also offer a batch form, :class:`BatchResolver` (``resolve_batch(session,
tenant_ids)``): :func:`resolve_tenants` then answers a whole list of tenants with one statement per
family instead of one per tenant (``App.catalogs``). Resolvers without it still work there, called
once per tenant.

The core's own resolvers (:data:`CORE_ONLY_RESOLVERS`) query through SQLAlchemy Core only
(:mod:`mspflow.db.tables`), so they also run on a plain Connection: ``App.catalog`` passes one when every
module's resolver is one of them (:func:`core_only`), and a CLI catalog never imports the ORM. Any other
resolver is always called with a Session.

Each call runs in a SAVEPOINT so one failing resolver cannot abort the transaction the others need,
unless the resolver says ``needs_savepoint = False``: it runs no SQL (``AlwaysAvailable``), or runs
its SQL only through ``memo(..., savepoint=True)`` (the built-in families), which opens one savepoint
per shared query instead of one per module.

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
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast, runtime_checkable

if TYPE_CHECKING:  # SQLAlchemy is imported when a resolver runs, not when a plugin declares a module
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    Reader = Session | Connection
    """What the resolving functions run on: a Session, or a Core Connection when every resolver involved is
    one of the core's own (:func:`core_only`), which read through Core only."""

from mspflow.clock import aware

log = logging.getLogger("mspflow.availability")

T = TypeVar("T")
_MEMO = "mspflow.availability.memo"

NOT_CONNECTED = "not_connected"
INACTIVE = "inactive"
NO_RESOLVER = "no_resolver"
RESOLVER_ERROR = "resolver_error"
ADDON_MISSING = "addon_missing"
TEAMS_KEY = "integration:teams"


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


# Shared instances: a catalog of many tenants reuses one record per (module, availability).
_YES = Availability(True)
_NOT_CONNECTED = Availability(False, NOT_CONNECTED)
_INACTIVE = Availability(False, INACTIVE)
_ADDON_MISSING = Availability(False, ADDON_MISSING)
_ERROR = Availability(False, RESOLVER_ERROR)
_MISSING = object()


@runtime_checkable
class Resolver(Protocol):
    """``(session, tenant_id) -> Availability | bool``, registered under :attr:`key`.

    Optional attribute ``needs_savepoint`` (default True): set it False only when the resolver runs
    no SQL, or runs it only through ``memo(..., savepoint=True)``.
    """

    @property
    def key(self) -> str: ...

    def __call__(self, session: Session, tenant_id: str) -> Availability | bool: ...


@runtime_checkable
class BatchResolver(Resolver, Protocol):
    """A resolver that can also answer many tenants at once.

    ``resolve_batch`` returns an answer for every tenant in ``tenant_ids`` (a missing one counts as a
    resolver error) and must agree with calling the resolver once per tenant. Resolvers of one family
    share their statement through :func:`memo` keyed on the tenant list, so a family costs one
    statement per call of :func:`resolve_tenants`, whatever the number of tenants and modules.
    """

    def resolve_batch(self, session: Session, tenant_ids: Sequence[str]) -> Mapping[str, Availability | bool]:
        ...


def _stops_the_caller(exc: BaseException) -> bool:
    """Exceptions a resolver must not swallow: Ctrl-C, generator close, Dramatiq thread interrupts."""
    if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
        return True
    # Loaded wherever Dramatiq is (workers); importing Dramatiq here would cost every catalog ~130 ms.
    threading = sys.modules.get("dramatiq.threading")
    return threading is not None and isinstance(exc, threading.Interrupt)


def memo(session: Reader, key: Any, compute: Callable[[], T], *, savepoint: bool = False) -> T:
    """Compute once per :func:`request_scope` on ``session`` (and re-raise a remembered failure).

    Outside a scope, compute every time: a long-lived host session must not serve stale answers.
    With ``savepoint=True`` the computation runs in a SAVEPOINT, so a failing query (say, a missing
    table on PostgreSQL) leaves the caller's transaction usable.
    """
    store: dict[Any, tuple[bool, Any]] | None = session.info.get(_MEMO)
    if store is None:
        return _compute(session, compute, savepoint)
    if key not in store:
        try:
            store[key] = (True, _compute(session, compute, savepoint))
        except BaseException as exc:
            if _stops_the_caller(exc):
                raise
            store[key] = (False, exc)
    ok, value = store[key]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _compute(session: Reader, compute: Callable[[], T], savepoint: bool) -> T:
    if not savepoint:
        return compute()
    with _savepoint(session):
        return compute()


@contextmanager
def request_scope(session: Reader) -> Iterator[None]:
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
    session: Reader, tenant_id: str, key: str | None, resolvers: Mapping[str, Resolver]
) -> Availability:
    """Availability of the resolver registered under ``key`` for ``tenant_id``; never raises."""
    resolver = resolvers.get(key) if key else None
    if resolver is None:
        return Availability.no(NO_RESOLVER)
    try:
        # A Connection reaches only the core's own resolvers (core_only), which accept one.
        result = _guarded(session, resolver, lambda: resolver(cast("Session", session), tenant_id))
    except BaseException as exc:
        if _stops_the_caller(exc):
            raise
        log.warning("availability resolver %r failed for tenant %r; treating as unavailable",
                    key, tenant_id, exc_info=True)
        return Availability.no(RESOLVER_ERROR)
    return _normalize(key, result, log_junk=True)


def _savepoint(session: Reader) -> AbstractContextManager[Any]:
    """A savepoint, unless the session's connection autocommits (the runtime's gate): there a failing
    query aborts nothing, and PostgreSQL refuses SAVEPOINT outside a transaction."""
    from sqlalchemy import Connection

    from mspflow.db.engine import autocommitting

    conn = session if isinstance(session, Connection) else session.connection()
    return nullcontext() if autocommitting(conn) else session.begin_nested()


def _guarded(session: Reader, resolver: Resolver, call: Callable[[], T]) -> T:
    if not getattr(resolver, "needs_savepoint", True):
        return call()
    # A savepoint keeps one failing resolver (say, a missing table on PostgreSQL) from aborting the
    # transaction the others still need.
    with _savepoint(session):
        return call()


def _normalize(key: str | None, result: object, *, log_junk: bool) -> Availability:
    if isinstance(result, Availability):
        return result
    if result is True:
        return _YES
    if result is False:
        return _NOT_CONNECTED
    if log_junk:
        log.warning("availability resolver %r returned %r, not a bool or Availability", key, result)
    return _ERROR


def resolve_many(
    session: Reader, tenant_id: str, keys: Iterable[str | None], resolvers: Mapping[str, Resolver]
) -> dict[str | None, Availability]:
    """Resolve several keys in one request scope (each resolver at most once)."""
    out: dict[str | None, Availability] = {}
    with request_scope(session):
        for key in keys:
            if key not in out:
                out[key] = resolve(session, tenant_id, key, resolvers)
    return out


def resolve_tenants(
    session: Reader, tenant_ids: Sequence[str], keys: Iterable[str | None], resolvers: Mapping[str, Resolver]
) -> dict[str | None, dict[str, Availability]]:
    """``{key: {tenant: Availability}}`` for every key and tenant, in one request scope; never raises.

    A :class:`BatchResolver` is called once for all of ``tenant_ids`` (so the RMM family costs one
    statement, Teams one); any other resolver once per tenant, as :func:`resolve` would. Answers equal
    :func:`resolve_many` per tenant. The caller bounds ``tenant_ids`` (``App.catalogs`` passes chunks
    of :data:`mspflow.catalog.CHUNK_SIZE`): it becomes one ``IN (...)`` list per family.
    """
    tenants = tuple(dict.fromkeys(tenant_ids))
    out: dict[str | None, dict[str, Availability]] = {}
    with request_scope(session):
        for key in keys:
            if key in out:
                continue
            resolver = resolvers.get(key) if key else None
            if resolver is None:
                out[key] = dict.fromkeys(tenants, Availability.no(NO_RESOLVER))
            elif callable(getattr(resolver, "resolve_batch", None)):
                out[key] = _resolve_batch(session, tenants, key, resolver)  # type: ignore[arg-type]
            else:
                out[key] = {t: resolve(session, t, key, resolvers) for t in tenants}
    return out


def _resolve_batch(
    session: Reader, tenants: tuple[str, ...], key: str | None, resolver: BatchResolver
) -> dict[str, Availability]:
    try:
        answers = _guarded(session, resolver, lambda: resolver.resolve_batch(cast("Session", session), tenants))
        if not isinstance(answers, Mapping):
            raise TypeError(f"resolve_batch returned {type(answers).__name__}, not a mapping")
    except BaseException as exc:
        if _stops_the_caller(exc):
            raise
        log.warning("availability resolver %r failed for %d tenant(s) (first %r); treating as unavailable",
                    key, len(tenants), tenants[0] if tenants else None, exc_info=True)
        return dict.fromkeys(tenants, _ERROR)
    out: dict[str, Availability] = {}
    missing = junk = 0
    for tenant in tenants:
        result = answers.get(tenant, _MISSING)
        if result is _MISSING:
            missing += 1
        elif not isinstance(result, (Availability, bool)):
            junk += 1
        out[tenant] = _normalize(key, result, log_junk=False)
    if missing or junk:
        log.warning("availability resolver %r gave no answer for %d and no bool or Availability for %d "
                    "of %d tenant(s); treating those as unavailable", key, missing, junk, len(tenants))
    return out


@dataclass(frozen=True)
class AlwaysAvailable:
    """Core groups: available to every tenant."""

    key: str = "core"
    needs_savepoint: ClassVar[bool] = False  # runs no SQL

    def __call__(self, session: Reader, tenant_id: str) -> Availability:
        return _YES

    def resolve_batch(self, session: Reader, tenant_ids: Sequence[str]) -> dict[str, Availability]:
        return dict.fromkeys(tenant_ids, _YES)


_RmmRows = dict[str, dict[str, tuple[bool, datetime | None]]]


@dataclass(frozen=True)
class RmmIntegrationResolver:
    """Available when ``rmm_integrations`` has an active, connected row for (tenant, provider).

    Family ``rmm_integrations``: every RMM resolver reads the same rows through :func:`memo` (key
    ``("rmm_integrations", tenant_ids)``), one statement per tenant list.
    """

    provider: str
    needs_savepoint: ClassVar[bool] = False  # its one query runs in memo's savepoint

    @property
    def key(self) -> str:
        return f"rmm:{self.provider}"

    def __call__(self, session: Reader, tenant_id: str) -> Availability:
        return self.resolve_batch(session, (tenant_id,))[tenant_id]

    def resolve_batch(self, session: Reader, tenant_ids: Sequence[str]) -> dict[str, Availability]:
        ids = tuple(tenant_ids)
        rows: _RmmRows = memo(session, ("rmm_integrations", ids), lambda: _rmm_rows(session, ids),
                              savepoint=True)
        return {t: self._judge(rows.get(t, {}).get(self.provider)) for t in ids}

    @staticmethod
    def _judge(row: tuple[bool, datetime | None] | None) -> Availability:
        if row is None:
            return _NOT_CONNECTED
        is_active, connected_at = row
        if not is_active:
            return _INACTIVE
        if connected_at is None:
            return _NOT_CONNECTED
        return _YES


def _tenant_filter(column: Any, tenant_ids: Sequence[str]) -> Any:
    # One tenant keeps the plain equality the per-tenant path always used; a list becomes IN (...).
    return column == tenant_ids[0] if len(tenant_ids) == 1 else column.in_(tenant_ids)


def _rmm_rows(session: Reader, tenant_ids: Sequence[str]) -> _RmmRows:
    from sqlalchemy import select

    from mspflow.db.tables import rmm_integrations  # Core only: no ORM models to build at start-up

    out: _RmmRows = {}
    if not tenant_ids:
        return out
    R = rmm_integrations.c
    stmt = select(R.tenant, R.provider, R.is_active, R.connected_at).where(_tenant_filter(R.tenant, tenant_ids))
    for tenant, provider, active, connected in session.execute(stmt):
        out.setdefault(tenant, {})[provider] = (bool(active), connected)
    return out


def rmm_integration(provider: str) -> RmmIntegrationResolver:
    """Resolver for an RMM-style integration, key ``rmm:<provider>``."""
    return RmmIntegrationResolver(provider)


@dataclass(frozen=True)
class TeamsIntegrationResolver:
    """Available when the tenant holds the ``teams`` add-on and its Teams app install is ``active``.

    One statement per tenant list (memo key ``("teams", addon_key, tenant_ids)``): ``tenant_addons``
    outer-joined to ``teams_integrations``.
    """

    addon_key: str = "teams"
    needs_savepoint: ClassVar[bool] = False  # its one query runs in memo's savepoint

    @property
    def key(self) -> str:
        return TEAMS_KEY

    def __call__(self, session: Reader, tenant_id: str) -> Availability:
        return self.resolve_batch(session, (tenant_id,))[tenant_id]

    def resolve_batch(self, session: Reader, tenant_ids: Sequence[str]) -> dict[str, Availability]:
        ids = tuple(tenant_ids)
        rows = memo(session, ("teams", self.addon_key, ids), lambda: _teams_rows(session, self.addon_key, ids),
                    savepoint=True)
        now = datetime.now(UTC)
        return {t: self._judge(rows.get(t), now) for t in ids}

    @staticmethod
    def _judge(row: tuple[datetime | None, str | None] | None, now: datetime) -> Availability:
        if row is None:
            return _ADDON_MISSING
        expires_at, status = row
        if expires_at is not None and aware(expires_at) <= now:
            return _ADDON_MISSING
        if status is None or status == "not_configured":
            return _NOT_CONNECTED
        if status != "active":
            return Availability.no(status)
        return _YES


def _teams_rows(
    session: Reader, addon_key: str, tenant_ids: Sequence[str]
) -> dict[str, tuple[datetime | None, str | None]]:
    from sqlalchemy import select

    from mspflow.db.tables import teams_integrations, tenant_addons

    if not tenant_ids:
        return {}
    A, T = tenant_addons.c, teams_integrations.c
    stmt = (
        select(A.tenant, A.expires_at, T.install_status)
        .select_from(tenant_addons)
        .outerjoin(teams_integrations, T.tenant == A.tenant)
        .where(A.addon_key == addon_key, _tenant_filter(A.tenant, tenant_ids))
    )
    return {tenant: (expires_at, status) for tenant, expires_at, status in session.execute(stmt)}


def teams_integration() -> TeamsIntegrationResolver:
    """Resolver for Microsoft Teams, key ``integration:teams``."""
    return TeamsIntegrationResolver()


CORE_ONLY_RESOLVERS: tuple[type, ...] = (AlwaysAvailable, RmmIntegrationResolver, TeamsIntegrationResolver)


def core_only(resolvers: Iterable[Resolver | None]) -> bool:
    """Whether every one of ``resolvers`` is one of the core's own (exactly, not a subclass), whose queries are
    Core statements: they then run on a plain Connection, and the caller need not import SQLAlchemy's ORM
    (``App.catalog``). ``None`` (no resolver registered) calls nothing."""
    return all(r is None or type(r) in CORE_ONLY_RESOLVERS for r in resolvers)
