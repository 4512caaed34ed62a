"""Engine and session set-up for the embedded default (SQLite file) and PostgreSQL."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from mspflow.db.errors import DATABASE_UNAVAILABLE, INVALID_DATABASE_URL, DatabaseProblem

SQLITE_FILE = "mspflow.sqlite3"
_WRITE = "mspflow_write"


def default_home() -> Path:
    """Where the embedded default keeps its database and key file (``MSPFLOW_HOME``)."""
    if home := os.environ.get("MSPFLOW_HOME"):
        return Path(home).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "mspflow"


def database_url() -> str:
    """``MSPFLOW_DATABASE_URL``, or the embedded default SQLite file."""
    if url := os.environ.get("MSPFLOW_DATABASE_URL"):
        return url
    return f"sqlite:///{default_home() / SQLITE_FILE}"


# -- URL parsing and validation (kept apart from engine and pool set-up) ---------------------------------

ACCEPTED_URLS = ("sqlite:///PATH (the embedded default; MSPFLOW_HOME picks its directory) or "
                 "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE")
_ACCEPTED = {("sqlite", ""), ("sqlite", "pysqlite"), ("postgresql", "psycopg")}


def _masked(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def checked_url(url: str) -> URL:
    """Parse a database URL mspflow can use, or raise :class:`DatabaseProblem` saying what is accepted.

    For a SQLite file, its directory is created here (a directory that cannot be created is a
    ``DATABASE_UNAVAILABLE`` problem, told in one line).
    """
    name = "MSPFLOW_DATABASE_URL" if os.environ.get("MSPFLOW_DATABASE_URL") == url else "the database URL"
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseProblem(f"{name} {_masked(url)!r} is not a database URL; use {ACCEPTED_URLS}",
                              INVALID_DATABASE_URL) from None
    backend, _, driver = parsed.drivername.partition("+")  # no dialect is loaded to check it
    if (backend, driver) not in _ACCEPTED:
        hint = "; for PostgreSQL write postgresql+psycopg://" if backend in {"postgres", "postgresql"} else ""
        raise DatabaseProblem(f"{name} {_masked(url)!r}: mspflow does not support "
                              f"{parsed.drivername}://{hint}; use {ACCEPTED_URLS}", INVALID_DATABASE_URL)
    if backend == "postgresql" and not parsed.database:
        raise DatabaseProblem(f"{name} {_masked(url)!r} names no database; use {ACCEPTED_URLS}",
                              INVALID_DATABASE_URL)
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        directory = Path(parsed.database).expanduser().parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseProblem(f"cannot create the directory {str(directory)!r} for the SQLite database: "
                                  f"{exc.strerror or exc}; set MSPFLOW_HOME (or MSPFLOW_DATABASE_URL) to a "
                                  "writable place", DATABASE_UNAVAILABLE) from None
    return parsed


def _sqlite_pragmas(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; let SQLAlchemy drive it
    # (the recipe from SQLAlchemy's SQLite dialect docs). WAL + busy timeout let worker threads share
    # the file.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # IMMEDIATE for transactions that will write: a deferred one that read first and writes later
        # fails at once ("database is locked") when another connection committed in between.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


class Database:
    """One engine and its session factory.

    :param url: a SQLAlchemy URL; defaults to :func:`database_url`.
    """

    def __init__(self, url: str | None = None, **engine_kwargs: Any) -> None:
        self.url = url or database_url()
        parsed = checked_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = create_engine(self.url, **engine_kwargs)
            _sqlite_pragmas(self.engine)
        else:
            engine_kwargs.setdefault("pool_pre_ping", True)
            self.engine = create_engine(self.url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_embedded(self) -> bool:
        """True for the SQLite default, where mspflow may create its own schema on first use."""
        return self.dialect == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        db = make_url(self.url).database
        if self.dialect != "sqlite" or not db or db == ":memory:":
            return None
        return Path(db).expanduser()

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error.

        ``write=True`` on SQLite takes the database's write lock when the transaction starts (one writer
        at a time per file); on PostgreSQL it changes nothing.
        """
        with self.sessions() as session, session.begin():
            if write and self.dialect == "sqlite":
                session.connection(execution_options={_WRITE: True})
            yield session

    def display_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()
