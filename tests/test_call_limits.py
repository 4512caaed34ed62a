"""Malformed calls and odd retry hints stay inside the error taxonomy, on SQLite and PostgreSQL.

Envelope fields are reported by name (``tenant``), input fields by pydantic's paths (``window.start``).

Issue 9, defects 4 and 5: envelope fields too long or unstorable, input too deep or with NUL, times
near year 1 or 9999, ``Retry-After: inf``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.errors import MAX_RETRY_AFTER_S, ActionError
from tests.runtime_support import counter_plugin, make_app, prepare

APPLY = "counter.effects.apply"
LONE = "\ud800"


@pytest.fixture
def app(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)
    prepare(db)
    counter_plugin().CALLS.clear()
    instance = make_app(db)
    yield instance
    instance.close()


def fields(err: ActionError | None) -> list[str]:
    assert err is not None and err.code == "VALIDATION_ERROR", err
    json.dumps(err.to_dict(), allow_nan=False).encode()  # printable by `--json`, storable
    return [f["path"] for f in err.details["fields"]]


def rows(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM workflow_action_invocations")).scalar_one())


ENVELOPES = [
    ({"tenant": "t" * 256}, "tenant"),
    ({"run_id": "r" * 256}, "run_id"),
    ({"idempotency_key": "k" * 256}, "idempotency_key"),
    ({"step_path": "s" * 1025}, "step_path"),
    ({"tenant": "ac\x00me"}, "tenant"),
    ({"run_id": "run\x00"}, "run_id"),
    ({"idempotency_key": "\x00"}, "idempotency_key"),
    ({"step_path": "steps.\x001"}, "step_path"),
    ({"tenant": f"acme{LONE}"}, "tenant"),
    ({"run_id": LONE}, "run_id"),
    ({"idempotency_key": f"k{LONE}"}, "idempotency_key"),
    ({"step_path": f"steps{LONE}"}, "step_path"),
]


@pytest.mark.parametrize(("envelope", "path"), ENVELOPES)
def test_an_unstorable_envelope_is_a_validation_error_on_execute_and_enqueue(
        app: App, db: Database, envelope: dict[str, Any], path: str) -> None:
    call = {"tenant": "acme", "run_id": "run-1", "step_path": "steps.1", **envelope}
    result = app.execute(APPLY, input={"label": "x"}, **call)
    assert fields(result.error) == [path]
    with pytest.raises(ActionError) as queued:
        app.enqueue(APPLY, input={"label": "x"}, **call)
    assert fields(queued.value) == [path]
    assert rows(db) == 0 and counter_plugin().CALLS == {}


def test_limits_are_inclusive(app: App, db: Database) -> None:
    result = app.execute(APPLY, tenant="acme", input={"label": "edge"}, run_id="r" * 255, step_path="s" * 1024,
                         idempotency_key="k" * 255)
    assert result.ok, result.error


def test_action_id_and_version_are_checked_too(app: App) -> None:
    assert fields(app.execute("a" * 300, tenant="acme", input={}).error) == ["action_id"]
    assert fields(app.execute("counter.effects\x00.apply", tenant="acme", input={}).error) == ["action_id"]
    assert fields(app.execute(APPLY, version=2**40, tenant="acme", input={"label": "x"}).error) == ["version"]


@pytest.mark.parametrize("bad", ["a\x00", "a" * 37, LONE])
def test_looking_up_a_malformed_invocation_id_is_a_validation_error(app: App, bad: str) -> None:
    with pytest.raises(ActionError) as err:
        app.invocation(bad)
    assert fields(err.value) == ["invocation_id"]
    with pytest.raises(ActionError) as err:
        app.invocation("0" * 36, tenant=f"x{LONE}")
    assert fields(err.value) == ["tenant"]


@pytest.mark.parametrize(("value", "path"), [
    ({"label": "nul\x00"}, "label"),
    ({"label": f"half {LONE}"}, "label"),
    ({"label": "ok", "tags": ["fine", "bad\x00"]}, "tags.1"),
    ({"label": "ok", "window": {"start": 1, "end": 2, f"k{LONE}": 1}}, "window.(key)"),
])
def test_input_strings_must_be_storable(app: App, db: Database, value: dict[str, Any], path: str) -> None:
    assert fields(app.execute(APPLY, tenant="acme", input=value, run_id="r", step_path="s").error) == [path]
    assert rows(db) == 0


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [300, 100_000])
def test_deep_input_is_a_validation_error_without_recursion(app: App, db: Database, depth: int) -> None:
    [path] = fields(app.execute(APPLY, tenant="acme", input={"label": "x", "window": nested(depth)}).error)
    assert path.startswith("window.a.a.") and rows(db) == 0
    with pytest.raises(ActionError) as queued:
        app.enqueue(APPLY, tenant="acme", input={"label": "x", "tags": [[[["deep"]]]] * 2 + [nested(depth)]})
    assert fields(queued.value)[0].startswith("tags.2.a")


def test_non_finite_numbers_in_input_are_refused(app: App, db: Database) -> None:
    result = app.execute(APPLY, tenant="acme", input={"label": "x", "sleep": math.inf})
    assert fields(result.error) == ["sleep"] and rows(db) == 0


# -- scheduling near the ends of the calendar ------------------------------------------------------------


@pytest.mark.parametrize(("start", "end", "timezone", "path"), [
    ("0001-01-01T00:30:00+01:00", "0001-01-01T02:00:00+01:00", None, "window.start"),
    ("0001-01-01T00:00:00", "0001-01-01T01:00:00", "Europe/Berlin", "window.start"),
    ("9999-12-31T22:00:00", "9999-12-31T23:30:00", "America/New_York", "window.start"),
])
def test_schedule_times_near_year_1_or_9999_are_validation_errors(db: Database, start: str, end: str,
                                                                 timezone: str | None, path: str) -> None:
    from mspflow.db.models import User
    from mspflow.plugins import Plugins

    with db.session() as s:
        s.add(User(tenant="acme", user_id="u-ada", first_name="Ada", user_type="internal"))
    app = App(db=db, plugins=Plugins(entry_points=[], strict=True))
    window = {"start": start, "end": end, **({"timezone": timezone} if timezone else {})}
    result = app.execute("scheduling.create_entry", tenant="acme",
                         input={"assigned_user_ids": ["u-ada"], "title": "edge", "window": window})
    assert fields(result.error) == [path]
    first = app.execute("scheduling.create_entry", tenant="acme", input={
        "assigned_user_ids": ["u-ada"], "title": "last", "window": {
            "start": "9999-12-31T20:00:00Z", "end": "9999-12-31T23:00:00Z"}})
    assert first.ok, first.error
    shifted = app.execute("scheduling.create_entry", tenant="acme", input={
        "assigned_user_ids": ["u-ada"], "title": "pushed past the end", "conflict_mode": "shift", "window": {
            "start": "9999-12-31T19:00:00Z", "end": "9999-12-31T22:00:00Z"}})
    assert fields(shifted.error) == ["window.end"]
    app.close()


# -- retry hints -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hint", "expected"), [
    (math.inf, MAX_RETRY_AFTER_S), (float("1e400"), MAX_RETRY_AFTER_S), (10**400, MAX_RETRY_AFTER_S),
    (1e9, MAX_RETRY_AFTER_S), (-5, 0.0), (math.nan, None), (-math.inf, 0.0), (30, 30.0), (None, None),
])
def test_retry_after_is_finite_non_negative_and_capped(hint: Any, expected: float | None) -> None:
    for err in (ActionError("RATE_LIMITED", "slow down", retry_after=hint),
                ActionError("RATE_LIMITED", "slow down").with_retry_after(hint)):
        assert err.retry_after == expected
        json.dumps(err.to_dict(), allow_nan=False)
    late = ActionError("RATE_LIMITED", "slow down")
    late.retry_after = math.inf
    assert late.retry_after == MAX_RETRY_AFTER_S
