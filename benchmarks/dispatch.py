"""Dispatch benchmark: in-process ``Runtime.execute()`` calls/s for a no-op side-effectful action.

Prints, for SQLite (a file in a temp dir, on ``/dev/shm`` when there is one, so that commits do not
wait on a shared disk's fsync, as they do not on the throwaway PostgreSQL, which runs with fsync and
synchronous_commit off) and PostgreSQL (a throwaway server, or ``MSPFLOW_BENCH_POSTGRESQL_URL``):

* ``execute()`` calls/s with a new run id and step path per call (claim, run, record), and of the
  replay path (the very same calls again: each comes back ``replayed`` without running the handler);
* each as a ratio to a bare loop on the same database doing what the minimum durable claim+finish
  needs: one INSERT of a row in its own transaction, then one UPDATE of it in another (SQLAlchemy
  Core on the invocation table itself, so indexes and constraints are the same; statements built
  once; an engine without ``pool_pre_ping``);
* round trips per call, counted where they happen: on PostgreSQL on the wire (a relay in front of the
  server counts the client's turns, ``_wire.py``), on SQLite from the driver (every statement the
  library runs, BEGIN and COMMIT included, through ``sqlite3``'s trace callback), for the bare loop
  and ``execute()`` side by side (mspflow should use no more than the bare loop); then by kind as
  SQLAlchemy sees them (statements by first keyword, transactions begun/committed/rolled back, pool
  checkouts; on PostgreSQL a BEGIN or COMMIT event need not reach the wire: psycopg sends neither in
  autocommit mode, and mspflow's three hot statements go to libpq directly as prepared statements
  (``mspflow.db.prepared``), unseen by SQLAlchemy: read the wire count), and where the time per call
  goes: the driver's execute, commit/rollback, the rest (Python: mspflow, SQLAlchemy Core/ORM, pydantic);
* independent calls side by side: 8 threads each run one call of an action whose simulated vendor
  takes VENDOR_S (1 s) between a read and a write of the handler's own, printed as the wall time
  of the 8 over the wall time of one (goal <= 1.5; a database lock held across the vendor wait
  makes it about 8).

Prints figures; asserts nothing. Rates are medians of ROUNDS interleaved rounds (bare, execute,
replay) and ratios are medians of the per-round ratios, because absolute timings on these machines
move 10-50% between runs; this process's CPU time per call is printed too (steadier than wall time
on a shared machine; it leaves out the database server's own CPU). The per-call breakdown comes
from a separate instrumented pass (connection and pool events; the dialect's ``do_ping``,
``do_commit`` and ``do_rollback`` wrapped to count and time them). Run with ``./dev bench`` or
``python benchmarks/dispatch.py``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import _servers
import _wire
from pydantic import BaseModel
from sqlalchemy import Engine, bindparam, delete, event, insert, text, update

from mspflow import hookimpl
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.db.models import WorkflowActionInvocation as Inv
from mspflow.modules import action
from mspflow.plugins import Plugins
from mspflow.runtime import ActionCall, Runtime, input_hash

ACTION = "bench.noop.apply"
INPUT = {"device_id": "d-1041"}
ROUNDS = 5
#: Calls per round and database (the PostgreSQL loops are slower per call: fewer calls, similar time).
CALLS = {"sqlite": 600, "postgresql": 500}
COUNTED_CALLS = 200
VENDOR_S = 1.0
SIDE_BY_SIDE = 8
SLOW = "bench.vendor.wait"


class NoopInput(BaseModel):
    device_id: str


class NoopOutput(BaseModel):
    ok: bool = True


def noop(params: NoopInput, ctx: Any) -> NoopOutput:
    """Does nothing, successfully."""
    return NoopOutput()


def vendor_wait(params: NoopInput, ctx: Any) -> NoopOutput:
    """Read, wait on a simulated vendor for VENDOR_S, then record the result: a typical RMM call."""
    ctx.session.execute(text("SELECT count(*) FROM bench_effects WHERE device_id = :d"), {"d": params.device_id})
    time.sleep(VENDOR_S)
    ctx.session.execute(text("INSERT INTO bench_effects (device_id) VALUES (:d)"), {"d": params.device_id})
    return NoopOutput()


class BenchPlugin:
    @staticmethod
    @hookimpl
    def register_actions(register: Callable[[Any], None]) -> None:
        register(action(ACTION, label="No-op (benchmark)", handler=noop, side_effectful=True))
        register(action(SLOW, label="Vendor wait (benchmark)", handler=vendor_wait, side_effectful=True))


# -- the loops ------------------------------------------------------------------------------------------


def calls_for(tenant: str, tag: str, n: int) -> list[ActionCall]:
    return [ActionCall(ACTION, tenant, dict(INPUT), run_id=f"{tag}-{i}", step_path="steps.1") for i in range(n)]


def run_execute(runtime: Runtime, calls: list[ActionCall]) -> tuple[float, float, int, int]:
    """Seconds (wall, this process's CPU) for the calls, and how many succeeded / came back replayed."""
    ok = replayed = 0
    start, cpu = time.perf_counter(), time.process_time()
    for call in calls:
        result = runtime.execute(call)
        ok += result.ok
        replayed += result.replayed
    return time.perf_counter() - start, time.process_time() - cpu, ok, replayed


class BareLoop:
    """INSERT a RUNNING row (own transaction), then UPDATE it to SUCCEEDED (another transaction)."""

    def __init__(self, engine: Engine, tenant: str) -> None:
        self.engine = engine
        self.tenant = tenant
        t = Inv.__table__
        self.insert = insert(t)
        self.update = (
            update(t)
            .where(t.c.invocation_id == bindparam("b_id"), t.c.lease_owner == bindparam("b_owner"),
                   t.c.attempt == 1, t.c.status == "RUNNING")
            .values(status="SUCCEEDED", completed_at=bindparam("b_now"), lease_expires_at=None,
                    output=bindparam("b_output", type_=t.c.output.type), error_code=None, error_message=None,
                    error_details=None, error_retryable=None)
        )
        self.owner = f"bench:{uuid.uuid4().hex[:8]}"
        self.input_hash = input_hash(INPUT)

    def run(self, tag: str, n: int) -> tuple[float, float]:
        """Seconds (wall, this process's CPU) for ``n`` claim+finish pairs."""
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            now = datetime.now(UTC)
            invocation_id = str(uuid.uuid4())
            with self.engine.begin() as conn:
                conn.execute(self.insert, {
                    "invocation_id": invocation_id, "tenant": self.tenant, "run_id": f"{tag}-{i}",
                    "step_path": "steps.1", "action_id": ACTION, "action_version": 1,
                    "idempotency_key": invocation_id, "input_hash": self.input_hash, "status": "RUNNING",
                    "attempt": 1, "lease_owner": self.owner, "lease_expires_at": now + timedelta(minutes=5),
                    "input": INPUT, "created_at": now, "started_at": now,
                })
            with self.engine.begin() as conn:
                conn.execute(self.update, {"b_id": invocation_id, "b_owner": self.owner,
                                           "b_now": datetime.now(UTC), "b_output": {"ok": True}})
        return time.perf_counter() - start, time.process_time() - cpu


# -- counting round trips ---------------------------------------------------------------------------------


@contextmanager
def counting(engine: Engine) -> Iterator[tuple[Counter[str], dict[str, float]]]:
    """Count statements by kind, transactions, pings and pool checkouts; time the driver's execute/commit."""
    kinds: Counter[str] = Counter()
    driver: dict[str, float] = {"execute": 0.0, "commit": 0.0}
    started: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        word = statement.lstrip().split(None, 1)[0].upper()
        if word != "BEGIN":  # SQLite's explicit BEGIN is counted by the "begin" event below
            kinds[word] += 1
        started.append(time.perf_counter())

    def after(*args: Any) -> None:
        driver["execute"] += time.perf_counter() - started.pop()

    listeners: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", before),
        (engine, "after_cursor_execute", after),
        (engine, "begin", lambda conn: kinds.update(["BEGIN"])),
        (engine, "commit", lambda conn: kinds.update(["COMMIT"])),
        (engine, "rollback", lambda conn: kinds.update(["ROLLBACK"])),
        (engine.pool, "checkout", lambda *a: kinds.update(["(pool checkout)"])),
    ]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    # Pings (pool_pre_ping) bypass cursor events; commits and rollbacks are not cursor executes either.
    dialect = engine.dialect
    real = {name: getattr(dialect, name) for name in ("do_ping", "do_commit", "do_rollback")}

    def timed(name: str, key: str, count_as: str | None) -> Callable[[Any], Any]:
        def call(dbapi_connection: Any) -> Any:
            if count_as:
                kinds[count_as] += 1
            start = time.perf_counter()
            try:
                return real[name](dbapi_connection)
            finally:
                driver[key] += time.perf_counter() - start
        return call

    dialect.do_ping = timed("do_ping", "execute", "(pre-ping)")  # type: ignore[method-assign]
    dialect.do_commit = timed("do_commit", "commit", None)  # type: ignore[method-assign]
    dialect.do_rollback = timed("do_rollback", "commit", None)  # type: ignore[method-assign]
    try:
        yield kinds, driver
    finally:
        for name, fn in real.items():
            setattr(dialect, name, fn)
        for target, name, fn in listeners:
            event.remove(target, name, fn)


