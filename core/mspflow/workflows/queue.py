"""Runs on Dramatiq: one message per step, on the queue of the step's action (``mspflow.<vendor>``, or
``mspflow.core``), so a slow vendor holds up only its own steps.

A message names (run id, step index, run attempt). The worker advances that step
(:meth:`mspflow.workflows.runs.Runner.advance`) and sends the next one; a message whose step the run
has left behind (a redelivery after a worker was killed, a run that was retried) does nothing. A step
that is running elsewhere is re-sent after the time its lease has left; a step retrying a retryable
failure after its backoff (its ``retries`` bound it); a failure of the worker itself (the database is
down) is re-sent with the worker's backoff and budgets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import dramatiq

if TYPE_CHECKING:
    from mspflow.worker import Dispatcher

log = logging.getLogger("mspflow.workflows")

ACTOR = "mspflow_workflow_step"


class WorkflowQueue:
    def __init__(self, dispatcher: Dispatcher) -> None:
        from mspflow.worker import CORE_QUEUE, time_limit_ms

        self.dispatcher = dispatcher
        self.queue = CORE_QUEUE
        self.actor = dramatiq.actor(broker=dispatcher.broker, actor_name=ACTOR, queue_name=CORE_QUEUE,
                                    max_retries=0, time_limit=time_limit_ms(dispatcher.app))(self._handle)

    def send(self, run_id: str, step: int, attempt: int, *, retries: dict[str, int] | None = None,
             delay_s: float = 0.0) -> None:
        from mspflow.errors import sane_delay
        from mspflow.worker import queue_for

        action_id = self.dispatcher.app.workflows.runner.action_at(run_id, step)
        queue = queue_for(self.dispatcher.app, action_id) if action_id else self.queue
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=queue, actor_name=ACTOR, kwargs={},
            args=({"run_id": run_id, "step": step, "attempt": attempt, "retries": retries or {}},), options={})
        if self.dispatcher.embedded:
            self.dispatcher.start_local_worker()
        delay_ms = int((sane_delay(delay_s) or 0.0) * 1000)
        self.dispatcher.broker.enqueue(message, delay=delay_ms or None)

    def _handle(self, payload: dict[str, Any]) -> None:
        from mspflow.workflows.runs import BUSY, NEXT

        app = self.dispatcher.app
        run_id, step, attempt = payload["run_id"], payload["step"], payload["attempt"]
        try:
            outcome = app.workflows.runner.advance(run_id, step=step, attempt=attempt)
        except Exception as exc:  # the database is down, say: keep the run moving
            log.warning("workflow run %s step %s: could not advance (%s); will retry", run_id, step,
                        type(exc).__name__)
            self._again(payload, "TRANSIENT_FAILURE", None)
            return
        if outcome.what == NEXT:
            self.send(run_id, outcome.step, outcome.attempt)
        elif outcome.what == BUSY and outcome.bounded:  # the step's own retries: the run counts them
            self.send(run_id, step, attempt, retries=payload.get("retries"), delay_s=outcome.retry_after)
        elif outcome.what == BUSY:
            self._again(payload, "IN_PROGRESS", outcome.retry_after)

    def _again(self, payload: dict[str, Any], kind: str, delay: float | None) -> None:
        from mspflow.worker import BUDGETS, backoff

        retries = dict(payload.get("retries") or {})
        retries[kind] = retries.get(kind, 0) + 1
        if retries[kind] > BUDGETS[kind]:
            log.error("workflow run %s step %s: gave up after %d %s retries; `mspflow runs retry` drives it again",
                      payload["run_id"], payload["step"], BUDGETS[kind], kind)
            return
        self.send(payload["run_id"], payload["step"], payload["attempt"], retries=retries,
                  delay_s=delay if delay is not None else backoff(retries[kind]))
