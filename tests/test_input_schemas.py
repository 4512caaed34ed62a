"""The published input schemas describe what the runtime accepts: inputs generated from each registered
action's JSON Schema are never refused with VALIDATION_ERROR."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from mspflow.errors import ActionError
from mspflow.inputs import EnvVar, LocalDateTime, exactly_one_of, required_if
from mspflow.modules import Action, action
from mspflow.plugins import Plugins
from mspflow.runtime import ActionCall, Runtime
from tests.schema_strategy import from_schema


def _installed_actions() -> list[Action]:
    # Every installed plugin (the shipped ones included), whatever MSPFLOW_LOAD_PLUGINS says.
    from mspflow.plugins import discover

    registry = Plugins(entry_points=list(discover()), strict=True).registry
    return sorted(registry.actions.values(), key=lambda a: a.key)


ACTIONS = _installed_actions()


def _accepts(act: Action, data: Any) -> None:
    runtime = Runtime(registry=_Only(act), db=None)  # type: ignore[arg-type]
    try:
        runtime.prepare(ActionCall(act.id, "acme", input=data, version=act.version))
    except ActionError as err:
        pytest.fail(f"{act.key} refused schema-valid input {data!r}: {err.message}")


class _Only:
    def __init__(self, act: Action) -> None:
        self.act = act

    def action(self, action_id: str, version: int | None = None) -> Action | None:
        return self.act


@pytest.mark.parametrize("act", ACTIONS, ids=[a.key for a in ACTIONS])
def test_every_schema_valid_input_is_accepted(act: Action) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_schema(act.input_schema))
    def check(data: Any) -> None:
        _accepts(act, data)

    check()


def test_the_shipped_plugins_are_among_the_checked_actions() -> None:
    ids = {a.id for a in ACTIONS}
    assert {"transform.text.render", "ninjaone.alerts.get", "tacticalrmm.agents.run_script",
            "tacticalrmm.agents.reboot"} <= ids


# -- the helpers: each rule validates and is described --------------------------------------------------


class Ref(BaseModel):
    alert_uid: str | None = Field(None, min_length=1)
    external_alert_id: str | None = Field(None, min_length=1)
    _one = exactly_one_of("alert_uid", "external_alert_id")


class Run(BaseModel):
    type: Literal["SCRIPT", "ACTION"] = "SCRIPT"
    script_id: int | None = None
    action_uid: str | None = None
    env_vars: list[EnvVar] = []
    at: LocalDateTime | None = None
    _script = required_if("type", "SCRIPT", "script_id")
    _action = required_if("type", "ACTION", "action_uid")


class Out(BaseModel):
    ok: bool


def _handler(params: Any, ctx: Any) -> Out:
    return Out(ok=True)


def _schema_validator(model: type[BaseModel]) -> Any:
    import jsonschema

    act = action("probe.rules.check", label="Check", handler=_handler, input_model=model, output_model=Out)
    return act, jsonschema.Draft202012Validator(act.input_schema)


@pytest.mark.parametrize(("data", "ok"), [
    ({"alert_uid": "a"}, True), ({"external_alert_id": "b"}, True),
    ({"alert_uid": "a", "external_alert_id": None}, True),
    ({}, False), ({"alert_uid": None}, False), ({"alert_uid": "a", "external_alert_id": "b"}, False),
])
def test_exactly_one_of_validates_and_is_in_the_schema(data: dict[str, Any], ok: bool) -> None:
    _, schema = _schema_validator(Ref)
    assert schema.is_valid(data) is ok
    if ok:
        Ref.model_validate(data)
    else:
        with pytest.raises(ValueError):
            Ref.model_validate(data)


@pytest.mark.parametrize(("data", "ok"), [
    ({"script_id": 1}, True), ({"type": "ACTION", "action_uid": "x"}, True), ({}, False),
    ({"type": "ACTION"}, False), ({"type": "SCRIPT", "script_id": None}, False),
    ({"script_id": 1, "env_vars": ["A=1", "B=", "C==d"]}, True), ({"script_id": 1, "env_vars": ["=1"]}, False),
    ({"script_id": 1, "env_vars": ["novalue"]}, False),
    ({"script_id": 1, "at": "2028-02-29T22:30"}, True), ({"script_id": 1, "at": "2027-02-29T22:30"}, False),
    ({"script_id": 1, "at": "2026-01-31T22:30:00+01:00"}, False), ({"script_id": 1, "at": "2026-01-31T22:30Z"}, False),
])
def test_required_if_env_vars_and_local_times_validate_and_are_in_the_schema(data: dict[str, Any], ok: bool) -> None:
    _, schema = _schema_validator(Run)
    assert schema.is_valid(data) is ok, data
    if ok:
        Run.model_validate(data)
    else:
        with pytest.raises(ValueError):
            Run.model_validate(data)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_every_local_time_the_schema_allows_is_accepted_and_every_real_one_is_allowed(moment: datetime) -> None:
    import re

    from mspflow.inputs import LOCAL_DATETIME_PATTERN

    text = moment.isoformat(timespec="minutes")
    assert re.match(LOCAL_DATETIME_PATTERN, text), text
    Run.model_validate({"script_id": 1, "at": text})


@settings(max_examples=300, deadline=None)
@given(from_schema({"type": "string", "pattern": __import__("mspflow.inputs").inputs.LOCAL_DATETIME_PATTERN}))
def test_every_string_the_local_time_pattern_allows_is_a_real_time(text: str) -> None:
    Run.model_validate({"script_id": 1, "at": text})