@contextmanager
def sqlite_trace(engine: Engine) -> Iterator[Counter[str]]:
    """Every statement the SQLite library runs on ``engine``'s connections (BEGIN/COMMIT included)."""
    seen: Counter[str] = Counter()
    traced: list[Any] = []

    def trace(statement: str) -> None:
        seen[statement.lstrip().split(None, 1)[0].upper()] += 1

    def checkout(dbapi_connection: Any, *args: Any) -> None:
        dbapi_connection.set_trace_callback(trace)
        traced.append(dbapi_connection)

    event.listen(engine.pool, "checkout", checkout)
    try:
        yield seen
    finally:
        event.remove(engine.pool, "checkout", checkout)
        for conn in traced:
            conn.set_trace_callback(None)


def driver_round_trips(name: str, engine: Engine, relay: _wire.CountingRelay | None, body: Callable[[], Any],
                       n: int) -> tuple[float, str]:
    """Round trips per call: on the wire (PostgreSQL, through ``relay``) or from the driver (SQLite)."""
    if relay is not None:
        before = relay.round_trips
        body()
        return (relay.round_trips - before) / n, "on the wire"
    with sqlite_trace(engine) as seen:
        body()
    parts = ", ".join(f"{v / n:g} {k}" for k, v in sorted(seen.items()))
    return sum(seen.values()) / n, f"from the driver: {parts}"


