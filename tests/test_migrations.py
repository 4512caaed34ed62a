"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from mspflow.db.engine import Database
from mspflow.db.migrate import HEAD, VERSION_TABLE, alembic_config, current_revision, ensure_schema, upgrade
from mspflow.db.models import Base


def test_head_constant_matches_the_migration_scripts(empty_db: Database) -> None:
    assert ScriptDirectory.from_config(alembic_config(empty_db)).get_current_head() == HEAD


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}),
                                Base.metadata)
    assert diff == []
    assert current_revision(db) == HEAD


def test_upgrade_is_idempotent_and_downgrade_removes_the_tables(db: Database) -> None:
    upgrade(db)
    upgrade(db)
    from alembic import command

    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(db.engine).get_table_names()) == {VERSION_TABLE}


def test_embedded_default_creates_its_schema_on_first_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'new' / 'mspflow.sqlite3'}")
    assert current_revision(db) is None
    ensure_schema(db)
    assert current_revision(db) == HEAD
    assert {"rmm_integrations", "tenant_addons", "teams_integrations", "tenant_secrets"} <= \
        set(inspect(db.engine).get_table_names())


def test_a_host_database_already_managed_by_alembic_keeps_its_version_table(empty_db: Database) -> None:
    from sqlalchemy import text

    with empty_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('host_0042')"))
    upgrade(empty_db)
    assert current_revision(empty_db) == HEAD
    with empty_db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "host_0042"


def test_0011_keeps_outbox_events_the_triggers_looked_at_as_dispatched(empty_db: Database) -> None:
    """Upgrading from 0010: an event the workflow triggers had looked at is not offered again (a workflow
    published since must not start for it); one they had not is still pending."""
    from sqlalchemy import text

    from mspflow.workflows.triggers import pending_events

    upgrade(empty_db, "0010_workflows")
    with empty_db.engine.begin() as conn:
        for event_id in ("seen", "new"):
            conn.execute(text("INSERT INTO outbox_events (event_id, tenant, event_type, payload, created_at) "
                              "VALUES (:e, 'acme', 'TICKET_CREATED', '{}', CURRENT_TIMESTAMP)"), {"e": event_id})
        conn.execute(text("INSERT INTO workflow_event_runs (tenant, event_id, workflow_name, run_id) "
                          "VALUES ('acme', 'seen', '', NULL)"))
    upgrade(empty_db)
    with empty_db.sessions() as session:
        assert [e["event_id"] for e in pending_events(session)] == ["new"]
