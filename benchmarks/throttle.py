"""Throttle benchmark: Huntress calls from several worker processes, against one account's sliding window.

Serves the Huntress simulator on 127.0.0.1 (its limiter answers 429 to the request that would be the
``limit + 1``-th within ``window`` seconds), queues CALLS Huntress actions for one tenant (a third
``incidents.resolve`` of distinct reports, a third ``incidents.get``, a third ``agents.get``: one vendor
request each), then drains them with ``mspflow worker --processes P --threads T`` on a real Redis and
PostgreSQL. The workers enforce the plugin's declared limit (``RateLimit(60, window_s=60)``, or the
``--limit``/``--window`` given, passed to them as ``MSPFLOW_RATE_LIMITS``) through Redis.

Prints:

* the 429s the simulator answered (goal: 0 without another tool on the account);
* the achieved rate as a fraction of the allowed one (goal: >= 0.95). A sliding window allows ``limit``
  requests at once and then ``limit`` per ``window``, so N requests need at least
  ``(N - limit) / limit * window`` seconds from the first to the last; the fraction is that over the
  time the simulator saw between our first and last request;
* the busiest window seen by the simulator (at most ``limit``), every call's outcome and whether each
  resolution happened exactly once.

``--short`` runs 10 requests per 2 s instead of Huntress's 60 per 60 s (seconds instead of minutes).
``--other-tool N --every S`` has "another tool" spend N of the account's slots every S seconds: then
429s are expected, and are waited out. ``--json`` prints one JSON object (what the tests read).
``MSPFLOW_BENCH_POSTGRESQL_URL`` / ``MSPFLOW_BENCH_REDIS_URL`` select existing servers (see _servers.py).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import _servers

MSPFLOW = str(Path(sys.executable).with_name("mspflow"))
TENANT = "bench-huntress"
FIRST_REPORT = 200_000


def options(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=int(os.environ.get("MSPFLOW_BENCH_CALLS", "300")))
    p.add_argument("--processes", type=int, default=int(os.environ.get("MSPFLOW_BENCH_PROCESSES", "2")))
    p.add_argument("--threads", type=int, default=int(os.environ.get("MSPFLOW_BENCH_THREADS", "8")))
    p.add_argument("--limit", type=int, default=60, help="requests per window (Huntress: 60)")
    p.add_argument("--window", type=float, default=60.0, help="window in seconds (Huntress: 60)")
    p.add_argument("--short", action="store_true", help="10 requests per 2 s")
    p.add_argument("--other-tool", type=int, default=0, metavar="N", help="slots another tool takes ...")
    p.add_argument("--every", type=float, default=1.0, metavar="S", help="... every S seconds")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.short:
        args.limit, args.window = 10, 2.0
    if args.timeout is None:
        args.timeout = 60 + 3 * args.calls / args.limit * args.window
    return args


def busiest_window(times: list[float], window: float) -> int:
    """The most requests inside any window (start excluded, as the simulator counts)."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def calls(n: int) -> list[tuple[str, dict[str, int]]]:
    from mspflow_huntress.sim import FRONTDESK, SENT_ID

    out: list[tuple[str, dict[str, int]]] = []
    for i in range(n):
        if i % 3 == 0:
            out.append(("huntress.incidents.resolve", {"incident_report_id": FIRST_REPORT + i}))
        elif i % 3 == 1:
            out.append(("huntress.incidents.get", {"incident_report_id": SENT_ID}))
        else:
            out.append(("huntress.agents.get", {"agent_id": FRONTDESK}))
    return out


