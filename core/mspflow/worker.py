"""Background execution on Dramatiq: broker selection, the actor, retries that respect the vendor.

``MSPFLOW_BROKER_URL=redis://…`` selects Dramatiq's RedisBroker, shared by any number of
``mspflow worker`` processes. Unset, the embedded default uses Dramatiq's in-process StubBroker and
worker threads started on the first ``enqueue``.

A message carries ids and the call's small JSON input only; credentials are read inside the worker.
Each integration has its own queue (``mspflow.<vendor>``; core actions use ``mspflow.core``), so a
slow vendor cannot starve the others. Dramatiq's own retries are off for this actor: the outcome
decides. A retryable error is re-sent with a delay (the vendor's ``retry_after`` when it gave one,
else exponential backoff with jitter); rate limits and "still running" conflicts have budgets of their
own, so waiting for a vendor never uses up the attempts meant for failures. A message redelivered
after its worker was killed meets the invocation record: a live lease means wait, an expired one
means take over, and the runtime caps how often a call may be taken over.

Every retry delay is finite and at most :data:`mspflow.errors.MAX_RETRY_AFTER_S`, and a message is
never dropped with its record left waiting: when a retry cannot be sent, or anything else goes
wrong after the call ran, the record is made final (FAILED, not retryable). Each message carries
Dramatiq's ``time_limit`` for its action (:func:`mspflow.runtime.time_limit_s`: past the action's
declared ``max_duration_s``, before its lease ends), and the actor's own limit covers the longest;
a handler cut off by it ends FAILED with ``details.outcome: "unknown"``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from mspflow.errors import ActionError, sane_delay
from mspflow.runtime import ActionCall, time_limit_s

if TYPE_CHECKING:
    from dramatiq.broker import Broker

    from mspflow.app import App
    from mspflow.runtime import ActionResult

log = logging.getLogger("mspflow.worker")

ACTOR = "mspflow_execute"
QUEUE_PREFIX = "mspflow."
CORE_QUEUE = "mspflow.core"
#: How many times each kind of retryable outcome is re-sent before the call is failed for good.
BUDGETS = {"TRANSIENT_FAILURE": 5, "RATE_LIMITED": 30, "IN_PROGRESS": 30, "OTHER": 5}
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0


def queue_for(app: App, action_id: str) -> str:
    """``mspflow.<vendor>`` for an integration's action, ``mspflow.core`` for the rest."""
    module = app.registry.module_of(action_id)
    if module is not None and module.provider:
        return QUEUE_PREFIX + module.provider
    return CORE_QUEUE


def all_queues(app: App) -> list[str]:
    vendors = sorted(m.provider for m in app.registry.modules.values() if m.provider)
    return [CORE_QUEUE, *(QUEUE_PREFIX + v for v in vendors)]


def make_broker(url: str | None) -> Broker:
    if not url:
        return StubBroker()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"MSPFLOW_BROKER_URL must be a redis:// URL, got {url.split('://')[0]}://…")
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(  # type: ignore[no-untyped-call]
        url=url,
        namespace=os.environ.get("MSPFLOW_BROKER_NAMESPACE", "mspflow"),
        heartbeat_timeout=int(os.environ.get("MSPFLOW_WORKER_HEARTBEAT_MS", "60000")),
        maintenance_chance=int(os.environ.get("MSPFLOW_BROKER_MAINTENANCE_CHANCE", "1000")),
    )


def time_limit_ms(app: App, action_id: str | None = None, version: int | None = None) -> int:
    """Dramatiq's ``time_limit`` for one action, or the longest of all registered actions."""
    if action_id is not None and (action := app.registry.action(action_id, version)) is not None:
        return int(time_limit_s(action) * 1000)
    return int(max((time_limit_s(a) for a in app.registry.actions.values()), default=600.0) * 1000)


def backoff(retries: int) -> float:
    """Seconds before retry number ``retries`` (1-based): exponential with full jitter, capped."""
    return random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** min(retries - 1, 64))) + 0.1


