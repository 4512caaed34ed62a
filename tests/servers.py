"""Pytest plugin: real throwaway PostgreSQL and Redis servers on 127.0.0.1.

Loaded by the repo-root ``conftest.py`` (``pytest_plugins = ["tests.servers"]``), so core tests and
``plugins/*/tests`` both see these fixtures. Each server starts at most once per test session, and
only when a test asks for it. If a server cannot be started, every test that needs it ERRORS with the
reason; nothing is skipped.

Fixtures:
    postgresql_server    session   PostgreSQLServer: host, port, user, password, admin_dbname, url(),
                                   create_database(), drop_database()
    make_postgresql_url  session   callable -> URL of a new empty database (all dropped at session end)
    postgresql_url       function  ``postgresql+psycopg://USER@127.0.0.1:PORT/DB``: a new empty database,
                                   dropped after the test
    redis_server         session   RedisServer: host, port, url(db)
    redis_url            function  ``redis://127.0.0.1:PORT/N``, database N flushed before the test

Tests using them get the ``postgres`` / ``redis`` markers, so ``-m "not postgres"`` deselects them.

Environment:
    MSPFLOW_TEST_POSTGRESQL_URL  admin URL of an existing server to use instead of spawning one, e.g.
                                 ``postgresql://postgres:secret@db:5432/postgres``; the user must be allowed
                                 to CREATE DATABASE (PostgreSQL >= 13).
    MSPFLOW_TEST_REDIS_URL       URL of an existing Redis to use instead of spawning one. Its databases
                                 are FLUSHED by the tests.
    MSPFLOW_TEST_PG_CTL          pg_ctl to use (default: pg_config --bindir, /usr/lib/postgresql/*/bin,
                                 PATH); pytest's ``--postgresql-exec`` works too.

PostgreSQL is driven by pytest-postgresql's PostgreSQLExecutor rather than its ``postgresql_proc``
factory, because the factory puts the data directory under pytest's basetemp (mode 0700, owned by
us), which the ``postgres`` user cannot enter; PostgreSQL refuses to run as root. Redis uses
pytest-redis' ``redis_proc`` factory as is.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from port_for import select_random
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from pytest_redis.config import get_config as get_redis_config
from pytest_redis.factories import redis_proc
from sqlalchemy.engine import URL, make_url

PG_OS_USER = "postgres"  # OS account that runs the server when we are root
PG_DB_USER = "postgres"  # superuser created by initdb
REDIS_DB_COUNT = 16


@dataclass(frozen=True)
class PostgreSQLServer:
    host: str
    port: int
    user: str
    password: str | None = None
    admin_dbname: str = "postgres"

    def url(self, dbname: str | None = None, drivername: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of ``dbname`` (default: the admin database)."""
        return URL.create(
            drivername,
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=dbname or self.admin_dbname,
        ).render_as_string(hide_password=False)

    def _janitor(self, dbname: str) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            dbname=dbname,
            maintenance_dbname=self.admin_dbname,
            connection_timeout=10,
        )

    def create_database(self, prefix: str = "mspflow_test") -> str:
        """Create a new empty database and return its name."""
        dbname = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._janitor(dbname).init()
        return dbname

    def drop_database(self, dbname: str) -> None:
        """Drop ``dbname``, disconnecting whoever is still connected to it."""
        self._janitor(dbname).drop()


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    password: str | None = None

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{db}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: runs against the throwaway PostgreSQL server")
    config.addinivalue_line("markers", "redis: runs against the throwaway Redis server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"postgresql_server", "postgresql_url", "make_postgresql_url"}:
            item.add_marker(pytest.mark.postgres)
        if names & {"redis_server", "redis_url"}:
            item.add_marker(pytest.mark.redis)


# --- PostgreSQL -----------------------------------------------------------------------------------


def find_pg_ctl(config: pytest.Config) -> str:
    explicit = os.environ.get("MSPFLOW_TEST_PG_CTL") or config.getoption("postgresql_exec", None)
    if explicit:
        return str(explicit)
    candidates = []
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        candidates.append(os.path.join(bindir, "pg_ctl"))
    except (OSError, subprocess.SubprocessError):
        pass
    versioned = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    candidates += sorted(versioned, key=lambda p: int(Path(p).parts[-3]), reverse=True)
    candidates.append(shutil.which("pg_ctl") or "")
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise RuntimeError(
        "PostgreSQL's pg_ctl was not found (looked at pg_config --bindir, /usr/lib/postgresql/*/bin, "
        "PATH). Run scripts/ensure-system-deps, or set MSPFLOW_TEST_PG_CTL."
    )


def _write_pg_ctl_wrapper(real_pg_ctl: str, path: Path) -> None:
    """pytest-postgresql runs this instead of pg_ctl: as the postgres user when we are root."""
    run_as = f"runuser -u {PG_OS_USER} -- " if os.geteuid() == 0 else ""
    path.write_text(
        "#!/bin/sh\n"
        "cd / || exit 1  # the server's user may not be allowed into our working directory\n"
        '[ "$1" = initdb ] && set -- "$@" -o --no-sync  # throwaway cluster: skip fsyncs\n'
        f'exec {run_as}{shlex.quote(real_pg_ctl)} "$@"\n'
    )
    path.chmod(0o755)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


@dataclass
class _SpawnedPostgreSQL:
    server: PostgreSQLServer
    executor: PostgreSQLExecutor
    workdir: Path


def _spawn_postgresql(config: pytest.Config) -> _SpawnedPostgreSQL:
    real_pg_ctl = find_pg_ctl(config)
    # workdir (ours) holds the wrapper; workdir/pg belongs to the server's user: data, log, socket.
    workdir = Path(tempfile.mkdtemp(prefix="mspflow-pg-"))
    workdir.chmod(0o755)
    pgdir = workdir / "pg"
    pgdir.mkdir(mode=0o700)
    logfile = pgdir / "postgresql.log"
    try:
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(PG_OS_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root, and PostgreSQL refuses to run as root, but there is no "
                    f"{PG_OS_USER!r} user to run it as; run scripts/ensure-system-deps"
                ) from None
            os.chown(pgdir, account.pw_uid, account.pw_gid)
        pg_ctl = workdir / "pg_ctl"
        _write_pg_ctl_wrapper(real_pg_ctl, pg_ctl)
        version = subprocess.run([str(pg_ctl), "--version"], capture_output=True, text=True, timeout=30)
        if version.returncode != 0 or "PostgreSQL" not in version.stdout:
            output = (version.stdout + version.stderr).strip().splitlines()
            raise RuntimeError(
                f"{real_pg_ctl} is not a working pg_ctl: `--version` exited {version.returncode}, "
                f"printing {output[0] if output else 'nothing'!r}"
            )
        executor = PostgreSQLExecutor(
            executable=str(pg_ctl),
            host="127.0.0.1",
            port=select_random(),
            datadir=str(pgdir / "data"),
            unixsocketdir=str(pgdir),
            logfile=str(logfile),
            startparams="-w",
            dbname="mspflow_tests",
            user=PG_DB_USER,
            postgres_options=(
                "-c listen_addresses=127.0.0.1 -c synchronous_commit=off -c full_page_writes=off"
            ),
        )
        try:
            executor.start()
        except Exception as exc:
            with contextlib.suppress(Exception):  # in case it half-started
                executor.stop()
            initdb_output = getattr(exc, "output", None)  # set if initdb is what failed
            if isinstance(initdb_output, bytes):
                initdb_output = initdb_output.decode(errors="replace")
            raise RuntimeError(
                f"could not start a throwaway PostgreSQL with {real_pg_ctl}: {type(exc).__name__}: {exc}\n"
                f"{initdb_output or ''}--- server log ---\n{_tail(logfile)}"
            ) from exc
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    server = PostgreSQLServer(host=executor.host, port=executor.port, user=PG_DB_USER)
    return _SpawnedPostgreSQL(server, executor, workdir)


def _external_postgresql(admin_url: str) -> PostgreSQLServer:
    url = make_url(admin_url)
    server = PostgreSQLServer(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or PG_DB_USER,
        password=url.password if isinstance(url.password, str) else None,
        admin_dbname=url.database or "postgres",
    )
    try:
        psycopg.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            dbname=server.admin_dbname,
            connect_timeout=10,
        ).close()
    except psycopg.Error as exc:
        raise RuntimeError(f"MSPFLOW_TEST_POSTGRESQL_URL is set but unusable: {exc}") from exc
    return server


