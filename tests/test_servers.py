"""The throwaway servers from tests/servers.py are real, reachable and isolated per test."""

from collections.abc import Callable

import pytest
import redis
import sqlalchemy as sa

from tests.servers import PostgreSQLServer

_seen_databases: list[str] = []


def _table_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("run", [1, 2])
def test_postgresql_url_is_a_fresh_database_per_test(
    run: int, postgresql_url: str, postgresql_server: PostgreSQLServer
) -> None:
    url = sa.make_url(postgresql_url)
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "127.0.0.1", postgresql_server.port)
    engine = sa.create_engine(postgresql_url)
    try:
        with engine.begin() as conn:
            dbname = conn.execute(sa.text("SELECT current_database()")).scalar_one()
            assert dbname == url.database
            # Empty: the other run's table must not be visible here.
            assert sa.inspect(conn).get_table_names() == []
            conn.execute(sa.text("CREATE TABLE marker (run integer)"))
            conn.execute(sa.text("INSERT INTO marker VALUES (:run)"), {"run": run})
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT run FROM marker")).scalar_one() == run
    finally:
        engine.dispose()

    # Databases of earlier tests are distinct from ours, and were dropped when they finished.
    assert dbname not in _seen_databases
    admin = sa.create_engine(postgresql_server.url())
    try:
        with admin.connect() as conn:
            existing = set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    finally:
        admin.dispose()
    assert dbname in existing
    assert existing.isdisjoint(_seen_databases)
    _seen_databases.append(dbname)


def test_make_postgresql_url_gives_distinct_empty_databases(make_postgresql_url: Callable[[], str]) -> None:
    first, second = make_postgresql_url(), make_postgresql_url()
    assert sa.make_url(first).database != sa.make_url(second).database
    engine = sa.create_engine(first)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_in_first (id integer)"))
    finally:
        engine.dispose()
    assert _table_names(first) == ["only_in_first"]
    assert _table_names(second) == []


@pytest.mark.parametrize("run", [1, 2])
def test_redis_url_round_trip_on_flushed_database(run: int, redis_url: str) -> None:
    assert redis_url.startswith("redis://127.0.0.1:")
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0
        client.set("mspflow:test", f"run {run}")
        assert client.get("mspflow:test") == f"run {run}".encode()
