"""Inputs generated from an action's input JSON Schema, then broken: what the contract suite feeds a plugin.

:func:`valid_inputs` draws instances of the schema (with ``hypothesis-jsonschema``): the designer shows
that schema, so every instance is something a workflow author can save and the action must accept.
:func:`broken_inputs` draws a valid instance and breaks it so the schema no longer holds — a non-object,
a required field left out, a wrong type, a null, a 1 MB string, an unknown field where the schema
forbids one — and says how it broke it. Every broken input is checked against the schema itself, so a
"break" that the schema happens to allow is never counted. :func:`unbounded_strings` lists where the
schema accepts text of any length (a 1 MB string there reaches the handler).

Examples::

    @given(broken_inputs(action.input_schema))
    def test_refused(broken):
        how, value = broken
        assert app.runtime.execute(ActionCall(action.id, "t", value)).error.code == "VALIDATION_ERROR", how
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

MEGABYTE_STRING = "x" * (1024 * 1024)
PROFILE_ENV = "MSPFLOW_HYPOTHESIS_PROFILE"
FAST, CI = "mspflow-fast", "mspflow-ci"
_SURROGATES: list[Literal["Cs"]] = ["Cs"]  # lone surrogates are not text (the core refuses them)

_common: dict[str, Any] = {"deadline": None, "derandomize": False,
                           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                     HealthCheck.data_too_large]}
settings.register_profile(FAST, max_examples=10, **_common)
settings.register_profile(CI, max_examples=30, **_common)


def profile() -> settings:
    """The contract suite's Hypothesis settings: ``mspflow-ci`` (more examples) when ``CI`` is set or
    ``MSPFLOW_HYPOTHESIS_PROFILE=ci``, else the fast default ``mspflow-fast``."""
    chosen = os.environ.get(PROFILE_ENV) or ("ci" if os.environ.get("CI", "").lower() in ("1", "true") else "")
    return settings.get_profile(CI if chosen in ("ci", CI) else FAST)


def _validator(schema: dict[str, Any]) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema)


def valid_inputs(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Instances of ``schema`` (an action's input schema, ``$defs`` and all).

    Covers what pydantic emits: ``$ref``/``$defs``, ``anyOf``/``oneOf``/``allOf``, ``enum``/``const``,
    bounded strings (``pattern``, ``format`` date-time/date/time/uuid/email/uri), numbers, arrays and
    objects with required and optional properties. Every instance is checked against the schema.
    (``hypothesis-jsonschema`` would do this, but its 0.23 release uses Hypothesis internals that
    Hypothesis 6.1xx removed.)
    """
    validator = _validator(schema)
    return _strategy(schema, schema.get("$defs") or {}, 0).filter(validator.is_valid)


_ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3), max_leaves=5)


