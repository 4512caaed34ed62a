"""Triggers: an event (from the outbox, or handed over by a host) starts the tenant's matching workflows,
exactly once per (event, workflow) whatever the number of workers.

The guarantee is a row, not a lock: ``workflow_event_runs`` has the primary key (tenant, event id,
workflow name), and the run is inserted in the same transaction as that row, only when the row was new
(``INSERT … ON CONFLICT DO NOTHING``). A second delivery of the event, or a second worker handed the same
event, inserts nothing and starts nothing. An outbox event the triggers looked at gets ``dispatched_at``,
so :func:`pending_events` reads the index of events not looked at yet instead of every event the outbox
ever held. (Before revision 0011 a row with an empty workflow name marked that; the migration carried
those marks over, and nothing writes them any more.)
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mspflow.clock import utcnow
from mspflow.db.models import OutboxEvent
from mspflow.db.models import WorkflowEventRun as Seen
from mspflow.db.models import WorkflowRun as Run
from mspflow.errors import ActionError
from mspflow.workflows.definitions import Trigger, triggered_by
from mspflow.workflows.runs import new_run

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_T: Table = Seen.__table__  # type: ignore[assignment]
DEFAULT_MAX_DEPTH = 5
DEFAULT_MAX_RUNS = 100
log = logging.getLogger("mspflow.workflows")


def _insert_once(session: Session, values: dict[str, Any]) -> bool:
    """Insert a ``workflow_event_runs`` row; False when its key is already there."""
    if session.get_bind().dialect.name == "postgresql":
        stmt = pg_insert(_T).values(**values).on_conflict_do_nothing().returning(_T.c.event_id)
    else:
        stmt = sqlite_insert(_T).values(**values).on_conflict_do_nothing().returning(_T.c.event_id)
    return session.execute(stmt).scalar() is not None


def max_depth() -> int:
    """How deep runs may start runs through the events their steps emit (``MSPFLOW_MAX_TRIGGER_DEPTH``,
    default 5): a run started by hand or by an outside event is at depth 0, a run started by an event a
    depth-d run's step emitted at d + 1. An event that would start a run deeper starts none, so a workflow
    that triggers itself (``TICKET_CREATED`` → ``tickets.create``) stops instead of running forever."""
    return int(os.environ.get("MSPFLOW_MAX_TRIGGER_DEPTH", str(DEFAULT_MAX_DEPTH)))


def max_runs() -> int:
    """How many runs one chain may start in all (``MSPFLOW_MAX_TRIGGERED_RUNS``, default 100): the runs
    started by events its first run's steps emitted, by the events of those runs' steps, and so on.
    :func:`max_depth` bounds how deep a chain goes; this bounds how wide it fans out (two events each
    matching two workflows would start 2 + 4 + 8 + 16 + 32 runs within the default depth). A run the
    bound refuses is logged as a warning; the event's other workflows are refused the same way."""
    return int(os.environ.get("MSPFLOW_MAX_TRIGGERED_RUNS", str(DEFAULT_MAX_RUNS)))


def lineage(session: Session, event: Mapping[str, Any]) -> tuple[int, str | None]:
    """(depth, the chain's first run) of the runs ``event`` starts: the depth is one more than the run
    whose step emitted it; (0, None) for an event no run emitted."""
    origin = event.get("origin_run_id")
    run = session.get(Run, origin) if isinstance(origin, str) and origin else None
    if run is None or run.tenant != event.get("tenant"):
        return 0, None
    trigger = run.trigger or {}
    return int(trigger.get("depth") or 0) + 1, str(trigger.get("root_run_id") or run.run_id)


def _count_in_chain(session: Session, tenant: str, root: str) -> bool:
    """Count one more run started by ``root``'s chain; False when the chain has started :func:`max_runs`.

    One conditional UPDATE of the chain's first run: however many workers start runs of one chain at
    once, the chain starts at most that many. A first run no longer stored counts nothing.
    """
    counted = session.execute(update(Run).where(
        Run.tenant == tenant, Run.run_id == root, Run.triggered_runs < max_runs()
    ).values(triggered_runs=Run.triggered_runs + 1)).rowcount  # type: ignore[attr-defined]
    return counted == 1 or session.get(Run, root) is None


def start_for_event(session: Session, event: Mapping[str, Any]) -> list[str]:
    """Start (in the caller's transaction) each matching workflow that this event has not started yet."""
    for field in ("event_id", "tenant", "event_type"):
        if not isinstance(event.get(field), str) or not event.get(field):
            raise ActionError.validation(f"an event needs a non-empty {field!r}", fields=[field])
    tenant, event_id, event_type = str(event["tenant"]), str(event["event_id"]), str(event["event_type"])
    payload = event.get("payload") or {}
    if not isinstance(payload, dict):
        raise ActionError.validation("an event's payload must be an object", fields=["payload"])
    started: list[str] = []
    depth, root = lineage(session, event)
    trigger: dict[str, Any] = {"type": event_type, "event_id": event_id}
    if depth:
        trigger |= {"depth": depth, "origin_run_id": event["origin_run_id"], "root_run_id": root}
    for definition in triggered_by(session, tenant, event_type):
        if not Trigger.model_validate(definition.definition.get("trigger") or {}).matches(payload):
            continue
        if depth > max_depth():
            log.warning("event %s (%s) of run %s starts no %r run: it would be %d runs deep, more than "
                        "MSPFLOW_MAX_TRIGGER_DEPTH=%d (a workflow that triggers itself?)", event_id, event_type,
                        event.get("origin_run_id"), definition.name, depth, max_depth())
            continue
        run_id = str(uuid.uuid4())
        if not _insert_once(session, {"tenant": tenant, "event_id": event_id,
                                      "workflow_name": definition.name, "run_id": run_id}):
            continue
        if root is not None and not _count_in_chain(session, tenant, root):
            log.warning("event %s (%s) of run %s starts no %r run: the chain that began with run %s has "
                        "started MSPFLOW_MAX_TRIGGERED_RUNS=%d runs", event_id, event_type,
                        event.get("origin_run_id"), definition.name, root, max_runs())
            session.execute(update(Seen).where(  # looked at for this workflow, and started nothing
                Seen.tenant == tenant, Seen.event_id == event_id, Seen.workflow_name == definition.name
            ).values(run_id=None))
            continue
        new_run(session, definition, payload, trigger, run_id=run_id)
        started.append(run_id)
    looked_at(session, tenant, event_id)
    return started


def looked_at(session: Session, tenant: str, event_id: str) -> None:
    """Mark an outbox event as handed to the triggers (:func:`pending_events` skips it from now on)."""
    session.execute(update(OutboxEvent).where(OutboxEvent.tenant == tenant, OutboxEvent.event_id == event_id,
                                              OutboxEvent.dispatched_at.is_(None)).values(dispatched_at=utcnow()))


def pending_events(session: Session, *, limit: int = 100) -> list[dict[str, Any]]:
    """Outbox events no trigger dispatcher has looked at yet, oldest first (an index range, however many
    events the outbox holds)."""
    from mspflow.outbox import to_json

    stmt = (select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.created_at, OutboxEvent.event_id).limit(limit))
    return [to_json(e) for e in session.execute(stmt).scalars()]
