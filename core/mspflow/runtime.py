"""Execute one action call: validate, gate, claim idempotency, run, record, normalize.

The walk (``../shared/design.md``): look the action up (``NOT_FOUND``), validate the input
(``VALIDATION_ERROR`` with field paths), check the module is available for the tenant
(``INTEGRATION_INACTIVE``), check the declared permission (``PERMISSION_DENIED``), claim the
idempotency key in ``workflow_action_invocations``, call the handler, validate its output, record
SUCCEEDED or FAILED.

Idempotency has Stripe-like semantics. The key defaults to a SHA-256 of tenant, run id, step path,
action id and version. For an existing key:

==========================  ===================================================================
recorded state              what a new call with the same key gets
==========================  ===================================================================
SUCCEEDED                   the recorded output, ``replayed: true``; the handler is not called
FAILED, not retryable       the recorded error, ``replayed: true``
FAILED, retryable           a new run with ``attempt + 1``
RUNNING, lease live         retryable ``CONFLICT`` (in progress), ``retry_after`` = lease left
RUNNING, lease expired      the worker died: taken over with ``attempt + 1``
QUEUED (from ``enqueue``)   run with ``attempt + 1``
any, different input        ``CONFLICT``, not retryable
==========================  ===================================================================

Every state change is a conditional UPDATE on (status, attempt), so of two racing callers exactly
one wins; the loser re-reads the row. The result is committed in the handler's own transaction, fenced
by (lease owner, attempt): a worker that lost its lease cannot overwrite its successor's result, and
its database writes roll back with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from mspflow.availability import request_scope, resolve
from mspflow.context import ActionContext, utcnow
from mspflow.db.models import WorkflowActionInvocation as Inv
from mspflow.errors import ActionError
from mspflow.redaction import Redactor, cap

if TYPE_CHECKING:

    from mspflow.db.engine import Database
    from mspflow.modules import Action
    from mspflow.registry import Registry
    from mspflow.secrets import SecretStore

log = logging.getLogger("mspflow.runtime")

PermissionChecker = Callable[["Session", str, str, "ActionCall"], bool]
TERMINAL = ("SUCCEEDED", "FAILED")
_CLAIM_ROUNDS = 5


def max_attempts() -> int:
    """How many times one call may run before it fails for good (``MSPFLOW_MAX_ATTEMPTS``, default 10)."""
    return int(os.environ.get("MSPFLOW_MAX_ATTEMPTS", "10"))


def lease_seconds() -> float:
    """How long a claim stays live without its worker (``MSPFLOW_LEASE_SECONDS``, default 300)."""
    return float(os.environ.get("MSPFLOW_LEASE_SECONDS", "300"))


# The hot path runs prebuilt Core statements: building ORM statements per call cost more CPU than the
# database round trips they make (see benchmarks/worker.py).
_T: Table = Inv.__table__  # type: ignore[assignment]
_c = _T.c
_INSERT = _T.insert()
_BY_KEY = select(*_c).where(_c.tenant == bindparam("tenant_"), _c.action_id == bindparam("action_id_"),
                            _c.action_version == bindparam("version_"), _c.idempotency_key == bindparam("key_"))
_BY_ID = select(*_c).where(_c.invocation_id == bindparam("iid"))
_FROM = (_c.invocation_id == bindparam("iid")) & (_c.status == bindparam("from_status")) & (
    _c.attempt == bindparam("from_attempt"))
_TAKE_OVER = _T.update().where(_FROM).values(
    status="RUNNING", attempt=bindparam("new_attempt"), lease_owner=bindparam("owner"),
    lease_expires_at=bindparam("lease", type_=_c.lease_expires_at.type),
    started_at=bindparam("now", type_=_c.started_at.type), completed_at=None)
_START_QUEUED = _T.update().where(
    (_c.invocation_id == bindparam("iid")) & (_c.status == "QUEUED") & (_c.input_hash == bindparam("hash_"))
).values(status="RUNNING", attempt=_c.attempt + 1, lease_owner=bindparam("owner"),
         lease_expires_at=bindparam("lease", type_=_c.lease_expires_at.type),
         started_at=bindparam("now", type_=_c.started_at.type)).returning(_c.attempt)
_FAIL_FROM = _T.update().where(_FROM).values(
    status="FAILED", completed_at=bindparam("now", type_=_c.completed_at.type), lease_expires_at=None,
    error_code=bindparam("ec"), error_message=bindparam("em"),
    error_details=bindparam("ed", type_=_c.error_details.type), error_retryable=False)
_FINISH = _T.update().where(
    (_c.invocation_id == bindparam("iid")) & (_c.lease_owner == bindparam("owner")) & (
        _c.attempt == bindparam("att")) & (_c.status == "RUNNING")
).values(status=bindparam("st"), completed_at=bindparam("now", type_=_c.completed_at.type), lease_expires_at=None,
         output=bindparam("out", type_=_c.output.type), error_code=bindparam("ec"), error_message=bindparam("em"),
         error_details=bindparam("ed", type_=_c.error_details.type), error_retryable=bindparam("er"))


@dataclass(frozen=True)
class ActionCall:
    """One call of an action by a workflow step (or the CLI).

    Without ``run_id`` a call is ad hoc: it gets a fresh run id, so it never replays another call.
    """

    action_id: str
    tenant_id: str
    input: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    run_id: str | None = None
    step_path: str | None = None
    idempotency_key: str | None = None


@dataclass
class ActionResult:
    """What a call came to. ``to_json()`` is the shape ``mspflow run --json`` prints."""

    ok: bool
    output: dict[str, Any] | None = None
    error: ActionError | None = None
    invocation_id: str | None = None
    replayed: bool = False
    attempt: int = 0

    def to_json(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "output": self.output, "invocation_id": self.invocation_id,
                    "replayed": self.replayed}
        assert self.error is not None
        return {"ok": False, "error": self.error.to_dict(), "invocation_id": self.invocation_id,
                "replayed": self.replayed}


def default_idempotency_key(tenant: str, run_id: str, step_path: str, action_id: str, version: int) -> str:
    """SHA-256 over the parts, length-prefixed so no two different tuples can collide."""
    digest = hashlib.sha256()
    for part in (tenant, run_id, step_path, action_id, str(version)):
        raw = part.encode()
        digest.update(len(raw).to_bytes(8, "big") + raw)
    return digest.hexdigest()


def input_hash(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validation_error(exc: ValidationError, what: str = "input") -> ActionError:
    """A pydantic error as ``VALIDATION_ERROR`` with one entry per field path (no raw pydantic text)."""
    fields = [
        {"path": ".".join(str(p) for p in err["loc"]) or "(root)", "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{f['path']}: {f['message']}" for f in fields[:5])
    return ActionError("VALIDATION_ERROR", f"invalid {what}: {summary}", details={"fields": fields})


@dataclass
class _Claim:
    invocation_id: str
    attempt: int
    owner: str


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

    # -- the walk -----------------------------------------------------------------------------------

    def prepare(self, call: ActionCall) -> tuple[Action, BaseModel]:
        """Steps 1-2 of the walk, without touching the database: the action and its validated input."""
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

    def execute(self, call: ActionCall, *, invocation_id: str | None = None) -> ActionResult:
        """Run one call to completion and return its result; never raises for action failures."""
        try:
            action, params = self.prepare(call)
            if self.needs_gate(action):
                with self.db.session() as session:
                    self.gate(session, action, call)
        except ActionError as err:
            if invocation_id is not None:  # a queued call: its record must not stay QUEUED
                self.fail_pending(invocation_id, err)
            return ActionResult(ok=False, error=err, invocation_id=invocation_id)
        data = params.model_dump(mode="json")
        run_id = call.run_id or f"adhoc-{uuid.uuid4()}"
        key = self.key_for(call, action, run_id)
        try:
            with self.db.engine.connect() as conn:  # one pooled connection for the claim and the run
                if self.db.dialect == "sqlite":
                    conn.execution_options(mspflow_write=True)
                claimed = self._claim(conn, call, action, data, run_id, key, invocation_id)
                if isinstance(claimed, ActionResult):
                    return claimed
                return self._run(conn, call, action, params, run_id, key, claimed)
        except OperationalError as exc:  # database down, or SQLite's write lock not free within its timeout
            log.warning("action %s could not be recorded: %s", action.key, str(exc.orig).strip().splitlines()[:1])
            return ActionResult(ok=False, invocation_id=invocation_id, error=ActionError(
                "TRANSIENT_FAILURE", "the database is unavailable or busy; the call did not run, try again",
                details={"reason": "DATABASE_UNAVAILABLE"}))

    @staticmethod
    def key_for(call: ActionCall, action: Action, run_id: str) -> str | None:
        """The idempotency key of a side-effectful call; reads have none and are never replayed."""
        if not action.side_effectful:
            return None
        return call.idempotency_key or default_idempotency_key(
            call.tenant_id, run_id, call.step_path or "-", action.id, action.version)

    # -- idempotency ----------------------------------------------------------------------------------

    def new_row(self, call: ActionCall, action: Action, data: dict[str, Any], run_id: str, key: str | None,
                status: str) -> dict[str, Any]:
        now = self.clock()
        running = status == "RUNNING"
        return {
            "invocation_id": str(uuid.uuid4()), "tenant": call.tenant_id, "run_id": run_id,
            "step_path": call.step_path, "action_id": action.id, "action_version": action.version,
            "idempotency_key": key, "input_hash": input_hash(data), "status": status,
            "attempt": 1 if running else 0, "lease_owner": self.owner if running else None,
            "lease_expires_at": now + timedelta(seconds=lease_seconds()) if running else None,
            "input": cap(Redactor().data(data)), "created_at": now, "started_at": now if running else None,
        }

    def _claim(self, conn: Connection, call: ActionCall, action: Action, data: dict[str, Any], run_id: str,
               key: str | None, invocation_id: str | None) -> _Claim | ActionResult:
        row = self.new_row(call, action, data, run_id, key, "RUNNING")
        if invocation_id is None:
            try:
                with conn.begin():
                    conn.execute(_INSERT, row)
                return _Claim(row["invocation_id"], 1, self.owner)
            except IntegrityError:
                if key is None:
                    raise
        else:  # a queued call, the common case for workers: one statement
            with conn.begin():
                started = conn.execute(_START_QUEUED, {
                    "iid": invocation_id, "hash_": row["input_hash"], "owner": self.owner,
                    "lease": row["lease_expires_at"], "now": row["started_at"]}).scalar()
            if started is not None:
                return _Claim(invocation_id, int(started), self.owner)
        lookup, params = ((_BY_ID, {"iid": invocation_id}) if invocation_id is not None else
                          (_BY_KEY, {"tenant_": call.tenant_id, "action_id_": action.id,
                                     "version_": action.version, "key_": key}))
        for _ in range(_CLAIM_ROUNDS):
            with conn.begin():
                existing = conn.execute(lookup, params).one()
                decided = self._decide(conn, existing, row["input_hash"])
            if decided is not None:
                return decided
        return ActionResult(ok=False, error=ActionError.conflict(
            "the idempotency record kept changing under this call; retry it", retryable=True))

    def _decide(self, conn: Connection, row: Any, wanted_hash: str) -> _Claim | ActionResult | None:
        """What an existing record means for a new call; None when a race means: read again."""
        if row.input_hash != wanted_hash:
            return ActionResult(ok=False, invocation_id=row.invocation_id, error=ActionError.conflict(
                "this idempotency key was already used with a different input; use a new key (or run id "
                "and step path) for a different call", reason="IDEMPOTENCY_KEY_REUSED",
                invocation_id=row.invocation_id))
        if row.status == "SUCCEEDED":
            return ActionResult(ok=True, output=row.output, invocation_id=row.invocation_id, replayed=True,
                                attempt=row.attempt)
        if row.status == "FAILED" and not row.error_retryable:
            return ActionResult(ok=False, invocation_id=row.invocation_id, replayed=True, attempt=row.attempt,
                                error=recorded_error(row))
        now = self.clock()
        if row.status == "RUNNING" and row.lease_expires_at is not None \
                and _aware(row.lease_expires_at) > now:
            left = (_aware(row.lease_expires_at) - now).total_seconds()
            return ActionResult(ok=False, invocation_id=row.invocation_id, error=ActionError.conflict(
                "this call is already running; try again when it has finished", retryable=True,
                reason="IN_PROGRESS", invocation_id=row.invocation_id).with_retry_after(left))
        # FAILED & retryable, QUEUED, or RUNNING with an expired lease (its worker died): take it over,
        # unless the call already had its share of attempts.
        attempt, status, invocation_id = row.attempt, row.status, row.invocation_id
        where = {"iid": invocation_id, "from_status": status, "from_attempt": attempt}
        # Waiting out a vendor's rate limit is not a failed attempt; the worker's own budget bounds it.
        if attempt >= max_attempts() and not (status == "FAILED" and row.error_code == "RATE_LIMITED"):
            died = status == "RUNNING"
            err = ActionError(
                "TRANSIENT_FAILURE" if died else (row.error_code or "INTERNAL_ERROR"),
                (f"the worker running this call stopped {attempt} times" if died
                 else f"{row.error_message} (gave up after {attempt} attempts)"),
                details={**(row.error_details or {}), "attempts": attempt}, retryable=False)
            capped = _rowcount(conn.execute(_FAIL_FROM, {
                **where, "now": now, "ec": err.code, "em": err.message, "ed": err.details}))
            if capped != 1:
                return None
            return ActionResult(ok=False, invocation_id=invocation_id, attempt=attempt, error=err)
        won = _rowcount(conn.execute(_TAKE_OVER, {
            **where, "new_attempt": attempt + 1, "owner": self.owner,
            "lease": now + timedelta(seconds=lease_seconds()), "now": now}))
        if won != 1:
            return None
        return _Claim(invocation_id, attempt + 1, self.owner)

    # -- running and recording ------------------------------------------------------------------------

    def _run(self, conn: Connection, call: ActionCall, action: Action, params: BaseModel, run_id: str,
             key: str | None, claim: _Claim) -> ActionResult:
        redactor = Redactor()
        durable: list[tuple[str, str]] = []
        ctx: ActionContext | None = None
        try:
            with conn.begin():
                ctx = ActionContext(
                    tenant_id=call.tenant_id, session_factory=lambda: Session(bind=conn, expire_on_commit=False),
                    run_id=run_id, step_path=call.step_path,
                    attempt=claim.attempt, idempotency_key=key, invocation_id=claim.invocation_id,
                    secrets=self._secrets, redactor=redactor, clock=self.clock, db=self.db,
                    module=self.registry.module_of(action.id), durable_secrets=durable,
                )
                try:
                    produced = action.handler(params, ctx)
                finally:
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
                if not self._finish(conn, claim, status="SUCCEEDED", output=cap(output)):
                    raise _LeaseLost
            return ActionResult(ok=True, output=output, invocation_id=claim.invocation_id,
                                attempt=claim.attempt)
        except _LeaseLost:
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
        finally:
            if ctx is not None and ctx.session_started:
                ctx.session.close()
        with conn.begin():
            self._finish(conn, claim, status="FAILED", error=err)
            if durable:
                with Session(bind=conn) as s:
                    self._replay_durable(s, call.tenant_id, durable)
                    s.flush()
        log.info("action %s (invocation %s) failed: %s %s", action.key, claim.invocation_id, err.code,
                 err.message)
        return ActionResult(ok=False, error=err, invocation_id=claim.invocation_id, attempt=claim.attempt)

    def _finish(self, conn: Connection, claim: _Claim, *, status: str, output: Any = None,
                error: ActionError | None = None) -> bool:
        params: dict[str, Any] = {
            "iid": claim.invocation_id, "owner": claim.owner, "att": claim.attempt, "st": status,
            "now": self.clock(), "out": output, "ec": None, "em": None, "ed": None, "er": None}
        if error is not None:
            params |= {"ec": error.code, "em": error.message, "ed": cap(error.details), "er": error.retryable}
        return _rowcount(conn.execute(_FINISH, params)) == 1

    def _replay_durable(self, s: Session, tenant: str, durable: list[tuple[str, str]]) -> None:
        """Secrets that must outlive a failed call (a rotated refresh token), when they were written in the
        call's own transaction (SQLite)."""
        if durable and self._secrets is not None:
            store = self._secrets()
            for name, value in durable:
                store.set(s, tenant, name, value)

    def give_up(self, invocation_id: str, reason: str) -> None:
        """Make a retryable failure final (a worker's retry budget ran out)."""
        with self.db.session(write=True) as s:
            row = s.get(Inv, invocation_id)
            if row is None or row.status != "FAILED" or not row.error_retryable:
                return
            row.error_retryable = False
            row.error_message = f"{row.error_message} ({reason})"

    def fail_pending(self, invocation_id: str, err: ActionError) -> None:
        with self.db.session(write=True) as s:
            # QUEUED, or a retryable failure whose retry the gate now refuses (integration disconnected).
            pending = (Inv.status == "QUEUED") | ((Inv.status == "FAILED") & Inv.error_retryable.is_(True))
            s.execute(update(Inv).where(Inv.invocation_id == invocation_id, pending).values(
                status="FAILED", completed_at=self.clock(), error_code=err.code, error_message=err.message,
                error_details=cap(err.details), error_retryable=err.retryable))


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


class _LeaseLost(Exception):
    pass


def recorded_error(row: Any) -> ActionError:
    return ActionError(row.error_code or "INTERNAL_ERROR",
                       row.error_message or "", details=row.error_details or {},
                       retryable=bool(row.error_retryable))


def _scrub(exc: ActionError, redactor: Redactor) -> ActionError:
    return ActionError(exc.code, redactor.text(exc.message), details=redactor.data(exc.details),
                       retryable=exc.retryable, retry_after=exc.retry_after)


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
