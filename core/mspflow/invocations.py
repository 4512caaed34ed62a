"""The invocation ledger: one row per action call in ``workflow_action_invocations``.

The runtime and the worker write it only through :class:`Ledger` (new row, claim, decide, finish,
give up, fail pending); hosts and the CLI read it through :func:`get` and :func:`recent`.

Idempotency has Stripe-like semantics. For an existing key (same tenant, action id and version):

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

Every state change is one conditional statement (an INSERT that the unique key may refuse, or an
UPDATE on (status, attempt) or (lease owner, attempt)), so of two racing callers exactly one wins and
the loser re-reads the row. A claim therefore needs no explicit transaction: the ledger's statements
run on a connection in autocommit mode (one round trip each), except :meth:`Ledger.finish` of a call
whose handler wrote to the database, which runs inside the handler's transaction so that the
handler's writes and its result commit together.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mspflow.clock import aware
from mspflow.db.models import WorkflowActionInvocation as Inv
from mspflow.db.prepared import Statement, psycopg_connection
from mspflow.errors import ActionError
from mspflow.redaction import Redactor, cap, cap_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from mspflow.modules import Action

#: How often a claim re-reads a row that changed under it before it answers a retryable CONFLICT.
CLAIM_ROUNDS = 5


def max_attempts() -> int:
    """How many times one call may run before it fails for good (``MSPFLOW_MAX_ATTEMPTS``, default 10)."""
    return int(os.environ.get("MSPFLOW_MAX_ATTEMPTS", "10"))


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


@dataclass(frozen=True)
class Claim:
    """This process holds the call: attempt ``attempt``, fenced by ``owner``."""

    invocation_id: str
    attempt: int
    owner: str


def default_idempotency_key(tenant: str, run_id: str, step_path: str, action_id: str, version: int) -> str:
    """SHA-256 over the parts, length-prefixed so no two different tuples can collide."""
    digest = hashlib.sha256()
    for part in (tenant, run_id, step_path, action_id, str(version)):
        raw = part.encode()
        digest.update(len(raw).to_bytes(8, "big") + raw)
    return digest.hexdigest()


def _without(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``data`` with the action's ``redact_input`` fields masked (what the record shows)."""
    from mspflow.redaction import MASK

    return {k: MASK if k in fields and v not in (None, "") else v for k, v in data.items()} if fields else data


