"""What a call may carry, checked before anything touches the database.

Every malformed value ends as ``VALIDATION_ERROR`` with field paths, identically on SQLite and
PostgreSQL, never as a driver error. Envelope fields are named as the call names them (``tenant``,
``run_id``, ``step_path``, ``idempotency_key``, ``action_id``, ``version``; message "invalid call");
input paths are written as pydantic's and handlers' are (``window.start``, ``tags.1``; message
"invalid input"), so one input field has one path whichever check refused it:

* the envelope fits the ledger's columns (:data:`LIMITS`: tenant, run id, idempotency key and action
  id 255 characters, step path 1,024) and the version is an integer the ledger can store;
* text is storable everywhere: no NUL (PostgreSQL text and JSON cannot hold ``\\u0000``) and no lone
  surrogate (no UTF-8 encoder accepts one), in the envelope and in every input string and key; input
  numbers are finite (JSON has no ``Infinity`` or ``NaN``);
* input nests at most :data:`MAX_INPUT_DEPTH` levels, found by an iterative walk, so no depth can
  exhaust the stack (pydantic's serializer gives up near 300 levels, Python's recursion near 1,000).

Examples::

    check_call(ActionCall("acme.devices.reboot", "t" * 300, {"device_id": "1041"}))
    # ActionError VALIDATION_ERROR, details {"fields": [{"path": "tenant", ...}]}
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mspflow.errors import ActionError

if TYPE_CHECKING:
    from mspflow.runtime import ActionCall

#: Column lengths of ``workflow_action_invocations`` (see :mod:`mspflow.db.models`).
LIMITS = {"action_id": 255, "tenant": 255, "run_id": 255, "step_path": 1024, "idempotency_key": 255,
          "invocation_id": 36}
MAX_INPUT_DEPTH = 64
"""How deeply input may nest (objects and arrays); a workflow step's input is a few levels deep."""
MAX_VERSION = 2**31 - 1


def _field(path: str, message: str, kind: str) -> dict[str, str]:
    return {"path": path, "message": message, "type": kind}


def text_problem(path: str, value: object, max_length: int | None = None) -> dict[str, str] | None:
    """Why ``value`` cannot be stored as the text field ``path``, or None when it can."""
    if not isinstance(value, str):
        return _field(path, "must be a string", "string_type")
    if max_length is not None and len(value) > max_length:
        return _field(path, f"must be at most {max_length} characters (got {len(value)})", "string_too_long")
    return _chars_problem(path, value)


def _chars_problem(path: str, value: str) -> dict[str, str] | None:
    if "\x00" in value:
        return _field(path, "must not contain NUL characters (\\u0000)", "string_nul")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _field(path, "must not contain lone surrogates (not valid Unicode text)", "string_unicode")
    return None


def _join(path: str, key: object) -> str:
    part = str(key)
    part = part if len(part) <= 64 else part[:61] + "..."
    return f"{path}.{part}" if path else part


def input_problems(data: Any, limit: int = 20) -> list[dict[str, str]]:
    """Unstorable strings and numbers, and nesting deeper than :data:`MAX_INPUT_DEPTH`, in ``data``.

    The walk is iterative: no depth can exhaust the stack. Paths are pydantic's (``window.start``).
    """
    found: list[dict[str, str]] = []
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack and len(found) < limit:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            if problem := _chars_problem(path or "(root)", value):
                found.append(problem)
        elif isinstance(value, float):
            if not math.isfinite(value):
                found.append(_field(path or "(root)", "must be a finite number", "finite_number"))
        elif isinstance(value, dict | list | tuple):
            if depth >= MAX_INPUT_DEPTH:
                found.append(_field(path, f"nests deeper than {MAX_INPUT_DEPTH} levels", "too_deep"))
                continue
            if isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(key, str) and (problem := _chars_problem("", key)):
                        found.append(_field(_join(path, "(key)"), problem["message"], problem["type"]))
                        continue
                    stack.append((item, depth + 1, _join(path, key)))
            else:
                stack.extend((item, depth + 1, _join(path, i)) for i, item in enumerate(value))
    return found


def _plain(value: object, limit: int) -> bool:
    """The common case, cheaply: short ASCII text without NUL (or no value)."""
    return value is None or (type(value) is str and len(value) <= limit and value.isascii()
                             and "\x00" not in value)


def check_call(call: ActionCall) -> None:
    """Raise ``VALIDATION_ERROR`` (with every field path found) unless ``call`` can be stored and run."""
    if not (_plain(call.action_id, 255) and type(call.tenant_id) is str and _plain(call.tenant_id, 255)
            and _plain(call.run_id, 255) and _plain(call.step_path, 1024) and _plain(call.idempotency_key, 255)
            and (call.version is None or (type(call.version) is int and 1 <= call.version <= MAX_VERSION))):
        _check_envelope(call)
    if not isinstance(call.input, dict):
        raise invalid([_field("(root)", "input must be an object", "dict_type")], "input")
    if problems := input_problems(call.input):
        raise invalid(problems, "input")


def _check_envelope(call: ActionCall) -> None:
    fields = [p for p in (
        text_problem("action_id", call.action_id, LIMITS["action_id"]),
        text_problem("tenant", call.tenant_id, LIMITS["tenant"]),
        *(text_problem(name, value, LIMITS[name]) for name, value in (
            ("run_id", call.run_id), ("step_path", call.step_path),
            ("idempotency_key", call.idempotency_key)) if value is not None),
    ) if p is not None]
    if call.version is not None and (isinstance(call.version, bool) or not isinstance(call.version, int)
                                     or not 1 <= call.version <= MAX_VERSION):
        fields.append(_field("version", f"must be an integer from 1 to {MAX_VERSION}", "int_range"))
    if fields:
        raise invalid(fields)


def check_lookup(invocation_id: object, tenant: object = None) -> None:
    """Raise ``VALIDATION_ERROR`` unless ``invocation_id`` (and ``tenant``) could name a stored record."""
    fields = [p for p in (
        text_problem("invocation_id", invocation_id, LIMITS["invocation_id"]),
        None if tenant is None else text_problem("tenant", tenant, LIMITS["tenant"]),
    ) if p is not None]
    if fields:
        raise invalid(fields)


def invalid(fields: list[dict[str, str]], what: str = "call") -> ActionError:
    """``VALIDATION_ERROR`` in the shape schema errors have: one entry per field path."""
    summary = "; ".join(f"{f['path']}: {f['message']}" for f in fields[:5])
    return ActionError("VALIDATION_ERROR", f"invalid {what}: {summary}", details={"fields": fields})
