"""Database faults an operator can fix, each told in one line that says what to do.

:func:`describe_db_error` turns an exception from SQLAlchemy or the DB driver into such a line (or
``None`` when it is not a database fault); :func:`database_problem` gives the same as a
:class:`DatabaseProblem` with a machine-readable ``code``. The CLI prints them; the runtime uses them
so a missing table is never reported as "busy, try again".

Examples::

    try:
        app.db
    except Exception as exc:
        if (line := describe_db_error(exc)) is None:
            raise
        print(f"error: {line}")
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mspflow.db.engine import Database

#: A database URL that cannot be used (unparsable, unsupported backend or driver).
INVALID_DATABASE_URL = "INVALID_DATABASE_URL"
#: The database cannot be reached or opened (server down, file unreadable, not a database).
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
#: Tables mspflow needs are missing; ``mspflow db upgrade`` creates them.
SCHEMA_NOT_CURRENT = "SCHEMA_NOT_CURRENT"

_MISSING_TABLE = (
    re.compile(r"no such table: (?P<table>[\w.]+)"),  # SQLite
    re.compile(r'relation "(?P<table>[^"]+)" does not exist'),  # PostgreSQL
)


class DatabaseProblem(RuntimeError):
    """A database fault described in one line; ``code`` is one of the constants above."""

    def __init__(self, message: str, code: str = DATABASE_UNAVAILABLE) -> None:
        super().__init__(message)
        self.code = code


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_db_error(exc: BaseException) -> bool:
    return any(cls.__module__.split(".")[0] in {"sqlalchemy", "sqlite3", "psycopg"} for cls in type(exc).__mro__)


def database_problem(exc: BaseException) -> DatabaseProblem | None:
    """``exc`` as a :class:`DatabaseProblem`, or None when it is not a fault of the database itself."""
    if isinstance(exc, DatabaseProblem):
        return exc
    if not _is_db_error(exc):
        return None
    first = _first_line(exc)
    for pattern in _MISSING_TABLE:
        if match := pattern.search(first):
            return DatabaseProblem(
                f"the database has no table {match['table']}: its schema is missing or incomplete; "
                "run `mspflow db upgrade`", SCHEMA_NOT_CURRENT)
    if "file is not a database" in first or "file is encrypted" in first:
        return DatabaseProblem(
            f"the SQLite file is not a database ({first}); point MSPFLOW_DATABASE_URL or MSPFLOW_HOME "
            "at another path, or move the file aside")
    if "unable to open database file" in first:
        return DatabaseProblem(
            f"cannot open the SQLite database file ({first}); check that its directory exists and is "
            "writable, or set MSPFLOW_HOME")
    if "readonly database" in first or "read-only" in first:
        return DatabaseProblem(f"the database is read-only ({first}); check the file's permissions")
    if type(exc).__name__ in {"OperationalError", "InterfaceError"} or "sqlite3" in type(exc).__module__:
        return DatabaseProblem(f"cannot reach the database: {first}")
    return None


def describe_db_error(exc: BaseException) -> str | None:
    """One line saying what is wrong with the database and what to do, or None if ``exc`` is not that."""
    problem = database_problem(exc)
    return None if problem is None else str(problem)


def missing_tables(db: Database, tables: Iterable[str] | None = None) -> list[str]:
    """Which of ``tables`` (default: the whole reference schema) ``db`` lacks; one inspection, for failure
    paths."""
    from sqlalchemy import inspect

    from mspflow.db.models import Base

    with db.engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
    return sorted(name for name in (Base.metadata.tables if tables is None else tables) if name not in present)


def schema_problem(db: Database, tables: Iterable[str] | None = None) -> DatabaseProblem | None:
    """A ``SCHEMA_NOT_CURRENT`` problem naming the missing ``tables``, or None when they are all there."""
    try:
        missing = missing_tables(db, tables)
    except Exception as exc:
        return database_problem(exc)
    if not missing:
        return None
    return DatabaseProblem(
        f"the database at {db.display_url()} has no table {', '.join(missing)}: its schema is missing or "
        "incomplete; run `mspflow db upgrade`", SCHEMA_NOT_CURRENT)
