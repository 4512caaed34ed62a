"""Fixtures for mspflow-levelio: the installed plugin on SQLite and PostgreSQL, the simulator mounted in-process.

The core's ``db`` fixture lives in ``tests/conftest.py``, out of reach from here; ``db`` below is its
equivalent (a migrated SQLite file, then a fresh database on the throwaway PostgreSQL server that the
repo-root ``conftest.py`` provides as ``postgresql_url``). ``level`` is the harness every test file uses:
a plugin contract suite that takes a connected harness and its simulator can use it as is.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mspflow_levelio.sim import LevelSimulator

from mspflow import vendor as http
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.plugins import Plugins
from mspflow.testing.harness import TENANT, PluginHarness


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load this plugin through its entry point, and no sibling plugin that may be installed beside it."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "levelio")
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)


@pytest.fixture
def sim() -> Iterator[LevelSimulator]:
    """A seeded simulator answering for https://api.level.io/v2 in this process."""
    simulator = LevelSimulator()
    http.mount(simulator.base_url, simulator.transport())
    yield simulator
    http.unmount()


class Level(PluginHarness):
    """The app, the simulator, and the tenant's Level API key."""

    provider = "levelio"
    sim: LevelSimulator

    def use_key(self, key: str, tenant: str = TENANT) -> None:
        self.set_secret("levelio_api_key", key, tenant)

    def paths(self, method: str | None = None) -> list[str]:
        """Raw paths (percent-encoding kept) of the requests the simulator saw."""
        return [path for _, path in self.sent(method)]

    def queries(self, path: str) -> list[dict[str, str]]:
        """The query parameters of each request to ``path``."""
        return [dict(r.url.params) for r in self.sim.requests if r.url.path == path]


@pytest.fixture
def app(db: Database) -> Iterator[App]:
    instance = App(db=db, plugins=Plugins(strict=True))
    yield instance
    instance.close()


@pytest.fixture
def level(app: App, sim: LevelSimulator) -> Level:
    """Tenant ``acme`` connected to Level (the default base URL) with a "Read and write" API key."""
    harness = Level(app, sim)
    harness.connect()
    harness.use_key(sim.api_key)
    return harness
