"""A run SIGKILLed between steps and driven again completes with each side effect once: on the embedded
default (SQLite, the run advancing inside the CLI process; `mspflow runs retry` re-drives it) and on
PostgreSQL + Redis (a worker killed mid-run; the step message is redelivered to the next worker)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.testing.cli import MSPFLOW
from tests.distributions import Distributions
from tests.runtime_support import SOURCE, effects, make_app, prepare

CRASHY = {"name": "crashy", "steps": [
    {"path": "a", "action_id": "counter.effects.apply", "input": {"label": "crash-a"}},
    {"path": "b", "action_id": "counter.effects.apply", "input": {"label": "crash-b", "sleep": 2}},
    {"path": "c", "action_id": "counter.effects.apply", "input": {"label": "crash-c"}},
]}


def _env(tmp_path: Path, database_url: str, redis_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    env |= {"MSPFLOW_DATABASE_URL": database_url, "MSPFLOW_HOME": str(tmp_path / "home"),
            "MSPFLOW_STRICT_PLUGINS": "1", "MSPFLOW_SECRET_KEY": Fernet.generate_key().decode(),
            "MSPFLOW_LEASE_SECONDS": "2", "PYTHONPATH": os.environ["PYTHONPATH"]}
    if redis_url:
        env |= {"MSPFLOW_BROKER_URL": redis_url, "MSPFLOW_WORKER_HEARTBEAT_MS": "1500",
                "MSPFLOW_BROKER_MAINTENANCE_CHANCE": "1000000"}
    return env


def _step_b_running(db: Database) -> bool:
    """Step a's effect is done and step b's call is in flight (its handler has not committed)."""
    with db.engine.connect() as conn:
        b = conn.execute(text("SELECT status FROM workflow_action_invocations WHERE step_path = 'steps.b'")).scalar()
    return effects(db, "crash-a") == 1 and b == "RUNNING"


def _wait_for(predicate, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _once_each(db: Database) -> list[int]:
    return [effects(db, f"crash-{x}") for x in "abc"]


def test_a_run_killed_mid_run_on_the_embedded_default_is_redriven_with_each_effect_once(
        tmp_path: Path, dists: Distributions) -> None:
    dists.install("mspflow-counter", "mspflow_counter", SOURCE.read_text())
    url = f"sqlite:///{tmp_path / 'crash.sqlite3'}"
    db = Database(url)
    upgrade(db)
    prepare(db)
    make_app(db).workflows.publish("acme", CRASHY)
    env = _env(tmp_path, url)
    proc = subprocess.Popen([MSPFLOW, "workflows", "run", "crashy", "--tenant", "acme", "--wait"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _step_b_running(db), "step b to start")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with db.engine.connect() as conn:
        run_id, status, step = conn.execute(text("SELECT run_id, status, current_step FROM workflow_runs")).one()
    assert (status, step) == ("RUNNING", 1) and _once_each(db) == [1, 0, 0]
    again = subprocess.run([MSPFLOW, "runs", "retry", run_id, "--tenant", "acme", "--wait", "--json"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    run = json.loads(again.stdout)
    assert run["status"] == "SUCCEEDED" and [s["status"] for s in run["steps"]] == ["SUCCEEDED"] * 3
    assert _once_each(db) == [1, 1, 1]
    shown = subprocess.run([MSPFLOW, "runs", "show", run_id, "--tenant", "acme", "--json"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert json.loads(shown.stdout)["steps"][1]["output"] == {"label": "crash-b", "attempt": 2}  # taken over
    db.dispose()


@dataclass
class Cluster:
    """PostgreSQL + Redis with the counter plugin installed, and ``mspflow worker`` processes started on it."""

    db: Database
    env: dict[str, str]
    app: App
    workers: list[subprocess.Popen[str]] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen([MSPFLOW, "worker", "--threads", "2"], env=self.env, text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.workers.append(proc)
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "ready" in line, line + proc.stderr.read()
        return proc


@pytest.fixture
def cluster(postgresql_url: str, redis_url: str, tmp_path: Path, dists: Distributions) -> Iterator[Cluster]:
    dists.install("mspflow-counter", "mspflow_counter", SOURCE.read_text())
    db = Database(postgresql_url)
    upgrade(db)
    prepare(db)
    app = App(db=db, broker_url=redis_url, plugins=make_app(db).plugins)
    world = Cluster(db, _env(tmp_path, postgresql_url, redis_url), app)
    try:
        yield world
    finally:
        for proc in world.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        app.close()
        db.dispose()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_killed_mid_run_on_postgresql_and_redis_loses_no_step_and_doubles_no_effect(
        cluster: Cluster) -> None:
    app, db = cluster.app, cluster.db
    app.workflows.publish("acme", CRASHY)
    first = cluster.start_worker()
    run = app.workflows.start("crashy", tenant="acme")
    assert run["status"] == "RUNNING"
    _wait_for(lambda: _step_b_running(db), "step b to start")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert _once_each(db) == [1, 0, 0]
    second = cluster.start_worker()
    done = app.workflows.wait("acme", run["run_id"], timeout=120)
    assert done["status"] == "SUCCEEDED", done["error"]
    assert _once_each(db) == [1, 1, 1]
    with db.engine.connect() as conn:
        owner = conn.execute(text("SELECT lease_owner FROM workflow_action_invocations "
                                  "WHERE step_path = 'steps.c'")).scalar_one()
    assert f":{second.pid}:" in owner  # the rest of the run advanced in the second worker


@pytest.mark.postgres
@pytest.mark.redis
def test_an_outbox_event_watched_by_two_workers_starts_one_run(cluster: Cluster) -> None:
    from mspflow import outbox

    app, db = cluster.app, cluster.db
    cluster.env["MSPFLOW_TRIGGER_POLL_S"] = "0.05"
    app.workflows.publish("acme", {"name": "on-alert", "trigger": {"event": "RMM_ALERT_TRIGGERED"}, "steps": [
        {"path": "mark", "action_id": "counter.effects.apply", "input": {"label": "alert-{{ trigger.alert_id }}"}}]})
    for _ in range(2):
        cluster.start_worker()
    with db.session() as s:
        for n in range(5):
            outbox.emit(s, "acme", "RMM_ALERT_TRIGGERED", {"alert_id": n})
    _wait_for(lambda: len(app.workflows.runs("acme")) == 5 and all(
        r["status"] == "SUCCEEDED" for r in app.workflows.runs("acme")), "five runs to succeed")
    assert [effects(db, f"alert-{n}") for n in range(5)] == [1] * 5
    assert len(app.workflows.runs("acme")) == 5


@pytest.mark.postgres
@pytest.mark.redis
def test_a_failed_run_retried_through_the_workers_replays_its_done_step(cluster: Cluster) -> None:
    app, db, env = cluster.app, cluster.db, cluster.env
    app.workflows.publish("acme", {"name": "outage", "steps": [
        {"path": "book", "action_id": "counter.effects.apply", "input": {"label": "w-book"}},
        {"path": "flaky", "action_id": "counter.effects.apply", "input": {"label": "w-flaky", "fail": "transient"},
         "retries": 0}]})
    app.workflows.publish("acme", {"name": "blip", "steps": [  # retries on its own, through step messages
        {"path": "flaky", "action_id": "counter.effects.apply",
         "input": {"label": "w-blip", "fail": "transient", "fail_until_attempt": 2}}]})
    cluster.start_worker()
    run = app.workflows.start("outage", tenant="acme", wait=True, timeout=60)
    assert run["status"] == "FAILED" and run["error"]["step"] == "flaky"
    cli = subprocess.run([MSPFLOW, "runs", "retry", run["run_id"], "--tenant", "acme", "--wait", "--json"],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 0, cli.stderr
    healed = json.loads(cli.stdout)
    assert healed["status"] == "SUCCEEDED"
    assert [(s["path"], s["replayed"]) for s in healed["steps"]] == [("book", True), ("flaky", False)]
    assert effects(db, "w-book") == 1
    blip = app.workflows.start("blip", tenant="acme", wait=True, timeout=60)
    assert blip["status"] == "SUCCEEDED" and blip["steps"][0]["tries"] == 3
    assert effects(db, "w-blip") == 1
