"""Runs: durable state in ``workflow_runs``, advanced one step at a time.

Each step is one action call through the runtime with the run's id and the step path
(``steps.<path>``), so its idempotency key is the same every time the step is driven: re-driving a run
after a crash, or retrying a failed one, replays the steps that already succeeded (the recorded output,
``replayed: true``) and never repeats a side effect. Read-only steps that succeeded are not called again
on a retry either: their recorded invocation answers.

:meth:`Runner.advance` does one step and says what next: ``NEXT`` (send or run the next step), ``DONE``
(the run is final, or another worker already moved it on), ``BUSY`` (the step is running elsewhere; try
again after ``retry_after`` seconds). Its writes to the run row are fenced by (status, current step,
attempt), so of two workers given the same step message exactly one records the outcome.

A step whose call fails with a retryable error (a vendor's 5xx or timeout, a dropped connection) is
``RETRYING``: called again after a backoff (or the vendor's ``Retry-After``), up to the step's ``retries``
(default :data:`~mspflow.workflows.definitions.DEFAULT_STEP_RETRIES`) per run attempt; the ledger makes
each try the same call, so a side effect still happens at most once. A failed step with ``on_error: stop``
(the default) then ends the run FAILED, naming the step; ``mspflow runs retry`` drives it again from the
first step (attempt + 1). With ``on_error: continue`` the run goes on and later steps see
``steps.<path>.status == "FAILED"``; a ``$ref`` into its output stops the run. A rate-limited step, or one
running elsewhere, is not a failure: it is called again after the vendor's ``Retry-After`` (or the lease
left), however often (the ledger caps attempts at ``MSPFLOW_MAX_ATTEMPTS``).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from mspflow.clock import aware, utcnow
from mspflow.db.models import WorkflowActionInvocation as Inv
from mspflow.db.models import WorkflowDefinition as DefRow
from mspflow.db.models import WorkflowRun as Run
from mspflow.errors import ActionError, sane_delay
from mspflow.workflows.definitions import DEFAULT_STEP_RETRIES
from mspflow.workflows.expressions import ExpressionError, Scope, evaluate, resolve

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.app import App

log = logging.getLogger("mspflow.workflows")

NEXT, DONE, BUSY = "NEXT", "DONE", "BUSY"


@dataclass(frozen=True)
class Advance:
    """What :meth:`Runner.advance` did: ``what`` is NEXT, DONE or BUSY; ``step`` is the next step index.

    ``bounded``: a BUSY whose repeats the run itself limits (a step's ``retries``), which the worker
    therefore re-sends without spending its own retry budget.
    """

    what: str
    step: int = 0
    attempt: int = 0
    retry_after: float = 0.0
    bounded: bool = False


def new_run(session: Session, definition: DefRow, payload: dict[str, Any], trigger: dict[str, Any], *,
            run_id: str | None = None) -> str:
    """Add a RUNNING run of ``definition`` to the caller's transaction; returns its id."""
    now = utcnow()
    run = Run(run_id=run_id or str(uuid.uuid4()), tenant=definition.tenant, workflow_name=definition.name,
              workflow_version=definition.version,
              trigger=trigger, payload=payload, status="RUNNING", current_step=0, attempt=1, steps={},
              created_at=now, updated_at=now)
    session.add(run)
    session.flush()
    return run.run_id


class Runner:
    """Advances runs for one App (its runtime and database)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._definitions: dict[tuple[str, str, int], dict[str, Any]] = {}

    def definition(self, session: Session, run: Run) -> dict[str, Any]:
        key = (run.tenant, run.workflow_name, run.workflow_version)
        if key not in self._definitions:
            row = session.get(DefRow, key)
            if row is None:
                raise ActionError.not_found(f"workflow {run.workflow_name!r} version {run.workflow_version} "
                                            "is not published any more")
            self._definitions[key] = row.definition
        return self._definitions[key]

    def action_at(self, run_id: str, step: int) -> str | None:
        """The action id of a run's step ``step`` (None past the last step, or for an unknown run)."""
        with self.app.db.sessions() as s:
            run = s.get(Run, run_id)
            if run is None:
                return None
            try:
                steps = self.definition(s, run)["steps"]
            except ActionError:
                return None
        return str(steps[step]["action_id"]) if 0 <= step < len(steps) else None

    # -- one step ----------------------------------------------------------------------------------------

    def advance(self, run_id: str, *, step: int | None = None, attempt: int | None = None) -> Advance:
        with self.app.db.sessions() as s:
            run = s.get(Run, run_id)
            if run is None or run.status != "RUNNING":
                return Advance(DONE)
            if step is not None and (run.current_step != step or run.attempt != attempt):
                return Advance(DONE)  # a stale message: the run moved on, or was re-driven
            index, attempt, tenant = run.current_step, run.attempt, run.tenant
            results: dict[str, Any] = dict(run.steps or {})
            payload = dict(run.payload or {})
            try:
                steps = self.definition(s, run)["steps"]
            except ActionError as missing:
                self._fail(run_id, index, attempt, results, {"step": None, **missing.to_dict()})
                return Advance(DONE)
            scope = self._scope(s, run_id, tenant, payload, results)
        if index >= len(steps):
            self._finish(run_id, index, attempt, results)
            return Advance(DONE)
        spec = steps[index]
        path = spec["path"]
        try:
            wanted = evaluate(spec["if"], scope) if "if" in spec else True
            data = resolve(spec.get("input") or {}, scope) if wanted else None
        except ExpressionError as exc:
            message = f"step {path}: {exc}"
            results[path] = {"status": "FAILED", "action_id": spec["action_id"], "attempt": attempt,
                             "error": {"code": "VALIDATION_ERROR", "message": message}}
            self._fail(run_id, index, attempt, results, {"step": path, "code": "VALIDATION_ERROR",
                                                          "message": message, "retryable": False})
            return Advance(DONE)
        if not wanted:
            results[path] = {"status": "SKIPPED", "action_id": spec["action_id"], "attempt": attempt}
            return self._moved(run_id, index, attempt, results)
        previous = results.get(path) or {}
        # the version this step ran with before (a retry after a plugin upgrade keeps it, so the idempotency
        # key, which names the version, still finds the recorded call)
        version = previous.get("version") or spec.get("version")
        action = self.app.registry.action(spec["action_id"], version)
        if (previous.get("status") == "SUCCEEDED" and previous.get("invocation_id") and action is not None
                and not action.side_effectful):  # a read that succeeded before this retry: keep its answer
            results[path] = {**previous, "replayed": True, "attempt": attempt}
            return self._moved(run_id, index, attempt, results)
        result = self.app.execute(spec["action_id"], tenant=tenant, input=data or {}, version=version,
                                  run_id=run_id, step_path=f"steps.{path}")
        err = result.error
        if err is not None and ((err.code == "CONFLICT" and err.details.get("reason") == "IN_PROGRESS")
                                or (err.code == "RATE_LIMITED" and err.retryable)):
            # running elsewhere, or the vendor asks us to wait: the same call again later (the ledger caps
            # attempts at MSPFLOW_MAX_ATTEMPTS), not a failed run
            return Advance(BUSY, index, attempt, retry_after=max(0.05, sane_delay(err.retry_after) or 1.0))
        entry: dict[str, Any] = {"status": "SUCCEEDED" if result.ok else "FAILED", "action_id": spec["action_id"],
                                 "version": action.version if action else version,
                                 "invocation_id": result.invocation_id, "replayed": result.replayed,
                                 "attempt": attempt}
        again = previous.get("status") == "RETRYING" and previous.get("attempt") == attempt
        tries = entry["tries"] = int(previous.get("tries") or 0) + 1 if again else 1
        if err is not None:
            entry["error"] = {"code": err.code, "message": err.message, "retryable": err.retryable}
            if err.retryable and tries <= _retries(spec):  # a blip: the same call again, after a while
                results[path] = {**entry, "status": "RETRYING"}
                if not self._write(run_id, index, attempt, steps=results):
                    return Advance(DONE)
                log.info("workflow run %s step %s: %s, try %d of %d", run_id, path, err.code, tries + 1,
                         _retries(spec) + 1)
                return Advance(BUSY, index, attempt, retry_after=sane_delay(err.retry_after) or _backoff(tries),
                               bounded=True)
        results[path] = entry
        if result.ok or spec.get("on_error") == "continue":
            return self._moved(run_id, index, attempt, results)
        assert err is not None
        self._fail(run_id, index, attempt, results, {
            "step": path, "code": err.code, "retryable": err.retryable, "invocation_id": result.invocation_id,
            "message": f"step {path} ({spec['action_id']}) failed: {err.code}: {err.message}"})
        return Advance(DONE)

    def _scope(self, s: Session, run_id: str, tenant: str, payload: dict[str, Any],
               results: dict[str, Any]) -> Scope:
        ids = [r["invocation_id"] for r in results.values()
               if r.get("status") == "SUCCEEDED" and r.get("invocation_id")]
        outputs = _outputs(s, tenant, ids)
        steps = {path: {"status": r.get("status"), "error": r.get("error"),
                        "output": outputs.get(r.get("invocation_id") or "")} for path, r in results.items()}
        return Scope(run_id=run_id, tenant=tenant, trigger=payload, steps=steps)

    def _write(self, run_id: str, index: int, attempt: int, **values: Any) -> bool:
        with self.app.db.session() as s:
            done = s.execute(update(Run).where(Run.run_id == run_id, Run.status == "RUNNING",
                                               Run.current_step == index, Run.attempt == attempt)
                             .values(updated_at=utcnow(), **values))
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def _moved(self, run_id: str, index: int, attempt: int, results: dict[str, Any]) -> Advance:
        if not self._write(run_id, index, attempt, steps=results, current_step=index + 1):
            return Advance(DONE)
        return Advance(NEXT, index + 1, attempt)

    def _finish(self, run_id: str, index: int, attempt: int, results: dict[str, Any]) -> None:
        self._write(run_id, index, attempt, steps=results, status="SUCCEEDED", completed_at=utcnow(), error=None)

    def _fail(self, run_id: str, index: int, attempt: int, results: dict[str, Any], error: dict[str, Any]) -> None:
        if self._write(run_id, index, attempt, steps=results, status="FAILED", completed_at=utcnow(), error=error):
            log.info("workflow run %s failed: %s", run_id, error.get("message"))

    # -- whole runs --------------------------------------------------------------------------------------

    def drive(self, run_id: str, *, timeout: float = 600.0) -> None:
        """Advance ``run_id`` in this thread until it is final (the embedded default's in-process run)."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = self.advance(run_id)
            if outcome.what == DONE:
                return
            if outcome.what == BUSY:
                if time.monotonic() + outcome.retry_after > deadline:
                    raise TimeoutError(f"workflow run {run_id} did not finish within {timeout:g} s")
                time.sleep(outcome.retry_after)

    def redrive(self, tenant: str, run_id: str) -> dict[str, Any]:
        """Make a run drivable again: a FAILED run restarts at its first step, a RUNNING one where it is
        (a worker that died mid-run); attempt + 1 either way, so older step messages are ignored."""
        with self.app.db.session() as s:
            run = s.get(Run, run_id)
            if run is None or run.tenant != tenant:
                raise ActionError.not_found(f"tenant {tenant!r} has no workflow run {run_id!r}", run_id=run_id)
            if run.status == "SUCCEEDED":
                raise ActionError("CONFLICT", f"workflow run {run_id} already succeeded; nothing to retry",
                                  details={"run_id": run_id, "reason": "ALREADY_SUCCEEDED"}, retryable=False)
            if run.status == "FAILED":
                run.current_step = 0
            run.status, run.attempt, run.error, run.completed_at = "RUNNING", run.attempt + 1, None, None
            run.updated_at = utcnow()
            s.flush()
            return to_json(run)


def _retries(spec: dict[str, Any]) -> int:
    value = spec.get("retries")
    return DEFAULT_STEP_RETRIES if value is None else int(value)


def _backoff(tries: int) -> float:
    from mspflow.worker import backoff

    return backoff(tries)


def _outputs(session: Session, tenant: str, invocation_ids: list[str]) -> dict[str, Any]:
    """The recorded outputs of the tenant's invocations, by id."""
    if not invocation_ids:
        return {}
    rows = session.execute(select(Inv.invocation_id, Inv.output)
                           .where(Inv.tenant == tenant, Inv.invocation_id.in_(invocation_ids)))
    return {row[0]: row[1] for row in rows}


def get(session: Session, tenant: str, run_id: str) -> dict[str, Any]:
    run = session.get(Run, run_id)
    if run is None or run.tenant != tenant:
        raise ActionError.not_found(f"tenant {tenant!r} has no workflow run {run_id!r}", run_id=run_id)
    return to_json(run, session=session)


def recent(session: Session, tenant: str, *, workflow: str | None = None, status: str | None = None,
           limit: int = 20) -> list[dict[str, Any]]:
    stmt = select(Run).where(Run.tenant == tenant)
    if workflow:
        stmt = stmt.where(Run.workflow_name == workflow)
    if status:
        stmt = stmt.where(Run.status == status.upper())
    stmt = stmt.order_by(Run.created_at.desc(), Run.run_id).limit(limit)
    return [to_json(r) for r in session.execute(stmt).scalars()]


def to_json(run: Run, *, session: Session | None = None) -> dict[str, Any]:
    """A run as the CLI and the host see it; with ``session``, each step's output from its invocation.

    The trigger payload keeps its real values in the row (the steps read them); shown here, secret-named
    fields (``password``, ``api_key``, ``token`` …) are masked, as in an invocation record's input.
    """
    from mspflow.redaction import Redactor

    shown = Redactor()
    steps = [{"path": path, **record} for path, record in (run.steps or {}).items()]
    if session is not None:
        outputs = _outputs(session, run.tenant, [s["invocation_id"] for s in steps if s.get("invocation_id")])
        for step in steps:
            if step.get("status") == "SUCCEEDED":
                step["output"] = outputs.get(step.get("invocation_id") or "")
    return {"run_id": run.run_id, "tenant": run.tenant, "workflow": run.workflow_name,
            "version": run.workflow_version, "status": run.status, "current_step": run.current_step,
            "attempt": run.attempt, "trigger": shown.data(run.trigger), "payload": shown.data(run.payload),
            "steps": steps,
            "error": run.error, "created_at": aware(run.created_at).isoformat(),
            "updated_at": aware(run.updated_at).isoformat(),
            "completed_at": aware(run.completed_at).isoformat() if run.completed_at else None}


def recent_attempt(app: App, run_id: str) -> tuple[int, int]:
    """(current step, attempt) of a run: what its next step message names."""
    with app.db.sessions() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise ActionError.not_found(f"no workflow run {run_id!r}", run_id=run_id)
        return run.current_step, run.attempt
