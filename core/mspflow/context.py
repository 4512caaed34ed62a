"""ActionContext: the only door from an action handler to the outside world."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mspflow.clock import utcnow
from mspflow.errors import ActionError
from mspflow.redaction import Redactor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.orm import Session

    from mspflow.alerts.store import AlertStore
    from mspflow.assets import AssetStore
    from mspflow.db.engine import Database
    from mspflow.microsoft import MicrosoftStore
    from mspflow.modules import Module
    from mspflow.records import Records
    from mspflow.secrets import SecretStore
    from mspflow.vendor import Auth, Vendor, VendorClient


__all__ = ["ActionContext", "RedactingLogger", "utcnow"]

_ACTION_LOG = logging.getLogger("mspflow.action")


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose messages pass through the call's :class:`Redactor` before any handler sees them."""

    def __init__(self, logger: logging.Logger, redactor: Redactor, extra: dict[str, Any]) -> None:
        super().__init__(logger, extra)
        self.redactor = redactor

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.pop("exc_info", None)  # tracebacks could carry secrets; the runtime logs them scrubbed
            out, options = self.process(self.redactor.text(text), kwargs)
            self.logger.log(level, out, **options)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


@dataclass
class ActionContext:
    """What a handler may use: who it runs for, where in which run, and the tenant-scoped doors.

    :param tenant_id: the tenant the call runs for; every query a handler makes must filter on it.
    :param session_factory: makes :attr:`session` on first use.
    :param run_id: the workflow run, and ``step_path`` the step inside it.
    :param attempt: 1 for the first try, incremented on each retry.
    :param idempotency_key: the key the engine claimed for a side-effectful call.
    :param invocation_id: the invocation record of this call.
    :param holds_write_lock: whether the call's own transaction holds SQLite's write lock right now (it
        takes it at its first write, not before); side transactions may write only while it does not.
    :param module: the tile the action belongs to (its provider, its vendor), if any.
    :param on_sending: the runtime's hook run before the first side-effectful vendor request of the call.
    """

    tenant_id: str
    session_factory: Callable[[], Session] = field(repr=False)
    run_id: str | None = None
    step_path: str | None = None
    attempt: int = 1
    idempotency_key: str | None = None
    invocation_id: str | None = None
    secrets: Callable[[], SecretStore] | None = field(default=None, repr=False)
    db: Database | None = field(default=None, repr=False)
    provider: str | None = None
    module: Module | None = field(default=None, repr=False)
    durable_secrets: list[tuple[str, str]] = field(default_factory=list, repr=False)
    holds_write_lock: Callable[[], bool] = field(default=lambda: True, repr=False)
    on_sending: Callable[[], None] = field(default=lambda: None, repr=False)
    redactor: Redactor = field(default_factory=Redactor, repr=False)
    clock: Callable[[], datetime] = utcnow
    action_id: str | None = None
    action_version: int | None = None
    logger: RedactingLogger = field(init=False, repr=False)
    _closers: list[Callable[[], None]] = field(init=False, repr=False, default_factory=list)
    _locked: dict[str, Session] = field(init=False, repr=False, default_factory=dict)
    _session: Session | None = field(init=False, repr=False, default=None)
    _integration: tuple[str | None, dict[str, Any]] | None = field(init=False, repr=False, default=None)
    _tenant_secrets: dict[str, str] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.provider is None and self.module is not None:
            self.provider = self.module.provider
        self.logger = RedactingLogger(_ACTION_LOG, self.redactor,
                                      {"tenant": self.tenant_id, "invocation_id": self.invocation_id})

    @property
    def session(self) -> Session:
        """A database session in the call's transaction: what the handler writes commits with its result."""
        if self._session is None:
            self._session = self.session_factory()
        return self._session

    @property
    def session_started(self) -> bool:
        return self._session is not None

    @property
    def auth(self) -> type:
        """The declarative auth strategies (``ctx.auth.api_key_header(...)``), see :mod:`mspflow.vendor.auth`."""
        from mspflow.vendor.auth import auth

        return auth

    def _integration_row(self) -> tuple[str | None, dict[str, Any]]:
        if self._integration is None:
            row = None
            if self.provider:
                from sqlalchemy import select

                from mspflow.db.models import RmmIntegration as R

                row = self.session.execute(select(R.instance_url, R.settings).where(
                    R.tenant == self.tenant_id, R.provider == self.provider)).first()
            self._integration = (row[0], dict(row[1] or {})) if row is not None else (None, {})
        return self._integration

    @property
    def instance_url(self) -> str | None:
        """The tenant's instance URL for this action's integration (``rmm_integrations.instance_url``), if any."""
        return self._integration_row()[0]

    @property
    def settings(self) -> dict[str, Any]:
        """The tenant's settings of this action's integration (``rmm_integrations.settings``; a copy)."""
        return dict(self._integration_row()[1])

    def http(self, vendor: Vendor | None = None, *, auth: Auth | None = None,
             timeout_s: float | None = None, base_url: str | None = None) -> VendorClient:
        """A client for the tile's vendor (or ``vendor``) for this tenant: base URL, auth, throttling, retries
        and errors handled by the core. ``auth`` overrides the vendor's declared strategy for this call.
        ``base_url`` (e.g. a Bot Framework ``serviceUrl`` from a stored conversation) replaces the instance
        URL; it must name one of the vendor's hosts exactly (else ``VALIDATION_ERROR`` with reason
        ``HOST_NOT_ALLOWED``, before any request or token is sent)."""
        from mspflow.vendor.client import make_client

        spec = vendor if vendor is not None else (self.module.vendor if self.module is not None else None)
        if spec is None:
            raise ActionError.internal("this action's tile declares no vendor; pass Module(..., vendor=Vendor(...))")
        self.load_secrets()  # whatever the vendor echoes back, every secret of the tenant is scrubbed
        url = base_url if base_url is not None else self.instance_url
        return make_client(self, spec, instance_url=url, auth=auth, timeout_s=timeout_s)

    @property
    def microsoft(self) -> MicrosoftStore:
        """The tenant's Microsoft set-up: Teams binding and profile, user links, bot conversation references."""
        from mspflow.microsoft import MicrosoftStore

        return MicrosoftStore(lambda: self.session, self.tenant_id, self.clock)

    @property
    def assets(self) -> AssetStore:
        """The tenant's assets synced from this action's provider (find, look up, upsert)."""
        from mspflow.assets import AssetStore

        return AssetStore(lambda: self.session, self.tenant_id, self._require_provider(), self.redactor, self.clock)

    @property
    def alerts(self) -> AlertStore:
        """The tenant's RMM alerts from this action's provider (read, record, acknowledge)."""
        from mspflow.alerts.store import AlertStore

        return AlertStore(lambda: self.session, self.tenant_id, self._require_provider(), self.redactor, self.clock)

    @property
    def records(self) -> Records:
        """The tenant's rows of the reference PSA schema (tickets, clients, ...), in the call's transaction;
        see :mod:`mspflow.records`."""
        from mspflow.records import Records

        action = (self.action_id, self.action_version or 1) if self.action_id else None
        return Records(lambda: self.session, self.tenant_id, action=action, run_id=self.run_id,
                       invocation_id=self.invocation_id, clock=self.clock)

    def fetch_public(self, url: str, *, max_bytes: int, field: str = "url") -> tuple[bytes, str | None]:
        """GET a public https URL (no private, loopback or link-local address, checked after DNS; no redirects;
        never with the tenant's credentials), at most ``max_bytes``: (content, content type). See
        :mod:`mspflow.vendor.fetch`."""
        from mspflow.vendor.fetch import fetch_public

        fetched = fetch_public(url, max_bytes=max_bytes, field=field)
        return fetched.content, fetched.content_type

    def store_file(self, content: bytes) -> tuple[str, str]:
        """Keep ``content`` for this tenant (the attachments directory, :mod:`mspflow.files`):
        (storage reference, sha256)."""
        from mspflow import files

        return files.put(self.tenant_id, content)

    def sending_side_effect(self) -> None:
        """Called by the vendor layer just before a side-effectful request leaves: the runtime records it, so
        a worker killed from here on leaves a call that is never sent again (its outcome is unknown)."""
        self.on_sending()

    def _require_provider(self) -> str:
        if not self.provider:
            raise ActionError.internal("assets and alerts belong to an integration; this action has no tile")
        return self.provider

    def close(self) -> None:
        """Release what the call opened (the runtime calls this when the handler returns or raises)."""
        while self._closers:
            self._closers.pop()()

    def secret(self, name: str, *, required: bool = True, fresh: bool = False) -> str | None:
        """The tenant's secret ``name``; every secret of the tenant is scrubbed from everything this call records.

        The first read loads the tenant's whole set in one query (:meth:`load_secrets`), so a secret the
        call never reads is still scrubbed when a vendor echoes it. A missing required secret is
        ``INTEGRATION_INACTIVE`` saying how to store it. ``fresh`` reads what other transactions committed
        since this call began (e.g. a token another worker refreshed).
        """
        if self.secrets is None:
            value = None
        elif name in self._locked:
            self.load_secrets()
            value = self.secrets().get(self._locked[name], self.tenant_id, name)
        elif fresh and self.db is not None and self._separate_sessions:
            self.load_secrets()
            with self.db.session() as s:
                value = self.secrets().get(s, self.tenant_id, name)
        else:
            value = self.load_secrets().get(name)
        if value is None:
            if required:
                raise ActionError(
                    "INTEGRATION_INACTIVE",
                    f"tenant {self.tenant_id!r} has no secret {name!r}; store it in the integration "
                    f"settings (standalone: `mspflow tenant set-secret {self.tenant_id} {name}`)",
                    details={"reason": "SECRET_MISSING", "name": name},
                )
            return None
        self.redactor.add(value)
        if self._tenant_secrets is not None:
            self._tenant_secrets[name] = value
        return value

    def load_secrets(self) -> dict[str, str]:
        """Every secret of the tenant, read once per call in one query and all added to :attr:`redactor`."""
        if self._tenant_secrets is None:
            if self.secrets is None:
                return {}
            from mspflow.secrets import SecretKeyMissing, all_secrets

            try:
                store = self.secrets()
            except SecretKeyMissing as exc:  # an operator's set-up, not a bug of the action
                raise ActionError.internal(str(exc), reason="SECRET_KEY_MISSING") from None
            self._tenant_secrets = all_secrets(store, self.session, self.tenant_id)
            self.redactor.add_all(self._tenant_secrets.values())
        return self._tenant_secrets

    def store_secret(self, name: str, value: str) -> None:
        """Store a secret at once, outside the call's transaction (a rotated refresh token must survive even
        if the action then fails)."""
        self.redactor.add(value)
        if self._tenant_secrets is not None:
            self._tenant_secrets[name] = value
        if self.secrets is None:
            raise ActionError.internal("no secret store is configured")
        if name in self._locked:
            self.secrets().set(self._locked[name], self.tenant_id, name, value)
        elif self._separate_sessions:
            assert self.db is not None
            with self.db.session(write=True) as s:
                self.secrets().set(s, self.tenant_id, name, value)
        else:
            # SQLite, after the call's first write: its transaction holds the only write lock, so write
            # through it and let the runtime write it again should the call fail and roll back.
            self.secrets().set(self.session, self.tenant_id, name, value)
            self.durable_secrets.append((name, value))

    @property
    def _separate_sessions(self) -> bool:
        """Whether side transactions may write beside the call's: on PostgreSQL always, on SQLite (one
        writer per file) while the call's own transaction has not taken the write lock."""
        if self.db is None:
            return False
        return self.db.dialect != "sqlite" or not (self.session_started and self.holds_write_lock())

    @contextmanager
    def locked_secret(self, name: str) -> Iterator[None]:
        """Hold the secret's row lock (PostgreSQL ``FOR UPDATE``) so one process at a time rewrites it."""
        if not self._separate_sessions or name in self._locked:
            yield  # SQLite after the call's first write: its own transaction already excludes other writers
            return
        assert self.db is not None
        from sqlalchemy import select

        from mspflow.db.models import TenantSecret as S

        with self.db.session(write=True) as s:  # SQLite: the write lock stands in for the row lock
            s.execute(select(S.name).where(S.tenant == self.tenant_id, S.name == name).with_for_update())
            self._locked[name] = s
            try:
                yield
            finally:
                del self._locked[name]
