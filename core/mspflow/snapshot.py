"""A file cache of what ``mspflow catalog`` needs from the loaded plugins, so it starts without importing them.

Loading the plugins (reading entry points, importing every plugin package, building its pydantic models,
checking the plugin API range it declares) is most of a CLI catalog's start-up, yet a catalog depends on
the plugins only through data: each module's record (tile and actions, with their JSON Schemas) and
which resolver decides its availability. So, after a full load, the catalog writes that data to one file,
``$MSPFLOW_HOME/cache/registry.json``; the next start answers from it when nothing changed, resolving the
tenant's availability with the core's own resolvers rebuilt from their class name and fields, through
the same :func:`mspflow.availability.resolve_many` as :meth:`mspflow.App.catalog`. The printed catalog is
byte-identical (the records are :meth:`mspflow.catalog.CatalogRecord.to_json`'s)::

    snapshot = RegistrySnapshot.open()             # a fingerprint and one file read: no plugin imported
    app = App.from_env()                           # the CLI loads the plugins itself unless snapshot.fresh
    data = snapshot.catalog(app, "acme")           # Catalog.to_json(): from the file, or from app.registry
                                                   # (and then written for the next start)

**When the snapshot is trusted.** It is keyed on a fingerprint computed without importing any plugin:
the Python, mspflow, pydantic and pydantic-core versions, ``MSPFLOW_LOAD_PLUGINS``, every selected entry
point of group ``mspflow`` (name, value, distribution name, version and ``METADATA``, which holds the
mspflow range the load checks), and the path, size, modification time and inode of every ``.py`` file of
the ``mspflow`` package and of each entry point's top-level package or module (found with
:func:`importlib.util.find_spec`, which executes nothing). An edit, upgrade, install or removal of a
plugin, or another plugin selection, changes it: the next catalog loads the plugins, as without a
snapshot (reporting load errors, failing in strict mode), and rewrites the file.

**When none is written.** A plugin failed to load; some module's availability is decided by a resolver
that is not one of the core's own (:data:`mspflow.availability.CORE_ONLY_RESOLVERS`, exactly: a host's or
a plugin's resolver, or a subclass, is code that must run on every catalog); an entry point's code cannot
be located; an action's models or handler come from a package that is no entry point's (its files are
not in the fingerprint); or a record does not survive a JSON round trip unchanged. A file that cannot be
read, is corrupt or belongs to another fingerprint is ignored; deleting it is always safe.

Only for an App whose plugins come from the environment (``App.from_env()``, as the CLI's): a host that
hands ``App`` its own plugin set has nothing a fingerprint of the environment could describe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mspflow.filecache import add_code, cache_path, read_json, write_json

if TYPE_CHECKING:
    from mspflow.app import App
    from mspflow.availability import Resolver
    from mspflow.catalog import Catalog
    from mspflow.plugins import Plugins

FORMAT = 1
CACHE_FILE = "registry.json"
_STATUS = ("available", "unavailable_reason")  # the fields a tenant's catalog fills in


def default_path() -> Path:
    """``$MSPFLOW_HOME/cache/registry.json``."""
    return cache_path(CACHE_FILE)


class RegistrySnapshot:
    """The snapshot file of this environment: :attr:`fresh` when it matches the installed code.

    :param key: the fingerprint of the environment (None: nothing may be cached).
    :param packages: the top-level packages whose files ``key`` covers (:func:`fingerprint`).
    :param path: the snapshot file.
    """

    def __init__(self, key: str | None, packages: frozenset[str] = frozenset(), *, path: Path) -> None:
        self.key = key
        self.packages = packages  # the top-level packages the key covers: a record's code must come from them
        self.path = path
        self._modules: list[dict[str, Any]] | None = None
        self._fields: list[str] = []
        self._resolvers: dict[str, Resolver] = {}
        if key is not None:
            self._load(read_json(path, FORMAT, key))

    @classmethod
    def open(cls, path: Path | None = None) -> RegistrySnapshot:
        """Fingerprint the environment and read the snapshot file (default :func:`default_path`)."""
        key, packages = _fingerprint() or (None, frozenset[str]())
        return cls(key, packages, path=path or default_path())

    @property
    def fresh(self) -> bool:
        """Whether the file matches this environment, so :meth:`catalog` needs no plugin loaded."""
        return self._modules is not None

    def catalog(self, app: App, tenant: str, *, palette: bool = False) -> dict[str, Any]:
        """The catalog of ``tenant`` as :meth:`mspflow.catalog.Catalog.to_json` (``palette``: available only).

        Fresh: from the file, availability resolved on a Core connection of ``app.db``. Otherwise from
        ``app``'s loaded plugins (JSON Schemas through :mod:`mspflow.schema_cache`), then written to the
        file when it may be (see the module's docstring).
        """
        if self._modules is None:
            from mspflow.schema_cache import prime

            prime(app.registry.actions.values())
            catalog = app.catalog(tenant)
            self.save(app.plugins, catalog)
            return catalog.to_json(palette=palette)
        from mspflow.availability import resolve_many

        with app.db.engine.connect() as conn:
            status = resolve_many(conn, tenant, (m["key"] for m in self._modules), self._resolvers)
        records = []
        for m in self._modules:
            found = status[m["key"]]
            if found.available or not palette:
                filled = {"available": found.available, "unavailable_reason": found.reason}
                records.append({f: filled[f] if f in filled else m["record"][f] for f in self._fields})
        return {"tenant": tenant, "records": records}

    def save(self, plugins: Plugins, catalog: Catalog) -> bool:
        """Write the snapshot of ``plugins`` (whose registry built ``catalog``) if it may be; True if written."""
        from mspflow.availability import CORE_ONLY_RESOLVERS

        if self.key is None or plugins.errors or not catalog.records:
            return False
        modules = []
        for record in catalog.records:
            key = record.module.availability_key
            resolver = plugins.registry.resolvers.get(key) if key else None
            if resolver is None:
                descriptor = None
            elif type(resolver) in CORE_ONLY_RESOLVERS and dataclasses.is_dataclass(resolver):
                fields = dataclasses.asdict(resolver)
                if not all(isinstance(v, str) for v in fields.values()) or type(resolver)(**fields) != resolver:
                    return False
                descriptor = {"class": type(resolver).__name__, "fields": fields}
            else:
                return False  # a resolver that is code of its own runs on every catalog
            if not all(_top_level(obj) in self.packages for a in record.actions
                       for obj in (a.input_model, a.output_model, a.handler)):
                return False  # code from a package the fingerprint does not follow
            data = record.to_json()
            fields_order = list(data)
            for f in _STATUS:
                del data[f]
            modules.append({"key": key, "resolver": descriptor, "record": data})
        snapshot = {"format": FORMAT, "fingerprint": self.key, "fields": fields_order, "modules": modules}
        try:
            text = json.dumps(snapshot, separators=(",", ":"))
            if json.dumps(json.loads(text), separators=(",", ":")) != text:
                return False
        except (TypeError, ValueError):  # a value JSON cannot hold (the printed catalog str()s it)
            return False
        write_json(self.path, snapshot)
        return True

    def _load(self, data: dict[str, Any] | None) -> None:
        """Take ``data`` (the file, format and fingerprint already checked) if it is well formed."""
        if data is None:
            return
        try:
            fields, modules = data["fields"], data["modules"]
            if not isinstance(fields, list) or not isinstance(modules, list) or not modules:
                return
            if not set(_STATUS) <= set(fields) or len(set(fields)) != len(fields):
                return
            resolvers: dict[str, Resolver] = {}
            for m in modules:
                key, descriptor, record = m["key"], m["resolver"], m["record"]
                if not (key is None or isinstance(key, str)) or not isinstance(record, dict):
                    return
                if set(record) != set(fields) - set(_STATUS):
                    return
                if descriptor is not None:
                    resolver = _resolver(descriptor)
                    if resolver is None or not key or resolvers.setdefault(key, resolver) != resolver:
                        return
            if any(m["resolver"] is None and m["key"] in resolvers for m in modules):
                return
        except (KeyError, TypeError):
            return
        self._fields, self._modules, self._resolvers = fields, modules, resolvers


def _resolver(descriptor: Any) -> Resolver | None:
    """The core resolver a descriptor names (``{"class": ..., "fields": {...}}``), or None."""
    from mspflow.availability import CORE_ONLY_RESOLVERS

    if not isinstance(descriptor, dict) or not isinstance(fields := descriptor.get("fields"), dict):
        return None
    cls = next((c for c in CORE_ONLY_RESOLVERS if c.__name__ == descriptor.get("class")), None)
    if cls is None or not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()):
        return None
    try:
        resolver: Resolver = cls(**fields)
    except TypeError:
        return None
    return resolver


def _top_level(obj: object) -> str:
    return (getattr(obj, "__module__", None) or "").partition(".")[0]


def fingerprint() -> str | None:
    """A digest of everything the plugin registry of this environment is built from (None: not cacheable).

    Imports no plugin: entry points are read from distribution metadata, code is located with
    :func:`importlib.util.find_spec` and only stat'ed.
    """
    found = _fingerprint()
    return found[0] if found else None


def _fingerprint() -> tuple[str, frozenset[str]] | None:
    """:func:`fingerprint` and the top-level packages whose files it covers."""
    # ``import pydantic`` already loads these two (mspflow.plugins imports pydantic): free, where asking
    # importlib.metadata for both versions scans sys.path again (about 3 ms).
    import pydantic.version
    import pydantic_core

    import mspflow
    from mspflow.plugins import _core_version, _dist_of, discover, selected

    only = os.environ.get("MSPFLOW_LOAD_PLUGINS")
    libraries = [pydantic.version.VERSION, pydantic_core.__version__]
    digest = hashlib.sha256(json.dumps([FORMAT, sys.version, _core_version(), libraries, only]).encode())
    packages: dict[str, tuple[list[str], list[str | None]]] = {"mspflow": (list(mspflow.__path__), [])}
    for ep in selected(discover(), only):
        name, dist_version = _dist_of(ep)
        metadata = (ep.dist.read_text("METADATA") if ep.dist is not None else None) or ""
        digest.update(json.dumps([ep.name, ep.value, name, dist_version,
                                  hashlib.sha256(metadata.encode()).hexdigest()]).encode())
        top = ep.module.partition(".")[0]
        if top not in packages:
            try:
                spec = importlib.util.find_spec(top)  # locates; a top-level name has no parent to execute
            except (ImportError, ValueError):
                return None
            if spec is None:
                return None
            roots = list(spec.submodule_search_locations or [])
            packages[top] = (roots, [] if roots else [spec.origin])
    for top in sorted(packages):
        roots, files = packages[top]
        if not add_code(digest, top, roots, files):
            return None
    return digest.hexdigest(), frozenset(packages)
