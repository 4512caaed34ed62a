"""A file cache of the actions' input and output JSON Schemas, so ``mspflow catalog`` does not rebuild them
on every start.

Generating every action's two JSON Schemas costs pydantic a few tenths of a millisecond each; with a
handful of plugins that is tens of milliseconds per CLI start, and it grows with every plugin. The CLI's
``catalog`` command calls :func:`prime` before it prints: a fresh cache hands each action its schemas
(exactly the values ``Action.input_schema`` / ``output_schema`` produce, as JSON: the printed catalog is
byte-identical); a stale or missing one is rebuilt from the actions and rewritten.

**When the cache is trusted.** One file, ``$MSPFLOW_HOME/cache/action-schemas.json``, holding a
fingerprint of everything a schema can depend on: the Python, pydantic and pydantic-core versions, and
the path, size, modification time and inode of every ``.py`` file of the ``mspflow`` package and of each
top-level package that defines an action's models or handler (plugins import only ``mspflow``,
``pydantic`` and the standard library). Any edit, upgrade, install or removal of that code changes the
fingerprint, and the whole file is regenerated. Entries are keyed on the action (``id@version``) and the
models' import paths. Actions whose models do not come from a file (built at run time) are never cached;
a schema that does not survive a JSON round trip unchanged is recorded as not cacheable (and generated
when asked for). A cache that cannot be
read or written is ignored: the schemas are then generated as before.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mspflow.filecache import add_code, cache_path, read_json, write_json

if TYPE_CHECKING:
    from mspflow.modules import Action

FORMAT = 1
CACHE_FILE = "action-schemas.json"
_IN, _OUT = "input_schema", "output_schema"


def default_path() -> Path:
    """``$MSPFLOW_HOME/cache/action-schemas.json`` (see :func:`mspflow.db.default_home`)."""
    return cache_path(CACHE_FILE)


def prime(actions: Iterable[Action], path: Path | None = None) -> None:
    """Give each of ``actions`` its JSON Schemas from the cache at ``path``, or generate and store them."""
    todo = [a for a in actions if _IN not in a.__dict__ or _OUT not in a.__dict__]
    if not todo:
        return
    key = fingerprint(todo)
    if key is None:
        return
    path = path or default_path()
    entries = {_entry(a): a for a in todo}
    stored = _read(path, key)
    if stored is not None and all(k in stored for k in entries):
        for k, action in entries.items():
            if (hit := stored[k]) is not None:  # None: not cacheable, generated when asked for
                action.__dict__.setdefault(_IN, hit[0])
                action.__dict__.setdefault(_OUT, hit[1])
        return
    fresh: dict[str, list[dict[str, Any]] | None] = dict(stored or {})
    for k, action in entries.items():
        schemas = [action.input_schema, action.output_schema]
        fresh[k] = schemas if all(_round_trips(s) for s in schemas) else None
    write_json(path, {"format": FORMAT, "fingerprint": key, "schemas": fresh})


def fingerprint(actions: Iterable[Action]) -> str | None:
    """A digest of the code and library versions the schemas of ``actions`` depend on (None: not cacheable)."""
    import pydantic
    import pydantic_core

    packages = {"mspflow"}
    for action in actions:
        for obj in (action.input_model, action.output_model, action.handler):
            module = sys.modules.get(getattr(obj, "__module__", None) or "")
            if module is None or not getattr(module, "__file__", None):
                return None  # a model or handler not loaded from a file: nothing to key on
            packages.add(module.__name__.partition(".")[0])
    digest = hashlib.sha256(f"{FORMAT}\0{sys.version}\0{pydantic.VERSION}\0{pydantic_core.__version__}".encode())
    for name in sorted(packages):
        top = sys.modules.get(name)
        if top is None:
            return None
        roots = list(getattr(top, "__path__", None) or [])
        if not add_code(digest, name, roots, [] if roots else [getattr(top, "__file__", None)]):
            return None
    return digest.hexdigest()


def _entry(action: Action) -> str:
    def where(model: type) -> str:
        return f"{model.__module__}:{model.__qualname__}"

    return f"{action.key} {where(action.input_model)} {where(action.output_model)}"


def _round_trips(schema: dict[str, Any]) -> bool:
    try:
        return bool(json.loads(json.dumps(schema)) == schema)
    except (TypeError, ValueError):
        return False


def _read(path: Path, key: str) -> dict[str, list[dict[str, Any]] | None] | None:
    data = read_json(path, FORMAT, key)
    schemas = data.get("schemas") if data is not None else None
    if not isinstance(schemas, dict) or not all(
            v is None or (isinstance(v, list) and len(v) == 2 and all(isinstance(s, dict) for s in v))
            for v in schemas.values()):
        return None
    return schemas
