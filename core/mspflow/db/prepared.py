"""Statements prepared once per PostgreSQL connection and run through libpq itself (the ledger's hot path).

A worker records every call with two statements (claim, result). Run through a psycopg cursor, each
costs about 50-75 µs of the worker's CPU under 8 threads, most of it psycopg's Python (query
conversion, adaptation, its wait loop) rather than the server; run as a prepared statement through
:attr:`psycopg.Connection.pgconn` (the documented libpq wrapper, :mod:`psycopg.pq`) it costs about
25-30 µs, and libpq waits for the reply with the GIL released. ``benchmarks/worker.py`` measures the
difference against a plain-psycopg baseline.

Where this path does not apply the statement goes through the psycopg cursor kept with the pooled
connection, with the same text and parameters:

* a connection outside autocommit mode (a handler's transaction: psycopg must send its BEGIN);
* a connection configured not to prepare statements (``prepare_threshold=None``, e.g. behind
  PgBouncer in transaction mode);
* a driver other than psycopg 3 (callers check :func:`psycopg_connection` first).

Parameters travel in libpq's text format: ``None`` as NULL, text in the connection's encoding,
integers and booleans as PostgreSQL spells them, datetimes in ISO 8601 (with their offset; the
ledger's timestamps are ``timestamptz``). A prepared statement that the server no longer knows (a
``DISCARD ALL`` in between) is prepared again, once.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["ConnectionLost", "Statement", "psycopg_connection"]

_PREPARED = "mspflow.prepared"  # names prepared on a DBAPI connection (SQLAlchemy's info lives as long)
_CURSOR = "mspflow.cursor"
_ENCODING = "mspflow.encoding"
_names = itertools.count(1)


class ConnectionLost(Exception):
    """The connection died under a statement (the server restarted, say); the pool has discarded it."""


def psycopg_connection(conn: Connection) -> Any:
    """The psycopg 3 connection under ``conn``, or None for another dialect or driver."""
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        return conn.connection.dbapi_connection
    return None


class Statement:
    """One SQL statement written with ``%s`` placeholders, run on a psycopg 3 connection.

    :param returning: the statement returns a row whose first column is an integer (the ledger's
      ``RETURNING attempt``); :meth:`run` gives it (None: no row). Otherwise :meth:`run` gives the number
      of rows the statement affected.
    """

    def __init__(self, sql: str, *, returning: bool = False) -> None:
        if "%%" in sql or "%(" in sql:
            raise ValueError("Statement takes positional %s placeholders only")
        self.sql = sql
        self.returning = returning
        self.name = f"mspflow_{next(_names)}".encode()
        parts = sql.split("%s")
        self.numbered = "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]
        self.params = len(parts) - 1

    def run(self, conn: Connection, params: tuple[Any, ...]) -> Any:
        """Execute on ``conn`` (PostgreSQL through psycopg 3; see :func:`psycopg_connection`)."""
        if len(params) != self.params:
            raise TypeError(f"the statement takes {self.params} parameters, got {len(params)}")
        raw: Any = conn.connection.dbapi_connection
        info = conn.connection.info
        if not raw.autocommit or raw.prepare_threshold is None:
            return self._cursor(conn, raw, info, params)
        from psycopg import pq

        pgconn = raw.pgconn
        encoding = info.get(_ENCODING)
        if encoding is None:
            encoding = info[_ENCODING] = raw.info.encoding
        values = [_text(value, encoding) for value in params]
        prepared: set[bytes] = info.setdefault(_PREPARED, set())
        for again in (False, True):
            if self.name not in prepared:
                self._prepare(conn, pgconn, encoding)
                prepared.add(self.name)
            result = pgconn.exec_prepared(self.name, values)
            status = result.status
            if status == pq.ExecStatus.TUPLES_OK:
                return int(result.get_value(0, 0)) if result.ntuples else None
            if status == pq.ExecStatus.COMMAND_OK:
                return result.command_tuples if not self.returning else None
            if not again and result.error_field(pq.DiagnosticField.SQLSTATE) == b"26000":
                prepared.discard(self.name)  # the server forgot it (DISCARD ALL): prepare it again
                continue
            _raise(result, pgconn, conn, encoding)
        raise AssertionError("unreachable")

    def _prepare(self, conn: Connection, pgconn: Any, encoding: str) -> None:
        from psycopg import pq

        result = pgconn.prepare(self.name, self.numbered.encode(encoding))
        if result.status != pq.ExecStatus.COMMAND_OK \
                and result.error_field(pq.DiagnosticField.SQLSTATE) != b"42P05":  # already prepared: fine
            _raise(result, pgconn, conn, encoding)

    def _cursor(self, conn: Connection, raw: Any, info: dict[Any, Any], params: tuple[Any, ...]) -> Any:
        import psycopg

        cur = info.get(_CURSOR)
        if cur is None or cur.closed or cur.connection is not raw:
            cur = info[_CURSOR] = raw.cursor()
        try:
            cur.execute(self.sql, params)
        except psycopg.OperationalError as exc:
            if not raw.broken:
                raise
            conn.invalidate()
            raise ConnectionLost(str(exc)) from exc
        if not self.returning:
            return cur.rowcount
        row = cur.fetchone()
        return None if row is None else row[0]


def _text(value: Any, encoding: str) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        if "\x00" in value:  # libpq's text format ends a value at NUL: refuse rather than cut it short
            raise ValueError("a statement parameter contains a NUL character")
        return value.encode(encoding)
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, datetime):
        return value.isoformat().encode()
    raise TypeError(f"no text form for a {type(value).__name__} parameter")


def _raise(result: Any, pgconn: Any, conn: Connection, encoding: str) -> None:
    """Raise the psycopg exception psycopg itself would raise for ``result``."""
    import psycopg
    from psycopg import pq

    if pgconn.status == pq.ConnStatus.BAD:
        conn.invalidate()  # the pool must not hand this connection out again
        raise ConnectionLost(pq.error_message(result, encoding=encoding) or "the connection is closed")
    raise psycopg.errors.error_from_result(result, encoding=encoding)
