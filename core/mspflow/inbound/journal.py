"""The delivery journal (``inbound_events``) and the webhook connections (``inbound_connections``).

A verified delivery is written once per (tenant, provider, delivery id): the insert skips an existing
id (``ON CONFLICT DO NOTHING``), so a replayed delivery is answered 200 and journaled no second time.
A connection binds an unguessable token (``secrets.token_urlsafe(32)``) to one tenant's provider; its
signing key or shared secret is the tenant secret the receiver names (``<provider>_webhook_secret``).

Examples::

    hook = ensure_webhook(session, app.secrets, app.registry, "acme-corp", "level")   # token, secret
    hook.path                                          # '/hooks/level/<token>'
    find_connection(session, "level", hook.token)      # Connection(connection_id, tenant='acme-corp', ...)
    recent(session, tenant="acme-corp", status="FAILED")
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from mspflow.db.models import InboundConnection, InboundEvent
from mspflow.inbound.verify import new_secret

if TYPE_CHECKING:
    from sqlalchemy.sql.dml import Insert

    from mspflow.registry import Registry
    from mspflow.secrets import SecretStore

MAX_BODY_ENV = "MSPFLOW_INBOUND_MAX_BODY_BYTES"
DEFAULT_MAX_BODY = 1024 * 1024
STATUSES = ("RECEIVED", "PROCESSING", "PROCESSED", "IGNORED", "FAILED")
FINAL = ("PROCESSED", "IGNORED")

_E: Table = InboundEvent.__table__  # type: ignore[assignment]
_C: Table = InboundConnection.__table__  # type: ignore[assignment]
_BY_TOKEN = select(_C.c.connection_id, _C.c.tenant).where(
    _C.c.token == bindparam("token"), _C.c.provider == bindparam("provider"))


def max_body_bytes() -> int:
    """The largest body accepted (``MSPFLOW_INBOUND_MAX_BODY_BYTES``, default 1 MiB); larger: 413."""
    raw = os.environ.get(MAX_BODY_ENV)
    if not raw:
        return DEFAULT_MAX_BODY
    value = int(raw)
    if value < 1:
        raise ValueError(f"{MAX_BODY_ENV} must be a positive number of bytes, got {raw!r}")
    return value


class UnknownReceiver(ValueError):
    """No installed plugin receives deliveries for the provider."""


# -- connections ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    connection_id: str
    tenant: str
    provider: str


@dataclass(frozen=True)
class Webhook:
    """What an operator pastes into the vendor's console. ``secret`` is set only when it was just made."""

    tenant: str
    provider: str
    token: str
    created: bool
    rotated: bool
    secret_name: str | None
    secret: str | None

    @property
    def path(self) -> str:
        return f"/hooks/{self.provider}/{self.token}"


def find_connection(session: Session, provider: str, token: str) -> Connection | None:
    """The connection a delivery URL names, or None (answered 404)."""
    if not token or len(token) > 64:
        return None
    row = session.connection().execute(_BY_TOKEN, {"token": token, "provider": provider}).first()
    return None if row is None else Connection(row.connection_id, row.tenant, provider)


def receiver_for(registry: Registry, provider: str) -> Any:
    receiver = registry.receivers.get(provider)
    if receiver is None:
        known = ", ".join(sorted(registry.receivers)) or "none: install a plugin that receives webhooks"
        raise UnknownReceiver(f"no installed plugin receives webhooks for {provider!r}; known: {known}")
    return receiver


def ensure_webhook(session: Session, store: SecretStore, registry: Registry, tenant: str, provider: str, *,
                   rotate: bool = False, secret: str | None = None) -> Webhook:
    """Create the tenant's connection for ``provider`` (or rotate its token and secret) and return it.

    Without ``rotate`` an existing connection keeps its token and secret (and the secret is not shown
    again). ``secret``: store this value (one the vendor generated) instead of making one.
    """
    receiver = receiver_for(registry, provider)
    now = datetime.now(UTC)
    row = session.execute(select(InboundConnection).where(
        InboundConnection.tenant == tenant, InboundConnection.provider == provider)).scalar_one_or_none()
    created = row is None
    if row is None:
        row = InboundConnection(tenant=tenant, provider=provider, token=secrets.token_urlsafe(32), created_at=now)
        session.add(row)
    elif rotate:
        row.token = secrets.token_urlsafe(32)
        row.rotated_at = now
    session.flush()
    shown: str | None = None
    name: str | None = receiver.secret if (receiver.verify.needs_secret or secret) else None
    if name is not None:
        if secret is not None:
            store.set(session, tenant, name, secret)
        elif created or rotate or store.get(session, tenant, name) is None:
            shown = new_secret()
            store.set(session, tenant, name, shown)
    return Webhook(tenant, provider, row.token, created, rotate and not created, name, shown)


def connections(session: Session, tenant: str | None = None) -> list[dict[str, Any]]:
    stmt = select(InboundConnection).order_by(InboundConnection.tenant, InboundConnection.provider)
    if tenant is not None:
        stmt = stmt.where(InboundConnection.tenant == tenant)
    return [{"connection_id": c.connection_id, "tenant": c.tenant, "provider": c.provider,
             "created_at": _iso(c.created_at), "rotated_at": _iso(c.rotated_at)}
            for c in session.execute(stmt).scalars()]


