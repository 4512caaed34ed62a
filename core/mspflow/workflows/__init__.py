"""Workflows: publish-time validation and the small step runner (triggers → steps → action calls).

A workflow is a name, a trigger (an event type such as ``RMM_ALERT_TRIGGERED`` with an optional payload
filter, or manual) and steps; each step is one action call whose input may refer to the trigger payload
and earlier steps' outputs (:mod:`.expressions`), with an optional ``if`` and ``on_error``
(:mod:`.definitions` has the file format). Definitions are stored per tenant and versioned; runs are
durable rows advanced one step at a time (:mod:`.runs`), on Dramatiq with one message per step
(:mod:`.queue`), or in this process on the embedded default. Events start a tenant's matching workflows
exactly once per event (:mod:`.triggers`).

Examples::

    from mspflow import App

    app = App.from_env()
    app.workflows.publish("acme", "escalate.yaml")              # or a dict; VALIDATION_ERROR when refused
    run = app.workflows.start("escalate", tenant="acme", payload={"ticket_id": "T-1"}, wait=True)
    run["status"], [s["status"] for s in run["steps"]]
    app.workflows.trigger({"event_id": "e-1", "tenant": "acme", "event_type": "TICKET_CREATED",
                           "payload": {...}})                    # run ids; a second delivery starts none
    app.workflows.dispatch_events()                             # the same for every new outbox event
    app.workflows.runs("acme")                                  # run history, newest first
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mspflow.workflows.validation import is_dynamic, validate_steps

if TYPE_CHECKING:
    from mspflow.app import App
    from mspflow.workflows.runs import Runner

__all__ = ["STORIES", "Workflows", "is_dynamic", "story_files", "validate_steps"]

#: The workflow definitions shipped with mspflow (the demo's stories), one YAML file each.
STORIES = Path(__file__).parent / "stories"


def story_files() -> list[Path]:
    """The shipped workflow definitions, by file name."""
    return sorted(STORIES.glob("*.yaml"))


class Workflows:
    """The workflow API of one :class:`mspflow.App` (``app.workflows``)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._local = threading.local()

    @cached_property
    def runner(self) -> Runner:
        from mspflow.workflows.runs import Runner

        return Runner(self.app)

    @property
    def in_process(self) -> bool:
        """Whether runs advance in the calling process (the embedded default: no broker configured)."""
        return self.app.dispatcher.embedded

    # -- definitions ------------------------------------------------------------------------------------

    def check(self, definition: Mapping[str, Any] | str | Path, *, tenant: str | None = None) -> dict[str, Any]:
        """The publish report without publishing: ``{"ok", "errors", "warnings"}``."""
        from mspflow.workflows.definitions import check

        data = self._data(definition)
        if tenant is None:
            return check(self.app.registry, data)[1]
        with self.app.db.sessions() as session:
            return check(self.app.registry, data, session=session, tenant=tenant)[1]

    def publish(self, tenant: str, definition: Mapping[str, Any] | str | Path) -> dict[str, Any]:
        """Validate and store a new version (``{"name", "version", "created", "warnings", "trigger"}``)."""
        from mspflow.envelope import check_lookup
        from mspflow.workflows.definitions import publish

        check_lookup("-", tenant)
        data = self._data(definition)
        with self.app.db.session() as session:
            return publish(session, self.app.registry, tenant, data)

    @staticmethod
    def _data(definition: Mapping[str, Any] | str | Path) -> Any:
        from mspflow.workflows.definitions import read_file

        return read_file(definition) if isinstance(definition, str | Path) else dict(definition)

    def definitions(self, tenant: str) -> list[dict[str, Any]]:
        """The newest version of each of the tenant's workflows."""
        from mspflow.workflows.definitions import listing

        with self.app.db.sessions() as session:
            return listing(session, tenant)

    def get(self, tenant: str, name: str, version: int | None = None) -> dict[str, Any]:
        from mspflow.workflows.definitions import get

        with self.app.db.sessions() as session:
            return get(session, tenant, name, version)

    def disable(self, tenant: str, name: str) -> int:
        from mspflow.workflows.definitions import disable

        with self.app.db.session() as session:
            return disable(session, tenant, name)

    def publish_stories(self, tenant: str) -> list[dict[str, Any]]:
        """Publish every shipped story (:data:`STORIES`) for ``tenant``; one publish answer each, in file order."""
        return [self.publish(tenant, file) for file in story_files()]

    # -- runs -------------------------------------------------------------------------------------------

    def start(self, name: str, *, tenant: str, payload: Mapping[str, Any] | None = None, wait: bool = False,
              timeout: float = 600.0, run_id: str | None = None) -> dict[str, Any]:
        """Start a run of the newest version of ``name`` by hand; with ``wait``, return it once final.

        On the embedded default the run advances in this process (``wait`` or not); with a broker,
        workers advance it. A caller-chosen ``run_id`` makes the start idempotent: when the tenant already
        has a run of ``name`` with that id, it is returned as it stands and nothing starts (``CONFLICT``
        when the id belongs to another workflow or tenant).
        """
        from mspflow.db.models import WorkflowRun
        from mspflow.errors import ActionError
        from mspflow.workflows.definitions import latest_row
        from mspflow.workflows.runs import new_run

        if run_id is not None:
            with self.app.db.sessions() as session:
                existing = session.get(WorkflowRun, run_id)
                if existing is not None and (existing.tenant, existing.workflow_name) != (tenant, name):
                    raise ActionError("CONFLICT", f"run id {run_id!r} is taken", details={"run_id": run_id},
                                      retryable=False)
            if existing is not None:
                return self.wait(tenant, run_id, timeout=timeout) if wait else self.run(tenant, run_id)
        with self.app.db.session() as session:
            row = latest_row(session, tenant, name)
            if row is None:
                raise ActionError.not_found(f"tenant {tenant!r} has no workflow {name!r}; publish one with "
                                            "`mspflow workflows publish FILE --tenant T`", workflow=name)
            if not row.enabled:
                raise ActionError("CONFLICT", f"workflow {name!r} is disabled for tenant {tenant!r}; publish it "
                                  "again to enable it", details={"workflow": name, "reason": "DISABLED"})
            run_id = new_run(session, row, dict(payload or {}), {"type": "manual"}, run_id=run_id)
        self._launch([run_id])
        return self.wait(tenant, run_id, timeout=timeout) if wait else self.run(tenant, run_id)

    def trigger(self, event: Mapping[str, Any], *, launch: bool = True) -> list[str]:
        """Start the event's tenant's matching workflows, once per event: the ids of the runs it started
        (none when this event was handled before). ``event``: ``event_id``, ``tenant``, ``event_type``,
        ``payload`` (the shape of :func:`mspflow.outbox.pending`)."""
        from mspflow.workflows.triggers import start_for_event

        with self.app.db.session(write=True) as session:
            started = start_for_event(session, event)
        if launch:
            self._launch(started)
        return started

    def dispatch_events(self, *, limit: int = 100, launch: bool = True) -> list[str]:
        """Hand every outbox event no dispatcher has looked at to :meth:`trigger`; the runs started."""
        from mspflow.errors import ActionError
        from mspflow.workflows.triggers import pending_events

        started: list[str] = []
        while True:
            with self.app.db.sessions() as session:
                events = pending_events(session, limit=limit)
            for event in events:
                try:
                    started += self.trigger(event, launch=False)
                except ActionError as err:  # a malformed event must not come back on every poll
                    import logging

                    from mspflow.workflows.triggers import looked_at

                    logging.getLogger("mspflow.workflows").warning(
                        "outbox event %s starts no workflow: %s", event["event_id"], err.message)
                    with self.app.db.session() as session:
                        looked_at(session, event["tenant"], event["event_id"])
            if len(events) < limit:
                break
        if launch:
            self._launch(started)
        return started

    def watch(self, stop: threading.Event, *, interval_s: float | None = None) -> None:
        """Call :meth:`dispatch_events` every ``interval_s`` (``MSPFLOW_TRIGGER_POLL_S``, default 1) until
        ``stop`` is set: ``mspflow worker`` runs this in a thread, so events the alert pipeline or a plugin
        publish start workflows without a step running. Any number of workers may watch at once."""
        import logging
        import os

        every = interval_s if interval_s is not None else float(os.environ.get("MSPFLOW_TRIGGER_POLL_S", "1"))
        while not stop.wait(every):
            try:
                self.dispatch_events()
            except Exception as exc:  # the database is down, say: try again next time
                logging.getLogger("mspflow.workflows").warning("could not look for trigger events (%s)",
                                                               type(exc).__name__)

    def _launch(self, run_ids: Iterable[str]) -> None:
        """Send each run's first step to the workers, or (embedded default) drive it here, together with
        the runs its steps' events start."""
        ids = list(run_ids)
        if not self.in_process:
            from mspflow.workflows.runs import recent_attempt

            for run_id in ids:
                step, attempt = recent_attempt(self.app, run_id)
                self.app.dispatcher.workflows.send(run_id, step, attempt)
            return
        backlog: deque[str] | None = getattr(self._local, "backlog", None)
        if backlog is not None:  # already driving in this thread: the outer loop picks them up
            backlog.extend(ids)
            return
        backlog = self._local.backlog = deque(ids)
        try:
            while backlog:
                self.runner.drive(backlog.popleft())
                backlog.extend(self.dispatch_events(launch=False))
        finally:
            self._local.backlog = None

    def retry(self, tenant: str, run_id: str, *, wait: bool = False, timeout: float = 600.0) -> dict[str, Any]:
        """Drive a run again: a FAILED run from its first step (succeeded side effects replay, never
        repeat), a RUNNING one from where it is (its worker died)."""
        self.runner.redrive(tenant, run_id)
        self._launch([run_id])
        return self.wait(tenant, run_id, timeout=timeout) if wait else self.run(tenant, run_id)

    def run(self, tenant: str, run_id: str) -> dict[str, Any]:
        """One run with its steps (outputs from their invocation records); ``NOT_FOUND`` for another tenant's."""
        from mspflow.workflows.runs import get

        with self.app.db.sessions() as session:
            return get(session, tenant, run_id)

    def runs(self, tenant: str, *, workflow: str | None = None, status: str | None = None,
             limit: int = 20) -> list[dict[str, Any]]:
        """The tenant's runs, newest first."""
        from mspflow.workflows.runs import recent

        with self.app.db.sessions() as session:
            return recent(session, tenant, workflow=workflow, status=status, limit=limit)

    def wait(self, tenant: str, run_id: str, *, timeout: float = 600.0, poll: float = 0.05) -> dict[str, Any]:
        """Poll until the run is final; ``TimeoutError`` after ``timeout`` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            run = self.run(tenant, run_id)
            if run["status"] != "RUNNING":
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"workflow run {run_id} did not finish within {timeout:g} s; "
                                   "is a worker running (`mspflow worker`)?")
            time.sleep(poll)
