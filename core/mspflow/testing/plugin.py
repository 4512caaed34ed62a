"""pytest plugin (entry point ``pytest11: mspflow``): fixtures for testing mspflow plugins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mspflow.app import App
    from mspflow.db.engine import Database


@pytest.fixture
def mspflow_db(tmp_path: Path) -> Iterator[Database]:
    """A SQLite database in a temporary directory, migrated to the current schema."""
    from mspflow.db.engine import Database
    from mspflow.db.migrate import upgrade

    db = Database(f"sqlite:///{tmp_path / 'mspflow.sqlite3'}")
    upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def mspflow_app(mspflow_db: Database) -> App:
    """An App on ``mspflow_db`` with every installed plugin loaded (load errors fail the test)."""
    from mspflow.app import App
    from mspflow.plugins import Plugins

    return App(db=mspflow_db, plugins=Plugins(strict=True))


@pytest.fixture
def mspflow_connect(mspflow_app: App) -> Callable[..., None]:
    """``mspflow_connect(tenant, provider, instance_url=None)``: connect a tenant to an integration."""
    from mspflow import tenants

    def connect(tenant: str, provider: str, instance_url: str | None = None) -> None:
        with mspflow_app.db.session() as session:
            tenants.connect(session, mspflow_app.registry, tenant, provider, instance_url)

    return connect
