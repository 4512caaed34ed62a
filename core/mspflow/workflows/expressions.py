"""Dynamic values of a step: ``$ref`` paths, ``{{ … }}`` templates and ``if`` conditions.

A path names something the run knows: ``trigger.<field>…`` (the trigger payload), ``steps.<path>.output.…``
(an earlier step's output), ``steps.<path>.status`` (``SUCCEEDED``, ``FAILED`` or ``SKIPPED``),
``run.id``, ``run.tenant``. Segments are dict keys, or list indexes when numeric.

Examples::

    {"$ref": "steps.find.output.devices.0.id"}        # the raw value
    "{{ trigger.device_name }}"                       # a whole-string template: the raw value too
    "Disk full on {{ trigger.device_name }}"          # interpolation: always a string
    {"gt": [{"$ref": "trigger.used_pct"}, 90]}        # a condition

Conditions (``if``): a literal, a ``$ref`` or template (truthy or not), or one operator: ``eq``, ``ne``,
``lt``, ``le``, ``gt``, ``ge`` (two operands), ``in`` (item, list), ``not`` (a condition), ``all`` and
``any`` (lists of conditions), ``exists`` (a path: present and not null). In a condition a field that
is not there reads as null; a reference to the output of a step that failed or was skipped is an error
everywhere.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
ROOTS = ("trigger", "steps", "run")
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
    "ge": operator.ge}
OPERATORS = (*COMPARISONS, "in", "not", "all", "any", "exists")


class ExpressionError(Exception):
    """A dynamic value that cannot be resolved; the message says which path and why."""


class Missing(ExpressionError):
    """The path names a field that is not there (in a condition, that reads as null)."""


class Scope:
    """What a run's dynamic values can see: the trigger payload and the steps that ran so far.

    ``steps`` maps a step path to ``{"status", "output", "error"}``.
    """

    def __init__(self, *, run_id: str, tenant: str, trigger: Mapping[str, Any],
                 steps: Mapping[str, Mapping[str, Any]]) -> None:
        self.run = {"id": run_id, "tenant": tenant}
        self.trigger = trigger
        self.steps = steps

    def lookup(self, path: str) -> Any:
        parts = [p for p in path.strip().split(".")]
        if not parts or parts[0] not in ROOTS or any(p == "" for p in parts):
            raise ExpressionError(f"{path!r} is not a path (it starts with one of {', '.join(ROOTS)})")
        root, rest = parts[0], parts[1:]
        if root == "steps":
            if not rest:
                raise ExpressionError(f"{path!r} names no step")
            step = self.steps.get(rest[0])
            if step is None:
                raise Missing(f"{path} refers to step {rest[0]!r}, which has not run")
            if len(rest) > 1 and rest[1] == "output" and step.get("status") != "SUCCEEDED":
                why = "was skipped" if step.get("status") == "SKIPPED" else "failed"
                error = step.get("error") or {}
                detail = f" ({error.get('code')}: {error.get('message')})" if error else ""
                raise ExpressionError(f"{path} refers to the output of step {rest[0]!r}, which {why}{detail}; "
                                      "it has no output")
            return _walk(dict(step), rest[1:], path)
        return _walk(self.run if root == "run" else self.trigger, rest, path)


def _walk(node: Any, parts: list[str], path: str) -> Any:
    for depth, part in enumerate(parts):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            where = ".".join([path.split(".")[0], *parts[:depth]]) if depth else path.split(".")[0]
            raise Missing(f"{path}: {where} has no {part!r}")
    return node


def references(value: Any) -> list[str]:
    """Every path a value refers to (``$ref`` and templates), for publish-time checks."""
    found: list[str] = []
    if isinstance(value, Mapping):
        if len(value) == 1 and "$ref" in value:
            found.append(str(value["$ref"]))
        else:
            for key, item in value.items():
                found.extend(references(item) if key != "exists" else [str(item)])
    elif isinstance(value, list):
        for item in value:
            found.extend(references(item))
    elif isinstance(value, str):
        found.extend(m.group(1) for m in TEMPLATE.finditer(value))
    return found


def resolve(value: Any, scope: Scope, *, lenient: bool = False) -> Any:
    """``value`` with every ``$ref`` and template replaced by what it names.

    ``lenient`` (conditions): a field that is not there reads as null instead of failing the step.
    """
    def look(path: str) -> Any:
        try:
            return scope.lookup(path)
        except Missing:
            if lenient:
                return None
            raise

    if isinstance(value, Mapping):
        if len(value) == 1 and "$ref" in value:
            return look(str(value["$ref"]))
        return {key: resolve(item, scope, lenient=lenient) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, scope, lenient=lenient) for item in value]
    if isinstance(value, str) and "{{" in value:
        whole = TEMPLATE.fullmatch(value.strip())
        if whole is not None:
            return look(whole.group(1))
        return TEMPLATE.sub(lambda m: _text(look(m.group(1))), value)
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def evaluate(condition: Any, scope: Scope) -> bool:
    """Whether a step's ``if`` holds."""
    if isinstance(condition, Mapping) and len(condition) == 1:
        (op, arg), = condition.items()
        if op in COMPARISONS:
            left, right = _pair(op, arg, scope)
            try:
                return bool(COMPARISONS[op](left, right))
            except TypeError:
                raise ExpressionError(f"cannot compare {_text(left)!r} and {_text(right)!r} with {op!r}") from None
        if op == "in":
            item, container = _pair(op, arg, scope)
            if container is None:
                return False
            if not isinstance(container, list | str | Mapping):
                raise ExpressionError(f"'in' needs a list, text or object as its second operand, got {container!r}")
            return item in container
        if op == "not":
            return not evaluate(arg, scope)
        if op in ("all", "any"):
            if not isinstance(arg, list):
                raise ExpressionError(f"{op!r} needs a list of conditions")
            results = (evaluate(item, scope) for item in arg)
            return all(results) if op == "all" else any(results)
        if op == "exists":
            try:
                return scope.lookup(str(arg)) is not None
            except ExpressionError:
                return False
    return bool(resolve(condition, scope, lenient=True))


def _pair(op: str, arg: Any, scope: Scope) -> tuple[Any, Any]:
    if not isinstance(arg, list) or len(arg) != 2:
        raise ExpressionError(f"{op!r} needs a list of two operands")
    return resolve(arg[0], scope, lenient=True), resolve(arg[1], scope, lenient=True)
