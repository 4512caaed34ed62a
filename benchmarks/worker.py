"""Worker benchmark: no-op actions/s through Redis + Dramatiq + PostgreSQL records, vs the durable floor.

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
* the durable baseline, measured in the same run on the same Redis (its own database and
  namespace): the same raw no-op actor that also records each message durably with the two minimal
  commits (an INSERT of a RUNNING row into ``workflow_action_invocations`` and an UPDATE of it to
  SUCCEEDED, each one autocommit statement on one persistent psycopg connection per worker thread),
  with the same processes, threads and prefetch: what any worker that records every call costs;
* mspflow's throughput as a ratio to the durable baseline (target >= 0.8) and to raw Dramatiq; the
  enqueue rates, and the workers' CPU time per message after they are ready (user + system of their
  processes, from /proc: steadier than wall time on a shared machine), for context. The target is the
  throughput a running worker sustains, i.e. the "from first ready" ratio: a worker process starts
  once and then drains queues for hours. The "from worker start" ratio is printed beside it, with each
  side's start-up (spawn to ready) in milliseconds: with MESSAGES = 3,000 (about two seconds of work)
  mspflow's longer start (SQLAlchemy, pydantic, Typer and the plugins to import) weighs heavily in it;
* database round trips per queued message, counted on the wire (``_wire.py``: a relay in front of
  PostgreSQL counts the client's turns) in a separate pass through the relay with the workers
  already warm, for mspflow (target <= 4) and the durable baseline (2 by construction).

The no-op action is a side-effectful tile-less action of a throwaway installed distribution (a
module and a ``.dist-info`` with an ``mspflow`` entry point, on the workers' PYTHONPATH, as
``tests/distributions.py`` does); ``MSPFLOW_LOAD_PLUGINS`` limits the workers to it.

Prints figures; asserts nothing. All three sides run in every round, in rotating order (raw, durable,
mspflow; durable, mspflow, raw; mspflow, raw, durable; ...) because absolute timings on these
machines move 10-50% between runs; each ratio is the median of the per-round ratios. PostgreSQL and
Redis are throwaway servers unless ``MSPFLOW_BENCH_POSTGRESQL_URL`` /
``MSPFLOW_BENCH_REDIS_URL`` name existing ones. ``MSPFLOW_BENCH_PROCESSES``, ``MSPFLOW_BENCH_THREADS``,
``MSPFLOW_BENCH_MESSAGES`` and ``MSPFLOW_BENCH_ROUNDS`` override the defaults (1, 8, 3000, 3). With
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
import _wire

PROCESSES = int(os.environ.get("MSPFLOW_BENCH_PROCESSES", "1"))
THREADS = int(os.environ.get("MSPFLOW_BENCH_THREADS", "8"))
MESSAGES = int(os.environ.get("MSPFLOW_BENCH_MESSAGES", "3000"))
ROUNDS = int(os.environ.get("MSPFLOW_BENCH_ROUNDS", os.environ.get("MSPFLOW_BENCH_PAIRS", "3")))
TARGET = 0.8  # of the durable baseline
TARGET_ROUND_TRIPS = 4
COUNTED = 1000  # messages in the round-trip pass (after WARM ones)
WARM = 200
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

DURABLE = '''
"""The durable baseline: the raw no-op actor plus the two minimal commits of a recorded call."""
import os
import threading
from datetime import UTC, datetime, timedelta

import dramatiq
import psycopg
from dramatiq.brokers.redis import RedisBroker
from psycopg.types.json import Json

broker = RedisBroker(url=os.environ["BENCH_DURABLE_REDIS_URL"], namespace=os.environ["BENCH_DURABLE_NAMESPACE"])
dramatiq.set_broker(broker)
_local = threading.local()
INSERT = ("INSERT INTO workflow_action_invocations (invocation_id, tenant, run_id, step_path, action_id, "
          "action_version, idempotency_key, input_hash, status, attempt, lease_owner, lease_expires_at, input, "
          "created_at, started_at) VALUES (%s, %s, %s, %s, %s, 1, %s, %s, 'RUNNING', 1, %s, %s, %s, %s, %s)")
UPDATE = ("UPDATE workflow_action_invocations SET status = 'SUCCEEDED', completed_at = %s, lease_expires_at = NULL, "
          "output = %s WHERE invocation_id = %s AND lease_owner = %s AND attempt = 1 AND status = 'RUNNING'")


def connection():
    conn = getattr(_local, "conn", None)
    if conn is None:  # one persistent connection per worker thread, each statement its own commit
        conn = _local.conn = psycopg.connect(os.environ["BENCH_DURABLE_DSN"], autocommit=True)
    return conn


@dramatiq.actor(queue_name="bench_durable", max_retries=0)
def noop(payload):
    conn = connection()
    now = datetime.now(UTC)
    owner = "durable-baseline"
    conn.execute(INSERT, (payload["invocation_id"], payload["tenant"], payload["run_id"], payload["step_path"],
                          payload["action_id"], payload["idempotency_key"], "0" * 64, owner,
                          now + timedelta(minutes=5), Json(payload["input"]), now, now))
    conn.execute(UPDATE, (datetime.now(UTC), Json({"ok": True}), payload["invocation_id"], owner))
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
    from mspflow.plugins import supported_range

    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mspflow-bench\nVersion: 1.0.0\n"
                                   f"Requires-Dist: mspflow{supported_range()}\n")
    (info / "entry_points.txt").write_text("[mspflow]\nbench = bench_plugin\n")
    (info / "RECORD").write_text("")
    (site / "bench_raw.py").write_text(textwrap.dedent(RAW))
    (site / "bench_durable.py").write_text(textwrap.dedent(DURABLE))


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


def run_raw(redis_url: str, namespace: str, env: dict[str, str], tag: str,
            module: str = "bench_raw", queue: str = "bench_raw") -> tuple[float, ...] | None:
    """Enqueue MESSAGES raw no-op messages, drain them with the dramatiq CLI (``module``'s actor).

    Returns (enqueue/s, seconds from start, seconds from ready, worker CPU seconds from ready).
    """
    import importlib

    import redis

    actor = importlib.import_module(module).noop  # the parent sends with the same actor definition
    start = time.perf_counter()
    for i in range(MESSAGES):
        actor.send(payload(i, tag))
    enqueue_rate = MESSAGES / (time.perf_counter() - start)
    client = redis.Redis.from_url(redis_url)
    key = f"{namespace}:{queue}.msgs"  # each message's body until it is acked
    workers = Workers([sys.executable, "-m", "dramatiq", module, "--processes", str(PROCESSES),
                       "--threads", str(THREADS)], env, "is ready for action")
    timed = drain(workers, lambda: client.hlen(key) == 0, module)
    client.close()
    return None if timed is None else (enqueue_rate, *timed)


def durable_round_trips(relay: _wire.CountingRelay, redis_url: str, namespace: str,
                        env: dict[str, str]) -> float | None:
    """Round trips per message of the durable baseline, its workers warm, through ``relay``."""
    import bench_durable
    import redis

    client = redis.Redis.from_url(redis_url)
    key = f"{namespace}:bench_durable.msgs"
    workers = Workers([sys.executable, "-m", "dramatiq", "bench_durable", "--processes", str(PROCESSES),
                       "--threads", str(THREADS)], env, "is ready for action")
    try:
        counted = _count(relay, lambda n, tag: [bench_durable.noop.send(payload(i, tag)) for i in range(n)],
                         lambda: client.hlen(key) == 0, workers)
    finally:
        workers.stop()
        client.close()
    return counted


def _count(relay: _wire.CountingRelay, send: Callable[[int, str], object], done: Callable[[], bool],
           workers: Workers) -> float | None:
    """Send WARM messages and wait; then COUNTED more: round trips per message of the second batch."""
    tag = uuid.uuid4().hex[:8]
    deadline = time.perf_counter() + TIMEOUT_S
    for batch, n in (("warm", WARM), ("counted", COUNTED)):
        before = relay.round_trips
        send(n, f"{tag}-{batch}")
        time.sleep(POLL_S)
        while not done():
            if workers.proc.poll() is not None or time.perf_counter() > deadline:
                print("  round-trip pass: workers exited or timed out; their log:\n" + "".join(workers.log[-30:]))
                return None
            time.sleep(POLL_S)
    return (relay.round_trips - before) / COUNTED


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


def mspflow_round_trips(app: object, relay: _wire.CountingRelay, db_url: str, redis_url: str, namespace: str,
                        env: dict[str, str]) -> float | None:
    """Round trips per queued message of ``mspflow worker``, its workers warm, through ``relay``."""
    import redis
    from sqlalchemy import create_engine, text

    client = redis.Redis.from_url(redis_url)
    hashes = [f"{namespace}:mspflow.core.msgs", f"{namespace}:mspflow.core.DQ.msgs"]
    poller = create_engine(db_url)
    tenant = f"bench-rt-{uuid.uuid4().hex[:8]}"
    sent = [0]

    def send(n: int, tag: str) -> None:
        for i in range(n):
            app.enqueue(ACTION, tenant=tenant, input={"device_id": f"d-{i}"},  # type: ignore[attr-defined]
                        run_id=f"{tag}-{i}", step_path="steps.1")
        sent[0] += n

    def done() -> bool:
        if any(client.hlen(key) for key in hashes):
            return False
        with poller.connect() as conn:
            finished = conn.execute(text("SELECT count(*) FROM workflow_action_invocations WHERE tenant = :t "
                                         "AND status IN ('SUCCEEDED', 'FAILED')"), {"t": tenant}).scalar_one()
        return int(finished) >= sent[0]

    workers = Workers([MSPFLOW, "worker", "--processes", str(PROCESSES), "--threads", str(THREADS)],
                      {**env, "MSPFLOW_DATABASE_URL": relay.url(db_url)}, "ready:")
    try:
        while workers.ready_at is None and workers.proc.poll() is None:
            time.sleep(POLL_S)
        return _count(relay, send, done, workers)
    finally:
        workers.stop()
        poller.dispose()
        client.close()


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
        mspflow_ns, raw_ns, durable_ns = f"mspflow-bench-{run}", f"dramatiq-bench-{run}", f"durable-bench-{run}"
        mspflow_redis, raw_redis, durable_redis = rs.url(1), rs.url(2), rs.url(3)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MSPFLOW_", "dramatiq_"))}
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        prefetch = str(THREADS * 8)
        raw_env = {**base, "BENCH_RAW_REDIS_URL": raw_redis, "BENCH_RAW_NAMESPACE": raw_ns,
                   "dramatiq_queue_prefetch": prefetch}
        dsn = pg.url.replace("postgresql+psycopg://", "postgresql://", 1)
        durable_env = {**base, "BENCH_DURABLE_REDIS_URL": durable_redis, "BENCH_DURABLE_NAMESPACE": durable_ns,
                       "BENCH_DURABLE_DSN": dsn, "dramatiq_queue_prefetch": prefetch}
        mspflow_env = {**base, "MSPFLOW_DATABASE_URL": pg.url, "MSPFLOW_BROKER_URL": mspflow_redis,
                       "MSPFLOW_BROKER_NAMESPACE": mspflow_ns, "MSPFLOW_LOAD_PLUGINS": "bench",
                       "MSPFLOW_STRICT_PLUGINS": "1", "MSPFLOW_HOME": str(Path(tmp) / "home")}
        if profile_dir := os.environ.get("MSPFLOW_BENCH_PROFILE"):
            mspflow_env["MSPFLOW_BENCH_PROFILE"] = profile_dir
        os.environ["BENCH_RAW_REDIS_URL"], os.environ["BENCH_RAW_NAMESPACE"] = raw_redis, raw_ns
        os.environ["BENCH_DURABLE_REDIS_URL"], os.environ["BENCH_DURABLE_NAMESPACE"] = durable_redis, durable_ns
        os.environ["BENCH_DURABLE_DSN"] = dsn

        db = Database(pg.url)
        upgrade(db)
        os.environ["MSPFLOW_BROKER_NAMESPACE"] = mspflow_ns  # read by App's broker
        app = App(db=db, plugins=Plugins(entry_points=[], extra=[("bench", bench_plugin)], strict=True),
                  broker_url=mspflow_redis)

        print(f"worker: {MESSAGES} no-op messages per run, {PROCESSES} process(es) x {THREADS} thread(s), "
              f"prefetch {prefetch} per process; {pg.note}; {rs.note}")
        sides: dict[str, Callable[[int], tuple[float, ...] | None]] = {
            "raw": lambda r: run_raw(raw_redis, raw_ns, raw_env, f"raw{r}"),
            "durable": lambda r: run_raw(durable_redis, durable_ns, durable_env, f"durable{run}{r}",
                                         module="bench_durable", queue="bench_durable"),
            "mspflow": lambda r: run_mspflow(app, pg.url, mspflow_redis, mspflow_ns, mspflow_env, f"{run}{r}"),
        }
        names = list(sides)
        results: dict[str, list[tuple[float, ...]]] = {name: [] for name in names}
        for r in range(ROUNDS):
            order = names[r % 3:] + names[:r % 3]
            got = {name: sides[name](r) for name in order}
            if any(v is None for v in got.values()):
                break
            line = []
            for name in names:
                res = got[name]
                assert res is not None
                results[name].append(res)
                line.append(f"{name} {MESSAGES / res[1]:5.0f}/s ({MESSAGES / res[2]:5.0f} after ready, "
                            f"{res[3] / MESSAGES * 1e6:4.0f} us CPU/msg)")
            print(f"  round {r + 1} ({', '.join(order)}): " + "; ".join(line))

        with _wire.CountingRelay(pg_host(pg.url), pg_port(pg.url)) as relay:
            relay_dsn = relay.url(pg.url).replace("postgresql+psycopg://", "postgresql://", 1)
            durable_trips = durable_round_trips(relay, durable_redis, durable_ns,
                                                {**durable_env, "BENCH_DURABLE_DSN": relay_dsn})
            mspflow_trips = mspflow_round_trips(app, relay, pg.url, mspflow_redis, mspflow_ns, mspflow_env)

        if pg.external:
            from sqlalchemy import text

            with db.engine.begin() as conn:
                conn.execute(text("DELETE FROM workflow_action_invocations WHERE tenant LIKE :t OR tenant = 'bench'"),
                             {"t": "bench-%"})
        app.close()
        db.dispose()
        if rs.external:
            for namespace in (mspflow_ns, raw_ns, durable_ns):
                _servers.delete_namespace(rs.base_url, namespace)
        if not results["raw"]:
            return

        def med(side: str, i: int) -> float:
            return statistics.median(MESSAGES / r[i] if i else r[0] for r in results[side])

        def ratio(i: int, to: str) -> float:
            return statistics.median(r[i] / m[i] for r, m in zip(results[to], results["mspflow"], strict=True))

        print(f"  enqueue: raw actor.send {med('raw', 0):6.0f} msg/s; App.enqueue {med('mspflow', 0):6.0f} calls/s")
        for i, when, note in ((1, "from worker start", "(start-up included, see below)"),
                              (2, "from first ready ", f"(throughput: target >= {TARGET})")):
            print(f"  {when}: raw {med('raw', i):5.0f} msg/s, durable baseline {med('durable', i):5.0f} msg/s, "
                  f"mspflow {med('mspflow', i):5.0f} actions/s; mspflow / durable {ratio(i, 'durable'):.2f} "
                  f"{note}, mspflow / raw {ratio(i, 'raw'):.2f}")
        startup = {side: statistics.median(r[1] - r[2] for r in results[side]) * 1000 for side in names}
        print(f"  start-up (spawn to ready, in the from-start time above): raw {startup['raw']:.0f} ms, durable "
              f"{startup['durable']:.0f} ms, mspflow {startup['mspflow']:.0f} ms (imports: SQLAlchemy, pydantic, "
              f"Typer, the plugins; a worker pays it once per process)")
        trips = [f"{name} {value:.2f}" if value is not None else f"{name} (failed)"
                 for name, value in (("mspflow", mspflow_trips), ("durable baseline", durable_trips))]
        print(f"  database round trips per queued message, on the wire over {COUNTED} warm messages: "
              f"{', '.join(trips)} (target for mspflow <= {TARGET_ROUND_TRIPS})")


def pg_host(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).host or "127.0.0.1"


def pg_port(url: str) -> int:
    from sqlalchemy.engine import make_url

    return make_url(url).port or 5432


if __name__ == "__main__":
    main()
