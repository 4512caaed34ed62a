"""Workers: the embedded in-process broker, retries that respect budgets, and Redis end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mspflow import worker as worker_module
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.errors import ActionError
from tests.distributions import Distributions
from tests.runtime_support import SOURCE, counter_plugin, effects, make_app, prepare

APPLY = "counter.effects.apply"
MSPFLOW = str(Path(sys.executable).with_name("mspflow"))


@pytest.fixture
def app(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setattr(worker_module, "BACKOFF_BASE_S", 0.01)
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)
    prepare(db)
    counter_plugin().CALLS.clear()
    instance = make_app(db)
    yield instance
    instance.close()


def enqueue(app: App, label: str, step: str = "s1", **extra: Any) -> str:
    return app.enqueue(APPLY, tenant="acme", input={"label": label, **extra}, run_id="run-w", step_path=step)


def test_embedded_enqueue_runs_in_process_worker_threads(app: App, db: Database) -> None:
    invocation_id = enqueue(app, "bg")
    record = app.wait(invocation_id, timeout=20)
    assert record["status"] == "SUCCEEDED" and record["output"] == {"label": "bg", "attempt": 1}
    assert app.dispatcher.embedded and effects(db, "bg") == 1


def test_transient_failures_are_retried_until_success(app: App, db: Database) -> None:
    record = app.wait(enqueue(app, "flaky", fail="transient", fail_until_attempt=2), timeout=20)
    assert (record["status"], record["attempt"], effects(db, "flaky")) == ("SUCCEEDED", 3, 1)


def test_rate_limits_do_not_burn_the_failure_budget(app: App) -> None:
    assert worker_module.BUDGETS["TRANSIENT_FAILURE"] < 7
    record = app.wait(enqueue(app, "throttled", fail="rate_limited", fail_until_attempt=6), timeout=30)
    assert (record["status"], record["attempt"]) == ("SUCCEEDED", 7)


def test_exhausted_budget_fails_for_good(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(worker_module.BUDGETS, "TRANSIENT_FAILURE", 2)
    record = app.wait(enqueue(app, "down", fail="transient", fail_until_attempt=99), timeout=20)
    assert record["status"] == "FAILED" and record["attempt"] == 3
    assert record["error"]["retryable"] is False and "gave up after 2 retries" in record["error"]["message"]
    assert counter_plugin().CALLS["down"] == 3


def test_not_retryable_failures_are_not_retried(app: App) -> None:
    record = app.wait(enqueue(app, "gone", fail="permanent"), timeout=20)
    assert (record["status"], record["attempt"], record["error"]["code"]) == ("FAILED", 1, "NOT_FOUND")
    assert counter_plugin().CALLS["gone"] == 1


def test_bad_calls_are_refused_before_anything_is_queued(app: App, db: Database) -> None:
    with pytest.raises(ActionError) as err:
        app.enqueue(APPLY, tenant="acme", input={"label": 5})
    assert err.value.code == "VALIDATION_ERROR"
    with pytest.raises(ActionError) as err:
        app.enqueue(APPLY, tenant="globex", input={"label": "x"})
    assert err.value.code == "INTEGRATION_INACTIVE"
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM workflow_action_invocations")).scalar_one() == 0


def test_a_queued_retry_refused_at_the_gate_becomes_final(app: App, db: Database,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from mspflow.tenants import disconnect

    monkeypatch.setattr(worker_module, "BACKOFF_BASE_S", 1.0)
    invocation_id = enqueue(app, "cut", fail="transient", fail_until_attempt=99)
    deadline = time.monotonic() + 10
    while (app.invocation(invocation_id) or {}).get("status") != "FAILED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with db.session() as s:
        disconnect(s, app.registry, "acme", "counter")
    record = app.wait(invocation_id, timeout=20)
    assert record["error"]["code"] == "INTEGRATION_INACTIVE" and record["error"]["retryable"] is False


def test_an_unreachable_broker_fails_the_record_instead_of_stranding_it(db: Database) -> None:
    prepare(db)
    app = App(db=db, plugins=make_app(db).plugins, broker_url="redis://127.0.0.1:1/0")
    with pytest.raises(ActionError) as err:
        app.enqueue(APPLY, tenant="acme", input={"label": "nowhere"})
    assert err.value.code == "TRANSIENT_FAILURE" and "broker is unreachable" in err.value.message
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM workflow_action_invocations")).scalar_one() == "FAILED"


def test_enqueueing_the_same_step_twice_is_one_invocation(app: App) -> None:
    first = enqueue(app, "dup")
    app.wait(first, timeout=20)
    assert enqueue(app, "dup") == first
    assert counter_plugin().CALLS["dup"] == 1


def test_each_integration_has_its_own_queue(app: App) -> None:
    assert worker_module.queue_for(app, APPLY) == "mspflow.counter"
    assert worker_module.queue_for(app, "transform.text.render") == "mspflow.core"
    assert worker_module.all_queues(app) == ["mspflow.core", "mspflow.counter"]


# -- Redis + PostgreSQL, separate worker processes ------------------------------------------------------


class Stack:
    """A PostgreSQL database, a Redis broker and the counter plugin installed for subprocesses."""

    def __init__(self, database_url: str, redis_url: str, tmp: Path) -> None:
        from cryptography.fernet import Fernet

        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
        self.env |= {"MSPFLOW_DATABASE_URL": database_url, "MSPFLOW_BROKER_URL": redis_url,
                     "MSPFLOW_HOME": str(tmp / "home"), "MSPFLOW_STRICT_PLUGINS": "1",
                     "MSPFLOW_SECRET_KEY": Fernet.generate_key().decode(),
                     "MSPFLOW_LEASE_SECONDS": "3", "MSPFLOW_WORKER_HEARTBEAT_MS": "1500",
                     "MSPFLOW_BROKER_MAINTENANCE_CHANCE": "1000000",
                     "PYTHONPATH": os.environ["PYTHONPATH"]}
        self.db = Database(database_url)
        upgrade(self.db)
        prepare(self.db)
        self.workers: list[subprocess.Popen[str]] = []

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MSPFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def start_worker(self, threads: int = 4, processes: int = 1) -> subprocess.Popen[str]:
        proc = subprocess.Popen([MSPFLOW, "worker", "--threads", str(threads), "--processes", str(processes)],
                                env=self.env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        for _ in range(processes):
            line = proc.stderr.readline()  # "mspflow worker N ready: ..."
            assert "ready" in line, line + proc.stderr.read()
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.db.dispose()


@pytest.fixture
def stack(postgresql_url: str, redis_url: str, tmp_path: Path, dists: Distributions) -> Iterator[Stack]:
    dists.install("mspflow-counter", "mspflow_counter", SOURCE.read_text())
    s = Stack(postgresql_url, redis_url, tmp_path)
    yield s
    s.stop()


def test_run_enqueue_wait_through_a_separate_worker_process(stack: Stack) -> None:
    worker = stack.start_worker()
    result = stack.cli("run", APPLY, "--tenant", "acme", "--input", '{"label": "e2e"}', "--run-id", "r1",
                       "--step-path", "s1", "--enqueue", "--wait", "--timeout", "60", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["output"] == {"label": "e2e", "attempt": 1}
    with stack.db.engine.connect() as conn:
        owner = conn.execute(text("SELECT lease_owner FROM workflow_action_invocations")).scalar_one()
    assert f":{worker.pid}:" in owner  # it ran in the worker, not in the CLI process
    again = stack.cli("run", APPLY, "--tenant", "acme", "--input", '{"label": "e2e"}', "--run-id", "r1",
                      "--step-path", "s1", "--json")
    assert json.loads(again.stdout)["replayed"] is True and effects(stack.db, "e2e") == 1
    queued_again = stack.cli("run", APPLY, "--tenant", "acme", "--input", '{"label": "e2e"}', "--run-id", "r1",
                             "--step-path", "s1", "--enqueue", "--wait", "--json")
    assert json.loads(queued_again.stdout)["replayed"] is True


def test_worker_processes_share_the_queue(stack: Stack) -> None:
    app = App(db=stack.db, broker_url=stack.env["MSPFLOW_BROKER_URL"], plugins=make_app(stack.db).plugins)
    ids = [app.enqueue(APPLY, tenant="acme", input={"label": f"p-{i}", "sleep": 0.05}, run_id="multi",
                       step_path=f"steps.{i}") for i in range(60)]
    supervisor = stack.start_worker(threads=2, processes=2)
    assert all(app.wait(i, timeout=60)["status"] == "SUCCEEDED" for i in ids)
    with stack.db.engine.connect() as conn:
        owners = conn.execute(text("SELECT DISTINCT lease_owner FROM workflow_action_invocations")).scalars()
        pids = {owner.split(":")[1] for owner in owners}
    assert len(pids) == 2 and str(supervisor.pid) not in pids
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    app.close()


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(stack: Stack) -> None:
    app = App(db=stack.db, broker_url=stack.env["MSPFLOW_BROKER_URL"], plugins=make_app(stack.db).plugins)
    ids = [app.enqueue(APPLY, tenant="acme", input={"label": f"job-{i}", "sleep": 0.25}, run_id="batch",
                       step_path=f"steps.{i}") for i in range(24)]
    first = stack.start_worker(threads=4)
    deadline = time.monotonic() + 60
    while effects_total(stack.db) < 6 or not running(stack.db):
        assert time.monotonic() < deadline, "the first worker made no progress"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    interrupted = running(stack.db)  # their handler transactions died with the worker
    assert interrupted and effects_total(stack.db) < 24, "the batch finished before the kill"
    stack.start_worker(threads=4)
    records = {i: app.wait(i, timeout=90) for i in ids}
    assert [r["status"] for r in records.values()] == ["SUCCEEDED"] * 24
    assert [effects(stack.db, f"job-{i}") for i in range(24)] == [1] * 24
    assert all(records[i]["attempt"] >= 2 for i in interrupted), "a call cut off by the kill was not taken over"
    app.close()


def running(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(text("SELECT invocation_id FROM workflow_action_invocations "
                                      "WHERE status = 'RUNNING'")).scalars())


def effects_total(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM counter_effects")).scalar_one())


# -- retry hints and sends that go wrong (issue 9, defect 4) ---------------------------------------------


def test_an_endless_retry_after_is_capped_and_an_unsendable_retry_ends_the_record(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    from mspflow.errors import MAX_RETRY_AFTER_S

    sent: list[tuple[dict[str, Any], float]] = []
    monkeypatch.setattr(app.dispatcher, "send", lambda payload, delay_s=0.0: sent.append((payload, delay_s)))
    invocation_id = enqueue(app, "forever", fail="rate_limited_inf")
    app.dispatcher._handle(sent[0][0])  # as a worker would
    assert sent[1][1] == MAX_RETRY_AFTER_S
    assert app.invocation(invocation_id)["error"]["retryable"] is True  # type: ignore[index]

    def broken(payload: dict[str, Any], delay_s: float = 0.0) -> None:
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(app.dispatcher, "send", broken)
    app.dispatcher._handle(sent[1][0])  # the retry runs, fails again, and its own retry cannot be sent
    record = app.invocation(invocation_id)
    assert record is not None and record["status"] == "FAILED" and record["attempt"] == 2
    assert record["error"]["retryable"] is False and "could not be queued" in record["error"]["message"]
    json.dumps(record, allow_nan=False)


def test_every_delay_a_message_can_get_is_finite(app: App) -> None:
    import math

    from mspflow.errors import sane_delay

    assert worker_module.backoff(10_000) <= worker_module.BACKOFF_MAX_S + 0.1
    assert [sane_delay(x) for x in (math.inf, -1, math.nan)] == [3600.0, 0.0, None]


# -- deadlines (issue 9, defect 11) -----------------------------------------------------------------------


def test_each_message_carries_a_time_limit_between_the_declared_deadline_and_the_lease(db: Database) -> None:
    from mspflow.runtime import lease_for, time_limit_s
    from tests.test_runtime import long_running_app

    app = long_running_app(db)
    script = app.registry.action("probe.script.run")
    plain = app.registry.action("probe.script.quick")
    assert script is not None and plain is not None
    assert (script.max_duration_s, lease_for(script), time_limit_s(script)) == (900, 960, 930)
    assert lease_for(plain) == 300 and time_limit_s(plain) == 270
    assert worker_module.time_limit_ms(app, "probe.script.run") == 930_000
    assert app.dispatcher.actor.options["time_limit"] == 930_000  # the actor's own: the longest
    app.close()


def test_a_handler_cut_off_by_the_worker_time_limit_ends_failed_with_an_unknown_outcome(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_runtime import long_running_app

    monkeypatch.setenv("MSPFLOW_LEASE_SECONDS", "2")  # undeclared: time limit 1.8 s, lease 2 s
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)
    app = long_running_app(db)
    invocation_id = app.enqueue("probe.script.quick", tenant="acme", input={"url": "spin"})
    record = app.wait(invocation_id, timeout=60)
    assert record["status"] == "FAILED" and record["error"]["retryable"] is False
    assert record["error"]["details"]["outcome"] == "unknown"
    assert record["error"]["details"]["interrupted_by"] == "TimeLimitExceeded"
    app.close()
