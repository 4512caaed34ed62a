"""Workflow definitions: the file format, publish-time checks, and the tenant's published versions.

A definition (YAML or JSON)::

    name: disk-full-cleanup
    description: Free space on a device whose disk fills up.
    trigger:
      event: RMM_ALERT_TRIGGERED          # or omit `trigger` (or write `manual`): started by hand only
      filter: {kind: disk_full}           # dotted payload paths → the value (or a list of allowed values)
    steps:
      - path: note
        action_id: transform.text.render
        input: {template: "Disk full on $device", values: {device: "{{ trigger.device_name }}"}}
      - path: cleanup
        action_id: ninjaone.devices.run_script
        if: {eq: [{$ref: trigger.provider}, ninjaone]}
        on_error: continue                  # stop (default) | continue
        retries: 2                          # a retryable failure is called again up to 2 times (default)
        input: {device_id: {$ref: trigger.device_id}, script_id: "42"}

Publishing checks the shape, then every step with :func:`mspflow.workflows.validate_steps` (unknown
action or version, static input that fails its schema: refused; a step on an integration the tenant has
not connected: a warning), and that every ``$ref``/template names the trigger or an *earlier* step.
Publishing the same definition again answers the version already published.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import func, select, update

from mspflow.clock import utcnow
from mspflow.db.models import WorkflowDefinition as Row
from mspflow.errors import ActionError
from mspflow.workflows.expressions import OPERATORS, ROOTS, references
from mspflow.workflows.validation import validate_steps

DEFAULT_STEP_RETRIES = 2
"""How many times a step whose call failed with a retryable error is called again (per run attempt)."""
MAX_STEP_RETRIES = 10

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.registry import Registry

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,127}$"
PATH_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class Trigger(BaseModel):
    """What starts a run: an event type (and an optional payload filter), or nothing (manual)."""

    model_config = ConfigDict(extra="forbid")
    event: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]{0,63}$")
    filter: dict[str, Any] = {}

    def matches(self, payload: dict[str, Any]) -> bool:
        for path, wanted in self.filter.items():
            node: Any = payload
            for part in path.split("."):
                if not isinstance(node, dict) or part not in node:
                    return False
                node = node[part]
            if node != wanted and not (isinstance(wanted, list) and node in wanted):
                return False
        return True


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    path: str = Field(pattern=PATH_PATTERN)
    action_id: str
    version: int | None = Field(None, ge=1)
    label: str | None = None
    input: dict[str, Any] = {}
    when: Any = Field(None, alias="if")
    on_error: Literal["stop", "continue"] = "stop"
    retries: int | None = Field(None, ge=0, le=MAX_STEP_RETRIES)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class Definition(BaseModel):
    """A workflow as written in its file."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    trigger: Trigger = Trigger()
    steps: list[Step] = Field(min_length=1, max_length=200)

    @field_validator("trigger", mode="before")
    @classmethod
    def _manual(cls, value: Any) -> Any:
        return {} if value in (None, "manual", {"manual": True}) else value

    @model_validator(mode="before")
    @classmethod
    def _default_paths(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("steps"), list):
            data = {**data, "steps": [
                {**step, "path": str(index + 1)} if isinstance(step, dict) and "path" not in step else step
                for index, step in enumerate(data["steps"])]}
        return data

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "trigger": self.trigger.model_dump(), "steps": [s.to_json() for s in self.steps]}


