"""The ``mspflow`` command line (Typer): one module per command group, no business logic of its own.

Human-readable tables by default, ``--json`` for scripts. Exit codes: 0 ok, 1 failure, 2 usage.
Failures are one ``error: ...`` line on stderr (plus JSON on stdout with ``--json``), never a
traceback for a fault the operator can fix. Each command imports what it uses when it runs, so
``mspflow plugins`` never pays for SQLAlchemy's ORM and ``mspflow --help`` for nothing at all.

Modules: :mod:`._output` (printing, errors, the App), :mod:`.catalog` (plugins, actions, describe,
catalog), :mod:`.run` (run, invocations), :mod:`.tenant`, :mod:`.db`, :mod:`.outbox`, :mod:`.tickets`,
:mod:`.sim`, :mod:`.worker`, :mod:`.demo`, :mod:`.inbound` (serve, inbound, tenant webhook), :mod:`.alerts`,
:mod:`.new_plugin`, :mod:`.workflows` (workflows, runs).
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="mspflow",
    help="Integration workflow modules for an MSP's PSA: catalogs, actions, tenants, workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenant connections and secrets (standalone use).", no_args_is_help=True)
outbox_app = typer.Typer(help="Events for the host (e.g. SCHEDULE_ENTRY_CREATED).", no_args_is_help=True)
sim_app = typer.Typer(help="Vendor sandbox simulators.", no_args_is_help=True)
workflows_app = typer.Typer(help="Workflow definitions: publish, list, show, disable, run.", no_args_is_help=True)
runs_app = typer.Typer(help="Workflow runs: list, show, retry.", no_args_is_help=True)
tickets_app = typer.Typer(help="The reference PSA's tickets (read-only; change them with tickets.* actions).",
                          no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(outbox_app, name="outbox")
app.add_typer(sim_app, name="sim")
app.add_typer(workflows_app, name="workflows")
app.add_typer(runs_app, name="runs")
app.add_typer(tickets_app, name="tickets")

# The command modules register themselves on the apps above (order = order in `mspflow --help`).
# isort: off
from mspflow.cli import catalog, run, worker, demo, db, tenant, outbox, tickets  # noqa: E402, F401
from mspflow.cli import sim, inbound, alerts, new_plugin, workflows  # noqa: E402, F401
# isort: on
from mspflow.cli._output import describe_failure, report, setup_process, undecodable_argument  # noqa: E402


def main() -> None:
    """Console-script entry point: one line for every fault an operator can fix, never a traceback."""
    setup_process()
    argv = sys.argv[1:]
    as_json = "--json" in argv
    if (bad := undecodable_argument(argv)) is not None:
        if as_json and argv[:1] == ["run"]:  # run's own result shape
            from mspflow.cli._output import print_json

            print_json({"ok": False, "error": {"code": "VALIDATION_ERROR", "message": bad, "retryable": False,
                                               "details": {"reason": "INVALID_UTF8"}},
                        "invocation_id": None, "replayed": False})
            report(f"VALIDATION_ERROR: {bad}")
        else:
            report(bad, as_json=as_json, code="VALIDATION_ERROR")
        sys.exit(1)
    try:
        app()
    except Exception as exc:
        described = describe_failure(exc)
        if described is None:
            raise
        report(described[1], as_json=as_json, code=described[0])
        sys.exit(1)


if __name__ == "__main__":
    main()
