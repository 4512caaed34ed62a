"""Worker benchmark: no-op actions/s through Redis + Dramatiq + PostgreSQL records, vs raw Dramatiq.

Prints, for MESSAGES no-op calls drained by worker subprocesses (PROCESSES x THREADS):

* ``mspflow worker`` rate: the calls are queued with ``App.enqueue`` (QUEUED record + message), then
  the workers start; timed from starting the workers until every invocation is SUCCEEDED (and,
  separately, from the first worker's "ready" line, which leaves out imports and start-up). Both
  sides poll their Redis message hash (emptied as messages are acked), mspflow's then confirmed by
  counting the records, so the poller costs the same on both sides;
* raw Dramatiq rate, measured in the same run on the same Redis (another database and namespace):
  a no-op actor taking a payload like mspflow's, drained by the ``dramatiq`` CLI with the same
  processes, threads and prefetch (``mspflow worker`` sets ``queue_prefetch = threads * 8``; the raw
  worker gets ``dramatiq_queue_prefetch`` to match), timed until its Redis message hash is empty;
* the ratio of the two, with the target (>= 0.6); the enqueue rates of both, and the workers' CPU
  time per message after they are ready (user + system of their processes, from /proc: steadier
  than wall time on a shared machine), for context.

The no-op action is a side-effectful tile-less action of a throwaway installed distribution (a
module and a ``.dist-info`` with an ``mspflow`` entry point, on the workers' PYTHONPATH, as
``tests/distributions.py`` does); ``MSPFLOW_LOAD_PLUGINS`` limits the workers to it.

Prints figures; asserts nothing. Both sides run in the same run (raw, mspflow, raw, mspflow) because
absolute timings on these machines move 10-50% between runs; the ratio is the median of the per-pair
ratios. PostgreSQL and Redis are throwaway servers unless ``MSPFLOW_BENCH_POSTGRESQL_URL`` /
``MSPFLOW_BENCH_REDIS_URL`` name existing ones. ``MSPFLOW_BENCH_PROCESSES``, ``MSPFLOW_BENCH_THREADS``,
``MSPFLOW_BENCH_MESSAGES`` and ``MSPFLOW_BENCH_PAIRS`` override the defaults (1, 8, 3000, 2). With
``MSPFLOW_BENCH_PROFILE=DIR`` the ``mspflow worker`` processes run under cProfile, one file per thread
in DIR (merge them with ``pstats.Stats(*files)``); the figures are then slower, of course.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import _servers

PROCESSES = int(os.environ.get("MSPFLOW_BENCH_PROCESSES", "1"))
THREADS = int(os.environ.get("MSPFLOW_BENCH_THREADS", "8"))
MESSAGES = int(os.environ.get("MSPFLOW_BENCH_MESSAGES", "3000"))
PAIRS = int(os.environ.get("MSPFLOW_BENCH_PAIRS", "2"))
TARGET = 0.6
TIMEOUT_S = 120.0
POLL_S = 0.02
ACTION = "bench.noop.apply"
MSPFLOW = str(Path(sys.executable).with_name("mspflow"))

PLUGIN = '''
"""The benchmark's no-op action, installed as the entry point ``bench``."""
from pydantic import BaseModel

from mspflow import hookimpl
from mspflow.modules import action


class NoopInput(BaseModel):
    device_id: str


class NoopOutput(BaseModel):
    ok: bool = True


def noop(params: NoopInput, ctx) -> NoopOutput:
    """Does nothing, successfully."""
    return NoopOutput()


@hookimpl
def register_actions(register):
    register(action("bench.noop.apply", label="No-op (benchmark)", handler=noop, side_effectful=True))