@pytest.fixture(scope="session")
def postgresql_server(request: pytest.FixtureRequest) -> Iterator[PostgreSQLServer]:
    admin_url = os.environ.get("MSPFLOW_TEST_POSTGRESQL_URL")
    if admin_url:
        yield _external_postgresql(admin_url)
        return
    spawned = _spawn_postgresql(request.config)
    try:
        yield spawned.server
    finally:
        try:
            spawned.executor.stop()
        finally:
            shutil.rmtree(spawned.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def make_postgresql_url(postgresql_server: PostgreSQLServer) -> Iterator[Callable[[], str]]:
    created: list[str] = []

    def make() -> str:
        created.append(postgresql_server.create_database())
        return postgresql_server.url(created[-1])

    yield make
    for dbname in created:
        postgresql_server.drop_database(dbname)


@pytest.fixture
def postgresql_url(postgresql_server: PostgreSQLServer) -> Iterator[str]:
    dbname = postgresql_server.create_database()
    try:
        yield postgresql_server.url(dbname)
    finally:
        postgresql_server.drop_database(dbname)


# --- Redis ----------------------------------------------------------------------------------------

# pytest-redis' own factory; --timeout is the idle-client timeout, so make it long.
_mspflow_redis_proc = redis_proc(
    host="127.0.0.1",
    port=None,  # type: ignore[arg-type]  # documented: None picks a random free port
    save="''",
    db_count=REDIS_DB_COUNT,
    timeout=86400,
)


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> RedisServer:
    external = os.environ.get("MSPFLOW_TEST_REDIS_URL")
    if external:
        with redis.Redis.from_url(external) as client:
            try:
                client.ping()
            except redis.RedisError as exc:
                raise RuntimeError(f"MSPFLOW_TEST_REDIS_URL is set but unusable: {exc}") from exc
            kw = client.connection_pool.connection_kwargs
        return RedisServer(kw.get("host", "127.0.0.1"), int(kw.get("port", 6379)), kw.get("password"))
    executable = get_redis_config(request).exec
    if not executable or shutil.which(executable) is None:
        raise RuntimeError(
            f"redis-server not found ({executable!r}); run scripts/ensure-system-deps or pass --redis-exec"
        )
    executor = request.getfixturevalue("_mspflow_redis_proc")
    return RedisServer(executor.host, executor.port, executor.password)


@pytest.fixture(scope="session")
def _redis_db_numbers() -> Iterator[int]:
    # Rotate through the databases so a straggling client of the previous test can't write into ours.
    return itertools.cycle(range(REDIS_DB_COUNT))


@pytest.fixture
def redis_url(redis_server: RedisServer, _redis_db_numbers: Iterator[int]) -> str:
    url = redis_server.url(next(_redis_db_numbers))
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url