ORDER = ["(pre-ping)", "BEGIN", "SELECT", "INSERT", "UPDATE", "DELETE", "COMMIT", "ROLLBACK"]


def describe(kinds: Counter[str], n: int) -> str:
    shown = [k for k in ORDER if kinds[k]] + sorted(k for k in kinds if k not in ORDER and k != "(pool checkout)")
    round_trips = sum(kinds[k] for k in shown)
    parts = ", ".join(f"{kinds[k] / n:g} {k}" for k in shown)
    return f"{round_trips / n:g} round trips ({parts}); {kinds['(pool checkout)'] / n:g} pool checkouts"


def count_per_call(engine: Engine, body: Callable[[], Any], n: int) -> tuple[str, str]:
    with counting(engine) as (kinds, driver):
        start = time.perf_counter()
        body()
        elapsed = time.perf_counter() - start
    us = {k: v / n * 1e6 for k, v in driver.items()}
    total = elapsed / n * 1e6
    timing = (f"{total:6.0f} us per call: {us['execute']:5.0f} in the driver's execute (pings included), "
              f"{us['commit']:5.0f} in commit/rollback, {total - us['execute'] - us['commit']:5.0f} elsewhere")
    return describe(kinds, n), timing


# -- one database ---------------------------------------------------------------------------------------


def bench(name: str, url: str, note: str, external: bool = False) -> None:
    db = Database(url)
    upgrade(db)
    bare_db = Database(url, pool_pre_ping=False)
    app = App(db=db, plugins=Plugins(entry_points=[], extra=[("bench", BenchPlugin)], strict=True))
    runtime = app.runtime
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    bare = BareLoop(bare_db.engine, tenant)
    n = CALLS[name]

    # warm-up: connections, compiled-statement caches, pydantic
    bare.run("warm-bare", 100)
    warm = calls_for(tenant, "warm", 100)
    run_execute(runtime, warm)
    run_execute(runtime, warm)

    rates: dict[str, list[float]] = {"bare": [], "execute": [], "replay": []}
    cpu_us: dict[str, list[float]] = {"bare": [], "execute": [], "replay": []}
    checks = Counter[str]()
    for r in range(ROUNDS):
        calls = calls_for(tenant, f"r{r}", n)
        wall, cpu = bare.run(f"bare{r}", n)
        rates["bare"].append(n / wall)
        cpu_us["bare"].append(cpu / n * 1e6)
        for key, expect_replayed in (("execute", False), ("replay", True)):
            wall, cpu, ok, replayed = run_execute(runtime, calls)
            rates[key].append(n / wall)
            cpu_us[key].append(cpu / n * 1e6)
            checks["ok"] += ok
            checks["replayed" if expect_replayed else "replayed on first call"] += replayed

    total = ROUNDS * n
    print(f"{name}: {note}; {ROUNDS} rounds x {n} calls each (client CPU = this process's, per call)")
    print(f"  bare INSERT txn + UPDATE txn   {statistics.median(rates['bare']):8.0f} /s   "
          f"client CPU {statistics.median(cpu_us['bare']):5.0f} us")
    for label, key in (("execute(), new run id", "execute"), ("execute(), replayed", "replay")):
        ratios = [x / b for x, b in zip(rates[key], rates["bare"], strict=True)]
        print(f"  {label:30s} {statistics.median(rates[key]):8.0f} /s   client CPU "
              f"{statistics.median(cpu_us[key]):5.0f} us   ratio to bare {statistics.median(ratios):.2f} "
              f"(rounds {min(ratios):.2f}-{max(ratios):.2f})")
    if checks["ok"] != 2 * total or checks["replayed on first call"] or checks["replayed"] != total:
        print(f"  WARNING: not measuring what it claims: {dict(checks)} of {total}")

    wire_rates(name, url, tenant)
    counted = calls_for(tenant, "count", COUNTED_CALLS)
    print(f"  per call, over {COUNTED_CALLS} calls (instrumented: slower than the rates above):")
    for label, engine, body in (
        ("bare", bare_db.engine, lambda: bare.run("count-bare", COUNTED_CALLS)),
        ("execute()", db.engine, lambda: run_execute(runtime, counted)),
        ("replayed", db.engine, lambda: run_execute(runtime, counted)),
    ):
        text_, timing = count_per_call(engine, body, COUNTED_CALLS)
        print(f"    {label:10s} as SQLAlchemy sees them: {text_}")
        print(f"    {'':10s} {timing}")
    side_by_side(name, app, tenant)
    if external:
        with db.engine.begin() as conn:
            conn.execute(delete(Inv.__table__).where(Inv.__table__.c.tenant == tenant))
    app.close()
    bare_db.dispose()


