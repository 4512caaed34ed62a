"""scheduling.create_entry on SQLite and PostgreSQL: errors, conflict modes, outbox, tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from mspflow import outbox
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.models import ProjectTask, ScheduleConflict, ScheduleEntry, ScheduleEntryAssignee, Ticket, User
from mspflow.plugins import Plugins

CREATE = "scheduling.create_entry"
ADA, BOB, CARL, CLIENT, GONE = "u-ada", "u-bob", "u-carl", "u-client", "u-gone"


@pytest.fixture
def app(db: Database) -> Iterator[App]:
    with db.session() as s:
        for tenant in ("acme", "globex"):
            s.add_all([
                User(tenant=tenant, user_id=ADA, first_name="Ada", last_name="L", user_type="internal"),
                User(tenant=tenant, user_id=BOB, first_name="Bob", last_name="M", user_type="internal"),
                User(tenant=tenant, user_id=CLIENT, first_name="Cy", user_type="client"),
                User(tenant=tenant, user_id=GONE, first_name="Gil", user_type="internal", is_inactive=True),
            ])
        s.add(User(tenant="globex", user_id=CARL, first_name="Carl", user_type="internal"))
        s.add(Ticket(tenant="acme", ticket_id="t-1", ticket_number="T-1001", title="Server down"))
        s.add(ProjectTask(tenant="acme", task_id="pt-1", task_name="Migrate mail"))
        s.add(Ticket(tenant="globex", ticket_id="t-globex", title="Theirs"))
    instance = App(db=db, plugins=Plugins(entry_points=[], strict=True))
    yield instance
    instance.close()


def create(app: App, users: list[str], start: str, end: str, tenant: str = "acme", step: str | None = None,
           **extra: Any) -> Any:
    return app.execute(CREATE, tenant=tenant, run_id="run-s", step_path=step or f"{start}-{users}-{extra}",
                       input={"assigned_user_ids": users, "title": "On call",
                              "window": {"start": start, "end": end}, **extra})


def count(db: Database, model: Any, tenant: str = "acme") -> int:
    with db.sessions() as s:
        return int(s.execute(select(func.count()).select_from(model).where(model.tenant == tenant)).scalar_one())


def test_creates_entry_assignees_and_exactly_one_outbox_event(app: App, db: Database) -> None:
    result = create(app, [ADA, BOB], "2026-12-01T09:00:00Z", "2026-12-01T11:00:00Z",
                    link={"type": "ticket", "id": "t-1"}, notes="Bring the spare PSU", step="s1")
    assert result.ok, result.error
    out = result.output
    assert out["assigned_user_ids"] == [ADA, BOB] and (out["work_item_type"], out["work_item_id"]) == ("ticket", "t-1")
    assert out["scheduled_start"].startswith("2026-12-01T09:00:00") and out["shifted"] is False
    with db.sessions() as s:
        entry = s.get(ScheduleEntry, ("acme", out["entry_id"]))
        assert entry is not None and entry.notes == "Bring the spare PSU" and entry.status == "scheduled"
        events = outbox.pending(s, tenant="acme")
    assert count(db, ScheduleEntryAssignee) == 2
    [event] = events
    assert event["event_type"] == "SCHEDULE_ENTRY_CREATED" and event["delivered_at"] is None
    assert event["payload"]["entry_id"] == out["entry_id"]
    assert event["payload"]["assigned_user_ids"] == [ADA, BOB]
    assert event["payload"]["entry"]["work_item_id"] == "t-1"
    replay = create(app, [ADA, BOB], "2026-12-01T09:00:00Z", "2026-12-01T11:00:00Z",
                    link={"type": "ticket", "id": "t-1"}, notes="Bring the spare PSU", step="s1")
    assert replay.replayed and replay.output == out
    assert count(db, ScheduleEntry) == 1
    with db.sessions() as s:
        assert len(outbox.pending(s, tenant="acme")) == 1  # none for the replay


def test_timezone_of_a_naive_window_is_honoured(app: App) -> None:
    result = app.execute(CREATE, tenant="acme", input={
        "assigned_user_ids": [ADA], "title": "Berlin morning",
        "window": {"start": "2026-12-01T09:00:00", "end": "2026-12-01T10:00:00", "timezone": "Europe/Berlin"}})
    assert result.ok and result.output["scheduled_start"].startswith("2026-12-01T08:00:00")
    bad = app.execute(CREATE, tenant="acme", input={
        "assigned_user_ids": [ADA], "title": "x",
        "window": {"start": "2026-12-01T09:00:00", "end": "2026-12-01T10:00:00", "timezone": "Mars/Olympus"}})
    assert bad.error.code == "VALIDATION_ERROR"
    assert [f["path"] for f in bad.error.details["fields"]] == ["window.timezone"]


def test_end_not_after_start_is_a_validation_error(app: App, db: Database) -> None:
    result = create(app, [ADA], "2026-12-01T11:00:00Z", "2026-12-01T11:00:00Z")
    assert result.error.code == "VALIDATION_ERROR"
    assert [f["path"] for f in result.error.details["fields"]] == ["window.end"]
    empty = create(app, [], "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")
    assert empty.error.code == "VALIDATION_ERROR"
    assert empty.error.details["fields"][0]["path"] == "assigned_user_ids"
    assert count(db, ScheduleEntry) == 0


@pytest.mark.parametrize(("user", "reason"), [("u-nobody", "unknown"), (GONE, "inactive"),
                                              (CLIENT, "client user"), (CARL, "unknown")])
def test_unschedulable_users_are_not_found_listing_the_ids(app: App, db: Database, user: str, reason: str) -> None:
    result = create(app, [ADA, user], "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")
    assert result.error.code == "NOT_FOUND" and result.error.details["user_ids"] == [user]
    assert result.error.details["reasons"] == {user: reason}
    assert count(db, ScheduleEntry) == 0 and count(db, ScheduleEntryAssignee, "globex") == 0


@pytest.mark.parametrize("link", [{"type": "ticket", "id": "t-404"}, {"type": "project_task", "id": "t-1"},
                                  {"type": "ticket", "id": "t-globex"}])
def test_missing_linked_work_item_is_not_found(app: App, db: Database, link: dict[str, str]) -> None:
    result = create(app, [ADA], "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z", link=link)
    assert result.error.code == "NOT_FOUND" and result.error.details["link_id"] == link["id"]
    with db.sessions() as s:
        assert outbox.pending(s) == []


def test_project_task_link(app: App) -> None:
    result = create(app, [BOB], "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z",
                    link={"type": "project_task", "id": "pt-1"})
    assert (result.output["work_item_type"], result.output["work_item_id"]) == ("project_task", "pt-1")


def test_overlap_in_fail_mode_is_a_conflict_listing_the_users(app: App, db: Database) -> None:
    first = create(app, [ADA], "2026-12-01T09:00:00Z", "2026-12-01T11:00:00Z")
    clash = create(app, [BOB, ADA], "2026-12-01T10:00:00Z", "2026-12-01T12:00:00Z")
    assert clash.error.code == "CONFLICT" and not clash.error.retryable
    assert clash.error.details["user_ids"] == [ADA]
    assert clash.error.details["conflicting_entry_ids"] == [first.output["entry_id"]]
    touching = create(app, [ADA], "2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z")
    assert touching.ok  # back to back is not an overlap
    assert count(db, ScheduleEntry) == 2


def test_shift_moves_after_the_latest_conflict_keeping_the_length(app: App, db: Database) -> None:
    create(app, [ADA], "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")
    create(app, [BOB], "2026-12-01T09:30:00Z", "2026-12-01T11:00:00Z")
    create(app, [ADA], "2026-12-01T11:00:00Z", "2026-12-01T11:30:00Z")  # the shifted slot collides again
    shifted = create(app, [ADA, BOB], "2026-12-01T09:15:00Z", "2026-12-01T10:15:00Z", conflict_mode="shift")
    assert shifted.ok and shifted.output["shifted"] is True
    assert shifted.output["scheduled_start"].startswith("2026-12-01T11:30:00")
    assert shifted.output["scheduled_end"].startswith("2026-12-01T12:30:00")
    assert count(db, ScheduleConflict) == 0


def test_override_inserts_and_records_the_conflict(app: App, db: Database) -> None:
    first = create(app, [ADA], "2026-12-01T09:00:00Z", "2026-12-01T11:00:00Z")
    over = create(app, [ADA, BOB], "2026-12-01T10:00:00Z", "2026-12-01T12:00:00Z", conflict_mode="override")
    assert over.ok and over.output["conflicts"] == [{"conflicting_entry_id": first.output["entry_id"],
                                                     "user_id": ADA}]
    with db.sessions() as s:
        [conflict] = s.execute(select(ScheduleConflict)).scalars()
        assert (conflict.entry_id, conflict.resolution) == (over.output["entry_id"], "override")
        assert len(outbox.pending(s, tenant="acme")) == 2


def test_other_tenants_users_and_entries_are_invisible(app: App, db: Database) -> None:
    create(app, [ADA], "2026-12-01T09:00:00Z", "2026-12-01T11:00:00Z", tenant="globex")
    mine = create(app, [ADA], "2026-12-01T09:00:00Z", "2026-12-01T11:00:00Z")  # no cross-tenant conflict
    assert mine.ok and mine.output["conflicts"] == []
    foreign = create(app, [CARL], "2026-12-01T13:00:00Z", "2026-12-01T14:00:00Z")
    assert foreign.error.code == "NOT_FOUND" and foreign.error.details["user_ids"] == [CARL]
    with db.sessions() as s:
        assert [e["tenant"] for e in outbox.pending(s, tenant="acme")] == ["acme"]
        assert outbox.ack(s, [e["event_id"] for e in outbox.pending(s, tenant="acme")], tenant="globex") == 0


def test_declared_permission_is_enforced(app: App, db: Database) -> None:
    app.registry.set_permission_checker(lambda s, t, permission, c: permission != "user_schedule:create", "host")
    result = create(app, [ADA], "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")
    assert result.error.code == "PERMISSION_DENIED" and count(db, ScheduleEntry) == 0


def test_outbox_ack_is_idempotent(app: App, db: Database) -> None:
    create(app, [ADA], "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")
    with db.session() as s:
        [event] = outbox.pending(s)
        assert outbox.ack(s, [event["event_id"]]) == 1
        assert outbox.ack(s, [event["event_id"]]) == 0
    with db.sessions() as s:
        assert outbox.pending(s) == []
        assert outbox.pending(s, include_delivered=True)[0]["delivered_at"] is not None


def test_cli_run_creates_an_entry_and_an_undelivered_outbox_event(tmp_path: Any) -> None:
    import json

    from sqlalchemy import create_engine, text

    from mspflow.db.migrate import upgrade
    from tests.test_cli import Cli

    home = tmp_path / "home"
    db = Database(f"sqlite:///{home / 'mspflow.sqlite3'}")
    upgrade(db)
    with db.session() as s:
        s.add(User(tenant="acme", user_id=ADA, first_name="Ada", user_type="internal"))
    db.dispose()
    cli = Cli(home)
    result = cli("run", CREATE, "--tenant", "acme", "--json", "--input", json.dumps({
        "assigned_user_ids": [ADA], "title": "Patch night",
        "window": {"start": "2026-12-05T22:00:00Z", "end": "2026-12-06T01:00:00Z"}}))
    assert result.returncode == 0, result.stdout + result.stderr
    entry_id = json.loads(result.stdout)["output"]["entry_id"]
    with create_engine(f"sqlite:///{home / 'mspflow.sqlite3'}").connect() as conn:
        assert conn.execute(text("SELECT title FROM schedule_entries WHERE entry_id = :e"),
                            {"e": entry_id}).scalar_one() == "Patch night"
    events = json.loads(cli("outbox", "list", "--tenant", "acme", "--json").stdout)["events"]
    assert [(e["event_type"], e["payload"]["entry_id"], e["delivered_at"]) for e in events] == [
        ("SCHEDULE_ENTRY_CREATED", entry_id, None)]
    acked = cli("outbox", "ack", events[0]["event_id"], "--json")
    assert json.loads(acked.stdout) == {"acked": 1}
    assert json.loads(cli("outbox", "list", "--json").stdout)["events"] == []
