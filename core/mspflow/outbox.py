"""The outbox: events mspflow writes for the host, in the same transaction as the change they describe.

A host polls :func:`pending`, delivers each event (e.g. its calendar sync pushes a new schedule entry to
the technician's calendar) and then calls :func:`ack`. Because an event is inserted in the transaction
that made the change, a crash can never leave a change without its event or an event without its change.
Delivery is at least once: ack after the event's effect is done, and make that effect idempotent by
``event_id``.

Examples::

    from mspflow import outbox

    with app.db.session() as session:
        for event in outbox.pending(session, event_type="SCHEDULE_ENTRY_CREATED"):
            calendar_sync.push(event["payload"])
            outbox.ack(session, [event["event_id"]])
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mspflow.db.models import OutboxEvent

SCHEDULE_ENTRY_CREATED = "SCHEDULE_ENTRY_CREATED"
RMM_ALERT_TRIGGERED = "RMM_ALERT_TRIGGERED"
"""An RMM alert fired and was decided (ticket created or joined, or none): the workflow engine's trigger.
The payload is provider-generic: alert_id, provider, external_alert_id, severity, device_id, asset_id,
ticket_id, occurrence_count, matched_rule_id, ... (:func:`mspflow.alerts.pipeline.payload`). Suppressed
alerts emit nothing."""
RMM_ALERT_RESOLVED = "RMM_ALERT_RESOLVED"
"""An RMM alert reset (from the RMM, or synthesized by the reconciliation poll); same payload."""
USER_NOTIFICATION = "USER_NOTIFICATION"
"""An in-app notification for ``payload.user_id`` (a matched alert rule's users to notify)."""
TICKET_CREATED = "TICKET_CREATED"  # tickets.create (mspflow-psa, or a host's own implementation)
TICKET_CLOSED = "TICKET_CLOSED"  # tickets.close


ORIGIN_RUN: ContextVar[str | None] = ContextVar("mspflow_outbox_origin_run", default=None)
"""The run id of the action call whose handler is running (the runtime sets it): what :func:`emit` records as
an event's ``origin_run_id``."""


def emit(session: Session, tenant: str, event_type: str, payload: dict[str, Any]) -> str:
    """Add an event to the caller's transaction; returns its id. Inside an action's handler the event
    names the call's run (``origin_run_id``)."""
    event = OutboxEvent(tenant=tenant, event_type=event_type, payload=payload, created_at=datetime.now(UTC),
                        origin_run_id=ORIGIN_RUN.get())
    session.add(event)
    session.flush()
    return event.event_id


def pending(session: Session, *, tenant: str | None = None, event_type: str | None = None,
            limit: int = 100, include_delivered: bool = False) -> list[dict[str, Any]]:
    """Undelivered events, oldest first (all events with ``include_delivered``)."""
    stmt = select(OutboxEvent)
    if not include_delivered:
        stmt = stmt.where(OutboxEvent.delivered_at.is_(None))
    if tenant is not None:
        stmt = stmt.where(OutboxEvent.tenant == tenant)
    if event_type is not None:
        stmt = stmt.where(OutboxEvent.event_type == event_type)
    stmt = stmt.order_by(OutboxEvent.created_at, OutboxEvent.event_id).limit(limit)
    return [to_json(e) for e in session.execute(stmt).scalars()]


def ack(session: Session, event_ids: Iterable[str], *, tenant: str | None = None) -> int:
    """Mark events delivered; returns how many were pending. Acking twice is harmless."""
    ids = list(event_ids)
    if not ids:
        return 0
    stmt = update(OutboxEvent).where(OutboxEvent.event_id.in_(ids), OutboxEvent.delivered_at.is_(None))
    if tenant is not None:
        stmt = stmt.where(OutboxEvent.tenant == tenant)
    return int(session.execute(stmt.values(delivered_at=datetime.now(UTC))).rowcount)  # type: ignore[attr-defined]


def to_json(event: OutboxEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id, "tenant": event.tenant, "event_type": event.event_type,
        "payload": event.payload, "created_at": _iso(event.created_at), "delivered_at": _iso(event.delivered_at),
        "origin_run_id": event.origin_run_id,
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
