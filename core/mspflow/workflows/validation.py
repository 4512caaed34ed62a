"""Publish-time validation of a workflow's steps.

A step is ``{"action_id": str, "version": int?, "input": {...}?, "path": str?}``. Input values may be
*dynamic*, filled from earlier steps at run time: ``{"$ref": "steps.fetch.output.devices"}`` (any
one-key object whose key starts with ``$``) or a ``"{{ … }}"`` template string. Only static values
are checked against the input schema; a dynamic value stands in for whatever its field needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mspflow.availability import request_scope, resolve

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.registry import Registry


def is_dynamic(value: Any) -> bool:
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value))).startswith("$")
    return isinstance(value, str) and value.strip().startswith("{{") and value.strip().endswith("}}")


def _dynamic_at(data: Any, loc: tuple[int | str, ...]) -> bool:
    node = data
    for part in loc:
        if is_dynamic(node):
            return True
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]  # type: ignore[index]
        else:
            return False
    return is_dynamic(node)


def validate_steps(registry: Registry, steps: Iterable[Mapping[str, Any]], *, session: Session | None = None,
                   tenant: str | None = None) -> dict[str, Any]:
    """``{"ok": bool, "errors": [...], "warnings": [...]}``; each entry names its step."""
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        where = str(step.get("path") or index)
        action_id, version = step.get("action_id"), step.get("version")
        action = registry.action(str(action_id), version) if action_id else None
        if action is None:
            errors.append({"step": where, "code": "NOT_FOUND",
                           "message": f"no action {action_id!r}{f' version {version}' if version else ''}"})
            continue
        data = dict(step.get("input") or {})
        try:
            action.input_model.model_validate(data)
        except ValidationError as exc:
            fields = [
                {"path": ".".join(map(str, e["loc"])), "message": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_input=False)
                if not _dynamic_at(data, e["loc"])
            ]
            if fields:
                errors.append({"step": where, "code": "VALIDATION_ERROR", "message": "invalid static input",
                               "fields": fields})
        module = registry.module_of(action.id)
        if module is not None and session is not None and tenant is not None:
            with request_scope(session):
                status = resolve(session, tenant, module.availability_key, registry.resolvers)
            if not status.available:
                warnings.append({"step": where, "code": "INTEGRATION_INACTIVE",
                                 "message": f"{module.label} is not connected for tenant {tenant!r} "
                                            f"({status.reason}); the step will fail until it is"})
    return {"ok": not errors, "errors": errors, "warnings": warnings}