def run(args: argparse.Namespace, pg_url: str, redis_url: str, tmp: Path) -> dict[str, Any]:
    from cryptography.fernet import Fernet
    from mspflow_huntress.sim import FRONTDESK, HuntressSimulator
    from sqlalchemy import text

    from mspflow import tenants
    from mspflow.app import App
    from mspflow.db.engine import Database
    from mspflow.db.migrate import upgrade
    from mspflow.plugins import Plugins

    sim = HuntressSimulator(rate_limit=args.limit, window_s=args.window)
    work = calls(args.calls)
    for action, data in work:
        if action.endswith("resolve"):
            sim.add_report(data["incident_report_id"], FRONTDESK, remediations=["approved"])
    server, url = sim.serve_in_thread()

    namespace = f"mspflow-throttle-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MSPFLOW_", "dramatiq_"))}
    env |= {"MSPFLOW_DATABASE_URL": pg_url, "MSPFLOW_BROKER_URL": redis_url, "MSPFLOW_BROKER_NAMESPACE": namespace,
            "MSPFLOW_LOAD_PLUGINS": "huntress", "MSPFLOW_STRICT_PLUGINS": "1", "MSPFLOW_HOME": str(tmp / "home"),
            "MSPFLOW_SECRET_KEY": Fernet.generate_key().decode(), "MSPFLOW_ALLOW_HTTP_VENDOR_URLS": "1",
            "MSPFLOW_RATE_LIMITS": f"huntress={args.limit}/{args.window:g}"}
    os.environ.update({k: v for k, v in env.items() if k.startswith("MSPFLOW_")})

    db = Database(pg_url)
    upgrade(db)
    app = App(db=db, plugins=Plugins(strict=True), broker_url=redis_url)
    with db.session() as s:
        tenants.connect(s, app.registry, TENANT, "huntress", f"{url}/v1")
        for name, value in sim.demo_secrets().items():
            app.secrets.set(s, TENANT, name, value)
    run_id = f"throttle-{uuid.uuid4().hex[:8]}"
    ids = [app.enqueue(action, tenant=TENANT, input=data, run_id=run_id, step_path=f"steps.{i}")
           for i, (action, data) in enumerate(work)]

    stop = threading.Event()

    def other_tool() -> None:
        while not stop.wait(args.every):
            sim.other_tool(args.other_tool)

    if args.other_tool:
        threading.Thread(target=other_tool, daemon=True).start()
    workers = subprocess.Popen([MSPFLOW, "worker", "--processes", str(args.processes), "--threads",
                                str(args.threads)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(workers.stderr or []), daemon=True).start()
    # A call waiting out a rate limit is FAILED and retryable until it runs again: only the rest are final.
    counting = text("SELECT CASE WHEN status = 'FAILED' AND error_retryable THEN 'WAITING' ELSE status END, "
                    "count(*) FROM workflow_action_invocations WHERE run_id = :r GROUP BY 1")
    counts: dict[str, int] = {}
    started, timed_out = time.monotonic(), False
    try:
        while counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0) < len(ids):
            if workers.poll() is not None or time.monotonic() - started > args.timeout:
                timed_out = True
                break
            time.sleep(0.2)
            with db.engine.connect() as conn:
                counts = dict(conn.execute(counting, {"r": run_id}).all())  # type: ignore[arg-type]
    finally:
        stop.set()
        if workers.poll() is None:
            workers.send_signal(signal.SIGTERM)
            try:
                workers.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(workers.pid, signal.SIGKILL)  # its own session: only our workers
                workers.wait()
        server.shutdown()
        server.server_close()
    with db.engine.connect() as conn:
        attempts = list(conn.execute(text("SELECT attempt FROM workflow_action_invocations WHERE run_id = :r"),
                                     {"r": run_id}).scalars())
        failures = [f"{code}: {message}" for code, message in conn.execute(text(
            "SELECT error_code, error_message FROM workflow_action_invocations WHERE run_id = :r "
            "AND status = 'FAILED' AND NOT error_retryable LIMIT 3"), {"r": run_id}).all()]
    app.close()
    db.dispose()

    ours = sim.api_times()
    resolves = [d["incident_report_id"] for a, d in work if a.endswith("resolve")]
    needed = max(0.0, (len(ours) - args.limit) / args.limit * args.window)
    span = ours[-1] - ours[0] if len(ours) > 1 else 0.0
    return {
        "calls": len(ids), "processes": args.processes, "threads": args.threads,
        "limit": args.limit, "window_s": args.window, "other_tool_slots": sim.other_tool_requests,
        "succeeded": counts.get("SUCCEEDED", 0), "failed": counts.get("FAILED", 0), "timed_out": timed_out,
        "refused_429": sim.refused, "our_requests_accepted": len(ours),
        "busiest_window": busiest_window(sorted(sim.limiter_state()["times"]), args.window),
        "seconds_first_to_last": round(span, 3), "seconds_needed": round(needed, 3),
        "rate_fraction": round(needed / span, 4) if span > 0 else None,
        "resolved_exactly_once": all(sim.resolutions[r] == 1 for r in resolves),
        "resolutions": sum(sim.resolutions[r] for r in resolves), "resolves": len(resolves),
        "max_attempt": max(attempts, default=0), "failures": failures, "worker_log_tail": log[-5:] if timed_out else [],
    }


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    with tempfile.TemporaryDirectory() as tmp, _servers.postgresql() as pg, _servers.redis() as rs:
        redis_url = rs.url(3)
        try:
            figures = run(args, pg.url, redis_url, Path(tmp))
        finally:
            if rs.external:
                _servers.delete_namespace(rs.base_url, os.environ.get("MSPFLOW_BROKER_NAMESPACE", "-"))
                _servers.delete_namespace(rs.base_url, "mspflow-rl")
    figures["servers"] = f"{pg.note}; {rs.note}"
    if args.json:
        print(json.dumps(figures))
        return
    print(f"throttle: {figures['calls']} Huntress calls, {args.processes} worker process(es) x {args.threads} "
          f"thread(s), window {args.limit} requests per {args.window:g} s"
          f"{' (shortened)' if (args.limit, args.window) != (60, 60.0) else ' (Huntress)'}; {figures['servers']}")
    if args.other_tool:
        print(f"  another tool took {figures['other_tool_slots']} slots ({args.other_tool} every {args.every:g} s)")
    print(f"  429s received: {figures['refused_429']} (goal 0 without another tool)")
    fraction = figures["rate_fraction"]
    print(f"  achieved rate: {figures['our_requests_accepted']} requests in {figures['seconds_first_to_last']:.1f} s "
          f"first to last; the window allows them in {figures['seconds_needed']:.1f} s: "
          f"{fraction if fraction is not None else float('nan'):.3f} of the allowed rate (goal >= 0.95)")
    print(f"  busiest window at the simulator: {figures['busiest_window']} of {args.limit} allowed")
    print(f"  calls: {figures['succeeded']} succeeded, {figures['failed']} failed"
          f"{', TIMED OUT' if figures['timed_out'] else ''}; resolutions exactly once: "
          f"{figures['resolved_exactly_once']} ({figures['resolutions']} for {figures['resolves']} reports); "
          f"most runs of one call: {figures['max_attempt']}")
    for failure in figures["failures"]:
        print(f"  FAILED: {failure}")


if __name__ == "__main__":
    main()
