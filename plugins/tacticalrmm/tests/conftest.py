"""Fixtures for mspflow-tacticalrmm: the installed plugin on SQLite and PostgreSQL, the simulator mounted in-process.

The core's ``db`` fixture lives in ``tests/conftest.py``, out of reach from here; ``db`` below is its
equivalent (a migrated SQLite file, then a fresh database on the throwaway PostgreSQL server that the
repo-root ``conftest.py`` provides as ``postgresql_url``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mspflow_tacticalrmm.sim import TacticalRMMSimulator

from mspflow import vendor as http
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.plugins import Plugins
from mspflow.testing.harness import TENANT, PluginHarness


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load this plugin through its entry point, and no sibling plugin that may be installed beside it."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "tacticalrmm")
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)


@pytest.fixture
def sim() -> Iterator[TacticalRMMSimulator]:
    """A seeded simulator answering for its API host in this process."""
    simulator = TacticalRMMSimulator()
    http.mount(simulator.base_url, simulator.transport())
    yield simulator
    http.unmount()


class Tactical(PluginHarness):
    """The app, the simulator, and Tactical RMM's auth modes for a tenant."""

    provider = "tacticalrmm"
    sim: TacticalRMMSimulator

    def set_instance_url(self, url: str | None, tenant: str = TENANT) -> None:
        self.update_integration(tenant, instance_url=url)

    def set_auth_mode(self, mode: str, tenant: str = TENANT) -> None:
        self.update_integration(tenant, auth_mode=mode)

    def use_knox(self, username: str | None = None, password: str | None = None) -> None:
        self.set_auth_mode("knox")
        self.delete_secret("tacticalrmm_api_key")
        self.set_secret("tacticalrmm_username", username or self.sim.username)
        self.set_secret("tacticalrmm_password", password or self.sim.password)


@pytest.fixture
def app(db: Database) -> Iterator[App]:
    instance = App(db=db, plugins=Plugins(strict=True))
    yield instance
    instance.close()


@pytest.fixture
def trmm(app: App, sim: TacticalRMMSimulator) -> Tactical:
    """Tenant ``acme`` connected to the simulator's API host with an API key (the default auth mode)."""
    t = Tactical(app, sim)
    t.connect(instance_url=sim.base_url)
    t.set_secret("tacticalrmm_api_key", sim.api_key)
    return t