class Dispatcher:
    """Sends calls to workers and, when this process is a worker, runs them."""

    def __init__(self, app: App, broker_url: str | None = None) -> None:
        self.app = app
        self.url = broker_url if broker_url is not None else os.environ.get("MSPFLOW_BROKER_URL")
        self.broker = make_broker(self.url)
        self.actor = dramatiq.actor(
            broker=self.broker, actor_name=ACTOR, queue_name=CORE_QUEUE, max_retries=0,
            time_limit=time_limit_ms(app),
        )(self._handle)
        for queue in all_queues(app):
            self.broker.declare_queue(queue)
        from mspflow.inbound.processing import InboundQueue  # journaled webhook deliveries, same broker

        self.inbound = InboundQueue(self)
        from mspflow.workflows.queue import WorkflowQueue  # workflow runs: one message per step

        self.workflows = WorkflowQueue(self)
        self._local_worker: dramatiq.Worker | None = None
        self._lock = threading.Lock()
        self._booted = False

    @property
    def embedded(self) -> bool:
        return not self.url

    # -- sending --------------------------------------------------------------------------------------

    def enqueue(self, call: ActionCall) -> str:
        """Record the call as QUEUED (idempotently) and send it; returns the invocation id."""
        runtime, db = self.app.runtime, self.app.db
        action, params = runtime.prepare(call)
        data = params.model_dump(mode="json")
        run_id = call.run_id or f"adhoc-{os.urandom(16).hex()}"
        key = runtime.key_for(call, action, run_id)
        with db.connect() as conn:
            runtime.gate_on(conn, action, call)
            invocation_id, send = runtime.ledger.record_queued(conn, call, action, data, run_id, key)
            conn.commit()
        if send:
            self._send_or_fail(invocation_id, {
                "invocation_id": invocation_id, "action_id": action.id, "version": action.version,
                "tenant": call.tenant_id, "input": data, "run_id": run_id, "step_path": call.step_path,
                "idempotency_key": key, "retries": {}})
        return invocation_id

    def _send_or_fail(self, invocation_id: str, payload: dict[str, Any]) -> None:
        try:
            self.send(payload)
        except Exception as exc:  # the broker is unreachable: the record must not wait forever
            err = ActionError("TRANSIENT_FAILURE", f"could not queue the call: the broker is unreachable "
                              f"({type(exc).__name__}); try again", details={"invocation_id": invocation_id})
            self.app.runtime.fail_pending(invocation_id, ActionError(
                err.code, err.message, details=err.details, retryable=False))
            raise err from None

    def send(self, payload: dict[str, Any], delay_s: float = 0.0) -> None:
        """Send one message; ``delay_s`` is made finite and capped (:func:`mspflow.errors.sane_delay`)."""
        queue = queue_for(self.app, payload["action_id"])
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=queue, actor_name=ACTOR, args=(payload,), kwargs={},
            options={"time_limit": time_limit_ms(self.app, payload["action_id"], payload.get("version"))})
        if self.embedded:
            self.start_local_worker()
        delay_ms = int((sane_delay(delay_s) or 0.0) * 1000)
        self.broker.enqueue(message, delay=delay_ms or None)

    # -- running ----------------------------------------------------------------------------------------

    def _handle(self, payload: dict[str, Any]) -> None:
        invocation_id = payload["invocation_id"]
        call = ActionCall(payload["action_id"], payload["tenant"], payload["input"], payload["version"],
                          payload["run_id"], payload["step_path"], payload["idempotency_key"])
        try:
            result = self.app.runtime.execute(call, invocation_id=invocation_id, pinned=not self.embedded)
        except Exception as exc:  # the database is down, say: the message must not be lost
            from mspflow.runtime import ActionResult

            log.warning("invocation %s: could not run (%s: %s); will retry", invocation_id,
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            result = ActionResult(ok=False, error=ActionError("TRANSIENT_FAILURE", f"{type(exc).__name__}"),
                                  invocation_id=invocation_id)
        if result.ok and not result.replayed and call.action_id == "tickets.close":
            from mspflow.alerts.pipeline import after_action

            after_action(self.app, call.action_id, call.tenant_id, result.output)
        if result.ok or result.error is None or not result.error.retryable:
            return
        try:
            self._retry(payload, result)
        except Exception as exc:  # the retry could not be sent: end the record rather than strand it
            log.error("invocation %s: could not re-queue its retry (%s: %s); failing it for good", invocation_id,
                      type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            self._give_up(invocation_id, f"its retry could not be queued: {type(exc).__name__}")

    def _give_up(self, invocation_id: str, reason: str) -> None:
        try:
            self.app.runtime.give_up(invocation_id, reason)
        except Exception:
            log.exception("invocation %s: could not record that it failed for good", invocation_id)

    def _retry(self, payload: dict[str, Any], result: ActionResult) -> None:
        err = result.error
        assert err is not None
        kind: str = err.code if err.code in BUDGETS else "OTHER"
        if err.code == "CONFLICT" and err.details.get("reason") == "IN_PROGRESS":
            kind = "IN_PROGRESS"
        retries = dict(payload.get("retries") or {})
        retries[kind] = retries.get(kind, 0) + 1
        if retries[kind] > BUDGETS[kind]:
            self._give_up(payload["invocation_id"], f"gave up after {BUDGETS[kind]} retries ({kind.lower()})")
            log.warning("invocation %s: gave up after %d %s retries", payload["invocation_id"],
                        BUDGETS[kind], kind)
            return
        delay = sane_delay(err.retry_after)
        if delay is None:
            delay = backoff(retries[kind])
        log.info("invocation %s: %s, retry %d/%d in %.1f s", payload["invocation_id"], err.code,
                 retries[kind], BUDGETS[kind], delay)
        self.send({**payload, "retries": retries}, delay_s=delay)

    def start_local_worker(self, threads: int = 4) -> None:
        """The embedded default: worker threads in this process, consuming the in-process broker."""
        with self._lock:
            if self._local_worker is None:
                self._boot()
                self._local_worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)
                self._local_worker.start()

    def _boot(self) -> None:
        """What the ``dramatiq`` CLI does when a worker process starts: it starts the thread that enforces
        time limits (without it, Dramatiq's ``time_limit`` is never applied)."""
        if not self._booted:
            self._booted = True
            self.broker.emit_after("process_boot")

    def worker(self, *, threads: int, queues: list[str] | None = None) -> dramatiq.Worker:
        """A Dramatiq worker for this process (``mspflow worker``); the caller starts and stops it."""
        wanted = set(queues) if queues else None
        if wanted:
            for queue in wanted:
                self.broker.declare_queue(queue)
        with self._lock:
            self._boot()
        self.app.db.ensure_pool(threads + 2)
        worker = dramatiq.Worker(self.broker, queues=wanted, worker_threads=threads, worker_timeout=1000)
        # Dramatiq's default prefetch (2 per thread) caps a thread near 250 msg/s on Redis.
        worker.queue_prefetch = threads * 8
        return worker

    def close(self) -> None:
        if self._local_worker is not None:
            self._local_worker.stop()
            self._local_worker = None
        self.broker.close()
