"""Fixtures for the core's tests: the same database tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.plugins import Plugins
from tests.distributions import Distributions


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, then a fresh PostgreSQL database on the throwaway server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    url: str = request.getfixturevalue("postgresql_url")
    return url


@pytest.fixture
def empty_db(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    yield db
    db.dispose()


@pytest.fixture
def db(empty_db: Database) -> Database:
    """A database migrated to the current schema."""
    upgrade(empty_db)
    return empty_db


@pytest.fixture
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement ``db`` executes from now on."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Distributions]:
    """Install throwaway distributions (real ``.dist-info`` with entry points) on ``sys.path``."""
    with Distributions(tmp_path / "site", monkeypatch) as d:
        yield d


@pytest.fixture
def only_builtins() -> Callable[..., Plugins]:
    """A plugin set of the built-ins plus the given plugin objects: ``only_builtins(("name", obj))``."""

    def make(*extra: tuple[str, object], strict: bool = True) -> Plugins:
        return Plugins(entry_points=[], extra=extra, strict=strict)

    return make
