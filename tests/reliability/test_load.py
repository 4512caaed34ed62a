"""Load: 10,000 queued calls across tenants through 2 worker processes; peak memory and open database and
vendor connections before and after."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from mspflow import tenants
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.plugins import Plugins
from tests.distributions import Distributions
from tests.reliability.conftest import Figures
from tests.reliability.effects import PLUGIN, EffectsVendor
from tests.reliability.test_crash import _start_worker

TENANTS = [f"load-{i}" for i in range(20)]
MAX_RSS_MB = 400


def _rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sockets(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))


def _db_connections(db: Database, dbname: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"),
                                {"d": dbname}).scalar_one())


def _wait_for_all(db: Database, n: int, timeout_s: float = 600, stall_s: float = 60) -> list[Any]:
    """The run's status counts once all ``n`` records are final, or once nothing has moved for ``stall_s``."""
    deadline = time.monotonic() + timeout_s
    seen, moved = -1, time.monotonic()
    while True:
        with db.engine.connect() as conn:
            done = conn.execute(text("SELECT status, count(*) FROM workflow_action_invocations "
                                     "WHERE run_id = 'load' GROUP BY status")).all()
        final = sum(c for status, c in done if status in ("SUCCEEDED", "FAILED"))
        if final != seen:
            seen, moved = final, time.monotonic()
        if final >= n or time.monotonic() > deadline or time.monotonic() - moved > stall_s:
            return list(done)
        time.sleep(0.5)


def test_load(postgresql_url: str, redis_url: str, tmp_path: Path, dists: Distributions, figures: Figures,
              profile: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    dists.install("mspflow-effects", "mspflow_effects", PLUGIN)
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")  # the vendor is served on loopback
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")} | {
        "MSPFLOW_DATABASE_URL": postgresql_url, "MSPFLOW_BROKER_URL": redis_url,
        "MSPFLOW_HOME": str(tmp_path / "home"), "MSPFLOW_STRICT_PLUGINS": "1",
        "MSPFLOW_LOAD_PLUGINS": "mspflow_effects", "MSPFLOW_SECRET_KEY": Fernet.generate_key().decode(),
        "MSPFLOW_ALLOW_HTTP_VENDOR_URLS": "1", "PYTHONPATH": os.environ["PYTHONPATH"]}
    db = Database(postgresql_url)
    upgrade(db)
    dbname = db.engine.url.database or ""
    vendor = EffectsVendor()
    n = profile["load"]
    with vendor.serve(delay_s=0) as url:
        plugins = Plugins(strict=True)
        with db.session() as s:
            for tenant in TENANTS:
                tenants.connect(s, plugins.registry, tenant, "effects", url)
        app = App(db=db, broker_url=redis_url, plugins=plugins)
        workers = [_start_worker(env), _start_worker(env)]
        try:
            warm = [app.enqueue("effects.things.apply", tenant=TENANTS[0], run_id="warm", step_path=f"w{i}",
                                input={"label": f"w{i}"}) for i in range(50)]
            assert all(app.wait(i, timeout=60)["status"] == "SUCCEEDED" for i in warm)
            # Connections and sockets are compared between the middle and the end of the load: by the middle every
            # worker thread has opened what it keeps (50 warm-up calls may all land on one worker), so whatever
            # grows in the second half is a leak.
            half = n // 2
            ids = [app.enqueue("effects.things.apply", tenant=TENANTS[i % len(TENANTS)], run_id="load",
                               step_path=f"s{i}", input={"label": f"l{i}"}) for i in range(half)]
            _wait_for_all(db, half)
            before_db = _db_connections(db, dbname)
            before_sockets = [_sockets(w.pid) for w in workers]
            ids += [app.enqueue("effects.things.apply", tenant=TENANTS[i % len(TENANTS)], run_id="load",
                                step_path=f"s{i}", input={"label": f"l{i}"}) for i in range(half, n)]
            # Messages finish out of order (2 workers x 8 threads, prefetch): wait for every record,
            # not only the last one enqueued.
            done = _wait_for_all(db, n)
            last = app.invocation(ids[-1]) or {}
            after_db = _db_connections(db, dbname)
            after_sockets = [_sockets(w.pid) for w in workers]
            rss = [_rss_peak_mb(w.pid) for w in workers]
        finally:
            for proc in workers:
                proc.terminate()
                proc.wait(timeout=30)
            app.close()
    db.dispose()
    statuses = dict(done)
    effects = sum(c for label, c in vendor.counts.items() if label.startswith("l"))
    ok = figures.record(
        "load",
        f"{n} queued calls, {len(TENANTS)} tenants, 2 workers: {statuses.get('SUCCEEDED', 0)} succeeded, "
        f"{effects} effects; peak RSS {max(rss):.0f} MB (limit {MAX_RSS_MB}); DB connections at half {before_db} → "
        f"{after_db}; worker sockets {before_sockets} → {after_sockets}",
        last.get("status") == "SUCCEEDED" and statuses == {"SUCCEEDED": n} and effects == n
        and max(rss) < MAX_RSS_MB and after_db <= before_db + 2
        and all(a <= b + 4 for a, b in zip(after_sockets, before_sockets, strict=True)))
    assert ok
