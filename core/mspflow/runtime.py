"""Execute one action call: validate, gate, claim idempotency, run, record, normalize.

The walk (``../shared/design.md``): check the call's envelope and input shape
(:mod:`mspflow.envelope`), look the action up (``NOT_FOUND``), validate the input (``VALIDATION_ERROR``
with field paths), check the module is available for the tenant (``INTEGRATION_INACTIVE``), check the
declared permission (``PERMISSION_DENIED``), claim the idempotency key in the ledger
(:mod:`mspflow.invocations`, whose docstring has the table of what a recorded state answers), call the
handler, validate its output, record SUCCEEDED or FAILED.

One pooled connection serves the whole call. The gate's reads and the claim run in autocommit mode
(one round trip per statement, no BEGIN/COMMIT); the handler's writes and the result commit together
in one transaction, fenced by (lease owner, attempt): a worker that lost its lease cannot overwrite its
successor's result, and its database writes roll back with it. A handler that never touches the
database costs no transaction at all: its result is one autocommit UPDATE.

**Leases and deadlines.** A call's lease (how long a claim stays live without its worker) is
:func:`lease_seconds`, or, for an action that declares ``max_duration_s`` (a Tactical RMM script may
wait 900 s), that plus :data:`LEASE_MARGIN_S`, whichever is longer: :func:`lease_for`. The lease is set
once from the declared deadline rather than renewed by a heartbeat: a heartbeat costs a thread and a
write per running call, and keeps renewing the lease of a handler that hangs forever, while a
declared deadline is known when the action is defined and lets a hung call be taken over at a known
time. The worker interrupts a handler before its lease runs out (:func:`time_limit_s`), and an
interrupted handler (a time limit, a shutdown) ends FAILED with ``details.outcome: "unknown"``, not
retryable when the action has side effects.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from mspflow.availability import request_scope, resolve
from mspflow.clock import utcnow
from mspflow.context import ActionContext
from mspflow.db.engine import is_dead_connection
from mspflow.db.prepared import ConnectionLost
from mspflow.envelope import check_call
from mspflow.errors import ActionError
from mspflow.invocations import (
    ActionCall,
    ActionResult,
    Claim,
    Ledger,
    default_idempotency_key,
    input_hash,
    max_attempts,
)
from mspflow.outbox import ORIGIN_RUN
from mspflow.redaction import Redactor

if TYPE_CHECKING:
    from sqlalchemy import RootTransaction

    from mspflow.db.engine import Database
    from mspflow.hookspecs import PermissionChecker
    from mspflow.modules import Action
    from mspflow.registry import Registry
    from mspflow.secrets import SecretStore

__all__ = ["ActionCall", "ActionResult", "Runtime", "default_idempotency_key", "input_hash", "lease_for",
           "lease_seconds", "max_attempts", "time_limit_s", "validation_error"]

log = logging.getLogger("mspflow.runtime")

CURRENT_RUNTIME: ContextVar[Runtime | None] = ContextVar("mspflow_current_runtime", default=None)
"""The runtime running the current handler: core actions that run other actions (``rmm.alerts.create_ticket``
runs ``tickets.*``) use it; plugins never do."""

LEASE_MARGIN_S = 60.0
"""How much longer than an action's declared ``max_duration_s`` its lease lasts."""


def lease_seconds() -> float:
    """How long a claim stays live without its worker (``MSPFLOW_LEASE_SECONDS``, default 300)."""
    return float(os.environ.get("MSPFLOW_LEASE_SECONDS", "300"))


def lease_for(action: Action) -> float:
    """The lease of a call of ``action``: :func:`lease_seconds`, or its declared deadline plus a margin."""
    declared = action.max_duration_s
    base = lease_seconds()
    return base if declared is None else max(base, declared + LEASE_MARGIN_S)