# -- the journal ---------------------------------------------------------------------------------------


@cache
def insert_once(dialect: str) -> Insert:
    """An INSERT of one journal row that does nothing when the delivery id is already journaled; it returns
    the new row's ``event_id``, or no row for a replay."""
    keys = ["tenant", "provider", "delivery_id"]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(_E).on_conflict_do_nothing(index_elements=keys).returning(_E.c.event_id)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(_E).on_conflict_do_nothing(index_elements=keys).returning(_E.c.event_id)
    # other databases: the unique constraint raises, and the caller treats it as a replay
    return insert(_E).returning(_E.c.event_id)


def new_row(*, tenant: str, provider: str, connection_id: str | None, delivery_id: str, payload: Any,
            headers: Mapping[str, str], content_type: str | None, received_at: datetime) -> dict[str, Any]:
    return {"event_id": str(_uuid()), "tenant": tenant, "provider": provider, "connection_id": connection_id,
            "delivery_id": delivery_id, "received_at": received_at, "content_type": content_type,
            "headers": dict(headers), "payload": payload, "status": "RECEIVED", "attempt": 0}


def to_json(row: Any, *, payload: bool = True) -> dict[str, Any]:
    error, reason = None, None
    if row.status == "IGNORED":
        reason = row.error_message
    elif row.error_code or row.error_message:
        error = {"code": row.error_code, "message": row.error_message, "retryable": bool(row.error_retryable)}
    data = {
        "event_id": row.event_id, "tenant": row.tenant, "provider": row.provider,
        "delivery_id": row.delivery_id, "status": row.status, "attempt": row.attempt,
        "event_count": row.event_count, "reason": reason, "error": error, "received_at": _iso(row.received_at),
        "processed_at": _iso(row.processed_at), "content_type": row.content_type,
    }
    if payload:
        data |= {"headers": row.headers or {}, "payload": row.payload}
    return data


def get(session: Session, event_id: str) -> dict[str, Any] | None:
    row = session.get(InboundEvent, event_id)
    return None if row is None else to_json(row)


def recent(session: Session, *, tenant: str | None = None, status: str | None = None,
           provider: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Journaled deliveries, newest first (without payloads)."""
    stmt = select(InboundEvent)
    if tenant is not None:
        stmt = stmt.where(InboundEvent.tenant == tenant)
    if status is not None:
        stmt = stmt.where(InboundEvent.status == status.upper())
    if provider is not None:
        stmt = stmt.where(InboundEvent.provider == provider)
    stmt = stmt.order_by(InboundEvent.received_at.desc(), InboundEvent.event_id).limit(limit)
    return [to_json(r, payload=False) for r in session.execute(stmt).scalars()]


class ReplayRefused(ValueError):
    """A replay that would do harm or cannot be done; the message says why and what to do."""


def reset_for_replay(session: Session, event_id: str, *, force: bool = False,
                     now: datetime | None = None) -> dict[str, Any]:
    """Put a journaled delivery back to RECEIVED (attempts reset) so a worker processes it again.

    Refused for an unknown id, for one being processed right now (live lease), and, without ``force``,
    for one already PROCESSED (its handler would run a second time).
    """
    now = now or datetime.now(UTC)
    row = session.get(InboundEvent, event_id, with_for_update=True)
    if row is None:
        raise ReplayRefused(f"no journaled delivery {event_id!r}; see `mspflow inbound list`")
    if row.status == "PROCESSING" and row.lease_expires_at is not None and _aware(row.lease_expires_at) > now:
        raise ReplayRefused(f"delivery {event_id} is being processed right now (attempt {row.attempt}); "
                            "wait for it to finish")
    if row.status == "PROCESSED" and not force:
        raise ReplayRefused(f"delivery {event_id} was already processed; pass --force to process it again "
                            "(its handler runs a second time)")
    was, provider, tenant = row.status, row.provider, row.tenant
    session.execute(update(InboundEvent).where(InboundEvent.event_id == event_id).values(
        status="RECEIVED", attempt=0, lease_owner=None, lease_expires_at=None, error_code=None,
        error_message=None, error_retryable=None, processed_at=None, event_count=None))
    return {"event_id": event_id, "provider": provider, "tenant": tenant, "was": was}


def pending(session: Session, *, now: datetime | None = None, older_than_s: float = 0.0,
            limit: int = 1000) -> list[tuple[str, str]]:
    """(event id, provider) of deliveries waiting for a worker: RECEIVED, a retryable failure, or
    PROCESSING whose lease expired (its worker died)."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=older_than_s)
    e = InboundEvent
    waiting = ((e.status == "RECEIVED") & (e.received_at <= cutoff)) | (
        (e.status == "FAILED") & e.error_retryable.is_(True)) | (
        (e.status == "PROCESSING") & (e.lease_expires_at < now))
    stmt = select(e.event_id, e.provider).where(waiting).order_by(e.received_at).limit(limit)
    return [(r.event_id, r.provider) for r in session.execute(stmt)]


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _aware(moment).isoformat()
