"""``mspflow db upgrade``: create or migrate the schema."""

from __future__ import annotations

from typing import Annotated

import typer

from mspflow.cli import db_app
from mspflow.cli._output import fail


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Create or migrate the schema (MSPFLOW_DATABASE_URL, or the embedded SQLite file)."""
    from mspflow.db.engine import Database
    from mspflow.db.errors import database_problem, missing_tables
    from mspflow.db.migrate import current_revision, upgrade

    db = Database()
    try:
        before = current_revision(db)
        upgrade(db, revision)
        after = current_revision(db)
    except Exception as exc:
        problem = database_problem(exc)
        if problem is not None and problem.code == "DATABASE_UNAVAILABLE":
            fail(f"{problem} ({db.display_url()})", code=problem.code)
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        fail(f"migration failed on {db.display_url()}: {first}")
    typer.echo(f"{db.display_url()}: schema at {after} (was {before or 'empty'})")
    if revision == "head" and (missing := missing_tables(db)):
        fail(f"the schema is recorded as current but table(s) {', '.join(missing)} are missing (dropped by "
             "hand?); restore them from a backup, or start from a new database", code="SCHEMA_NOT_CURRENT")
