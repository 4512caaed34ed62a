"""Fixtures for mspflow-psa: the installed plugin on SQLite and PostgreSQL, seeded reference records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psa_support import OTHER, TENANT, Desk

from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.plugins import Plugins


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "psa")
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("MSPFLOW_ATTACHMENTS_DIR", str(tmp_path / "attachments"))
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)


@pytest.fixture
def app(db: Database) -> Iterator[App]:
    instance = App(db=db, plugins=Plugins(strict=True))
    yield instance
    instance.close()


@pytest.fixture
def desk(app: App) -> Desk:
    d = Desk(app)
    for tenant in (TENANT, OTHER):
        p = "" if tenant == TENANT else f"{tenant}-"
        d.add("User", tenant=tenant, user_id=f"{p}u-tech", first_name="Tess", last_name="Tech",
              email=f"tess@{tenant}.example")
        d.add("User", tenant=tenant, user_id=f"{p}u-tech2", first_name="Theo", last_name="Tech",
              email=f"theo@{tenant}.example")
        d.add("User", tenant=tenant, user_id=f"{p}u-client", user_type="client")
        d.add("Client", tenant=tenant, client_id=f"{p}c-1", name="Initech", email="it@initech.example")
        d.add("Client", tenant=tenant, client_id=f"{p}c-2", name="Umbrella Corp")
        d.add("Contact", tenant=tenant, contact_id=f"{p}p-1", client_id=f"{p}c-1", full_name="Peter Gibbons",
              email="peter@initech.example")
        d.add("Contact", tenant=tenant, contact_id=f"{p}p-2", client_id=f"{p}c-1", full_name="Milton Waddams",
              email="milton@initech.example")
    return d
