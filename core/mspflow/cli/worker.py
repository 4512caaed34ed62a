"""``mspflow worker``: Dramatiq worker processes for queued action calls."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from mspflow.cli import app
from mspflow.cli._output import db_guard, fail, load


@app.command("worker")
def worker_cmd(
    processes: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="Threads per process.")] = 8,
    queues: Annotated[list[str] | None, typer.Option("--queues", help="Only these queues (repeatable).")] = None,
) -> None:
    """Run Dramatiq workers for queued action calls and workflow steps (needs MSPFLOW_BROKER_URL=redis://…)."""
    import os
    import signal
    import subprocess
    import threading

    if not os.environ.get("MSPFLOW_BROKER_URL"):
        fail("set MSPFLOW_BROKER_URL=redis://host:6379/0 to run workers; without a broker, "
              "`mspflow run --enqueue` runs calls inside its own process")
    if processes > 1:
        args = [sys.executable, "-m", "mspflow.cli", "worker", "--processes", "1", "--threads", str(threads)]
        for q in queues or []:
            args += ["--queues", q]
        children = [subprocess.Popen(args) for _ in range(processes)]

        def forward(signum: int, _frame: Any) -> None:
            for child in children:
                child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        codes = [child.wait() for child in children]
        raise typer.Exit(max(codes))
    instance = load()
    db_guard(False, instance)
    if routes := os.environ.get("MSPFLOW_SIMULATOR_ROUTES"):  # started by `mspflow demo`: its simulators
        import json

        from mspflow.vendor.transport import mount_routes

        mount_routes(json.loads(routes))
    worker = instance.dispatcher.worker(threads=threads, queues=queues)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    watcher = threading.Thread(target=instance.workflows.watch, args=(stop,), name="mspflow-triggers", daemon=True)
    watcher.start()  # outbox events → workflow runs
    from mspflow.alerts.polling import PollLoop

    polls = PollLoop(instance).start()  # alert reconciliation: one poll per integration per interval, all workers
    names = sorted(queues) if queues else sorted(instance.dispatcher.broker.get_declared_queues())
    typer.echo(f"mspflow worker {os.getpid()} ready: {threads} thread(s), queues {', '.join(names)}", err=True)
    stop.wait()
    typer.echo(f"mspflow worker {os.getpid()} stopping", err=True)
    polls.stop()
    worker.stop()
    watcher.join(timeout=10)
    instance.close()