def time_limit_s(action: Action) -> float:
    """When a worker interrupts a call of ``action``: after its declared deadline, before its lease ends.

    With a declared ``max_duration_s`` that is half the margin after it; otherwise 90% of the lease.
    """
    lease = lease_for(action)
    if action.max_duration_s is not None and lease == action.max_duration_s + LEASE_MARGIN_S:
        return action.max_duration_s + LEASE_MARGIN_S / 2
    return lease * 0.9


def validation_error(exc: ValidationError, what: str = "input") -> ActionError:
    """A pydantic error as ``VALIDATION_ERROR`` with one entry per field path (no raw pydantic text)."""
    fields = [
        {"path": ".".join(str(p) for p in err["loc"]) or "(root)", "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{f['path']}: {f['message']}" for f in fields[:5])
    return ActionError("VALIDATION_ERROR", f"invalid {what}: {summary}", details={"fields": fields})


class Runtime:
    """Runs action calls against one registry and database.

    :param permission_checker: ``(session, tenant_id, permission, call) -> bool``; default allows.
    :param owner: names this process in lease records (host:pid:random by default).
    """

    def __init__(
        self,
        registry: Registry,
        db: Database,
        secrets: Callable[[], SecretStore] | None = None,
        permission_checker: PermissionChecker | None = None,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
    ) -> None:
        self.registry = registry
        self.db = db
        self._secrets = secrets
        self.permission_checker = permission_checker
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ledger = Ledger(self.owner, clock)
        self._local = threading.local()
        self._pins: list[Connection] = []
        self._pins_lock = threading.Lock()

    # -- the walk -----------------------------------------------------------------------------------

    def prepare(self, call: ActionCall) -> tuple[Action, BaseModel]:
        """Steps 1-2 of the walk, without touching the database: the action and its validated input."""
        check_call(call)
        action = self.registry.action(call.action_id, call.version)
        if action is None:
            known = self.registry.action(call.action_id)
            hint = (f"; registered versions go up to {known.version}" if known
                    else "; see `mspflow actions` for what is installed")
            raise ActionError.not_found(
                f"no action {call.action_id!r}{f' version {call.version}' if call.version else ''}{hint}",
                action_id=call.action_id, version=call.version,
            )
        try:
            params = action.input_model.model_validate(call.input)
        except ValidationError as exc:
            raise validation_error(exc) from None
        return action, params

    def needs_gate(self, action: Action) -> bool:
        """Whether :meth:`gate` has anything to check (tile-less actions without permission do not)."""
        return self.registry.module_of(action.id) is not None or (
            action.permission is not None and self.permission_checker is not None)

    def gate(self, session: Session, action: Action, call: ActionCall) -> None:
        """Steps 2b-2c: module availability and the declared permission."""
        module = self.registry.module_of(action.id)
        if module is not None:
            with request_scope(session):
                status = resolve(session, call.tenant_id, module.availability_key, self.registry.resolvers)
            if not status.available:
                how = f"`mspflow tenant connect {call.tenant_id} {module.provider or module.availability_key}`"
                raise ActionError.inactive(
                    f"{module.label} is not connected for tenant {call.tenant_id!r} ({status.reason}); "
                    f"connect it in the integration settings (standalone: {how})",
                    module=module.group_key, reason=status.reason,
                )
        if action.permission and self.permission_checker is not None \
                and not self.permission_checker(session, call.tenant_id, action.permission, call):
            raise ActionError.permission_denied(
                f"{action.id} needs the permission {action.permission!r}", permission=action.permission
            )

    def gate_on(self, conn: Connection, action: Action, call: ActionCall) -> None:
        """:meth:`gate` on ``conn`` (autocommit reads), when the action has anything to check."""
        if self.needs_gate(action):
            with Session(bind=conn) as session:
                self.gate(session, action, call)

    def execute(self, call: ActionCall, *, invocation_id: str | None = None, pinned: bool = False) -> ActionResult:
        """Run one call to completion and return its result; never raises for action failures.

        ``pinned`` (worker threads): keep this thread's database connection between calls instead of
        checking one out of the pool per call (PostgreSQL; at most the pool's size are pinned).
        """
        try:
            action, params = self.prepare(call)
        except ActionError as err:
            if invocation_id is not None:  # a queued call: its record must not stay QUEUED
                self.fail_pending(invocation_id, err)
            return ActionResult(ok=False, error=err, invocation_id=invocation_id)
        data = params.model_dump(mode="json")
        run_id = call.run_id or f"adhoc-{uuid.uuid4()}"
        key = self.key_for(call, action, run_id)
        try:
            for fresh in (False, True):  # a connection that died in the pool: once more on a new one
                with self._connection(pinned and not fresh) as conn:
                    try:
                        claimed = self._gate_and_claim(conn, call, action, data, run_id, key, invocation_id)
                    except (OperationalError, ConnectionLost) as exc:
                        if fresh or not (isinstance(exc, ConnectionLost) or is_dead_connection(exc)):
                            raise
                        continue
                    if isinstance(claimed, ActionResult):
                        return claimed
                    return self._run(conn, call, action, params, run_id, key, claimed)
            raise AssertionError("unreachable")
        except (DBAPIError, ConnectionLost) as exc:  # database down, SQLite's lock busy too long, no schema
            from mspflow.db.errors import SCHEMA_NOT_CURRENT, database_problem

            problem = database_problem(exc)
            if problem is not None and problem.code == SCHEMA_NOT_CURRENT:  # it never will succeed: say why
                return ActionResult(ok=False, invocation_id=invocation_id, error=ActionError(
                    "INTERNAL_ERROR", str(problem), details={"reason": SCHEMA_NOT_CURRENT}, retryable=False))
            if not isinstance(exc, OperationalError | ConnectionLost):
                raise
            log.warning("action %s could not be recorded: %s", action.key,
                        str(getattr(exc, "orig", exc)).strip().splitlines()[:1])
            return ActionResult(ok=False, invocation_id=invocation_id, error=ActionError(
                "TRANSIENT_FAILURE", "the database is unavailable or busy; the call did not run, try again",
                details={"reason": "DATABASE_UNAVAILABLE"}))

    @contextmanager
    def _connection(self, pinned: bool) -> Iterator[Connection]:
        """An autocommit connection: this thread's pinned one, or one from the pool for this call."""
        if not pinned or self.db.dialect == "sqlite":
            with self.db.connect() as each:
                yield each
            return
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._pins_lock:
                if len(self._pins) < self._max_pins():
                    conn = self.db.engine.connect()
                    self._pins.append(conn)
            if conn is None:  # every connection the pool may keep is pinned already
                with self.db.connect() as shared:
                    yield shared
                return
            self._local.conn = conn
        try:
            self.db.autocommit(conn)
            yield conn
        except BaseException:
            self._unpin(conn)
            raise
        if conn.invalidated:
            self._unpin(conn)
        elif conn.in_transaction():
            conn.rollback()

    def _max_pins(self) -> int:
        size = getattr(self.db.engine.pool, "size", None)
        return int(size()) if size is not None else 0

    def _unpin(self, conn: Connection) -> None:
        self._local.conn = None
        with self._pins_lock:
            if conn in self._pins:
                self._pins.remove(conn)
        try:
            conn.close()
        except Exception:
            log.debug("closing a pinned connection failed", exc_info=True)

    def close(self) -> None:
        """Return pinned connections to the pool (call after the worker threads stopped)."""
        with self._pins_lock:
            pins, self._pins = self._pins, []
        for conn in pins:
            try:
                conn.close()
            except Exception:
                log.debug("closing a pinned connection failed", exc_info=True)

    def _gate_and_claim(self, conn: Connection, call: ActionCall, action: Action, data: dict[str, Any],
                        run_id: str, key: str | None, invocation_id: str | None) -> Claim | ActionResult:
        try:
            self.gate_on(conn, action, call)
        except ActionError as err:
            if conn.invalidated:  # a resolver caught the error of a connection that died in the pool
                raise ConnectionLost("the pooled connection was dead; the gate's resolvers swallowed its error") \
                    from None
            if invocation_id is not None:
                self.ledger.fail_pending(conn, invocation_id, err)
                conn.commit()
            return ActionResult(ok=False, error=err, invocation_id=invocation_id)
        claimed = self.ledger.claim(conn, call, action, data, run_id, key, invocation_id, lease_for(action))
        conn.commit()  # autocommit: nothing left to commit, but the connection's SQLAlchemy transaction ends
        return claimed

    @staticmethod
    def key_for(call: ActionCall, action: Action, run_id: str) -> str | None:
        """The idempotency key of a side-effectful call; reads have none and are never replayed."""
        if not action.side_effectful:
            return None
        return call.idempotency_key or default_idempotency_key(
            call.tenant_id, run_id, call.step_path or "-", action.id, action.version)

    # -- running and recording ------------------------------------------------------------------------

    def _run(self, conn: Connection, call: ActionCall, action: Action, params: BaseModel, run_id: str,
             key: str | None, claim: Claim) -> ActionResult:
        redactor = Redactor()
        durable: list[tuple[str, str]] = []
        opened: list[RootTransaction] = []

        def session() -> Session:  # the handler's transaction starts when it first uses the database
            opened.append(self.db.handler_transaction(conn))
            return Session(bind=conn, expire_on_commit=False)

        sent: list[bool] = []

        def sending() -> None:  # before the first side-effectful vendor request of this attempt
            if sent or not action.side_effectful:
                return
            sent.append(True)
            if self.db.writing(conn):  # SQLite, and this call already holds the only write lock
                self.ledger.mark_sent(conn, claim)
                return
            with self.db.connect() as side:  # committed at once, whatever becomes of the handler
                self.ledger.mark_sent(side, claim)

        ctx = ActionContext(
            tenant_id=call.tenant_id, session_factory=session, run_id=run_id, step_path=call.step_path,
            attempt=claim.attempt, idempotency_key=key, invocation_id=claim.invocation_id,
            secrets=self._secrets, redactor=redactor, clock=self.clock, db=self.db,
            module=self.registry.module_of(action.id), durable_secrets=durable,
            holds_write_lock=lambda: self.db.writing(conn), on_sending=sending,
            action_id=action.id, action_version=action.version,
        )
        try:
            running, origin = CURRENT_RUNTIME.set(self), ORIGIN_RUN.set(run_id)
            try:
                produced = action.handler(params, ctx)
            finally:
                ORIGIN_RUN.reset(origin)
                CURRENT_RUNTIME.reset(running)
                ctx.close()
            try:
                output = action.output_model.model_validate(
                    produced.model_dump() if isinstance(produced, BaseModel) else produced
                ).model_dump(mode="json")
            except ValidationError as exc:
                err = validation_error(exc, "output")
                raise ActionError.internal(
                    f"{action.id} returned output that does not match its schema",
                    fields=err.details["fields"]) from None
            output = redactor.data(output)  # a secret echoed into the output is not returned either
            if ctx.session_started:
                ctx.session.flush()
            if not self.ledger.finish(conn, claim, status="SUCCEEDED", output=output):
                raise _LeaseLost
            conn.commit()  # the handler's writes and the result together (autocommit: nothing to send)
            return ActionResult(ok=True, output=output, invocation_id=claim.invocation_id,
                                attempt=claim.attempt)
        except _LeaseLost:
            conn.rollback()
            err = ActionError.conflict("this call's lease expired and another worker took it over",
                                       retryable=True, reason="LEASE_LOST")
            return ActionResult(ok=False, error=err, invocation_id=claim.invocation_id, attempt=claim.attempt)
        except ActionError as exc:
            err = _scrub(exc, redactor)
        except Exception as exc:  # a handler bug: keep the stack in the log, not in the message
            log.error("action %s (invocation %s) failed unexpectedly:\n%s", action.key, claim.invocation_id,
                      redactor.text("".join(traceback.format_exception(exc))))
            err = ActionError.internal(f"{action.id} failed unexpectedly ({type(exc).__name__}); "
                                       "the worker log has the details", invocation_id=claim.invocation_id)
        except BaseException as exc:  # a time limit or a shutdown cut the handler off: record, then go on
            if ctx.session_started:
                ctx.session.close()
            self._interrupted(conn, call, action, claim, durable, exc)
            raise
        finally:
            if ctx.session_started:
                ctx.session.close()
        self._fail(conn, call.tenant_id, claim, err, durable)
        log.info("action %s (invocation %s) failed: %s %s", action.key, claim.invocation_id, err.code,
                 err.message)
        return ActionResult(ok=False, error=err, invocation_id=claim.invocation_id, attempt=claim.attempt)

    def _fail(self, conn: Connection, tenant: str, claim: Claim, err: ActionError,
              durable: list[tuple[str, str]]) -> None:
        """Roll the handler's writes back and record FAILED (replaying secrets that must outlive the call)."""
        conn.rollback()
        if not durable:
            self.db.autocommit(conn)
            self.ledger.finish(conn, claim, status="FAILED", error=err)
            conn.commit()
            return
        with self.db.handler_transaction(conn, write=True), Session(bind=conn) as s:
            self.ledger.finish(conn, claim, status="FAILED", error=err)
            self._replay_durable(s, tenant, durable)
            s.flush()

    def _interrupted(self, conn: Connection, call: ActionCall, action: Action, claim: Claim,
                     durable: list[tuple[str, str]], exc: BaseException) -> None:
        err = ActionError(
            "TRANSIENT_FAILURE", f"{action.id} was interrupted ({type(exc).__name__}) before it finished; "
            "whether it took effect is unknown", retryable=not action.side_effectful,
            details={"outcome": "unknown", "reason": "INTERRUPTED", "interrupted_by": type(exc).__name__})
        log.error("action %s (invocation %s) interrupted by %s", action.key, claim.invocation_id,
                  type(exc).__name__)
        try:
            self._fail(conn, call.tenant_id, claim, err, durable)
        except Exception:  # the interrupt may have broken this connection mid-statement: use another
            try:
                with self.db.connect() as other:
                    self._fail(other, call.tenant_id, claim, err, durable)
            except Exception:
                log.exception("invocation %s: could not record the interruption; its lease will expire",
                              claim.invocation_id)

    def _replay_durable(self, s: Session, tenant: str, durable: list[tuple[str, str]]) -> None:
        """Secrets that must outlive a failed call (a rotated refresh token), when they were written in the
        call's own transaction (SQLite, after the handler had taken the write lock)."""
        if durable and self._secrets is not None:
            store = self._secrets()
            for name, value in durable:
                store.set(s, tenant, name, value)

    # -- ledger writes outside a call -------------------------------------------------------------------

    def give_up(self, invocation_id: str, reason: str) -> None:
        """Make a retryable failure final (a worker's retry budget ran out, or its retry was not sent)."""
        with self.db.connect() as conn:
            self.ledger.give_up(conn, invocation_id, reason)
            conn.commit()

    def fail_pending(self, invocation_id: str, err: ActionError) -> None:
        """End a QUEUED call (or a retryable failure) with ``err``."""
        with self.db.connect() as conn:
            self.ledger.fail_pending(conn, invocation_id, err)
            conn.commit()


class _LeaseLost(Exception):
    pass


def _scrub(exc: ActionError, redactor: Redactor) -> ActionError:
    return ActionError(exc.code, redactor.text(exc.message), details=redactor.data(exc.details),
                       retryable=exc.retryable, retry_after=exc.retry_after)
