"""The action runtime: the walk, every row of the idempotency table, redaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select, text, update

from mspflow.app import App
from mspflow.context import utcnow
from mspflow.db.engine import Database
from mspflow.db.models import WorkflowActionInvocation as Inv
from mspflow.errors import ActionError
from mspflow.runtime import default_idempotency_key
from tests.runtime_support import counter_plugin, effects, make_app, prepare

APPLY = "counter.effects.apply"


@pytest.fixture
def app(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    prepare(db)
    counter_plugin().CALLS.clear()
    instance = make_app(db)
    yield instance
    instance.close()


def calls(label: str) -> int:
    return int(counter_plugin().CALLS.get(label, 0))


def row(db: Database, invocation_id: str | None) -> Inv:
    with db.sessions() as s:
        return s.execute(select(Inv).where(Inv.invocation_id == invocation_id)).scalar_one()


def run(app: App, label: str, **extra: Any) -> Any:
    step = extra.pop("step_path", "steps.1")
    return app.execute(APPLY, tenant="acme", input={"label": label, **extra}, run_id="run-1", step_path=step)


# -- the walk ------------------------------------------------------------------------------------------


def test_unknown_action_or_version_is_not_found(app: App) -> None:
    missing = app.execute("counter.effects.explode", tenant="acme", input={})
    assert (missing.ok, missing.error.code) == (False, "NOT_FOUND")  # type: ignore[union-attr]
    wrong = app.execute(APPLY, version=7, tenant="acme", input={"label": "x"})
    assert wrong.error.code == "NOT_FOUND" and "up to 1" in wrong.error.message  # type: ignore[union-attr]


def test_validation_errors_carry_field_paths(app: App) -> None:
    result = app.execute(APPLY, tenant="acme", input={"window": {"start": "soon"}, "tags": ["a", 5]})
    assert result.error is not None and result.error.code == "VALIDATION_ERROR"
    paths = {f["path"]: f["type"] for f in result.error.details["fields"]}
    assert paths == {"label": "missing", "window.start": "int_parsing", "window.end": "missing",
                     "tags.1": "string_type"}
    assert "pydantic" not in result.error.message.lower() and "errors.pydantic.dev" not in str(result.error.details)
    assert calls("x") == 0


def test_a_disconnected_integration_is_inactive_and_says_what_to_connect(app: App) -> None:
    result = app.execute(APPLY, tenant="globex", input={"label": "x"})
    assert result.error is not None and result.error.code == "INTEGRATION_INACTIVE"
    assert "mspflow tenant connect globex counter" in result.error.message
    assert result.error.details == {"module": "app:counter", "reason": "not_connected"}
    assert calls("x") == 0


def test_declared_permission_uses_the_host_checker(db: Database) -> None:
    prepare(db)
    allowed = make_app(db).execute("counter.effects.guarded", tenant="acme", input={"label": "g1"})
    assert allowed.ok  # standalone default: allowed
    seen: list[tuple[str, str]] = []

    def checker(session: Any, tenant_id: str, permission: str, call: Any) -> bool:
        seen.append((tenant_id, permission))
        return False

    app = make_app(db)
    app.registry.set_permission_checker(checker, "host")
    denied = app.execute("counter.effects.guarded", tenant="acme", input={"label": "g2"})
    assert denied.error is not None and denied.error.code == "PERMISSION_DENIED"
    assert seen == [("acme", "counter:apply")] and calls("g2") == 0


def test_unexpected_exception_is_internal_error_without_stack_text(app: App, db: Database,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    result = run(app, "boom", fail="crash")
    assert result.error.code == "INTERNAL_ERROR" and result.error.retryable is False
    assert "Traceback" not in result.error.message and "division by zero" not in result.error.message
    assert "ZeroDivisionError" in caplog.text  # the details go to the log
    assert row(db, result.invocation_id).status == "FAILED"


def test_output_that_breaks_its_schema_is_an_internal_error(app: App) -> None:
    result = run(app, "bad", fail="bad_output")
    assert result.error.code == "INTERNAL_ERROR" and "does not match its schema" in result.error.message
    assert result.error.details["fields"][0]["path"] == "attempt"


def test_handler_database_writes_roll_back_with_a_failure(app: App, db: Database) -> None:
    run(app, "rolled", fail="permanent")
    assert calls("rolled") == 1 and effects(db, "rolled") == 0


def test_reads_are_recorded_but_never_replayed(app: App, db: Database) -> None:
    run(app, "r")
    first = app.execute("counter.effects.read", tenant="acme", input={"label": "r"}, run_id="q", step_path="s")
    run(app, "r", step_path="steps.2")
    second = app.execute("counter.effects.read", tenant="acme", input={"label": "r"}, run_id="q", step_path="s")
    assert (first.output, second.output) == ({"count": 1}, {"count": 2})
    assert first.invocation_id != second.invocation_id


# -- idempotency -------------------------------------------------------------------------------------


def test_succeeded_replays_the_recorded_output_without_calling_the_handler(app: App, db: Database) -> None:
    first = run(app, "once")
    second = run(app, "once")
    assert first.ok and second.ok and second.replayed and not first.replayed
    assert second.output == first.output == {"label": "once", "attempt": 1}
    assert second.invocation_id == first.invocation_id
    assert calls("once") == 1 and effects(db, "once") == 1


def test_a_different_step_is_a_different_call(app: App) -> None:
    run(app, "two")
    run(app, "two", step_path="steps.2")
    assert calls("two") == 2


def test_failed_not_retryable_returns_the_recorded_error(app: App) -> None:
    first = run(app, "gone", fail="permanent")
    second = run(app, "gone", fail="permanent")
    assert first.error.code == second.error.code == "NOT_FOUND"
    assert second.replayed and second.error.details == {"device_id": "gone"}
    assert calls("gone") == 1


def test_failed_retryable_runs_again_with_the_next_attempt(app: App, db: Database) -> None:
    first = run(app, "flaky", fail="transient", fail_until_attempt=1)
    assert first.error.code == "TRANSIENT_FAILURE" and first.error.retryable
    second = run(app, "flaky", fail="transient", fail_until_attempt=1)
    assert second.ok and second.output == {"label": "flaky", "attempt": 2}
    assert second.invocation_id == first.invocation_id
    assert (row(db, first.invocation_id).attempt, calls("flaky"), effects(db, "flaky")) == (2, 2, 1)


def test_running_with_a_live_lease_is_a_retryable_conflict(app: App, db: Database) -> None:
    first = run(app, "busy", fail="transient")
    with db.session() as s:  # as if another worker were running it right now
        s.execute(update(Inv).where(Inv.invocation_id == first.invocation_id).values(
            status="RUNNING", lease_owner="other", lease_expires_at=utcnow() + timedelta(seconds=60)))
    second = run(app, "busy", fail="transient")
    assert second.error.code == "CONFLICT" and second.error.retryable
    assert second.error.details["reason"] == "IN_PROGRESS" and 55 < second.error.retry_after <= 60
    assert calls("busy") == 1


def test_a_caller_may_wait_for_the_same_call_running_elsewhere_and_take_its_result(app: App, db: Database) -> None:
    slow = threading.Thread(target=run, args=(app, "shared"), kwargs={"sleep": 1.0})
    slow.start()
    try:
        deadline = utcnow() + timedelta(seconds=10)
        while calls("shared") == 0:  # the first call holds the key now
            assert utcnow() < deadline
        at_once = run(app, "shared", sleep=1.0)
        assert at_once.error.code == "CONFLICT" and at_once.error.details["reason"] == "IN_PROGRESS"
        waited = app.execute(APPLY, tenant="acme", input={"label": "shared", "sleep": 1.0}, run_id="run-1",
                             step_path="steps.1", wait_if_running=30)
    finally:
        slow.join()
    assert waited.ok and waited.replayed and waited.output == {"label": "shared", "attempt": 1}
    assert (calls("shared"), effects(db, "shared")) == (1, 1)


def test_running_with_an_expired_lease_is_taken_over(app: App, db: Database) -> None:
    first = run(app, "orphan", fail="transient", fail_until_attempt=1)
    with db.session() as s:  # its worker died mid-call
        s.execute(update(Inv).where(Inv.invocation_id == first.invocation_id).values(
            status="RUNNING", lease_owner="dead", lease_expires_at=utcnow() - timedelta(seconds=1)))
    second = run(app, "orphan", fail="transient", fail_until_attempt=1)
    assert second.ok and second.output["attempt"] == 2 and row(db, first.invocation_id).lease_owner != "dead"


def test_takeovers_are_capped(app: App, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSPFLOW_MAX_ATTEMPTS", "3")
    first = run(app, "cursed", fail="transient")
    with db.session() as s:
        s.execute(update(Inv).where(Inv.invocation_id == first.invocation_id).values(
            status="RUNNING", attempt=3, lease_owner="dead", lease_expires_at=utcnow() - timedelta(seconds=1)))
    second = run(app, "cursed", fail="transient")
    assert second.error.code == "TRANSIENT_FAILURE" and not second.error.retryable
    assert "stopped 3 times" in second.error.message
    third = run(app, "cursed", fail="transient")
    assert third.replayed and third.error.message == second.error.message and calls("cursed") == 1


def test_same_key_with_a_different_input_is_a_conflict(app: App) -> None:
    run(app, "a")
    other = app.execute(APPLY, tenant="acme", input={"label": "b"}, run_id="run-1", step_path="steps.1")
    assert other.error.code == "CONFLICT" and not other.error.retryable  # type: ignore[union-attr]
    assert other.error.details["reason"] == "IDEMPOTENCY_KEY_REUSED"  # type: ignore[union-attr]
    assert calls("b") == 0


def test_explicit_idempotency_key_and_default_key_derivation(app: App, db: Database) -> None:
    a = app.execute(APPLY, tenant="acme", input={"label": "k"}, idempotency_key="order-77")
    b = app.execute(APPLY, tenant="acme", input={"label": "k"}, idempotency_key="order-77", run_id="other")
    assert b.replayed and calls("k") == 1 and row(db, a.invocation_id).idempotency_key == "order-77"
    c = run(app, "d")
    expected = default_idempotency_key("acme", "run-1", "steps.1", APPLY, 1)
    assert row(db, c.invocation_id).idempotency_key == expected
    assert default_idempotency_key("a", "bc", "d", "x", 1) != default_idempotency_key("ab", "c", "d", "x", 1)


def test_adhoc_calls_without_run_id_never_replay(app: App) -> None:
    app.execute(APPLY, tenant="acme", input={"label": "adhoc"})
    app.execute(APPLY, tenant="acme", input={"label": "adhoc"})
    assert calls("adhoc") == 2


def test_tenants_never_share_records(app: App, db: Database) -> None:
    prepare(db, "globex")
    mine = run(app, "shared")
    theirs = app.execute(APPLY, tenant="globex", input={"label": "shared"}, run_id="run-1", step_path="steps.1")
    assert not theirs.replayed and theirs.invocation_id != mine.invocation_id and calls("shared") == 2
    assert app.invocation(mine.invocation_id, tenant="globex") is None


# -- redaction ---------------------------------------------------------------------------------------

SECRET = "sk_live_8Hq2ZpT0k9VvXw"


def test_planted_secret_never_reaches_the_row_the_result_or_the_log(app: App, db: Database,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    with db.session() as s:
        app.secrets.set(s, "acme", "counter_api_key", SECRET)
    caplog.set_level(logging.DEBUG)
    result = run(app, "leak", fail="secret")
    assert result.error.code == "INTERNAL_ERROR"
    stored = row(db, result.invocation_id)
    everything = repr(result.to_json()) + repr(stored.__dict__) + caplog.text
    assert SECRET not in everything
    assert "[REDACTED]" in caplog.text  # the handler's log line and the scrubbed traceback


def test_secret_named_input_keys_are_stored_masked(db: Database) -> None:
    from mspflow.redaction import MASK, Redactor, cap

    r = Redactor()
    r.add('{"access_token": "tok-123456", "refresh_token": null, "expires_at": 1}')
    assert r.text("Bearer tok-123456 failed") == f"Bearer {MASK} failed"
    assert r.data({"api_key": "abc", "Authorization": "Basic x", "nested": [{"password": "p"}],
                   "note": "tok-123456"}) == {"api_key": MASK, "Authorization": MASK,
                                              "nested": [{"password": MASK}], "note": MASK}
    big = cap({"blob": "x" * 50_000})
    assert big["_truncated"] is True and big["bytes"] > 50_000 and len(big["preview"]) <= 16 * 1024
    assert cap({"small": 1}) == {"small": 1}


# -- concurrency ---------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_concurrent_calls_with_one_key_run_the_handler_once(make_postgresql_url: Any) -> None:
    from mspflow.db.migrate import upgrade

    db = Database(make_postgresql_url(), pool_size=20)
    upgrade(db)
    prepare(db)
    counter_plugin().CALLS.clear()
    app = make_app(db)
    barrier = threading.Barrier(12)
    results: list[Any] = []

    def call() -> None:
        barrier.wait()
        results.append(app.execute(APPLY, tenant="acme", input={"label": "race", "sleep": 0.3},
                                   run_id="run-r", step_path="s"))

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls("race") == 1 and effects(db, "race") == 1
    winners = [r for r in results if r.ok and not r.replayed]
    assert len(winners) == 1
    assert all(r.ok or (r.error.code == "CONFLICT" and r.error.retryable) for r in results)
    assert len({r.invocation_id for r in results}) == 1
    db.dispose()


class _Url(BaseModel):
    url: str


def test_rate_limited_retries_do_not_count_as_failed_attempts(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSPFLOW_MAX_ATTEMPTS", "2")
    for _ in range(4):
        result = run(app, "slow-vendor", fail="rate_limited", fail_until_attempt=4)
        assert result.error.code == "RATE_LIMITED" and result.error.retryable
    assert run(app, "slow-vendor", fail="rate_limited", fail_until_attempt=4).ok


def test_a_secret_echoed_into_the_output_is_not_returned(db: Database) -> None:
    from mspflow.hookspecs import hookimpl
    from mspflow.modules import action
    from mspflow.plugins import Plugins

    def echo(params: _Url, ctx: Any) -> _Url:
        return _Url(url=f"https://vendor.example/?key={ctx.secret('k')}")

    class Plugin:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register(action("probe.secret.echo", label="Echo", handler=echo))

    from cryptography.fernet import Fernet

    from mspflow.secrets import DatabaseSecretStore

    store = DatabaseSecretStore(Fernet(Fernet.generate_key()))
    with db.session() as s:
        store.set(s, "acme", "k", SECRET)
    app = App(db=db, plugins=Plugins(entry_points=[], extra=[("probe", Plugin())], strict=True), secrets=store)
    result = app.execute("probe.secret.echo", tenant="acme", input={"url": "x"})
    assert result.ok and SECRET not in json.dumps(result.to_json()) and "[REDACTED]" in result.output["url"]


# -- deadlines and interruptions (issue 9, defect 11) -------------------------------------------------------


class _Lease(BaseModel):
    seconds: float


class _Status(BaseModel):
    status: int


def long_running_app(db: Database) -> App:
    """``probe.script.run`` declares a 900 s maximum (a Tactical RMM script wait); ``probe.script.quick``
    declares none. Each returns the lease its call got; url ``spin`` keeps the handler running."""
    import time

    from mspflow.clock import aware
    from mspflow.hookspecs import hookimpl
    from mspflow.modules import action
    from mspflow.plugins import Plugins

    def lease(params: _Url, ctx: Any) -> _Lease:
        deadline = time.monotonic() + 30
        while params.url == "spin" and time.monotonic() < deadline:
            time.sleep(0.02)  # interruptible: an async exception lands between sleeps
        with db.engine.connect() as conn:
            expires, started = conn.execute(select(Inv.lease_expires_at, Inv.started_at).where(
                Inv.invocation_id == ctx.invocation_id)).one()
        return _Lease(seconds=(aware(expires) - aware(started)).total_seconds())

    class Plugin:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register(action("probe.script.run", label="Run script", handler=lease, side_effectful=True,
                            max_duration_s=900))
            register(action("probe.script.quick", label="Quick", handler=lease, side_effectful=True))

    return App(db=db, plugins=Plugins(entry_points=[], extra=[("probe", Plugin())], strict=True))


def test_the_lease_covers_a_declared_maximum_duration(db: Database) -> None:
    app = long_running_app(db)
    declared = app.execute("probe.script.run", tenant="acme", input={"url": "x"})
    plain = app.execute("probe.script.quick", tenant="acme", input={"url": "x"})
    assert declared.ok and declared.output == {"seconds": 960.0}  # 900 s + 60 s margin
    assert plain.ok and plain.output == {"seconds": 300.0}
    app.close()


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), 10**9])
def test_a_max_duration_must_be_a_sane_number_of_seconds(bad: float) -> None:
    from mspflow.modules import DefinitionError, action

    with pytest.raises(DefinitionError, match="max_duration_s"):
        action("probe.script.bad", label="Bad", handler=lambda p, c: None, input_model=_Url, output_model=_Url,
               max_duration_s=bad)


def test_an_interrupted_handler_ends_failed_with_an_unknown_outcome(app: App, db: Database) -> None:
    from dramatiq.middleware.time_limit import TimeLimitExceeded

    from mspflow.hookspecs import hookimpl
    from mspflow.modules import action
    from mspflow.plugins import Plugins

    def cut_off(params: _Url, ctx: Any) -> _Url:
        ctx.session.execute(text("INSERT INTO counter_effects (label, attempt) VALUES ('cut', 1)"))
        raise TimeLimitExceeded()  # what Dramatiq raises asynchronously in the worker thread

    class Plugin:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register(action("probe.script.cut", label="Cut", handler=cut_off, side_effectful=True))

    cut_app = App(db=db, plugins=Plugins(entry_points=[], extra=[("probe", Plugin())], strict=True))
    with pytest.raises(TimeLimitExceeded):
        cut_app.execute("probe.script.cut", tenant="acme", input={"url": "x"}, run_id="r", step_path="s")
    [record] = [r for r in _records(db) if r.action_id == "probe.script.cut"]
    assert (record.status, record.error_retryable, record.error_code) == ("FAILED", False, "TRANSIENT_FAILURE")
    assert record.error_details["outcome"] == "unknown" and effects(db, "cut") == 0
    again = cut_app.execute("probe.script.cut", tenant="acme", input={"url": "x"}, run_id="r", step_path="s")
    assert again.replayed and again.error.details["outcome"] == "unknown"  # type: ignore[union-attr]
    cut_app.close()


def _records(db: Database) -> list[Inv]:
    with db.sessions() as s:
        return list(s.execute(select(Inv)).scalars())


# -- independent calls side by side (issue 11, item 4) ----------------------------------------------------


def _meeting_app(db: Database, barrier: threading.Barrier) -> App:
    from mspflow.hookspecs import hookimpl
    from mspflow.modules import action
    from mspflow.plugins import Plugins

    def meet(params: _Url, ctx: Any) -> _Status:
        ctx.session.execute(text("SELECT count(*) FROM counter_effects")).scalar_one()  # it has read
        barrier.wait()  # every call is inside its handler at once, as while waiting on a vendor
        ctx.session.execute(text("INSERT INTO counter_effects (label, attempt) VALUES (:l, 1)"), {"l": params.url})
        return _Status(status=ctx.attempt)

    class Plugin:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register(action("probe.vendor.wait", label="Wait", handler=meet, side_effectful=True))

    return App(db=db, plugins=Plugins(entry_points=[], extra=[("probe", Plugin())], strict=True))


def test_independent_calls_run_their_handlers_side_by_side(db: Database) -> None:
    prepare(db)
    barrier = threading.Barrier(4, timeout=10)
    app = _meeting_app(db, barrier)
    results: list[Any] = []

    def call(i: int) -> None:
        results.append(app.execute("probe.vendor.wait", tenant="acme", input={"url": f"side-{i}"},
                                   run_id="side", step_path=f"steps.{i}"))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.ok for r in results] == [True] * 4, [r.error for r in results]
    assert [effects(db, f"side-{i}") for i in range(4)] == [1] * 4
    assert {row.status for row in _records(db)} == {"SUCCEEDED"}
    app.close()


def test_a_rotated_token_survives_a_failing_call_before_and_after_the_call_wrote(app: App, db: Database) -> None:
    from mspflow.hookspecs import hookimpl
    from mspflow.modules import action
    from mspflow.plugins import Plugins

    def rotate(params: _Url, ctx: Any) -> _Url:
        if params.url == "after-write":
            ctx.session.execute(text("INSERT INTO counter_effects (label, attempt) VALUES ('rot', 1)"))
        ctx.store_secret("refresh_token", f"rotated-{params.url}")
        raise ActionError("TRANSIENT_FAILURE", "the vendor failed after rotating the refresh token")

    class Plugin:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register(action("probe.token.rotate", label="Rotate", handler=rotate, side_effectful=True))

    rot = App(db=db, plugins=Plugins(entry_points=[], extra=[("probe", Plugin())], strict=True),
              secrets=app.secrets)
    for when in ("before-write", "after-write"):
        result = rot.execute("probe.token.rotate", tenant="acme", input={"url": when})
        assert result.error is not None and result.error.code == "TRANSIENT_FAILURE"
        with db.sessions() as s:
            assert app.secrets.get(s, "acme", "refresh_token") == f"rotated-{when}"
    assert effects(db, "rot") == 0
    rot.close()


@pytest.mark.postgres
def test_a_connection_that_died_in_the_pool_is_replaced_without_a_ping(make_postgresql_url: Any) -> None:
    from mspflow.db.migrate import upgrade

    db = Database(make_postgresql_url())
    upgrade(db)
    prepare(db)
    app = make_app(db)
    assert not db.engine.pool._pre_ping  # type: ignore[attr-defined]
    assert run(app, "before").ok
    with Database(db.url).engine.connect() as admin:  # the server restarts, say: pooled connections die
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    after = run(app, "after", step_path="steps.2")
    assert after.ok and after.output == {"label": "after", "attempt": 1} and effects(db, "after") == 1
    app.close()


def test_a_handler_that_does_not_touch_the_database_costs_a_claim_and_a_result(db: Database,
                                                                                statements: list[str]) -> None:
    """No BEGIN/COMMIT and no pre-ping: each ledger change is one autocommitted statement (issue 11, item 1).

    On PostgreSQL the ledger's statements go to psycopg directly (benchmarks/dispatch.py counts them on
    the wire); SQLAlchemy sees the rest, which must be nothing.
    """
    from mspflow.hookspecs import hookimpl
    from mspflow.modules import action
    from mspflow.plugins import Plugins

    class Plugin:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register(action("probe.noop.apply", label="No-op", side_effectful=True,
                            handler=lambda params, ctx: _Url(url=params.url), input_model=_Url, output_model=_Url))

    app = App(db=db, plugins=Plugins(entry_points=[], extra=[("probe", Plugin())], strict=True))
    assert app.execute("probe.noop.apply", tenant="acme", input={"url": "warm"}).ok
    statements.clear()
    assert app.execute("probe.noop.apply", tenant="acme", input={"url": "x"}, run_id="r", step_path="s").ok
    words = [s.split(None, 1)[0].upper() for s in statements]
    assert words == (["INSERT", "UPDATE"] if db.dialect == "sqlite" else [])
    statements.clear()
    assert app.execute("probe.noop.apply", tenant="acme", input={"url": "x"}, run_id="r", step_path="s").replayed
    assert [s.split(None, 1)[0].upper() for s in statements] == (
        ["INSERT", "SELECT"] if db.dialect == "sqlite" else ["SELECT"])  # the insert that found the key
    app.close()


def test_on_sqlite_the_handler_takes_the_write_lock_at_its_first_write_or_select_for_update(db: Database) -> None:
    """Reads leave SQLite's write lock free; a write, or a SELECT ... FOR UPDATE (which SQLite cannot
    express, and scheduling relies on to serialize bookings), takes it until the result commits."""
    from mspflow.db.models import User

    sqlite = db.dialect == "sqlite"
    for first, locks in ((select(User.user_id), False), (select(User.user_id).with_for_update(), sqlite),
                         (text("INSERT INTO users (tenant, user_id, first_name, last_name, user_type, is_inactive) "
                               "VALUES ('acme', 'u-lock', '', '', 'internal', false)"), sqlite)):
        with db.connect() as conn:
            tx = db.handler_transaction(conn)
            conn.execute(first)
            assert db.writing(conn) is locks
            with db.connect() as other:  # another call claims meanwhile, unless the lock is held
                if not locks:
                    other.execute(text("DELETE FROM users WHERE user_id = 'nobody'"))
                    other.commit()
            tx.rollback()


class _Poke(BaseModel):
    n: int = 1


def test_a_call_whose_worker_died_after_sending_is_never_sent_again(db: Database,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A side-effectful request that left for the vendor before its worker was killed has an unknown outcome:
    a takeover fails the call (outcome unknown) instead of sending it a second time."""
    import httpx

    from mspflow import Vendor
    from mspflow.availability import rmm_integration
    from mspflow.hookspecs import hookimpl
    from mspflow.modules import Module
    from mspflow.plugins import Plugins
    from mspflow.tenants import connect
    from mspflow.testing import mount, unmount

    sent: list[str] = []
    died = RuntimeError("the worker was killed")

    def vendor(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json={})

    acme = Module("app:acme", label="Acme", availability=rmm_integration("acme"), description="Acme.",
                  vendor=Vendor("Acme", base_url="https://api.acme.example"))

    @acme.action("acme.things.poke", label="Poke", side_effectful=True)
    def poke(params: _Poke, ctx: Any) -> _Poke:
        """Poke."""
        ctx.http().post(("poke",))
        if len(sent) == 1:
            raise died  # stands for SIGKILL: nothing after the request is recorded by this worker
        return params

    class Plugin:
        @hookimpl
        def register_modules(self, register: Any) -> None:
            register(acme)

    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    app = App(db=db, plugins=Plugins(entry_points=[], extra=[("acme", Plugin())], strict=True))
    with db.session() as s:
        connect(s, app.registry, "t", "acme")
    mount("https://api.acme.example", httpx.MockTransport(vendor))
    try:
        first = app.execute("acme.things.poke", tenant="t", input={}, run_id="r", step_path="s")
        assert not first.ok and sent == ["/poke"]
        # what a SIGKILL leaves: the row RUNNING, the lease running out
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE workflow_action_invocations SET status = 'RUNNING', completed_at = NULL, "
                              "lease_expires_at = :past"), {"past": utcnow() - timedelta(seconds=1)})
        again = app.execute("acme.things.poke", tenant="t", input={}, run_id="r", step_path="s")
        assert sent == ["/poke"], "the request was sent a second time"
        assert not again.ok and again.error is not None
        assert again.error.details["outcome"] == "unknown" and not again.error.retryable
        assert again.error.details["reason"] == "WORKER_LOST_AFTER_SENDING"
        # a read-only or never-sent call is still taken over as before (the counter tests cover it)
    finally:
        unmount()
        app.close()