def wire_rates(name: str, url: str, tenant: str) -> None:
    """Round trips per call of the bare loop and of execute(), counted on the wire or from the driver."""
    relay = _wire.CountingRelay(*_host_port(url)) if name == "postgresql" else None
    with relay if relay is not None else _nothing():
        counted_url = relay.url(url) if relay is not None else url
        db = Database(counted_url)
        bare_db = Database(counted_url)
        app = App(db=db, plugins=Plugins(entry_points=[], extra=[("bench", BenchPlugin)], strict=True))
        bare = BareLoop(bare_db.engine, tenant)
        bare.run("wire-warm-bare", 20)
        run_execute(app.runtime, calls_for(tenant, "wire-warm", 20))
        calls = calls_for(tenant, "wire", COUNTED_CALLS)
        figures = [
            ("bare", *driver_round_trips(name, bare_db.engine, relay, lambda: bare.run("wire-bare", COUNTED_CALLS),
                                         COUNTED_CALLS)),
            ("execute()", *driver_round_trips(name, db.engine, relay, lambda: run_execute(app.runtime, calls),
                                              COUNTED_CALLS)),
            ("replayed", *driver_round_trips(name, db.engine, relay, lambda: run_execute(app.runtime, calls),
                                             COUNTED_CALLS)),
        ]
        print(f"  round trips per call ({figures[0][2].split(':')[0]}), over {COUNTED_CALLS} calls:")
        for label, trips, how in figures:
            print(f"    {label:10s} {trips:5.2f}   ({how})")
        verdict = "no more than" if figures[1][1] <= figures[0][1] + 1e-9 else "MORE than"
        print(f"    execute() uses {verdict} the bare loop ({figures[1][1]:.2f} vs {figures[0][1]:.2f})")
        app.close()
        bare_db.dispose()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _host_port(url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


def side_by_side(name: str, app: App, tenant: str) -> None:
    """Wall time of SIDE_BY_SIDE independent calls from as many threads, over the wall time of one."""
    with app.db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_effects (device_id VARCHAR(64) NOT NULL)"))

    def one(tag: str, i: int) -> bool:
        return app.runtime.execute(ActionCall(SLOW, tenant, {"device_id": f"{tag}-{i}"}, run_id=f"{tag}-{i}",
                                              step_path="steps.1")).ok

    start = time.perf_counter()
    single_ok = one("single", 0)
    single = time.perf_counter() - start
    results: list[bool] = []
    threads = [threading.Thread(target=lambda i=i: results.append(one("many", i))) for i in range(SIDE_BY_SIDE)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    many = time.perf_counter() - start
    ok = single_ok and results == [True] * SIDE_BY_SIDE
    print(f"  {SIDE_BY_SIDE} independent calls to a vendor taking {VENDOR_S:g} s each, from {SIDE_BY_SIDE} "
          f"threads: {many:.2f} s vs {single:.2f} s for one: ratio {many / single:.2f} (goal <= 1.5)"
          + ("" if ok else "  WARNING: not every call succeeded"))


def main() -> None:
    # On tmpfs a commit's fsync is free, as on the throwaway PostgreSQL (fsync=off, synchronous_commit=off):
    # on a disk shared with other jobs, fsync latency swamps and scrambles what is measured here.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        where = "on tmpfs, so fsync is free" if shm else "on disk: commits pay for fsync"
        bench("sqlite", f"sqlite:///{tmp}/bench.sqlite3", f"file in a temp dir {where} (WAL)")
    with _servers.postgresql() as pg:
        bench("postgresql", pg.url, pg.note, pg.external)


if __name__ == "__main__":
    main()
