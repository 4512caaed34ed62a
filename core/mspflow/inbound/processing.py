"""Processing journaled deliveries in a worker: parse into typed events, hand each to the receiver.

The journal row is the state machine, with the invocation ledger's rules (``mspflow.runtime``):

=========================  ====================================================================
journal row                what a worker given its event id does
=========================  ====================================================================
RECEIVED                   claims it: PROCESSING, attempt + 1, a lease; then parses and handles
PROCESSING, lease live     nothing now; the message is re-sent when the lease runs out
PROCESSING, lease expired  its worker died: taken over with attempt + 1
FAILED, retryable          taken over with attempt + 1 (a retry)
PROCESSED, IGNORED,        nothing: a delivery is processed once (``mspflow inbound replay`` puts it
FAILED not retryable       back to RECEIVED on purpose)
=========================  ====================================================================

Every change is a conditional UPDATE on (status, attempt), so of two workers given the same event one
wins. ``parse``, every ``on_event`` and the final PROCESSED run in one transaction, fenced by (lease
owner, attempt): what a handler writes through ``ctx.session`` commits with the result or not at all.
:class:`mspflow.inbound.Ignore` records IGNORED with its reason; an :class:`mspflow.ActionError` records
FAILED with its code and ``retryable``; anything else is a non-retryable ``INTERNAL_ERROR`` (traceback,
scrubbed, to the log). Retryable failures are re-sent with the worker's budgets and backoff
(:data:`mspflow.worker.BUDGETS`), and capped by ``MSPFLOW_MAX_ATTEMPTS`` like action calls.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import dramatiq
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.orm import Session

from mspflow.db.models import InboundEvent
from mspflow.errors import ActionError
from mspflow.inbound.keys import tenant_secrets
from mspflow.inbound.receivers import Delivery, Ignore
from mspflow.redaction import Redactor

if TYPE_CHECKING:
    from mspflow.app import App
    from mspflow.worker import Dispatcher

log = logging.getLogger("mspflow.inbound")

ACTOR = "mspflow_inbound"
_ROUNDS = 5
_T: Table = InboundEvent.__table__  # type: ignore[assignment]
_c = _T.c
_BY_ID = select(*_c).where(_c.event_id == bindparam("eid"))
_FROM = (_c.event_id == bindparam("eid")) & (_c.status == bindparam("from_status")) & (
    _c.attempt == bindparam("from_attempt"))
_CLAIM = _T.update().where(_FROM).values(
    status="PROCESSING", attempt=bindparam("new_attempt"), lease_owner=bindparam("owner"),
    lease_expires_at=bindparam("lease", type_=_c.lease_expires_at.type), processed_at=None)
_GIVE_UP = _T.update().where(_FROM).values(
    status="FAILED", lease_expires_at=None, error_code=bindparam("ec"), error_message=bindparam("em"),
    error_retryable=False, processed_at=bindparam("now", type_=_c.processed_at.type))
_FINISH = _T.update().where(
    (_c.event_id == bindparam("eid")) & (_c.lease_owner == bindparam("owner")) & (
        _c.attempt == bindparam("att")) & (_c.status == "PROCESSING")
).values(status=bindparam("st"), lease_expires_at=None, event_count=bindparam("n"), error_code=bindparam("ec"),
         error_message=bindparam("em"), error_retryable=bindparam("er"),
         processed_at=bindparam("now", type_=_c.processed_at.type))


@dataclass(frozen=True)
class Outcome:
    """What one processing attempt came to. ``retry``: send the message again (after ``retry_after`` s)."""

    status: str
    message: str = ""
    code: str | None = None
    retry: bool = False
    retry_after: float | None = None
    kind: str = "OTHER"  # which retry budget (mspflow.worker.BUDGETS)
    duplicate: bool = False  # nothing ran: the delivery was already final


class Processor:
    """Processes journaled deliveries of one App (its registry, database and secrets)."""

    def __init__(self, app: App, *, owner: str | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.app = app
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock or (lambda: datetime.now(UTC))

    def process(self, event_id: str) -> Outcome:
        """Process one delivery to completion (or explain why not now); database errors propagate."""
        from mspflow.runtime import lease_seconds, max_attempts

        db = self.app.db
        with db.engine.connect() as conn:
            if db.dialect == "sqlite":
                conn.execution_options(mspflow_write=True)
            for _ in range(_ROUNDS):
                with conn.begin():
                    row = conn.execute(_BY_ID, {"eid": event_id}).first()
                    if row is None:
                        return Outcome("MISSING", f"no journaled delivery {event_id}")
                    decided = self._decide(conn, row, lease_seconds(), max_attempts())
                if decided is not None:
                    break
            else:
                return Outcome("BUSY", "the journal row kept changing", retry=True, kind="IN_PROGRESS")
            if isinstance(decided, Outcome):
                return decided
            return self._run(conn, row, attempt=decided)

    def _decide(self, conn: Connection, row: Any, lease_s: float, cap: int) -> Outcome | int | None:
        """The attempt number this worker claimed, an Outcome when there is nothing to do now, or None
        when another worker changed the row meanwhile (read again)."""
        now = self.clock()
        if row.status in ("PROCESSED", "IGNORED") or (row.status == "FAILED" and not row.error_retryable):
            return Outcome(row.status, "already done", duplicate=True)
        if row.status == "PROCESSING" and row.lease_expires_at is not None \
                and _aware(row.lease_expires_at) > now:
            left = (_aware(row.lease_expires_at) - now).total_seconds()
            return Outcome("PROCESSING", "being processed by another worker", retry=True, retry_after=left,
                           kind="IN_PROGRESS")
        where = {"eid": row.event_id, "from_status": row.status, "from_attempt": row.attempt}
        if row.attempt >= cap:
            died = row.status == "PROCESSING"
            message = (f"the worker processing this delivery stopped {row.attempt} times" if died
                       else f"{row.error_message} (gave up after {row.attempt} attempts)")
            code = "TRANSIENT_FAILURE" if died else (row.error_code or "INTERNAL_ERROR")
            if conn.execute(_GIVE_UP, {**where, "ec": code, "em": message, "now": now}).rowcount != 1:
                return None
            log.warning("inbound event %s: %s", row.event_id, message)
            return Outcome("FAILED", message, code=code)
        won = conn.execute(_CLAIM, {**where, "new_attempt": row.attempt + 1, "owner": self.owner,
                                    "lease": now + timedelta(seconds=lease_s)}).rowcount
        return row.attempt + 1 if won == 1 else None

    def _run(self, conn: Connection, row: Any, *, attempt: int) -> Outcome:
        from mspflow.context import ActionContext

        registry = self.app.registry
        receiver = registry.receivers.get(row.provider)
        redactor = Redactor()
        status, count, error = "PROCESSED", 0, None
        ctx: ActionContext | None = None
        if receiver is None:
            error = ActionError("NOT_FOUND", f"no receiver for provider {row.provider!r} is installed in this "
                                "worker; install its plugin, then `mspflow inbound replay "
                                f"{row.event_id}`")
        else:
            try:
                if receiver.on_event is None and row.provider in registry.alert_sources:
                    return self._run_alerts(conn, row, receiver, attempt)
                with conn.begin():
                    session = Session(bind=conn, expire_on_commit=False)
                    try:
                        redactor = Redactor(set(tenant_secrets(self.app.secrets, session, row.tenant).values()))
                        delivery = Delivery(
                            event_id=row.event_id, tenant=row.tenant, provider=row.provider,
                            delivery_id=row.delivery_id, received_at=_aware(row.received_at), payload=row.payload,
                            headers=dict(row.headers or {}), attempt=attempt)
                        events = list(receiver.parse(delivery))
                        bad = [type(e).__name__ for e in events if not isinstance(e, BaseModel)]
                        if bad:
                            raise ActionError.internal(
                                f"the {row.provider} receiver's parse returned {', '.join(sorted(set(bad)))}, "
                                "not pydantic models")
                        count = len(events)
                        if receiver.on_event is not None and events:
                            ctx = ActionContext(
                                tenant_id=row.tenant, session_factory=lambda: session, run_id=f"inbound-{row.event_id}",
                                attempt=attempt, idempotency_key=f"inbound:{row.event_id}",
                                secrets=lambda: self.app.secrets, redactor=redactor, clock=self.clock,
                                db=self.app.db, provider=row.provider,
                                module=registry.modules.get(f"app:{row.provider}"))
                            for event in events:
                                receiver.on_event(event, ctx)
                        session.flush()
                        if not self._finish(conn, row.event_id, attempt, "PROCESSED", count=count):
                            raise _LeaseLost
                    finally:
                        if ctx is not None:
                            ctx.close()
                        session.close()
                log.info("inbound event %s (%s) processed: %d event(s), attempt %d", row.event_id, row.provider,
                         count, attempt)
                return Outcome("PROCESSED", f"{count} event(s)")
            except _LeaseLost:
                return Outcome("LEASE_LOST", "another worker took this delivery over")
            except Ignore as exc:
                status, error = "IGNORED", ActionError("NOT_FOUND", redactor.text(exc.reason or "ignored"),
                                                       retryable=False)
            except ActionError as exc:
                status, error = "FAILED", ActionError(exc.code, redactor.text(exc.message), retryable=exc.retryable,
                                                      retry_after=exc.retry_after)
            except ValidationError as exc:
                status, error = "FAILED", ActionError(
                    "VALIDATION_ERROR", redactor.text(f"the delivery does not have the shape the {row.provider} "
                                                      f"receiver expects: {_first_error(exc)}"))
            except Exception as exc:
                if _is_database_down(exc):  # recorded as a retryable failure if the database lets us
                    log.warning("inbound event %s (%s): the database failed (%s); will retry", row.event_id,
                                row.provider, type(exc).__name__)
                    status, error = "FAILED", ActionError(
                        "TRANSIENT_FAILURE", f"the database was unavailable ({type(exc).__name__})", retryable=True)
                else:
                    log.error("inbound event %s (%s) failed unexpectedly:\n%s", row.event_id, row.provider,
                              redactor.text("".join(traceback.format_exception(exc))))
                    status, error = "FAILED", ActionError.internal(
                        f"the {row.provider} receiver failed unexpectedly ({type(exc).__name__}); the worker log "
                        "has the details")
        assert error is not None
        with conn.begin():
            if status == "IGNORED":
                self._finish(conn, row.event_id, attempt, "IGNORED", message=error.message)
            else:
                self._finish(conn, row.event_id, attempt, "FAILED", error=error)
        if status == "IGNORED":
            log.info("inbound event %s (%s) ignored: %s", row.event_id, row.provider, error.message)
            return Outcome("IGNORED", error.message)
        log.info("inbound event %s (%s) failed: %s %s", row.event_id, row.provider, error.code, error.message)
        kind = error.code if error.code in ("TRANSIENT_FAILURE", "RATE_LIMITED") else "OTHER"
        return Outcome("FAILED", error.message, code=error.code, retry=error.retryable,
                       retry_after=error.retry_after, kind=kind)

    def _run_alerts(self, conn: Connection, row: Any, receiver: Any, attempt: int) -> Outcome:
        """An alert source's delivery: normalized, then each event through the alert pipeline, which commits
        in steps of its own and calls ``tickets.*`` through the runtime (outside the journal's transaction:
        SQLite has one writer); its idempotency keys make a take-over after a crash safe."""
        from mspflow.alerts.events import AlertEvent
        from mspflow.alerts.pipeline import AlertPipeline

        delivery = Delivery(event_id=row.event_id, tenant=row.tenant, provider=row.provider,
                            delivery_id=row.delivery_id, received_at=_aware(row.received_at), payload=row.payload,
                            headers=dict(row.headers or {}), attempt=attempt)
        events = list(receiver.parse(delivery))
        bad = sorted({type(e).__name__ for e in events if not isinstance(e, AlertEvent)})
        if bad:
            raise ActionError.internal(f"the {row.provider} alert normalizer returned {', '.join(bad)}, not "
                                       "AlertEvent")
        # an event is the delivery's tenant's and provider's, whatever the payload claims
        events = [e.model_copy(update={"tenant": row.tenant, "provider": row.provider}) for e in events]
        AlertPipeline(self.app, clock=self.clock).handle_all(events)
        with conn.begin():
            if not self._finish(conn, row.event_id, attempt, "PROCESSED", count=len(events)):
                return Outcome("LEASE_LOST", "another worker took this delivery over")
        log.info("inbound event %s (%s) processed: %d alert event(s), attempt %d", row.event_id, row.provider,
                 len(events), attempt)
        return Outcome("PROCESSED", f"{len(events)} event(s)")

    def _finish(self, conn: Connection, event_id: str, attempt: int, status: str, *, count: int | None = None,
                message: str | None = None, error: ActionError | None = None) -> bool:
        params: dict[str, Any] = {"eid": event_id, "owner": self.owner, "att": attempt, "st": status,
                                  "n": count, "ec": None, "em": message, "er": None, "now": self.clock()}
        if error is not None:
            params |= {"ec": error.code, "em": error.message, "er": error.retryable}
        return int(conn.execute(_FINISH, params).rowcount) == 1

    def give_up(self, event_id: str, reason: str) -> None:
        """Make a retryable failure final (the worker's retry budget ran out)."""
        with self.app.db.session(write=True) as s:
            row = s.get(InboundEvent, event_id)
            if row is None or row.status != "FAILED" or not row.error_retryable:
                return
            row.error_retryable = False
            row.error_message = f"{row.error_message} ({reason})"


class _LeaseLost(Exception):
    pass


def _is_database_down(exc: BaseException) -> bool:
    """The database went away (not a plugin's own SQL mistake, which is a failure like any other)."""
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return isinstance(exc, (OperationalError, InterfaceError, PoolTimeout))


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    return f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- Dramatiq ------------------------------------------------------------------------------------------


class InboundQueue:
    """The inbound actor on a Dispatcher's broker: one message per journaled delivery.

    Messages go to the provider's queue (``mspflow.<provider>``, the queue of its actions too), so
    ``mspflow worker`` processes them beside action calls; on the embedded default, the in-process
    worker threads do.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        from mspflow.worker import QUEUE_PREFIX

        self.dispatcher = dispatcher
        self.prefix = QUEUE_PREFIX
        self.actor = dramatiq.actor(broker=dispatcher.broker, actor_name=ACTOR, queue_name="mspflow.core",
                                    max_retries=0)(self._handle)
        for provider in dispatcher.app.registry.receivers:
            dispatcher.broker.declare_queue(self.prefix + provider)
        self._processor: Processor | None = None

    @property
    def processor(self) -> Processor:
        if self._processor is None:
            self._processor = Processor(self.dispatcher.app)
        return self._processor

    def send(self, event_id: str, provider: str, *, retries: dict[str, int] | None = None,
             delay_s: float = 0.0) -> None:
        queue = self.prefix + provider
        self.dispatcher.broker.declare_queue(queue)
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=queue, actor_name=ACTOR, args=({"event_id": event_id, "provider": provider,
                                                       "retries": retries or {}},), kwargs={}, options={})
        if self.dispatcher.embedded:
            self.dispatcher.start_local_worker()
        self.dispatcher.broker.enqueue(message, delay=int(delay_s * 1000) if delay_s > 0 else None)

    def _handle(self, payload: dict[str, Any]) -> None:
        from mspflow.worker import BUDGETS, backoff

        event_id = payload["event_id"]
        try:
            outcome = self.processor.process(event_id)
        except Exception as exc:  # the database is down, say: keep the delivery moving
            log.warning("inbound event %s: could not process (%s); will retry", event_id, type(exc).__name__)
            outcome = Outcome("FAILED", type(exc).__name__, code="TRANSIENT_FAILURE", retry=True,
                              kind="TRANSIENT_FAILURE")
        if not outcome.retry:
            return
        retries = dict(payload.get("retries") or {})
        kind = outcome.kind if outcome.kind in BUDGETS else "OTHER"
        retries[kind] = retries.get(kind, 0) + 1
        if retries[kind] > BUDGETS[kind]:
            try:
                self.processor.give_up(event_id, f"gave up after {BUDGETS[kind]} retries ({kind.lower()})")
            except Exception:
                log.warning("inbound event %s: could not record giving up", event_id)
            log.warning("inbound event %s: gave up after %d %s retries", event_id, BUDGETS[kind], kind)
            return
        delay = outcome.retry_after if outcome.retry_after is not None else backoff(retries[kind])
        log.info("inbound event %s: %s, retry %d/%d in %.1f s", event_id, outcome.code or outcome.status,
                 retries[kind], BUDGETS[kind], delay)
        self.send(event_id, payload["provider"], retries=retries, delay_s=delay)

    def resume(self, *, older_than_s: float = 0.0) -> int:
        """Send every delivery still waiting for a worker (after a restart of the embedded default)."""
        from mspflow.inbound.journal import pending

        with self.dispatcher.app.db.sessions() as session:
            waiting = pending(session, older_than_s=older_than_s)
        for event_id, provider in waiting:
            self.send(event_id, provider)
        return len(waiting)
