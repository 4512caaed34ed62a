"""The host API: one object a PSA (or the CLI, or a worker) holds for the life of the process.

Examples::

    from mspflow import App

    app = App.from_env()                     # MSPFLOW_DATABASE_URL, MSPFLOW_BROKER_URL, entry points
    palette = app.catalog("acme").palette    # tiles the tenant may use
    for catalog in app.catalogs():           # every known tenant, streamed a chunk at a time
        ...
    result = app.execute("transform.text.render", tenant="acme",
                         input={"template": "Hi $name", "values": {"name": "Ada"}},
                         run_id="run-42", step_path="steps.3")
    invocation_id = app.enqueue("ninjaone.devices.reboot", tenant="acme", input={"device_id": "1041"},
                                run_id="run-42", step_path="steps.4")
    app.invocation(invocation_id)            # status, attempt, output or error
    app.workflows.publish("acme", "escalate.yaml")                         # see mspflow.workflows
    app.workflows.start("escalate", tenant="acme", payload={}, wait=True)  # a run, once final
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mspflow.catalog import Catalog
    from mspflow.db.engine import Database
    from mspflow.plugins import Plugins
    from mspflow.registry import Registry
    from mspflow.runtime import ActionResult, Runtime
    from mspflow.secrets import SecretStore
    from mspflow.worker import Dispatcher
    from mspflow.workflows import Workflows


class App:
    """Plugins, registry, database, runtime and broker together.

    :param db: the database; defaults to ``MSPFLOW_DATABASE_URL`` or the embedded SQLite file.
    :param plugins: a loaded plugin set; defaults to every installed entry point plus built-ins.
    :param secrets: the tenant secret store; defaults to encrypted rows in ``tenant_secrets``.
    :param broker_url: ``redis://…`` for Dramatiq on Redis; defaults to ``MSPFLOW_BROKER_URL``, and
        without one, to an in-process broker with worker threads (the embedded default).
    """

    def __init__(self, db: Database | None = None, plugins: Plugins | None = None,
                 secrets: SecretStore | None = None, broker_url: str | None = None) -> None:
        self._db = db
        self._plugins = plugins
        self._secrets = secrets
        self._broker_url = broker_url
        self._schema_checked = False

    @classmethod
    def from_env(cls) -> App:
        return cls()

    @cached_property
    def plugins(self) -> Plugins:
        if self._plugins is None:
            from mspflow.plugins import Plugins

            self._plugins = Plugins()
        return self._plugins

    @property
    def registry(self) -> Registry:
        return self.plugins.registry

    @property
    def db(self) -> Database:
        """The database, with its schema made current on first use (embedded default only)."""
        if self._db is None:
            from mspflow.db.engine import Database

            self._db = Database()
        if not self._schema_checked:
            from mspflow.db.migrate import ensure_schema

            ensure_schema(self._db)
            self._schema_checked = True
        return self._db

    @property
    def secrets(self) -> SecretStore:
        if self._secrets is None:
            from mspflow.secrets import DatabaseSecretStore, load_fernet

            self._secrets = DatabaseSecretStore(load_fernet(self.db))
        return self._secrets

    @cached_property
    def runtime(self) -> Runtime:
        from mspflow.runtime import Runtime

        return Runtime(self.registry, self.db, secrets=lambda: self.secrets,
                       permission_checker=self.registry.permission_checker)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        from mspflow.worker import Dispatcher

        return Dispatcher(self, self._broker_url)

    @cached_property
    def workflows(self) -> Workflows:
        """Publish workflows, start and retry runs, hand over trigger events: :mod:`mspflow.workflows`."""
        from mspflow.workflows import Workflows

        return Workflows(self)

    def catalog(self, tenant: str) -> Catalog:
        """Every module with its availability for ``tenant``; ``.palette`` holds the available ones."""
        from mspflow.catalog import build_catalog, needs_session

        if not needs_session(self.registry):  # the core's resolvers read through Core: no ORM to import
            with self.db.engine.connect() as conn:
                return build_catalog(self.registry, conn, tenant)
        with self.db.sessions() as session:
            return build_catalog(self.registry, session, tenant)

    def catalogs(self, tenants: Iterable[str] | None = None, *, chunk_size: int | None = None) -> Iterator[Catalog]:
        """The catalog of each tenant, in order, each equal to :meth:`catalog` of that tenant.

        ``tenants=None`` means every tenant the database knows: those with a row in
        ``rmm_integrations``, ``tenant_addons``, ``teams_integrations`` or ``tenant_secrets``
        (:func:`mspflow.tenants.known_tenants`), in code-point order. Catalogs are streamed a chunk
        of ``chunk_size`` tenants (default :data:`mspflow.catalog.CHUNK_SIZE`) at a time, each chunk in
        its own short session: one statement per resolver family per chunk, whatever the number of
        modules. ``tenants`` is read lazily, one chunk ahead. Print them with
        :func:`mspflow.catalog.json_lines` (one JSON object per line).
        """
        from mspflow.catalog import CHUNK_SIZE, CatalogPlan, chunks

        plan = CatalogPlan(self.registry)
        if tenants is None:
            from mspflow.tenants import known_tenants

            with self.db.sessions() as session:
                tenants = known_tenants(session)
        for chunk in chunks(tenants, chunk_size or CHUNK_SIZE):
            with self.db.sessions() as session:
                catalogs = plan.catalogs(session, chunk)
            yield from catalogs

    def execute(self, action_id: str, *, tenant: str, input: Mapping[str, Any], version: int | None = None,
                run_id: str | None = None, step_path: str | None = None,
                idempotency_key: str | None = None, wait_if_running: float = 0.0) -> ActionResult:
        """Run one action call now, in this process, and return its result (never raises for failures).

        ``wait_if_running``: when the same call (same idempotency key) is running elsewhere right now, wait up
        to this many seconds for it to end and answer its recorded result, instead of the retryable
        ``CONFLICT`` (``details.reason: IN_PROGRESS``) answered at once by default. For a caller that may
        reach one call by two paths together, e.g. an alert seen by its webhook and by a poll.
        """
        from mspflow.runtime import ActionCall

        call = ActionCall(action_id, tenant, _as_input(input), version, run_id, step_path, idempotency_key)
        deadline = time.monotonic() + wait_if_running
        while True:
            result = self.runtime.execute(call)
            err = result.error
            if (err is None or err.code != "CONFLICT" or err.details.get("reason") != "IN_PROGRESS"
                    or time.monotonic() >= deadline):
                break
            time.sleep(min(0.5, max(0.05, err.retry_after or 0.05), max(0.0, deadline - time.monotonic())))
        if result.ok and not result.replayed and action_id == "tickets.close":
            from mspflow.alerts.pipeline import after_action

            after_action(self, action_id, tenant, result.output)
        return result

    def enqueue(self, action_id: str, *, tenant: str, input: Mapping[str, Any], version: int | None = None,
                run_id: str | None = None, step_path: str | None = None,
                idempotency_key: str | None = None) -> str:
        """Queue one action call for a worker and return its invocation id.

        Bad calls (unknown action, invalid input, disconnected integration) raise
        :class:`mspflow.ActionError` here, before anything is queued.
        """
        from mspflow.runtime import ActionCall

        return self.dispatcher.enqueue(ActionCall(action_id, tenant, _as_input(input), version, run_id, step_path,
                                                  idempotency_key))

    def invocation(self, invocation_id: str, *, tenant: str | None = None) -> dict[str, Any] | None:
        """The record of one invocation (input redacted), or None. Pass ``tenant`` to scope the lookup."""
        from mspflow.invocations import get

        with self.db.sessions() as session:
            return get(session, invocation_id, tenant=tenant)

    def wait(self, invocation_id: str, timeout: float = 60.0, poll: float = 0.05) -> dict[str, Any]:
        """Poll until the invocation is final; raise TimeoutError after ``timeout`` s.

        Final means SUCCEEDED, or FAILED with an error that is not retryable (a retryable failure of a
        queued call is retried by the worker until it succeeds or its retry budget runs out).
        """
        deadline = time.monotonic() + timeout
        while True:
            record = self.invocation(invocation_id)
            if record is not None and (record["status"] == "SUCCEEDED" or (
                    record["status"] == "FAILED" and not record["error"]["retryable"])):
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"invocation {invocation_id} did not finish within {timeout:g} s")
            time.sleep(poll)

    def ingest_alert(self, event: Any) -> Any:
        """Run one :class:`mspflow.AlertEvent` through the alert pipeline now (see :mod:`mspflow.alerts.pipeline`)."""
        from mspflow.alerts.pipeline import ingest

        return ingest(self, event)

    def ticket_closed(self, tenant: str, ticket_id: str) -> list[dict[str, Any]]:
        """Tell mspflow the host closed ``ticket_id``: its still-active alerts are reset in their RMM (unless
        their rule opted out); failures are recorded on the alert and returned, never raised."""
        from mspflow.alerts.pipeline import ticket_closed

        return ticket_closed(self, tenant, ticket_id)

    def validate_workflow(self, steps: Iterable[Mapping[str, Any]], *,
                          tenant: str | None = None) -> dict[str, Any]:
        """Check a workflow's steps at publish time; see :func:`mspflow.workflows.validate_steps`.

        With ``tenant``, steps on integrations the tenant has not connected are reported as warnings.
        """
        from mspflow.workflows import validate_steps

        if tenant is None:
            return validate_steps(self.registry, steps)
        with self.db.sessions() as session:
            return validate_steps(self.registry, steps, session=session, tenant=tenant)

    def close(self) -> None:
        if "dispatcher" in self.__dict__:
            self.dispatcher.close()
        if "runtime" in self.__dict__:
            self.runtime.close()
        if self._db is not None:
            self._db.dispose()


def _as_input(value: Any) -> Any:
    """A copy of a mapping input; anything else is passed on for the call envelope check to refuse
    (``VALIDATION_ERROR`` at ``(root)``) instead of failing here."""
    return dict(value) if isinstance(value, Mapping) else value
