"""Fixtures for mspflow-psa: the installed plugin on SQLite and PostgreSQL, seeded reference records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mspflow import outbox
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.errors import ActionError
from mspflow.plugins import Plugins
from mspflow.runtime import ActionResult

TENANT, OTHER = "acme", "globex"


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "psa")
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("MSPFLOW_ATTACHMENTS_DIR", str(tmp_path / "attachments"))
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'psa.sqlite3'}" if request.param == "sqlite" \
        else request.getfixturevalue("postgresql_url")
    database = Database(url)
    upgrade(database)
    yield database
    database.dispose()


class Desk:
    """The app plus seeded records for two tenants: users, clients, contacts."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.ids: dict[str, str] = {}

    def run(self, action: str, input: dict[str, Any], *, tenant: str = TENANT, **call: Any) -> ActionResult:
        return self.app.execute(action, tenant=tenant, input=input, **call)

    def ok(self, action: str, input: dict[str, Any], **call: Any) -> dict[str, Any]:
        result = self.run(action, input, **call)
        assert result.ok, result.error and result.error.to_dict()
        assert result.output is not None
        return result.output

    def fail(self, action: str, input: dict[str, Any], **call: Any) -> ActionError:
        result = self.run(action, input, **call)
        assert not result.ok and result.error is not None, result.output
        return result.error

    def add(self, model: str, **values: Any) -> Any:
        from mspflow.db import models

        with self.app.db.session() as s:
            row = getattr(models, model)(**values)
            s.add(row)
            s.flush()
            return row

    def rows(self, table: str, tenant: str = TENANT) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from mspflow.db.models import Base

        t = Base.metadata.tables[table]
        with self.app.db.session() as s:
            return [dict(r._mapping) for r in s.execute(select(t).where(t.c.tenant == tenant))]

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self.app.db.session() as s:
            return outbox.pending(s, event_type=event_type, limit=1000)

    def ticket(self, **extra: Any) -> dict[str, Any]:
        return self.ok("tickets.create", {"title": "Disk almost full", **extra})["ticket"]


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
