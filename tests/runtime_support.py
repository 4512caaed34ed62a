"""Shared set-up for runtime and worker tests: the counter plugin on a migrated database."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from sqlalchemy import text

from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.plugins import Plugins
from mspflow.tenants import connect

SOURCE = Path(__file__).parent / "plugin_sources" / "mspflow_counter.py"


def counter_plugin() -> ModuleType:
    if "mspflow_counter" not in sys.modules:
        spec = importlib.util.spec_from_file_location("mspflow_counter", SOURCE)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["mspflow_counter"] = module
        spec.loader.exec_module(module)
    return sys.modules["mspflow_counter"]


def prepare(db: Database, tenant: str = "acme") -> None:
    """Counter table present and the tenant connected to the counter integration."""
    plugin = counter_plugin()
    with db.engine.begin() as conn:
        conn.execute(text(plugin.SCHEMA))
    registry = Plugins(entry_points=[], extra=[("mspflow-counter", plugin)], strict=True).registry
    with db.session() as s:
        connect(s, registry, tenant, "counter")


def make_app(db: Database, **kwargs: object) -> App:
    plugin = counter_plugin()
    plugins = Plugins(entry_points=[], extra=[("mspflow-counter", plugin)], strict=True)
    return App(db=db, plugins=plugins, **kwargs)  # type: ignore[arg-type]


def effects(db: Database, label: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM counter_effects WHERE label = :l"),
                                {"l": label}).scalar_one())
