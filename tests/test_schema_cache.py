"""The CLI's cache of action JSON Schemas: same schemas as pydantic generates, rebuilt when code changes."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, create_model

from mspflow import schema_cache
from mspflow.modules import Action
from mspflow.plugins import Plugins


def fresh(actions: list[Action]) -> list[Action]:
    """Copies without their memoized schemas (as a new process would have them)."""
    return [dataclasses.replace(a) for a in actions]


def test_cached_schemas_equal_generated_ones_for_every_installed_action(tmp_path: Path) -> None:
    actions = sorted(Plugins(strict=True).registry.actions.values(), key=lambda a: a.key)
    assert len(actions) > 10
    cache = tmp_path / "cache" / "action-schemas.json"
    schema_cache.prime(fresh(actions), cache)  # writes
    assert cache.exists()
    primed = fresh(actions)
    schema_cache.prime(primed, cache)  # reads
    for action, copy in zip(actions, primed, strict=True):
        assert "input_schema" in copy.__dict__, action.key  # served from the cache, not generated
        assert copy.input_schema == action.input_schema, action.key
        assert copy.output_schema == action.output_schema, action.key
        assert json.dumps(copy.input_schema) == json.dumps(action.input_schema)
        assert json.dumps(copy.output_schema) == json.dumps(action.output_schema)


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "src"
    (root / "acme_schemas").mkdir(parents=True)
    (root / "acme_schemas" / "__init__.py").write_text(
        "from pydantic import BaseModel\n\n"
        "class In(BaseModel):\n    name: str\n\n"
        "class Out(BaseModel):\n    ok: bool\n\n"
        "def handler(params, ctx):\n    return Out(ok=True)\n")
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("acme_schemas", None)


def acme_action() -> Action:
    mod = importlib.import_module("acme_schemas")
    return Action("acme.things.get", 1, mod.handler, mod.In, mod.Out, label="Get")


def test_a_changed_source_file_invalidates_the_cache(package: Path, tmp_path: Path) -> None:
    cache = tmp_path / "home" / "cache" / "action-schemas.json"
    schema_cache.prime([acme_action()], cache)
    first = json.loads(cache.read_text())
    assert first["schemas"]
    hit = acme_action()
    schema_cache.prime([hit], cache)
    assert "input_schema" in hit.__dict__  # from the cache
    assert hit.input_schema["properties"] == {"name": {"title": "Name", "type": "string"}}

    source = package / "acme_schemas" / "__init__.py"
    source.write_text(source.read_text().replace("name: str", "name: int"))
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    sys.modules.pop("acme_schemas")
    changed = acme_action()
    schema_cache.prime([changed], cache)
    assert changed.input_schema["properties"] == {"name": {"title": "Name", "type": "integer"}}
    assert json.loads(cache.read_text())["fingerprint"] != first["fingerprint"]


def test_models_built_at_run_time_are_not_cached(tmp_path: Path) -> None:
    dynamic: type[BaseModel] = create_model("Dyn", x=(int, ...))
    dynamic.__module__ = "not_a_loaded_module"
    action = Action("acme.things.dyn", 1, lambda p, c: None, dynamic, dynamic, label="Dyn")
    cache = tmp_path / "action-schemas.json"
    schema_cache.prime([action], cache)
    assert not cache.exists()
    assert action.input_schema["properties"]["x"]["type"] == "integer"


def test_a_corrupt_or_foreign_cache_file_is_ignored_and_rewritten(package: Path, tmp_path: Path) -> None:
    cache = tmp_path / "action-schemas.json"
    for junk in ("not json", json.dumps({"format": 1, "fingerprint": "x", "schemas": {}}), "[1, 2]"):
        cache.write_text(junk)
        action = acme_action()
        schema_cache.prime([action], cache)
        assert action.output_schema["properties"] == {"ok": {"title": "Ok", "type": "boolean"}}
        assert json.loads(cache.read_text())["fingerprint"] == schema_cache.fingerprint([action])


def test_an_unwritable_cache_directory_costs_only_the_generation(package: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    action = acme_action()
    schema_cache.prime([action], blocker / "cache" / "action-schemas.json")  # parent is a file
    assert action.input_schema["required"] == ["name"]