def read_file(path: str | Path) -> dict[str, Any]:
    """A definition file's data: YAML (``.yaml``/``.yml``) or JSON; ``VALIDATION_ERROR`` when unreadable."""
    file = Path(path)
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ActionError.validation(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        if file.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError: one line, no traceback
        raise ActionError.validation(f"{file} is not valid {'YAML' if file.suffix != '.json' else 'JSON'}: "
                                     f"{' '.join(str(exc).split())[:300]}") from None
    if not isinstance(data, dict):
        raise ActionError.validation(f"{file} must hold one workflow (an object with name, trigger, steps)")
    return data


def check(registry: Registry, data: Any, *, session: Session | None = None,
          tenant: str | None = None) -> tuple[Definition | None, dict[str, Any]]:
    """The parsed definition and the report ``{"ok", "errors", "warnings"}`` publishing answers."""
    try:
        definition = Definition.model_validate(data)
    except ValidationError as exc:
        return None, {"ok": False, "warnings": [], "errors": [
            {"step": None, "code": "VALIDATION_ERROR", "path": ".".join(map(str, e["loc"])), "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)]}
    report = validate_steps(registry, [s.to_json() for s in definition.steps], session=session, tenant=tenant)
    errors: list[dict[str, Any]] = list(report["errors"])
    seen: list[str] = []
    for step in definition.steps:
        if step.path in seen:
            errors.append({"step": step.path, "code": "VALIDATION_ERROR", "message": "two steps share this path"})
        for where, value in (("input", step.input), ("if", step.when)):
            for ref in references(value):
                problem = _bad_reference(ref, seen)
                if problem:
                    errors.append({"step": step.path, "code": "VALIDATION_ERROR", "message": f"{where}: {problem}"})
        if isinstance(step.when, dict) and len(step.when) == 1 and next(iter(step.when)) not in (*OPERATORS, "$ref"):
            errors.append({"step": step.path, "code": "VALIDATION_ERROR",
                           "message": f"if: unknown operator {next(iter(step.when))!r} "
                                      f"(one of {', '.join(OPERATORS)}, or $ref)"})
        seen.append(step.path)
    return definition, {"ok": not errors, "errors": errors, "warnings": report["warnings"]}


def _bad_reference(ref: str, earlier: list[str]) -> str | None:
    parts = ref.strip().split(".")
    if parts[0] not in ROOTS:
        return f"{ref!r} is not a path (it starts with one of {', '.join(ROOTS)})"
    if parts[0] == "steps" and (len(parts) < 2 or parts[1] not in earlier):
        return f"{ref!r} names no earlier step (steps run in order; a step sees only those before it)"
    return None


def publish(session: Session, registry: Registry, tenant: str, data: Any) -> dict[str, Any]:
    """Validate and store a new version; ``VALIDATION_ERROR`` (with ``details.errors``) when refused."""
    definition, report = check(registry, data, session=session, tenant=tenant)
    if definition is None or not report["ok"]:
        first = report["errors"][0]
        where = f"step {first['step']}: " if first.get("step") else (f"{first['path']}: " if first.get("path") else "")
        raise ActionError("VALIDATION_ERROR", f"the workflow was not published: {where}{first['message']}"
                          + (f" (and {len(report['errors']) - 1} more)" if len(report["errors"]) > 1 else ""),
                          details={"errors": report["errors"], "warnings": report["warnings"]})
    body = definition.to_json()
    latest = latest_row(session, tenant, definition.name)
    if latest is not None and latest.definition == body:
        latest.enabled = True  # publishing again re-enables a disabled workflow
        return {"name": definition.name, "version": latest.version, "created": False,
                "warnings": report["warnings"], "trigger": body["trigger"]}
    version = (latest.version if latest else 0) + 1
    session.add(Row(tenant=tenant, name=definition.name, version=version, trigger_event=definition.trigger.event,
                    definition=body, enabled=True, warnings=report["warnings"], created_at=utcnow()))
    session.flush()
    return {"name": definition.name, "version": version, "created": True, "warnings": report["warnings"],
            "trigger": body["trigger"]}


def latest_row(session: Session, tenant: str, name: str) -> Row | None:
    return session.execute(select(Row).where(Row.tenant == tenant, Row.name == name)
                           .order_by(Row.version.desc()).limit(1)).scalar_one_or_none()


def get(session: Session, tenant: str, name: str, version: int | None = None) -> dict[str, Any]:
    """One published version (the newest by default); ``NOT_FOUND`` when there is none."""
    row = latest_row(session, tenant, name) if version is None else session.get(Row, (tenant, name, version))
    if row is None:
        raise ActionError.not_found(f"tenant {tenant!r} has no workflow {name!r}"
                                    + (f" version {version}" if version else "")
                                    + "; publish one with `mspflow workflows publish FILE --tenant T`",
                                    workflow=name)
    return to_json(row)


def listing(session: Session, tenant: str) -> list[dict[str, Any]]:
    """The newest version of each of the tenant's workflows, by name."""
    newest = (select(Row.name, func.max(Row.version).label("v")).where(Row.tenant == tenant)
              .group_by(Row.name).subquery())
    rows = session.execute(select(Row).join(newest, (Row.name == newest.c.name) & (Row.version == newest.c.v))
                           .where(Row.tenant == tenant).order_by(Row.name)).scalars()
    return [to_json(r) for r in rows]


def disable(session: Session, tenant: str, name: str) -> int:
    """Stop a workflow from being started (by events or by hand); publishing it again re-enables it."""
    get(session, tenant, name)
    return int(session.execute(update(Row).where(Row.tenant == tenant, Row.name == name)
                               .values(enabled=False)).rowcount)  # type: ignore[attr-defined]


def triggered_by(session: Session, tenant: str, event_type: str) -> list[Row]:
    """The newest version of each enabled workflow of the tenant that ``event_type`` starts."""
    candidates = session.execute(select(Row).where(Row.tenant == tenant, Row.trigger_event == event_type)
                                 .order_by(Row.name, Row.version.desc())).scalars()
    newest: dict[str, Row] = {}
    for row in candidates:
        newest.setdefault(row.name, row)
    return [r for r in newest.values() if r.enabled and latest_row(session, tenant, r.name) is r]


def to_json(row: Row) -> dict[str, Any]:
    from mspflow.clock import aware

    return {"tenant": row.tenant, "name": row.name, "version": row.version, "enabled": row.enabled,
            "trigger": row.definition.get("trigger"), "description": row.definition.get("description", ""),
            "steps": row.definition.get("steps", []), "warnings": row.warnings or [],
            "created_at": aware(row.created_at).isoformat() if row.created_at else None}
