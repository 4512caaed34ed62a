"""Input types and rules whose JSON Schema says exactly what the runtime accepts.

The designer validates a step's input against the action's published JSON Schema; the runtime validates
it against the pydantic model. A rule written as a plain validator is invisible in the schema, so the
designer accepts inputs the runtime then refuses. Use these instead; each validates *and* describes::

    from pydantic import BaseModel
    from mspflow.inputs import EnvVar, LocalDateTime, exactly_one_of, required_if

    class AlertRef(BaseModel):
        alert_uid: str | None = None
        external_alert_id: str | None = None
        _one = exactly_one_of("alert_uid", "external_alert_id")

    class RunScriptInput(BaseModel):
        type: Literal["SCRIPT", "ACTION"]
        script_id: str | None = None
        env_vars: list[EnvVar] = []
        at: LocalDateTime | None = None
        _script = required_if("type", "SCRIPT", "script_id")

``exactly_one_of`` becomes ``oneOf`` (each branch: the field present and not null), ``required_if``
becomes ``if``/``then``; :class:`RuleSchema` (what :attr:`mspflow.Action.input_schema` uses) adds them.
For a value rule, prefer ``Field(pattern=...)``, ``ge``/``le``, ``Literal`` and ``min_length``: pydantic
publishes those itself. The core's test generates inputs from every registered action's schema and fails
when the runtime refuses one (``tests/test_input_schemas.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema, model_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

ENV_VAR_PATTERN = r"^[^=]+="
EnvVar = Annotated[str, Field(pattern=ENV_VAR_PATTERN, max_length=32767,
                               description='An environment variable, "KEY=value"')]
"""``KEY=value``: a non-empty key before the first ``=``; at most 32,767 characters (Windows' limit for one
variable)."""

_YEAR = r"(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|([13579][26]|[2468][048]|0[48])00)"
_MONTH_DAY = (r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
              r"|02-(0[1-9]|1[0-9]|2[0-8]))")
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
LOCAL_DATETIME_PATTERN = f"^({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29){_TIME}$"
"""ISO 8601 date and time without a UTC offset, e.g. ``2026-01-31T22:30`` (every real calendar date)."""


def _naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        raise ValueError("give a local time without a UTC offset, e.g. 2026-01-31T22:30")
    return value


LocalDateTime = Annotated[
    datetime, AfterValidator(_naive),
    WithJsonSchema({"type": "string", "pattern": LOCAL_DATETIME_PATTERN,
                    "description": "A local date and time without a UTC offset, e.g. 2026-01-31T22:30"}),
]
"""A wall-clock time with no offset (the device's own time zone); an offset or a number is refused."""


def _given(model: BaseModel, name: str) -> bool:
    return getattr(model, name) is not None


def _present(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def exactly_one_of(*names: str) -> Any:
    """A model rule: exactly one of the fields ``names`` is given (not null). Assign it in the class body."""
    if len(names) < 2:
        raise ValueError("exactly_one_of needs at least two field names")

    def check(model: Any) -> Any:
        given = [n for n in names if _given(model, n)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {' or '.join(names)}")
        return model

    check.__mspflow_schema__ = {"oneOf": [_present(n) for n in names]}  # type: ignore[attr-defined]
    return model_validator(mode="after")(check)


def required_if(field: str, value: Any, *names: str) -> Any:
    """A model rule: when ``field`` equals ``value``, the fields ``names`` must be given (not null)."""
    if not names:
        raise ValueError("required_if needs the names of the fields it requires")

    def check(model: Any) -> Any:
        if getattr(model, field) == value:
            missing = [n for n in names if not _given(model, n)]
            if missing:
                raise ValueError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
                                 f"when {field} is {value!r}")
        return model

    check.__mspflow_schema__ = {  # type: ignore[attr-defined]
        "if": {"properties": {field: {"const": value}}, "required": [field], "_mspflow_field": field},
        "then": {"allOf": [_present(n) for n in names]},
    }
    return model_validator(mode="after")(check)


class RuleSchema(GenerateJsonSchema):
    """pydantic's JSON Schema plus the rules :func:`exactly_one_of` and :func:`required_if` declare."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        cls = schema["cls"]
        rules: list[dict[str, Any]] = [
            rule for d in cls.__pydantic_decorators__.model_validators.values()
            if (rule := getattr(d.func, "__mspflow_schema__", None))]
        if rules:
            json_schema = {**json_schema, "allOf": [*json_schema.get("allOf", []), *(_resolve(r, cls) for r in rules)]}
        return json_schema


def _resolve(rule: dict[str, Any], cls: type[BaseModel]) -> dict[str, Any]:
    """A ``required_if`` condition also holds when the field is left out and its default is the value."""
    if "if" not in rule:
        return rule
    condition = dict(rule["if"])
    field = condition.pop("_mspflow_field")
    info = cls.model_fields.get(field)
    if info is not None and not info.is_required() and info.default == condition["properties"][field]["const"]:
        condition = {"properties": condition["properties"]}  # true too when the field is left out
    return {"if": condition, "then": rule["then"]}
