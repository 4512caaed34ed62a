"""Throwaway PostgreSQL and Redis on 127.0.0.1 for the benchmarks (a helper, not a benchmark).

The servers are started the way the test suite starts them: PostgreSQL through
``tests.servers._spawn_postgresql`` (pytest-postgresql's PostgreSQLExecutor run as the ``postgres``
OS user when we are root, ``synchronous_commit=off``, initdb ``--no-sync``), Redis through
pytest-redis' RedisExecutor with the parameters of the suite's ``redis_proc`` factory (that factory
itself is a pytest fixture and needs a live pytest session, so only its settings are reused).

``MSPFLOW_BENCH_POSTGRESQL_URL`` (a database URL, used as is, as ``benchmarks/catalog.py`` does) and
``MSPFLOW_BENCH_REDIS_URL`` (used as is; callers keep to their own key namespaces and delete them)
select existing servers instead.

Imports are lazy: ``nox -s bench`` runs every ``benchmarks/*.py``, this file included, and running it
does nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Server:
    url: str
    note: str  # how it was obtained, for the benchmark's header
    external: bool = False  # an existing server: callers delete what they wrote


@dataclass(frozen=True)
class RedisServer:
    base_url: str
    note: str
    external: bool

    def url(self, db: int) -> str:
        """Database ``db`` of a throwaway server; an existing server's URL as given (use namespaces)."""
        if self.external:
            return self.base_url
        return f"{self.base_url.rsplit('/', 1)[0]}/{db}"


class _PytestConfigStandIn:
    """All ``tests.servers._spawn_postgresql`` asks of pytest's config: ``getoption()`` (for --postgresql-exec)."""

    def getoption(self, name: str, default: Any = None) -> Any:
        return default


def _tests_servers() -> Any:
    if str(ROOT) not in sys.path:  # `python benchmarks/x.py` puts benchmarks/, not the repo root, on sys.path
        sys.path.insert(0, str(ROOT))
    from tests import servers

    return servers


def _with_psycopg(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername == "postgresql":  # SQLAlchemy's default driver would be psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


@contextlib.contextmanager
def postgresql() -> Iterator[Server]:
    """A PostgreSQL database for the duration of the block: a new one on a throwaway server, or the env's."""
    if url := os.environ.get("MSPFLOW_BENCH_POSTGRESQL_URL"):
        yield Server(_with_psycopg(url), "MSPFLOW_BENCH_POSTGRESQL_URL", external=True)
        return
    servers = _tests_servers()
    spawned = servers._spawn_postgresql(_PytestConfigStandIn())
    try:
        dbname = spawned.server.create_database(prefix="mspflow_bench")
        yield Server(spawned.server.url(dbname),
                     f"throwaway PostgreSQL on 127.0.0.1:{spawned.server.port} (synchronous_commit=off)")
    finally:
        try:
            spawned.executor.stop()
        finally:
            shutil.rmtree(spawned.workdir, ignore_errors=True)


@contextlib.contextmanager
def redis() -> Iterator[RedisServer]:
    """A Redis server for the duration of the block: a throwaway one, or ``MSPFLOW_BENCH_REDIS_URL``."""
    if url := os.environ.get("MSPFLOW_BENCH_REDIS_URL"):
        yield RedisServer(url, "MSPFLOW_BENCH_REDIS_URL", external=True)
        return
    servers = _tests_servers()
    from port_for import select_random
    from pytest_redis.executor import RedisExecutor

    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server not found; run scripts/ensure-system-deps or set MSPFLOW_BENCH_REDIS_URL")
    datadir = Path(tempfile.mkdtemp(prefix="mspflow-bench-redis-"))
    executor = RedisExecutor(  # the settings of tests.servers' redis_proc factory
        executable=executable, databases=servers.REDIS_DB_COUNT, redis_timeout=86400, loglevel="notice",
        host="127.0.0.1", port=select_random(), save="''", datadir=datadir,
    )
    try:
        executor.start()
        server = servers.RedisServer(executor.host, executor.port, executor.password)
        yield RedisServer(server.url(0), f"throwaway Redis on 127.0.0.1:{executor.port}", external=False)
    finally:
        try:
            executor.stop()
        finally:
            shutil.rmtree(datadir, ignore_errors=True)


def delete_namespace(url: str, namespace: str) -> None:
    """Delete a Dramatiq namespace's keys (``namespace:*``), so an existing Redis is left as found."""
    import redis as redis_client

    with redis_client.Redis.from_url(url) as client:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])


if __name__ == "__main__":
    print("benchmarks/_servers.py: helper for the other benchmarks; nothing to measure")
