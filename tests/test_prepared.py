"""The ledger's hot statements on PostgreSQL: prepared once per connection, run through libpq.

They must give what the psycopg cursor gives, in every state a pooled connection can be in: a fresh
one, one whose server session forgot its prepared statements, one inside a transaction, one set up
not to prepare (PgBouncer), and one whose server process is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel
from sqlalchemy import text

from mspflow.db.engine import Database
from mspflow.db.prepared import ConnectionLost, Statement
from mspflow.hookspecs import hookimpl
from mspflow.modules import action
from mspflow.plugins import Plugins

pytestmark = pytest.mark.postgres

BUMP = Statement("UPDATE prepared_probe SET n = n + 1, seen = %s WHERE name = %s RETURNING n", returning=True)
TOUCH = Statement("UPDATE prepared_probe SET note = %s, flag = %s WHERE name <> %s")


class Label(BaseModel):
    label: str


WHEN = datetime(2026, 11, 29, 21, 30, 15, 123456, tzinfo=UTC)


def probe_table(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE prepared_probe (name text PRIMARY KEY, n int NOT NULL DEFAULT 0, "
                          "seen timestamptz, note text, flag boolean)"))
        conn.execute(text("INSERT INTO prepared_probe (name) VALUES ('a'), ('b'), ('ü')"))


@pytest.fixture
def pg(make_postgresql_url: Any) -> Iterator[Database]:
    db = Database(make_postgresql_url())
    probe_table(db)
    yield db
    db.dispose()


def end_server_process(pg: Database, conn: Any) -> None:
    """What a server restart does to ``conn``: its PostgreSQL process ends."""
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    with pg.engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def ours(conn: Any) -> set[str]:
    return set(conn.execute(text("SELECT name FROM pg_prepared_statements WHERE name LIKE 'mspflow_%'")).scalars())


def test_a_statement_is_prepared_once_per_connection_and_gives_what_the_cursor_gives(pg: Database) -> None:
    with pg.connect() as conn:
        assert BUMP.run(conn, (WHEN, "a")) == 1
        assert BUMP.run(conn, (WHEN, "a")) == 2
        assert BUMP.run(conn, (WHEN, "ü")) == 1  # text in the connection's encoding
        assert BUMP.run(conn, (WHEN, "nobody")) is None  # no row
        assert TOUCH.run(conn, ("x", True, "a")) == 2  # rows affected
        assert ours(conn) == {BUMP.name.decode(), TOUCH.name.decode()}
        row = conn.execute(text("SELECT seen, flag FROM prepared_probe WHERE name = 'b'")).one()
    assert row.flag is True
    with pg.engine.connect() as other:  # autocommitted: visible elsewhere at once, the instant kept exactly
        assert other.execute(text("SELECT seen FROM prepared_probe WHERE name = 'a'")).scalar_one() == WHEN


def test_a_statement_the_server_forgot_is_prepared_again(pg: Database) -> None:
    with pg.connect() as conn:
        assert BUMP.run(conn, (WHEN, "a")) == 1
        conn.exec_driver_sql("DEALLOCATE ALL")  # a pooler's DISCARD ALL between two uses, say
        assert not ours(conn)
        assert BUMP.run(conn, (WHEN, "a")) == 2
        assert ours(conn) == {BUMP.name.decode()}


def test_inside_a_transaction_the_statement_joins_it(pg: Database) -> None:
    with pg.engine.connect() as conn:  # not autocommit: psycopg must send its BEGIN, so the cursor runs it
        conn.execute(text("SELECT 1"))
        assert BUMP.run(conn, (WHEN, "a")) == 1
        conn.rollback()
    with pg.connect() as conn:
        assert BUMP.run(conn, (WHEN, "a")) == 1  # the rolled-back bump left nothing


def test_a_connection_set_up_not_to_prepare_gets_no_prepared_statement(make_postgresql_url: Any) -> None:
    db = Database(make_postgresql_url(), connect_args={"prepare_threshold": None})  # PgBouncer, transaction mode
    probe_table(db)
    with db.connect() as conn:
        assert BUMP.run(conn, (WHEN, "a")) == 1
        assert BUMP.run(conn, (WHEN, "a")) == 2
        assert not ours(conn)
    db.dispose()


def test_parameters_libpq_cannot_carry_are_refused_before_anything_is_sent(pg: Database) -> None:
    with pg.connect() as conn:
        with pytest.raises(ValueError, match="NUL"):
            BUMP.run(conn, (WHEN, "a\x00b"))
        with pytest.raises(TypeError, match="float"):
            BUMP.run(conn, (1.5, "a"))
        with pytest.raises(TypeError, match="2 parameters"):
            BUMP.run(conn, ("a",))
        assert BUMP.run(conn, (WHEN, "a")) == 1  # nothing ran before


def test_a_server_error_is_psycopgs_own_exception(pg: Database) -> None:
    broken = Statement("UPDATE no_such_table SET n = %s", returning=False)
    with pg.connect() as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            broken.run(conn, (1,))
        assert BUMP.run(conn, (WHEN, "a")) == 1  # the connection is still good


def test_a_connection_whose_server_process_died_is_dropped_from_the_pool(pg: Database) -> None:
    with pg.connect() as conn:
        assert BUMP.run(conn, (WHEN, "a")) == 1
        end_server_process(pg, conn)
        with pytest.raises(ConnectionLost):
            BUMP.run(conn, (WHEN, "a"))
        assert conn.invalidated
    with pg.connect() as conn:
        assert BUMP.run(conn, (WHEN, "a")) == 2


def test_a_tile_less_call_on_a_connection_that_died_in_the_pool_runs_on_a_new_one(make_postgresql_url: Any) -> None:
    """No gate runs SQL before the claim here, so the claim itself meets the dead connection."""
    from mspflow.app import App
    from mspflow.db.migrate import upgrade

    db = Database(make_postgresql_url())
    upgrade(db)

    class Plugin:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register(action("probe.noop.apply", label="No-op", side_effectful=True,
                            handler=lambda params, ctx: Label(label=params.label), input_model=Label,
                            output_model=Label))

    app = App(db=db, plugins=Plugins(entry_points=[], extra=[("probe", Plugin())], strict=True))
    assert app.execute("probe.noop.apply", tenant="acme", input={"label": "before"}).ok
    with Database(db.url).engine.connect() as admin:  # the server restarts, say: pooled connections die
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    after = app.execute("probe.noop.apply", tenant="acme", input={"label": "after"}, run_id="r", step_path="s")
    assert after.ok and after.output == {"label": "after"} and after.attempt == 1
    app.close()
    db.dispose()


def test_inside_a_transaction_a_dead_connection_is_dropped_too(pg: Database) -> None:
    with pg.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        end_server_process(pg, conn)
        with pytest.raises(ConnectionLost):
            BUMP.run(conn, (WHEN, "a"))
        assert conn.invalidated
