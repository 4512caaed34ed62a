"""Hypothesis strategy: JSON values that a JSON Schema (the subset pydantic emits) accepts.

Draws loosely from the schema's shape (types, properties, bounds, patterns, enums, $refs), then keeps only
what ``jsonschema`` says is valid, so ``oneOf``, ``if``/``then`` and ``not`` are honoured exactly.
(``hypothesis-jsonschema`` would do this, but its 0.23 uses Hypothesis internals that 6.1xx removed.)
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import jsonschema
from hypothesis import assume
from hypothesis import strategies as st

_MAX_TEXT = 40
_MAX_ITEMS = 4


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    validator = jsonschema.Draft202012Validator(schema)

    def valid(value: Any) -> Any:
        assume(validator.is_valid(value))
        return value

    return _strategy(schema, schema.get("$defs", {}), 0).map(valid)


def _strategy(node: dict[str, Any], defs: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if "$ref" in node:
        return _strategy(defs[node["$ref"].rsplit("/", 1)[-1]], defs, depth + 1)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            rest = {k: v for k, v in node.items() if k != key}
            return st.one_of([_strategy({**rest, **branch}, defs, depth + 1) for branch in node[key]])
    kind = node.get("type")
    if isinstance(kind, list):
        return st.one_of([_strategy({**node, "type": k}, defs, depth) for k in kind])
    if kind == "object" or "properties" in node:
        return _object(node, defs, depth)
    if kind == "array":
        items = _strategy(node.get("items", {}), defs, depth + 1)
        low = node.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=min(node.get("maxItems", low + _MAX_ITEMS), low + _MAX_ITEMS))
    if kind == "string":
        low, high = node.get("minLength", 0), node.get("maxLength", _MAX_TEXT)
        if "pattern" in node:  # ECMA-262, where "$" is the end of the text, not also before a final newline
            ecma = re.compile(re.sub(r"(?<!\\)\$$", r"\\Z", node["pattern"]))
            return st.from_regex(node["pattern"]).filter(lambda text: bool(ecma.search(text)))
        if node.get("format") == "date-time":  # RFC 3339, as a designer's date-time widget writes it
            offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
            return st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                timezones=offsets).map(datetime.isoformat)
        if node.get("format") == "date":
            return st.dates().map(date.isoformat)
        return st.text(min_size=low, max_size=max(low, min(high, _MAX_TEXT)))
    if kind == "integer":
        low = node.get("minimum", node["exclusiveMinimum"] + 1 if "exclusiveMinimum" in node else None)
        high = node.get("maximum", node["exclusiveMaximum"] - 1 if "exclusiveMaximum" in node else None)
        return st.integers(min_value=low, max_value=high)
    if kind == "number":
        return st.floats(min_value=node.get("minimum"), max_value=node.get("maximum"), allow_nan=False,
                         allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3), max_leaves=5)


@st.composite
def _object(draw: Any, node: dict[str, Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    required = set(node.get("required", []))
    out: dict[str, Any] = {}
    for name, sub in node.get("properties", {}).items():
        if name in required or draw(st.booleans()):
            out[name] = draw(_strategy(sub, defs, depth + 1))
    return out
