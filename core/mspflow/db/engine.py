"""Engine and session set-up for the embedded default (SQLite file) and PostgreSQL.

Connections for the hot path (:meth:`Database.connect`) start in autocommit mode: the ledger's
single-statement claims and finishes need no BEGIN or COMMIT. :meth:`Database.handler_transaction`
then opens the transaction an action handler writes in. On SQLite, whose write lock is one lock for
the whole file, that transaction takes the lock only at its first write (``BEGIN IMMEDIATE`` just
before it) and holds it until the result commits, so calls whose handlers wait on vendors run side
by side; before that write the handler reads in autocommit mode, each statement seeing the latest
committed data as PostgreSQL's default READ COMMITTED does. A ``SELECT ... FOR UPDATE`` (which
SQLite cannot express) counts as a write: it takes the lock, as the row lock would on PostgreSQL.

No ``pool_pre_ping``: a ping per checkout was a round trip per call. Callers on the hot path recover
from a connection that died in the pool instead (:func:`is_dead_connection`: retry once on a new one).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, RootTransaction, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from mspflow.db.errors import DATABASE_UNAVAILABLE, INVALID_DATABASE_URL, DatabaseProblem

if TYPE_CHECKING:  # the ORM is imported on the first use of sessions (a catalog needs only Core)
    from sqlalchemy.orm import Session, sessionmaker

SQLITE_FILE = "mspflow.sqlite3"
_WRITE = "mspflow_write"  # SQLite: BEGIN IMMEDIATE when the transaction starts
_AUTOCOMMIT = "mspflow_autocommit"  # SQLite: no BEGIN; each statement commits on its own
_LAZY = "mspflow_lazy_write"  # SQLite: no BEGIN; BEGIN IMMEDIATE just before the first write
_READS = ("SELECT", "PRAGMA", "EXPLAIN")


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
        options = conn.get_execution_options()
        if options.get(_AUTOCOMMIT) or options.get(_LAZY):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITE) else "BEGIN")

    @event.listens_for(engine, "before_cursor_execute")
    def _lazy_write(conn: Any, cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if not conn.get_execution_options().get(_LAZY) or conn.connection.dbapi_connection.in_transaction:
            return
        if statement.lstrip()[:7].upper().startswith(_READS):
            compiled = getattr(context, "compiled", None)
            if getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is None:
                return
        cursor.execute("BEGIN IMMEDIATE")


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
            self.engine = create_engine(self.url, **engine_kwargs)
        self._engine_kwargs = engine_kwargs
        self._psycopg = self.dialect == "postgresql" and self.engine.dialect.driver == "psycopg"

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory (``expire_on_commit=False``), made on first use: importing SQLAlchemy's ORM
        costs a process that reads only through Core (``mspflow catalog``) tens of milliseconds."""
        from sqlalchemy.orm import sessionmaker

        return sessionmaker(self.engine, expire_on_commit=False)

    def ensure_pool(self, connections: int) -> None:
        """Keep at least ``connections`` pooled connections (a worker's threads each hold one while running a
        call; a pool smaller than that opens and closes a connection per call). Call it before use."""
        size = getattr(self.engine.pool, "size", None)
        if self.dialect == "sqlite" or size is None or size() >= connections:
            return
        self.engine.dispose()
        self.engine = create_engine(self.url, **{**self._engine_kwargs, "pool_size": connections})
        if "sessions" in self.__dict__:
            self.sessions.configure(bind=self.engine)

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

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A pooled connection in autocommit mode, for a ``with`` block (see the module docstring)."""
        with self.engine.connect() as conn:
            self.autocommit(conn)
            try:
                yield conn
            finally:
                if self._psycopg and not conn.invalidated:
                    if conn.in_transaction():
                        conn.rollback()
                    _driver_autocommit(conn, False)  # as the pool hands it to everyone else

    def autocommit(self, conn: Connection) -> None:
        """Put ``conn`` (back) into autocommit mode, ending its SQLAlchemy transaction if one is open."""
        if conn.in_transaction():
            conn.commit()
        if self.dialect == "sqlite":
            conn.execution_options(**{_AUTOCOMMIT: True, _LAZY: False, _WRITE: False})
        elif self._psycopg:
            _driver_autocommit(conn, True)  # the driver's flag: SQLAlchemy's isolation option costs more
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT")

    def handler_transaction(self, conn: Connection, *, write: bool = False) -> RootTransaction:
        """Begin the transaction a handler (or a multi-statement write) runs in on ``conn``.

        On SQLite it takes the write lock at its first write, or at once with ``write=True``.
        """
        if conn.in_transaction():
            conn.commit()
        if self.dialect == "sqlite":
            conn.execution_options(**{_AUTOCOMMIT: False, _LAZY: not write, _WRITE: write})
        elif self._psycopg:
            _driver_autocommit(conn, False)
        else:
            conn.execution_options(isolation_level=self.engine.dialect.default_isolation_level)
        return conn.begin()

    def writing(self, conn: Connection) -> bool:
        """Whether ``conn`` holds SQLite's write lock now (always False on PostgreSQL)."""
        return self.dialect == "sqlite" and bool(conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]

    def display_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def autocommitting(conn: Connection) -> bool:
    """Whether ``conn`` is in the autocommit mode of :meth:`Database.connect` (each statement commits alone)."""
    options = conn.get_execution_options()
    if options.get(_AUTOCOMMIT) or options.get("isolation_level") == "AUTOCOMMIT":
        return True
    return conn.dialect.name == "postgresql" and bool(getattr(conn.connection.dbapi_connection, "autocommit", False))


def _driver_autocommit(conn: Connection, on: bool) -> None:
    raw = conn.connection.dbapi_connection
    if raw is not None and raw.autocommit != on:
        raw.autocommit = on


def is_dead_connection(exc: BaseException) -> bool:
    """True for the error of a statement sent on a connection that had died in the pool (server restart)."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
