"""Fixtures for mspflow-tacticalrmm: the installed plugin on SQLite and PostgreSQL, the simulator mounted in-process.

The core's ``db`` fixture lives in ``tests/conftest.py``, out of reach from here; ``db`` below is its
equivalent (a migrated SQLite file, then a fresh database on the throwaway PostgreSQL server that the
repo-root ``conftest.py`` provides as ``postgresql_url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mspflow_tacticalrmm.sim import TacticalRMMSimulator
from sqlalchemy import select

from mspflow import http, tenants
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.db.models import RmmIntegration
from mspflow.plugins import Plugins
from mspflow.runtime import ActionResult

TENANT = "acme"


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load this plugin through its entry point, and no sibling plugin that may be installed beside it."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "tacticalrmm")
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database: a SQLite file, then a fresh PostgreSQL database."""
    url = f"sqlite:///{tmp_path / 'tacticalrmm.sqlite3'}" if request.param == "sqlite" \
        else request.getfixturevalue("postgresql_url")
    database = Database(url)
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def sim() -> Iterator[TacticalRMMSimulator]:
    """A seeded simulator answering for its API host in this process."""
    simulator = TacticalRMMSimulator()
    http.mount(simulator.base_url, simulator.transport())
    yield simulator
    http.unmount()


@dataclass
class Tactical:
    """The app, the simulator, and shorthands for a tenant's connection."""

    app: App
    sim: TacticalRMMSimulator

    def connect(self, tenant: str = TENANT, instance_url: str | None = None) -> None:
        with self.app.db.session() as s:
            tenants.connect(s, self.app.registry, tenant, "tacticalrmm", instance_url)

    def disconnect(self, tenant: str = TENANT) -> None:
        with self.app.db.session() as s:
            tenants.disconnect(s, self.app.registry, tenant, "tacticalrmm")

    def set_instance_url(self, url: str | None, tenant: str = TENANT) -> None:
        self._row(tenant, lambda row: setattr(row, "instance_url", url))

    def set_auth_mode(self, mode: str, tenant: str = TENANT) -> None:
        self._row(tenant, lambda row: setattr(row, "settings", {**(row.settings or {}), "auth_mode": mode}))

    def _row(self, tenant: str, change: Any) -> None:
        with self.app.db.session() as s:
            row = s.execute(select(RmmIntegration).where(
                RmmIntegration.tenant == tenant, RmmIntegration.provider == "tacticalrmm")).scalar_one()
            change(row)

    def set_secret(self, name: str, value: str, tenant: str = TENANT) -> None:
        with self.app.db.session() as s:
            self.app.secrets.set(s, tenant, name, value)

    def delete_secret(self, name: str, tenant: str = TENANT) -> None:
        with self.app.db.session() as s:
            self.app.secrets.delete(s, tenant, name)

    def secret(self, name: str, tenant: str = TENANT) -> str | None:
        with self.app.db.session() as s:
            return self.app.secrets.get(s, tenant, name)

    def use_knox(self, username: str | None = None, password: str | None = None) -> None:
        self.set_auth_mode("knox")
        self.delete_secret("tacticalrmm_api_key")
        self.set_secret("tacticalrmm_username", username or self.sim.username)
        self.set_secret("tacticalrmm_password", password or self.sim.password)

    def run(self, action: str, input: dict[str, Any] | None = None, *, tenant: str = TENANT,
            **call: Any) -> ActionResult:
        return self.app.execute(f"tacticalrmm.{action}", tenant=tenant, input=input or {}, **call)

    def ok(self, action: str, input: dict[str, Any] | None = None, **call: Any) -> dict[str, Any]:
        result = self.run(action, input, **call)
        assert result.ok, result.error and result.error.to_dict()
        assert result.output is not None
        return result.output

    def fail(self, action: str, input: dict[str, Any] | None = None, **call: Any) -> Any:
        result = self.run(action, input, **call)
        assert not result.ok and result.error is not None, result.output
        return result.error

    def sent(self, method: str | None = None) -> list[tuple[str, str]]:
        """(method, raw path as sent) of the API requests the simulator saw."""
        return [(r.method, r.url.raw_path.decode().split("?")[0]) for r in self.sim.requests
                if method in (None, r.method)]


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
