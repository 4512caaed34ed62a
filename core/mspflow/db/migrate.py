"""Schema migrations (Alembic), with a cheap check so commands do not pay for Alembic when current.

``HEAD`` names the newest revision; a test keeps it equal to Alembic's own head.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

    from mspflow.db.engine import Database

HEAD = "0013_workflow_fan_out"
#: Our own version table, so a host whose database Alembic already manages keeps its ``alembic_version``.
VERSION_TABLE = "mspflow_alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaNotCurrent(RuntimeError):
    """The database is missing tables mspflow needs; the message says which command fixes it."""


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with db.engine.connect() as conn:  # connection errors propagate: unreachable is not "empty"
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def alembic_config(db: Database) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (``mspflow db upgrade``)."""
    from alembic import command

    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def ensure_schema(db: Database) -> None:
    """Make sure the schema is current: create it for the embedded default, otherwise explain.

    A newcomer on the embedded default never sees "no such table"; a production database is never
    migrated behind the operator's back.
    """
    if current_revision(db) == HEAD:
        return
    if db.is_embedded:
        upgrade(db)
        return
    raise SchemaNotCurrent(
        f"the database at {db.display_url()} is not at schema revision {HEAD}; "
        "run `mspflow db upgrade` first"
    )
