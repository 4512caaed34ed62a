"""Fixtures for mspflow-huntress: the installed plugin on SQLite and PostgreSQL, the simulator mounted in-process.

The core's ``db`` fixture lives in ``tests/conftest.py``, out of reach from here; ``db`` below is its
equivalent (a migrated SQLite file, then a fresh database on the throwaway PostgreSQL server that the
repo-root ``conftest.py`` provides as ``postgresql_url``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mspflow_huntress.sim import HuntressSimulator

from mspflow import vendor as http
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.plugins import Plugins
from mspflow.testing.harness import TENANT, PluginHarness
from mspflow.vendor import limits


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load this plugin through its entry point, and no sibling plugin that may be installed beside it;
    a fresh in-process request log per test (Huntress's budget must not carry over between tests)."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "huntress")
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)
    monkeypatch.delenv(limits.OVERRIDE_ENV, raising=False)
    monkeypatch.setattr(limits, "_limiter_backend", None)


@pytest.fixture
def sim() -> Iterator[HuntressSimulator]:
    """A seeded simulator answering for api.huntress.io in this process (Huntress's own 60 per 60 s)."""
    simulator = HuntressSimulator()
    http.mount(simulator.base_url, simulator.transport())
    yield simulator
    http.unmount()


class Hunt(PluginHarness):
    """The app, the simulator, and a tenant's Huntress key pair."""

    provider = "huntress"
    sim: HuntressSimulator

    def use_keys(self, key: str, secret: str, tenant: str = TENANT) -> None:
        self.set_secret("huntress_api_key", key, tenant)
        self.set_secret("huntress_api_secret", secret, tenant)

    def use_readonly_key(self, tenant: str = TENANT) -> None:
        self.use_keys(self.sim.readonly_key, self.sim.readonly_secret, tenant)


@pytest.fixture
def app(db: Database) -> Iterator[App]:
    instance = App(db=db, plugins=Plugins(strict=True))
    yield instance
    instance.close()


@pytest.fixture
def hunt(app: App, sim: HuntressSimulator) -> Hunt:
    """Tenant ``acme`` connected to Huntress with a user-based key pair (may resolve)."""
    h = Hunt(app, sim)
    h.connect()
    h.use_keys(sim.api_key, sim.api_secret)
    return h