def _strategy(node: Any, defs: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if node is True or node == {} or not isinstance(node, dict) or depth > 12:
        return _ANY_JSON
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = dict(defs.get(ref.rsplit("/", 1)[-1]) or {})
        return _strategy({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs, depth + 1)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(list(node["enum"]))
    for key in ("anyOf", "oneOf"):
        if node.get(key):
            siblings = {k: v for k, v in node.items() if k not in (key, "default", "title", "description")}
            return st.one_of([_strategy({**siblings, **sub}, defs, depth + 1) for sub in node[key]])
    if node.get("allOf"):
        merged = {k: v for k, v in node.items() if k != "allOf"}
        for sub in node["allOf"]:
            merged.update(sub)
        return _strategy(merged, defs, depth + 1)
    types = node.get("type")
    if types is None:
        types = ["object"] if "properties" in node else ["null", "boolean", "integer", "string"]
    if isinstance(types, list):
        return st.one_of([_strategy({**node, "type": t}, defs, depth + 1) for t in types])
    if types == "null":
        return st.none()
    if types == "boolean":
        return st.booleans()
    if types in ("integer", "number"):
        low = node.get("minimum", node["exclusiveMinimum"] + 1 if "exclusiveMinimum" in node else None)
        high = node.get("maximum", node["exclusiveMaximum"] - 1 if "exclusiveMaximum" in node else None)
        ints = st.integers(min_value=None if low is None else int(-(-low // 1)),
                           max_value=None if high is None else int(high // 1))
        if types == "integer":
            return ints
        return ints | st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if types == "string":
        return _string(node)
    if types == "array":
        items = node.get("items", {})
        low = int(node.get("minItems", 0))
        return st.lists(_strategy(items, defs, depth + 1), min_size=low,
                        max_size=int(node.get("maxItems", low + 4)), unique=bool(node.get("uniqueItems")))
    if types == "object":
        properties = node.get("properties") or {}
        required = set(node.get("required") or [])
        return st.fixed_dictionaries(
            {k: _strategy(v, defs, depth + 1) for k, v in properties.items() if k in required},
            optional={k: _strategy(v, defs, depth + 1) for k, v in properties.items() if k not in required})
    return _ANY_JSON


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = int(node.get("minLength", 0)), node.get("maxLength")
    fmt = node.get("format")
    if fmt == "date-time":
        from datetime import UTC, timedelta, timezone

        zones = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))])
        return st.datetimes(timezones=zones).map(lambda d: d.isoformat())
    if fmt == "date":
        return st.dates().map(lambda d: d.isoformat())
    if fmt == "time":
        return st.times().map(lambda t: t.isoformat())
    if fmt == "uuid":
        return st.uuids().map(str)
    if fmt == "email":
        return st.emails()
    if fmt in ("uri", "url"):
        return st.sampled_from(["https://example.com/", "https://example.com/a?b=c"])
    if "pattern" in node:
        # The core refuses NUL and lone surrogates in every input string (mspflow.envelope), whatever the
        # field's own pattern says; a pattern such as `^[^=]+=.*$` would otherwise generate them.
        text = st.from_regex(node["pattern"], fullmatch=True)
        return text.filter(lambda s: low <= len(s) <= (high if high is not None else len(s)) and _storable(s))
    alphabet = st.characters(exclude_categories=_SURROGATES, exclude_characters="\x00")
    return st.text(alphabet, min_size=low, max_size=min(int(high), low + 40) if high is not None else low + 40)


def _storable(text: str) -> bool:
    return "\x00" not in text and not any("\ud800" <= ch <= "\udfff" for ch in text)


_WRONG: tuple[Any, ...] = (None, True, 0, -1, 1.5, "x", [], ["x"], {}, {"x": 1})


def broken_inputs(schema: dict[str, Any]) -> st.SearchStrategy[tuple[str, Any]]:
    """``(how it was broken, input)`` pairs that ``schema`` refuses."""
    validator = _validator(schema)
    properties: dict[str, Any] = schema.get("properties") or {}
    required = [r for r in schema.get("required") or [] if r in properties]
    forbids_extra = schema.get("additionalProperties") is False

    @st.composite
    def broken(draw: st.DrawFn) -> tuple[str, Any]:
        kinds = ["non-object JSON"]
        if required:
            kinds.append("missing field")
        if properties:
            kinds += ["wrong type", "null", "1 MB string", "unicode"]
        if forbids_extra:
            kinds.append("extra field")
        kind = draw(st.sampled_from(kinds))
        if kind == "non-object JSON":
            return kind, draw(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                        st.text(max_size=20), st.lists(st.integers(), max_size=3)))
        base = dict(draw(valid_inputs(schema)))
        if kind == "missing field":
            name = draw(st.sampled_from(required))
            base.pop(name, None)
            return f"{kind} {name!r}", base
        if kind == "extra field":
            name = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in properties))
            base[name] = draw(st.sampled_from(_WRONG))
            return f"{kind} {name!r}", base
        name = draw(st.sampled_from(sorted(properties)))
        if kind == "null":
            candidates: list[Any] = [None]
        elif kind == "1 MB string":
            candidates = [MEGABYTE_STRING]
        elif kind == "unicode":  # text of the wrong length or shape, in scripts beyond ASCII
            candidates = [draw(st.text(alphabet=st.characters(min_codepoint=0x80, exclude_categories=_SURROGATES),
                                       min_size=1, max_size=300))]
        else:
            candidates = list(_WRONG)
        refused = [v for v in candidates if not validator.is_valid({**base, name: v})]
        if not refused:  # the schema allows every candidate here: no break of this kind at this field
            return "non-object JSON", draw(st.sampled_from([None, [], "x", 0]))
        return f"{kind} at {name!r}", {**base, name: draw(st.sampled_from(refused))}

    return broken().filter(lambda pair: not validator.is_valid(pair[1]))


def _bounded_pattern(pattern: Any) -> bool:
    """Whether ``pattern`` is anchored at both ends and repeats nothing without bound (no ``*``, ``+``,
    ``{n,}``): then it cannot match a 1 MB string."""
    if not isinstance(pattern, str) or not pattern.startswith("^") or not pattern.endswith("$"):
        return False
    bare = re.sub(r"\\.", "", pattern)
    return not re.search(r"[*+]|\{\d*,\}", bare)


def unbounded_strings(schema: dict[str, Any]) -> list[str]:
    """Paths (``args[]``, ``window.note``) where ``schema`` accepts a string with no ``maxLength``."""
    defs = schema.get("$defs") or {}
    found: list[str] = []

    def walk(node: Any, path: str, seen: frozenset[str]) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                walk(defs.get(name), path, seen | {name})
        types = node.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        if "string" in types and "maxLength" not in node and "enum" not in node and "const" not in node \
                and "format" not in node and not _bounded_pattern(node.get("pattern")):
            found.append(path or "(root)")
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key) or []:
                sub = dict(sub)
                if "maxLength" in node and "maxLength" not in sub:  # pydantic puts the bound beside anyOf
                    sub["maxLength"] = node["maxLength"]
                walk(sub, path, seen)
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, f"{path}.{name}" if path else name, seen)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", seen)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*", seen)

    walk(schema, "", frozenset())
    return sorted(set(found))
