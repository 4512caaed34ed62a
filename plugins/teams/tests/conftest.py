"""Fixtures for mspflow-teams: the plugin on SQLite and PostgreSQL, the simulator mounted at every Microsoft
host in-process, and a tenant set up as a PSA would (add-on, install, profile, capabilities, user links)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mspflow_teams.sim import TeamsSimulator
from teams_support import Teams

from mspflow import vendor as http
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.plugins import Plugins
from mspflow.vendor import auth as vendor_auth
from mspflow.vendor import limits


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "teams")
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)
    monkeypatch.delenv(limits.OVERRIDE_ENV, raising=False)
    monkeypatch.setattr(limits, "_limiter_backend", None)
    vendor_auth._token_cache.clear()


@pytest.fixture
def sim() -> Iterator[TeamsSimulator]:
    simulator = TeamsSimulator()
    for url in simulator.hosts():
        http.mount(url, simulator.transport())
    yield simulator
    http.unmount()


@pytest.fixture
def app(db: Database) -> Iterator[App]:
    instance = App(db=db, plugins=Plugins(strict=True))
    yield instance
    instance.close()


@pytest.fixture
def teams(app: App, sim: TeamsSimulator) -> Teams:
    t = Teams(app, sim)
    t.configure()
    return t
