"""Crash and redelivery: two worker processes on Redis + PostgreSQL, SIGKILLed at random points while calls
post side effects to a vendor served on loopback. Every record ends SUCCEEDED or FAILED; every succeeded call
had its effect exactly once, and no call had it twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from mspflow import tenants
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.testing.cli import MSPFLOW
from tests.distributions import Distributions
from tests.reliability.conftest import Figures
from tests.reliability.effects import PLUGIN, EffectsVendor


def _start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([MSPFLOW, "worker", "--threads", "4"], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "ready" in line, line + proc.stderr.read()
    return proc


def test_crash_and_redelivery(postgresql_url: str, redis_url: str, tmp_path: Path, dists: Distributions,
                              figures: Figures, profile: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    dists.install("mspflow-effects", "mspflow_effects", PLUGIN)
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")  # the vendor is served on loopback
    vendor = EffectsVendor()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")} | {
        "MSPFLOW_DATABASE_URL": postgresql_url, "MSPFLOW_BROKER_URL": redis_url,
        "MSPFLOW_HOME": str(tmp_path / "home"), "MSPFLOW_STRICT_PLUGINS": "1",
        "MSPFLOW_LOAD_PLUGINS": "mspflow_effects", "MSPFLOW_SECRET_KEY": Fernet.generate_key().decode(),
        "MSPFLOW_ALLOW_HTTP_VENDOR_URLS": "1", "MSPFLOW_LEASE_SECONDS": "3", "MSPFLOW_WORKER_HEARTBEAT_MS": "1500",
        "MSPFLOW_BROKER_MAINTENANCE_CHANCE": "1000000", "PYTHONPATH": os.environ["PYTHONPATH"]}
    db = Database(postgresql_url)
    upgrade(db)
    rng = random.Random(1129)
    with vendor.serve() as url:
        with db.session() as s:
            from mspflow.plugins import Plugins

            plugins = Plugins(strict=True)
            tenants.connect(s, plugins.registry, "acme", "effects", url)
        app = App(db=db, broker_url=redis_url, plugins=plugins)
        n = profile["crash_calls"]
        ids = {f"c{i}": app.enqueue("effects.things.apply", tenant="acme", run_id="crash", step_path=f"s{i}",
                                    input={"label": f"c{i}", "hold_s": rng.choice([0, 0.05, 0.3])})
               for i in range(n)}
        workers = [_start_worker(env), _start_worker(env)]
        kills = 0
        try:
            while kills < profile["crash_kills"]:
                time.sleep(rng.uniform(0.2, 1.2))
                victim = workers.pop(rng.randrange(len(workers)))
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                kills += 1
                workers.append(_start_worker(env))
            records = {label: app.wait(iid, timeout=180) for label, iid in ids.items()}
        finally:
            for proc in workers:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
            app.close()
    statuses = [r["status"] for r in records.values()]
    succeeded = [label for label, r in records.items() if r["status"] == "SUCCEEDED"]
    doubled = {label: c for label, c in vendor.counts.items() if c > 1}
    missing = [label for label in succeeded if vendor.counts[label] != 1]
    failed = {label: r["error"] for label, r in records.items() if r["status"] == "FAILED"}
    unexplained = {label: e for label, e in failed.items() if (e or {}).get("details", {}).get("outcome") != "unknown"}
    with db.engine.connect() as conn:
        limbo = conn.execute(text("SELECT count(*) FROM workflow_action_invocations "
                                  "WHERE status NOT IN ('SUCCEEDED', 'FAILED')")).scalar_one()
    db.dispose()
    ok = figures.record(
        "crash and redelivery",
        f"{n} calls, 2 workers, {kills} SIGKILLs: {len(succeeded)} succeeded with exactly one effect each "
        f"({len(missing)} not), {len(failed)} failed with outcome unknown ({len(unexplained)} otherwise), "
        f"{len(doubled)} effects doubled, {limbo} records in limbo",
        not doubled and not missing and not unexplained and limbo == 0
        and set(statuses) <= {"SUCCEEDED", "FAILED"})
    assert ok, json.dumps({"doubled": doubled, "missing": missing, "unexplained": unexplained}, default=str)[:3000]