'''

RAW = '''
"""A raw Dramatiq no-op actor on its own Redis database and namespace."""
import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["BENCH_RAW_REDIS_URL"], namespace=os.environ["BENCH_RAW_NAMESPACE"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench_raw", max_retries=0)
def noop(payload):
    pass
'''

#: Run as ``python -c`` instead of ``mspflow`` when profiling: one cProfile per thread (cProfile sees only
#: the thread that enabled it), each written to MSPFLOW_BENCH_PROFILE/worker-PID-N.prof at exit.
PROFILED_WORKER = '''
import atexit, cProfile, os, sys, threading
profiles = []
real_bootstrap = threading.Thread._bootstrap_inner  # Dramatiq's threads override run()
def bootstrap(self):
    profile = cProfile.Profile()
    profiles.append(profile)
    profile.enable()
    try:
        real_bootstrap(self)
    finally:
        profile.disable()
threading.Thread._bootstrap_inner = bootstrap
def dump():
    for i, profile in enumerate(profiles):
        profile.disable()
        profile.dump_stats(os.path.join(os.environ["MSPFLOW_BENCH_PROFILE"], f"worker-{os.getpid()}-{i}.prof"))
atexit.register(dump)
sys.argv = ["mspflow", *sys.argv[1:]]
from mspflow.cli import main
main()
'''


def install(site: Path) -> None:
    """The bench plugin as an installed distribution, and the raw actor module, in ``site``."""
    site.mkdir()
    (site / "bench_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "mspflow_bench-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mspflow-bench\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text("[mspflow]\nbench = bench_plugin\n")
    (info / "RECORD").write_text("")
    (site / "bench_raw.py").write_text(textwrap.dedent(RAW))


def payload(i: int, tag: str) -> dict[str, object]:
    """What mspflow puts in a message, so the raw side moves the same bytes."""
    return {"invocation_id": str(uuid.uuid4()), "action_id": ACTION, "version": 1, "tenant": "bench",
            "input": {"device_id": f"d-{i}"}, "run_id": f"{tag}-{i}", "step_path": "steps.1",
            "idempotency_key": uuid.uuid4().hex * 2, "retries": {}}


def session_cpu(sid: int) -> float | None:
    """CPU seconds (user + system) used so far by the live processes of session ``sid`` (Linux /proc)."""
    if not os.path.isdir("/proc/self"):
        return None
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields[0] is field 3 of proc(5): state; session is field 6
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class Workers:
    """Worker subprocess(es) in their own session; notes when the first one says it is ready."""

    def __init__(self, cmd: list[str], env: dict[str, str], ready_marker: str) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.ready_at: float | None = None
        self.cpu_at_ready: float | None = None
        self.cpu_at_end: float | None = None
        self.log: list[str] = []
        self._marker = ready_marker
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if self.ready_at is None and self._marker in line:
                self.ready_at = time.perf_counter()
                self.cpu_at_ready = session_cpu(self.proc.pid)
            self.log.append(line)

    def drain_cpu(self) -> float:
        """CPU seconds the workers used between the first ready line and the end of the drain."""
        if self.cpu_at_ready is None or self.cpu_at_end is None:
            return float("nan")
        return self.cpu_at_end - self.cpu_at_ready

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # both forward it to their worker processes
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only our workers
                self.proc.wait()
        self._reader.join(timeout=5)


def drain(workers: Workers, done: Callable[[], bool], what: str) -> tuple[float, float, float] | None:
    """Poll until ``done()``; seconds from the workers' start, from their first ready line, CPU s after it."""
    deadline = time.perf_counter() + TIMEOUT_S
    try:
        while not done():
            if workers.proc.poll() is not None or time.perf_counter() > deadline:
                workers.stop()
                print(f"  {what}: workers exited (code {workers.proc.returncode}) or timed out after "
                      f"{TIMEOUT_S:g} s; their log:\n" + "".join(workers.log[-30:]))
                return None
            time.sleep(POLL_S)
        end = time.perf_counter()
        workers.cpu_at_end = session_cpu(workers.proc.pid)
    finally:
        workers.stop()
    ready = workers.ready_at if workers.ready_at is not None else workers.started
    return end - workers.started, end - ready, workers.drain_cpu()


def run_raw(redis_url: str, namespace: str, env: dict[str, str], tag: str) -> tuple[float, ...] | None:
    """Enqueue MESSAGES raw no-op messages, drain them with the dramatiq CLI.

    Returns (enqueue/s, seconds from start, seconds from ready, worker CPU seconds from ready).
    """
    import bench_raw  # the parent sends with the same actor definition
    import redis

    start = time.perf_counter()
    for i in range(MESSAGES):
        bench_raw.noop.send(payload(i, tag))
    enqueue_rate = MESSAGES / (time.perf_counter() - start)
    client = redis.Redis.from_url(redis_url)
    key = f"{namespace}:bench_raw.msgs"  # each message's body until it is acked
    workers = Workers([sys.executable, "-m", "dramatiq", "bench_raw", "--processes", str(PROCESSES),
                       "--threads", str(THREADS)], env, "is ready for action")
    timed = drain(workers, lambda: client.hlen(key) == 0, "raw dramatiq")
    client.close()
    return None if timed is None else (enqueue_rate, *timed)


def run_mspflow(app: object, db_url: str, redis_url: str, namespace: str, env: dict[str, str],
                tag: str) -> tuple[float, ...] | None:
    """Enqueue MESSAGES calls with App.enqueue, drain them with `mspflow worker`; returns as :func:`run_raw`."""
    import redis
    from sqlalchemy import create_engine, text

    tenant = f"bench-{tag}"
    start = time.perf_counter()
    for i in range(MESSAGES):
        app.enqueue(ACTION, tenant=tenant, input={"device_id": f"d-{i}"},  # type: ignore[attr-defined]
                    run_id=f"{tag}-{i}", step_path="steps.1")
    enqueue_rate = MESSAGES / (time.perf_counter() - start)
    # Poll as cheaply as the raw side: a message leaves its hash when acked, after its result is committed
    # (a retry would sit in the delay queue's hash); then confirm with the records themselves.
    client = redis.Redis.from_url(redis_url)
    hashes = [f"{namespace}:mspflow.core.msgs", f"{namespace}:mspflow.core.DQ.msgs"]
    poller = create_engine(db_url)
    counting = text("SELECT status, count(*) FROM workflow_action_invocations WHERE tenant = :t GROUP BY status")
    counts: dict[str, int] = {}

    def done() -> bool:
        if any(client.hlen(key) for key in hashes):
            return False
        with poller.connect() as conn:
            counts.update(conn.execute(counting, {"t": tenant}).all())
        return counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0) >= MESSAGES

    cmd = [sys.executable, "-c", PROFILED_WORKER] if os.environ.get("MSPFLOW_BENCH_PROFILE") else [MSPFLOW]
    cmd += ["worker", "--processes", str(PROCESSES), "--threads", str(THREADS)]
    workers = Workers(cmd, env, "ready:")
    timed = drain(workers, done, "mspflow worker")
    poller.dispose()
    client.close()
    if counts.get("FAILED"):
        print(f"  WARNING: {counts['FAILED']} invocation(s) FAILED; the rate counts them as done")
    return None if timed is None else (enqueue_rate, *timed)


def main() -> None:
    from mspflow.app import App
    from mspflow.db.engine import Database
    from mspflow.db.migrate import upgrade
    from mspflow.plugins import Plugins

    with tempfile.TemporaryDirectory() as tmp, _servers.postgresql() as pg, _servers.redis() as rs:
        site = Path(tmp) / "site"
        install(site)
        sys.path.insert(0, str(site))
        import bench_plugin

        run = uuid.uuid4().hex[:8]
        mspflow_ns, raw_ns = f"mspflow-bench-{run}", f"dramatiq-bench-{run}"
        mspflow_redis, raw_redis = rs.url(1), rs.url(2)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MSPFLOW_", "dramatiq_"))}
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        prefetch = str(THREADS * 8)
        raw_env = {**base, "BENCH_RAW_REDIS_URL": raw_redis, "BENCH_RAW_NAMESPACE": raw_ns,
                   "dramatiq_queue_prefetch": prefetch}
        mspflow_env = {**base, "MSPFLOW_DATABASE_URL": pg.url, "MSPFLOW_BROKER_URL": mspflow_redis,
                       "MSPFLOW_BROKER_NAMESPACE": mspflow_ns, "MSPFLOW_LOAD_PLUGINS": "bench",
                       "MSPFLOW_STRICT_PLUGINS": "1", "MSPFLOW_HOME": str(Path(tmp) / "home")}
        if profile_dir := os.environ.get("MSPFLOW_BENCH_PROFILE"):
            mspflow_env["MSPFLOW_BENCH_PROFILE"] = profile_dir
        os.environ["BENCH_RAW_REDIS_URL"], os.environ["BENCH_RAW_NAMESPACE"] = raw_redis, raw_ns

        db = Database(pg.url)
        upgrade(db)
        os.environ["MSPFLOW_BROKER_NAMESPACE"] = mspflow_ns  # read by App's broker
        app = App(db=db, plugins=Plugins(entry_points=[], extra=[("bench", bench_plugin)], strict=True),
                  broker_url=mspflow_redis)

        print(f"worker: {MESSAGES} no-op messages per run, {PROCESSES} process(es) x {THREADS} thread(s), "
              f"prefetch {prefetch} per process; {pg.note}; {rs.note}")
        results: dict[str, list[tuple[float, ...]]] = {"raw": [], "mspflow": []}
        for pair in range(PAIRS):
            raw = run_raw(raw_redis, raw_ns, raw_env, f"raw{pair}")
            msp = run_mspflow(app, pg.url, mspflow_redis, mspflow_ns, mspflow_env, f"{run}{pair}")
            if raw is None or msp is None:
                break
            results["raw"].append(raw)
            results["mspflow"].append(msp)
            print(f"  pair {pair + 1}: raw dramatiq {MESSAGES / raw[1]:6.0f} msg/s ({MESSAGES / raw[2]:6.0f} after "
                  f"ready, {raw[3] / MESSAGES * 1e6:5.0f} us CPU/msg); mspflow {MESSAGES / msp[1]:6.0f} actions/s "
                  f"({MESSAGES / msp[2]:6.0f} after ready, {msp[3] / MESSAGES * 1e6:5.0f} us CPU/msg)")
        if pg.external:
            from sqlalchemy import text

            with db.engine.begin() as conn:
                conn.execute(text("DELETE FROM workflow_action_invocations WHERE tenant LIKE :t"),
                             {"t": f"bench-{run}%"})
        app.close()
        db.dispose()
        if rs.external:
            for namespace in (mspflow_ns, raw_ns):
                _servers.delete_namespace(rs.base_url, namespace)
        if not results["raw"]:
            return

        def med(side: str, i: int) -> float:
            return statistics.median(MESSAGES / r[i] if i else r[0] for r in results[side])

        def ratio(i: int) -> float:
            return statistics.median(r[i] / m[i] for r, m in zip(results["raw"], results["mspflow"], strict=True))

        print(f"  enqueue: raw actor.send {med('raw', 0):6.0f} msg/s; App.enqueue {med('mspflow', 0):6.0f} calls/s")
        print(f"  from worker start: raw {med('raw', 1):6.0f} msg/s, mspflow {med('mspflow', 1):6.0f} actions/s, "
              f"ratio {ratio(1):.2f} (target >= {TARGET})")
        print(f"  from first ready:  raw {med('raw', 2):6.0f} msg/s, mspflow {med('mspflow', 2):6.0f} actions/s, "
              f"ratio {ratio(2):.2f} (target >= {TARGET})")


if __name__ == "__main__":
    main()