def input_hash(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def recorded_error(row: Any) -> ActionError:
    """The error a FAILED row recorded, as it was raised."""
    return ActionError(row.error_code or "INTERNAL_ERROR", row.error_message or "",
                       details=row.error_details or {}, retryable=bool(row.error_retryable))


# The hot path runs prebuilt Core statements: building ORM statements per call cost more CPU than the
# database round trips they make (see benchmarks/worker.py).
_T: Table = Inv.__table__  # type: ignore[assignment]
_c = _T.c
_INSERT = _T.insert()
_INSERT_OR_SKIP = {"postgresql": pg_insert(_T).on_conflict_do_nothing().returning(_c.attempt),
                   "sqlite": sqlite_insert(_T).on_conflict_do_nothing().returning(_c.attempt)}
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
# Set just before a side-effectful request leaves for the vendor, committed on its own: a worker killed
# after that point leaves a RUNNING row whose outcome nobody knows.
_MARK_SENT = _T.update().where(
    (_c.invocation_id == bindparam("iid")) & (_c.lease_owner == bindparam("owner")) & (
        _c.attempt == bindparam("att")) & (_c.status == "RUNNING")
).values(sent_attempt=bindparam("att"))
_GIVE_UP = _T.update().where(
    (_c.invocation_id == bindparam("iid")) & (_c.status == "FAILED") & _c.error_retryable.is_(True)
).values(error_retryable=False, error_message=func.coalesce(_c.error_message, "") + bindparam("suffix"))
# QUEUED, or a retryable failure whose retry the gate now refuses (integration disconnected).
_FAIL_PENDING = _T.update().where(
    (_c.invocation_id == bindparam("iid")) & (
        (_c.status == "QUEUED") | ((_c.status == "FAILED") & _c.error_retryable.is_(True)))
).values(status="FAILED", completed_at=bindparam("now", type_=_c.completed_at.type), error_code=bindparam("ec"),
         error_message=bindparam("em"), error_details=bindparam("ed", type_=_c.error_details.type),
         error_retryable=bindparam("er"))


# The three statements every call makes (insert, start a queued call, finish with success), written for
# PostgreSQL through psycopg 3: there a call then costs libpq's time, not SQLAlchemy's statement machinery
# nor psycopg's (mspflow.db.prepared; benchmarks/worker.py measures against a plain-psycopg baseline).
# Same conditions as the Core versions above, which every other database uses.
_COLUMNS = ("invocation_id", "tenant", "run_id", "step_path", "action_id", "action_version", "idempotency_key",
            "input_hash", "status", "attempt", "lease_owner", "lease_expires_at", "input", "created_at",
            "started_at")
_PG_INSERT_OR_SKIP = Statement(
    f"INSERT INTO workflow_action_invocations ({', '.join(_COLUMNS)}) VALUES ("
    + ", ".join("%s::json" if c == "input" else "%s" for c in _COLUMNS) + ") ON CONFLICT DO NOTHING RETURNING attempt",
    returning=True)
_PG_START_QUEUED = Statement(
    "UPDATE workflow_action_invocations SET status = 'RUNNING', attempt = attempt + 1, lease_owner = %s, "
    "lease_expires_at = %s, started_at = %s WHERE invocation_id = %s AND status = 'QUEUED' AND input_hash = %s "
    "RETURNING attempt", returning=True)
_PG_SUCCEEDED = Statement(
    "UPDATE workflow_action_invocations SET status = 'SUCCEEDED', completed_at = %s, lease_expires_at = NULL, "
    "output = %s::json, error_code = NULL, error_message = NULL, error_details = NULL, error_retryable = NULL "
    "WHERE invocation_id = %s AND lease_owner = %s AND attempt = %s AND status = 'RUNNING'")


class Ledger:
    """Writes of the invocation ledger for one process (``owner`` names it in lease records).

    Every method takes a SQLAlchemy :class:`~sqlalchemy.Connection`; on one in autocommit mode
    (:meth:`mspflow.db.engine.Database.connect`) each statement commits on its own.
    """

    def __init__(self, owner: str, clock: Callable[[], datetime]) -> None:
        self.owner = owner
        self.clock = clock

    # -- new rows ----------------------------------------------------------------------------------------

    def new_row(self, call: ActionCall, action: Action, data: dict[str, Any], wanted_hash: str, run_id: str,
                key: str | None, *, running: bool, lease_s: float) -> dict[str, Any]:
        """A complete row: RUNNING and held by this process, or QUEUED for a worker."""
        now = self.clock()
        return {
            "invocation_id": str(uuid.uuid4()), "tenant": call.tenant_id, "run_id": run_id,
            "step_path": call.step_path, "action_id": action.id, "action_version": action.version,
            "idempotency_key": key, "input_hash": wanted_hash, "status": "RUNNING" if running else "QUEUED",
            "attempt": 1 if running else 0, "lease_owner": self.owner if running else None,
            "lease_expires_at": now + timedelta(seconds=lease_s) if running else None,
            "input": cap(Redactor().data(_without(data, action.redact_input))), "created_at": now,
            "started_at": now if running else None,
        }

    def insert(self, conn: Connection, row: dict[str, Any]) -> bool:
        """Insert ``row``; False when its idempotency key is already recorded.

        On SQLite and PostgreSQL an existing key is skipped (``ON CONFLICT DO NOTHING``) rather than
        raised: a replay then costs no server-side error, no exception and no rollback.
        """
        if row["idempotency_key"] is not None and psycopg_connection(conn) is not None:
            params = tuple(json.dumps(row[c]) if c == "input" else row[c] for c in _COLUMNS)
            return _PG_INSERT_OR_SKIP.run(conn, params) is not None
        skipping = _INSERT_OR_SKIP.get(conn.dialect.name)
        if skipping is not None and row["idempotency_key"] is not None:
            return conn.execute(skipping, row).scalar() is not None
        try:
            conn.execute(_INSERT, row)
        except IntegrityError:
            if row["idempotency_key"] is None:
                raise
            conn.rollback()  # nothing was written; clear the failed autobegin (autocommit connections only)
            return False
        return True

    def by_key(self, conn: Connection, tenant: str, action: Action, key: str) -> Any:
        return conn.execute(_BY_KEY, {"tenant_": tenant, "action_id_": action.id, "version_": action.version,
                                      "key_": key}).one()

    def record_queued(self, conn: Connection, call: ActionCall, action: Action, data: dict[str, Any],
                      run_id: str, key: str | None) -> tuple[str, bool]:
        """A QUEUED row for ``enqueue``: (invocation id, whether a message must be sent).

        An existing row with the same key and input is reused (sent again unless it is final); the same
        key with another input is ``CONFLICT``.
        """
        wanted = input_hash(data)
        row = self.new_row(call, action, data, wanted, run_id, key, running=False, lease_s=0.0)
        if self.insert(conn, row):
            return str(row["invocation_id"]), True
        assert key is not None
        existing = self.by_key(conn, call.tenant_id, action, key)
        if existing.input_hash != wanted:
            raise _key_reused(existing.invocation_id)
        final = existing.status == "SUCCEEDED" or (existing.status == "FAILED" and not existing.error_retryable)
        return str(existing.invocation_id), not final

    # -- claiming --------------------------------------------------------------------------------------------

    def claim(self, conn: Connection, call: ActionCall, action: Action, data: dict[str, Any], run_id: str,
              key: str | None, invocation_id: str | None, lease_s: float) -> Claim | ActionResult:
        """Hold the call for this process, or say what the recorded state answers instead."""
        wanted = input_hash(data)
        if invocation_id is None:
            row = self.new_row(call, action, data, wanted, run_id, key, running=True, lease_s=lease_s)
            if self.insert(conn, row):
                return Claim(row["invocation_id"], 1, self.owner)
            lookup, params = _BY_KEY, {"tenant_": call.tenant_id, "action_id_": action.id,
                                       "version_": action.version, "key_": key}
        else:  # a queued call, the common case for workers: one statement
            now = self.clock()
            lease = now + timedelta(seconds=lease_s)
            if psycopg_connection(conn) is not None:
                started = _PG_START_QUEUED.run(conn, (self.owner, lease, now, invocation_id, wanted))
            else:
                started = conn.execute(_START_QUEUED, {
                    "iid": invocation_id, "hash_": wanted, "owner": self.owner, "lease": lease, "now": now}).scalar()
            if started is not None:
                return Claim(invocation_id, int(started), self.owner)
            lookup, params = _BY_ID, {"iid": invocation_id}
        for _ in range(CLAIM_ROUNDS):
            decided = self.decide(conn, conn.execute(lookup, params).one(), wanted, lease_s)
            if decided is not None:
                return decided
        return ActionResult(ok=False, error=ActionError.conflict(
            "the idempotency record kept changing under this call; retry it", retryable=True))

    def decide(self, conn: Connection, row: Any, wanted_hash: str, lease_s: float) -> Claim | ActionResult | None:
        """What an existing record means for a new call; None when a race means: read again."""
        if row.input_hash != wanted_hash:
            return ActionResult(ok=False, invocation_id=row.invocation_id, error=_key_reused(row.invocation_id))
        if row.status == "SUCCEEDED":
            return ActionResult(ok=True, output=row.output, invocation_id=row.invocation_id, replayed=True,
                                attempt=row.attempt)
        if row.status == "FAILED" and not row.error_retryable:
            return ActionResult(ok=False, invocation_id=row.invocation_id, replayed=True, attempt=row.attempt,
                                error=recorded_error(row))
        now = self.clock()
        if row.status == "RUNNING" and row.lease_expires_at is not None and aware(row.lease_expires_at) > now:
            left = (aware(row.lease_expires_at) - now).total_seconds()
            return ActionResult(ok=False, invocation_id=row.invocation_id, error=ActionError.conflict(
                "this call is already running; try again when it has finished", retryable=True,
                reason="IN_PROGRESS", invocation_id=row.invocation_id).with_retry_after(left))
        # FAILED & retryable, QUEUED, or RUNNING with an expired lease (its worker died): take it over,
        # unless the call already had its share of attempts.
        attempt, status, invocation_id = row.attempt, row.status, row.invocation_id
        where = {"iid": invocation_id, "from_status": status, "from_attempt": attempt}
        if status == "RUNNING" and row.sent_attempt == attempt:
            # Its worker died after sending a side-effectful request: the vendor may have carried it out.
            err = ActionError(
                "TRANSIENT_FAILURE", "the worker running this call stopped after sending its request to the vendor; "
                "whether the vendor carried it out is unknown, so it is not sent again: check in the vendor's "
                "console, then run the step again with a new run id if it did not happen",
                details={"reason": "WORKER_LOST_AFTER_SENDING", "outcome": "unknown", "attempts": attempt},
                retryable=False)
            if _changed(conn.execute(_FAIL_FROM, {**where, "now": now, "ec": err.code, "em": err.message,
                                                  "ed": err.details})) != 1:
                return None
            return ActionResult(ok=False, invocation_id=invocation_id, attempt=attempt, error=err)
        # Waiting out a vendor's rate limit is not a failed attempt; the worker's own budget bounds it.
        if attempt >= max_attempts() and not (status == "FAILED" and row.error_code == "RATE_LIMITED"):
            died = status == "RUNNING"
            err = ActionError(
                "TRANSIENT_FAILURE" if died else (row.error_code or "INTERNAL_ERROR"),
                (f"the worker running this call stopped {attempt} times" if died
                 else f"{row.error_message} (gave up after {attempt} attempts)"),
                details={**(row.error_details or {}), "attempts": attempt}, retryable=False)
            if _changed(conn.execute(_FAIL_FROM, {**where, "now": now, "ec": err.code, "em": err.message,
                                                  "ed": err.details})) != 1:
                return None
            return ActionResult(ok=False, invocation_id=invocation_id, attempt=attempt, error=err)
        if _changed(conn.execute(_TAKE_OVER, {**where, "new_attempt": attempt + 1, "owner": self.owner,
                                              "lease": now + timedelta(seconds=lease_s), "now": now})) != 1:
            return None
        return Claim(invocation_id, attempt + 1, self.owner)

    # -- ending ------------------------------------------------------------------------------------------------

    def finish(self, conn: Connection, claim: Claim, *, status: str, output: Any = None,
               error: ActionError | None = None) -> bool:
        """Record the call's result; False when this process no longer holds it (its lease was taken over).

        ``output`` is stored capped (:func:`mspflow.redaction.cap`).
        """
        if error is None and status == "SUCCEEDED" and psycopg_connection(conn) is not None:
            text = cap_json(output)  # serialized once: the size check and the parameter share it
            return int(_PG_SUCCEEDED.run(conn, (self.clock(), text, claim.invocation_id, claim.owner,
                                                claim.attempt))) == 1
        params: dict[str, Any] = {
            "iid": claim.invocation_id, "owner": claim.owner, "att": claim.attempt, "st": status,
            "now": self.clock(), "out": cap(output), "ec": None, "em": None, "ed": None, "er": None}
        if error is not None:
            params |= {"ec": error.code, "em": error.message, "ed": cap(error.details), "er": error.retryable}
        return _changed(conn.execute(_FINISH, params)) == 1

    def mark_sent(self, conn: Connection, claim: Claim) -> None:
        """Record that ``claim``'s attempt is sending a side-effectful request (see :meth:`decide`)."""
        conn.execute(_MARK_SENT, {"iid": claim.invocation_id, "owner": claim.owner, "att": claim.attempt})

    def give_up(self, conn: Connection, invocation_id: str, reason: str) -> None:
        """Make a retryable failure final (a worker's retry budget ran out, or its retry could not be sent)."""
        conn.execute(_GIVE_UP, {"iid": invocation_id, "suffix": f" ({reason})"})

    def fail_pending(self, conn: Connection, invocation_id: str, err: ActionError) -> None:
        """End a QUEUED call, or a retryable failure, with ``err`` (refused at the gate, or never sent)."""
        conn.execute(_FAIL_PENDING, {"iid": invocation_id, "now": self.clock(), "ec": err.code,
                                     "em": err.message, "ed": cap(err.details), "er": err.retryable})


def _key_reused(invocation_id: str) -> ActionError:
    return ActionError.conflict(
        "this idempotency key was already used with a different input; use a new key (or run id and step "
        "path) for a different call", reason="IDEMPOTENCY_KEY_REUSED", invocation_id=invocation_id)


def _changed(result: Any) -> int:
    return int(result.rowcount)


# -- reading (``mspflow invocations``, ``App.invocation``) ------------------------------------------------


def to_json(row: Inv) -> dict[str, Any]:
    error = None
    if row.error_code:
        error = {"code": row.error_code, "message": row.error_message, "retryable": bool(row.error_retryable),
                 "details": row.error_details or {}}
    return {
        "invocation_id": row.invocation_id, "tenant": row.tenant, "run_id": row.run_id,
        "step_path": row.step_path, "action_id": row.action_id, "version": row.action_version,
        "idempotency_key": row.idempotency_key, "status": row.status, "attempt": row.attempt,
        "input": row.input, "output": row.output, "error": error,
        "created_at": _iso(row.created_at), "started_at": _iso(row.started_at),
        "completed_at": _iso(row.completed_at),
    }


def get(session: Session, invocation_id: str, *, tenant: str | None = None) -> dict[str, Any] | None:
    """The record of one invocation, or None; a malformed id or tenant is ``VALIDATION_ERROR``."""
    from mspflow.envelope import check_lookup

    check_lookup(invocation_id, tenant)
    stmt = select(Inv).where(Inv.invocation_id == invocation_id)
    if tenant is not None:
        stmt = stmt.where(Inv.tenant == tenant)
    row = session.execute(stmt).scalar_one_or_none()
    return None if row is None else to_json(row)


def recent(
    session: Session, tenant: str, *, status: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    stmt = select(Inv).where(Inv.tenant == tenant)
    if status:
        stmt = stmt.where(Inv.status == status.upper())
    stmt = stmt.order_by(Inv.created_at.desc(), Inv.invocation_id).limit(limit)
    return [to_json(r) for r in session.execute(stmt).scalars()]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else aware(moment).isoformat()
