"""Fixtures every plugin's test suite shares (loaded for plugins/*/tests by the repo-root conftest.py).

The core's own tests define their own ``db`` (tests/conftest.py), built from ``db_url`` and ``empty_db``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database: a SQLite file, then a fresh database on the throwaway PostgreSQL server."""
    url = f"sqlite:///{tmp_path / 'plugin.sqlite3'}" if request.param == "sqlite" \
        else request.getfixturevalue("postgresql_url")
    database = Database(url)
    upgrade(database)
    yield database
    database.dispose()
