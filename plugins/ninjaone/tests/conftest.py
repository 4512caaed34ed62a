"""Fixtures for mspflow-ninjaone: the installed plugin on SQLite and PostgreSQL, the simulator mounted in-process.

The core's ``db`` fixture lives in ``tests/conftest.py``, out of reach from here; ``db`` below is its
equivalent (a migrated SQLite file, then a fresh database on the throwaway PostgreSQL server that the
repo-root ``conftest.py`` provides as ``postgresql_url``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from mspflow_ninjaone.sim import NinjaOneSimulator

from mspflow import vendor as http
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.plugins import Plugins
from mspflow.testing.harness import TENANT, PluginHarness


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load this plugin through its entry point, and no sibling plugin that may be installed beside it."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "ninjaone")
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)


@pytest.fixture
def sim() -> Iterator[NinjaOneSimulator]:
    """A seeded simulator answering for https://app.ninjarmm.com in this process."""
    simulator = NinjaOneSimulator()
    http.mount(simulator.base_url, simulator.transport())
    yield simulator
    http.unmount()


class Ninja(PluginHarness):
    """The app, the simulator, and NinjaOne's credentials for a tenant."""

    provider = "ninjaone"
    sim: NinjaOneSimulator

    def store_credentials(self, creds: dict[str, Any] | None = None, tenant: str = TENANT) -> dict[str, Any]:
        """The app's client id/secret and a user-context grant (issued by the simulator unless given)."""
        creds = creds if creds is not None else self.sim.issue_user_token()
        self.set_secret("ninjaone_client_id", self.sim.client_id, tenant)
        self.set_secret("ninjaone_client_secret", self.sim.client_secret, tenant)
        self.set_secret("ninjaone_credentials", json.dumps(creds), tenant)
        return creds

    def credentials(self, tenant: str = TENANT) -> dict[str, Any]:
        raw = self.secret("ninjaone_credentials", tenant)
        assert raw is not None
        return dict(json.loads(raw))

    def paths(self, method: str | None = None) -> list[str]:
        """Raw paths of the API requests the simulator saw (token requests left out)."""
        return [path for _, path in self.sent(method) if not path.startswith("/ws/")]


@pytest.fixture
def app(db: Database) -> Iterator[App]:
    instance = App(db=db, plugins=Plugins(strict=True))
    yield instance
    instance.close()


@pytest.fixture
def ninja(app: App, sim: NinjaOneSimulator) -> Ninja:
    """Tenant ``acme`` connected to NinjaOne with a live user-context grant."""
    n = Ninja(app, sim)
    n.connect()
    n.store_credentials()
    return n
