"""Inbound benchmark: verified deliveries per second through ``mspflow serve`` (journal only), as a ratio
to a bare Starlette endpoint that inserts the same row, measured in the same run; p99 latency of the answer.

Both servers run as separate processes under Uvicorn on 127.0.0.1 (one process each, access log off):

* **mspflow**: ``mspflow serve`` itself, with a benchmark receiver installed as a throwaway distribution
  (HMAC-SHA256 of the body in ``X-Bench-Signature``, delivery id in ``event_id``) and
  ``MSPFLOW_INBOUND_ENQUEUE=0``, so each request does the whole request path — connection lookup by
  token, the tenant's key, signature check, JSON decode, delivery id, every secret of the tenant for
  redaction, the payload redacted and capped, one ``INSERT ... ON CONFLICT DO NOTHING`` — but sends no
  message to a worker (journal only);
* **bare**: a Starlette app with one route that reads the body, decodes the JSON and inserts the same
  row into the same ``inbound_events`` table (SQLAlchemy Core, statement built once, a thread per
  request as Starlette runs sync code), nothing else.

A client process of THREADS threads (one keep-alive ``httpx.Client`` each) posts signed deliveries with
distinct ids; the rate counts 200 ``accepted`` answers. Each server's CPU time per delivery (from
``/proc``; steadier than wall time on a shared machine) is printed too. Rounds alternate bare, mspflow; figures are
medians over ROUNDS rounds, the ratio the median of the per-round ratios. SQLite lives on ``/dev/shm``
when there is one; PostgreSQL is a throwaway server with ``synchronous_commit=off`` (or
``MSPFLOW_BENCH_POSTGRESQL_URL``). Client and servers share the machine's cores. Prints; asserts nothing.
Run with ``./dev bench`` or ``python benchmarks/inbound.py``.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROUNDS = 3
REQUESTS = {"sqlite": 1500, "postgresql": 1500}
THREADS = 16
TENANT = "bench-tenant"
PLUGIN = '''
"""Benchmark receiver: HMAC-signed JSON, delivery id in event_id; parse is never called (journal only)."""
from mspflow import Receiver, hookimpl, webhook


def parse(delivery):
    return []


bench = Receiver("bench", verify=webhook.hmac_signature("X-Bench-Signature", prefix="sha256="),
                 delivery_id=webhook.json_field("event_id"), parse=parse)


@hookimpl
def register_receivers(register):
    register(bench)
'''

BARE = '''
"""The baseline: read the body, decode it, insert the same journal row. Nothing else."""
import json, os, sys, uuid
from datetime import UTC, datetime

import uvicorn
from sqlalchemy import create_engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from mspflow.db.engine import Database
from mspflow.inbound.journal import insert_once

db = Database(os.environ["MSPFLOW_DATABASE_URL"])
stmt = insert_once(db.dialect)


def store(body: bytes, headers: dict) -> str:
    payload = json.loads(body)
    row = {"event_id": str(uuid.uuid4()), "tenant": "bench-tenant", "provider": "bench", "connection_id": None,
           "delivery_id": str(payload["event_id"]), "received_at": datetime.now(UTC),
           "content_type": headers.get("content-type"), "headers": headers, "payload": payload,
           "status": "RECEIVED", "attempt": 0}
    with db.session(write=True) as session:
        session.connection().execute(stmt, row)
    return row["event_id"]


async def receive(request):
    body = await request.body()
    event_id = await run_in_threadpool(store, body, dict(request.headers))
    return JSONResponse({"status": "accepted", "event_id": event_id})


async def healthz(request):
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/hooks/{provider}/{token}", receive, methods=["POST"]),
                        Route("/healthz", healthz)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning")
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def installed_plugin(root: Path) -> Iterator[dict[str, str]]:
    """The benchmark receiver as an installed distribution (a module and its .dist-info) under ``root``."""
    site = root / "site"
    site.mkdir()
    (site / "mspflow_bench_hooks.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "mspflow_bench_hooks-1.0.0.dist-info"
    info.mkdir()
    from mspflow.plugins import supported_range

    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mspflow-bench-hooks\nVersion: 1.0.0\n"
                                   f"Requires-Dist: mspflow{supported_range()}\n")
    (info / "entry_points.txt").write_text("[mspflow]\nbench_hooks = mspflow_bench_hooks\n")
    (info / "RECORD").write_text("")
    (root / "bare.py").write_text(BARE)
    python_path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    yield {"PYTHONPATH": python_path, "MSPFLOW_LOAD_PLUGINS": "bench_hooks"}


@contextmanager
def server(args: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    import httpx

    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read().decode() if proc.stderr else ""
            proc.kill()
            raise RuntimeError(f"{args} did not start:\n{err}")
        time.sleep(0.1)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def load(url: str, secret: str, count: int, tag: str) -> tuple[float, list[float]]:
    """Post ``count`` distinct signed deliveries from THREADS threads; (accepted per second, latencies)."""
    import httpx

    from mspflow.inbound.verify import sign

    bodies = [json.dumps({"event_id": f"{tag}-{i}", "event_type": "alert_active", "occurred_at":
                          "2026-11-29T12:00:00Z", "data": {"id": f"alert-{i}", "device_id": "dev-1041",
                                                           "severity": "critical", "name": "Disk almost full"}}
                          ).encode() for i in range(count)]
    signed = [(b, sign(secret, b, prefix="sha256=")) for b in bodies]
    latencies: list[float] = []
    accepted = [0]
    lock = threading.Lock()
    chunks = [signed[i::THREADS] for i in range(THREADS)]
    start = threading.Barrier(THREADS + 1)

    def run(chunk: list[tuple[bytes, str]]) -> None:
        mine: list[float] = []
        ok = 0
        with httpx.Client(timeout=60) as client:
            start.wait()
            for body, signature in chunk:
                t0 = time.perf_counter()
                answer = client.post(url, content=body, headers={"Content-Type": "application/json",
                                                                 "X-Bench-Signature": signature})
                mine.append(time.perf_counter() - t0)
                ok += answer.status_code == 200 and answer.json().get("status") == "accepted"
        with lock:
            latencies.extend(mine)
            accepted[0] += ok

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if accepted[0] != count:
        print(f"  warning: {count - accepted[0]} of {count} deliveries were not accepted", flush=True)
    return accepted[0] / elapsed, latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] * 1000


def bench(kind: str, url: str, note: str) -> None:
    from cryptography.fernet import Fernet
    from sqlalchemy import text

    from mspflow.app import App
    from mspflow.db.engine import Database
    from mspflow.db.migrate import upgrade
    from mspflow.inbound.journal import ensure_webhook
    from mspflow.plugins import Plugins

    key = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory() as tmp, installed_plugin(Path(tmp)) as plugin_env:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
        env |= plugin_env | {"MSPFLOW_DATABASE_URL": url, "MSPFLOW_SECRET_KEY": key, "MSPFLOW_HOME": tmp,
                             "MSPFLOW_INBOUND_ENQUEUE": "0"}
        os.environ["MSPFLOW_SECRET_KEY"] = key
        db = Database(url)
        upgrade(db)
        sys.path.insert(0, str(Path(tmp) / "site"))
        import mspflow_bench_hooks  # type: ignore[import-not-found]

        app = App(db=db, plugins=Plugins(entry_points=[], extra=[("mspflow-bench-hooks", mspflow_bench_hooks)]))
        with db.session(write=True) as session:
            hook = ensure_webhook(session, app.secrets, app.registry, TENANT, "bench")
            for i in range(3):  # a tenant has a few other secrets: all of them are used for redaction
                app.secrets.set(session, TENANT, f"other_secret_{i}", f"value-{i}-{uuid.uuid4().hex}")
        assert hook.secret is not None
        mport, bport = free_port(), free_port()
        mspflow = [str(Path(sys.executable).with_name("mspflow")), "serve", "--port", str(mport),
                   "--log-level", "warning"]
        bare = [sys.executable, str(Path(tmp) / "bare.py"), str(bport)]
        print(f"\n{kind} ({note}), {THREADS} client threads, {REQUESTS[kind]} deliveries per round:", flush=True)
        rates: dict[str, list[float]] = {"bare": [], "mspflow": []}
        lats: dict[str, list[float]] = {"bare": [], "mspflow": []}
        cpu: dict[str, list[float]] = {"bare": [], "mspflow": []}
        with server(mspflow, env, mport) as mproc, server(bare, env, bport) as bproc:
            pids = {"bare": bproc.pid, "mspflow": mproc.pid}
            load(f"http://127.0.0.1:{mport}{hook.path}", hook.secret, 100, "warm-m")
            load(f"http://127.0.0.1:{bport}/hooks/bench/x", hook.secret, 100, "warm-b")
            for r in range(ROUNDS):
                for name, target in (("bare", f"http://127.0.0.1:{bport}/hooks/bench/x"),
                                     ("mspflow", f"http://127.0.0.1:{mport}{hook.path}")):
                    before = cpu_seconds(pids[name])
                    rate, latencies = load(target, hook.secret, REQUESTS[kind], f"{name}-{r}")
                    used = (cpu_seconds(pids[name]) - before) / REQUESTS[kind] * 1000
                    rates[name].append(rate)
                    lats[name].append(p99(latencies))
                    cpu[name].append(used)
                    print(f"  round {r + 1} {name:8s} {rate:7.0f} deliveries/s  p99 {p99(latencies):6.1f} ms  "
                          f"server CPU {used:.2f} ms/delivery", flush=True)
        ratios = [m / b for m, b in zip(rates["mspflow"], rates["bare"], strict=True)]
        with db.engine.connect() as conn:
            journaled = conn.execute(text("SELECT count(*) FROM inbound_events WHERE provider = 'bench'")).scalar()
        for name, label in (("mspflow", "mspflow serve (journal only)"), ("bare", "bare Starlette + INSERT")):
            print(f"  {label:29s} {statistics.median(rates[name]):5.0f} deliveries/s, p99 "
                  f"{statistics.median(lats[name]):.1f} ms, server CPU {statistics.median(cpu[name]):.2f} ms/delivery")
        print(f"  ratio mspflow / bare: {statistics.median(ratios):.2f} (rounds: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}); rows journaled: {journaled}")
        app.close()
        db.dispose()
        sys.path.remove(str(Path(tmp) / "site"))
        sys.modules.pop("mspflow_bench_hooks", None)


def main() -> None:
    import _servers

    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        bench("sqlite", f"sqlite:///{tmp}/bench.sqlite3", f"file in {tmp}")
    with _servers.postgresql() as pg:
        bench("postgresql", pg.url, pg.note)


if __name__ == "__main__":
    main()
