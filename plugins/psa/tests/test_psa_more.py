"""clients.*, contacts.*, time, notes, tasks, notifications and scheduling.assign_user, on SQLite and PostgreSQL."""

from __future__ import annotations

from psa_support import OTHER, TENANT, Desk


def test_clients_find_by_id_email_or_name_and_never_another_tenants(desk: Desk) -> None:
    assert desk.ok("clients.find", {"client_id": "c-1"})["client"]["name"] == "Initech"
    assert desk.ok("clients.find", {"email": "IT@initech.example"})["client"]["client_id"] == "c-1"
    assert desk.ok("clients.find", {"name": "umbrella corp"})["client"]["client_id"] == "c-2"
    err = desk.fail("clients.find", {"client_id": "globex-c-1"})
    assert err.code == "NOT_FOUND" and err.details["field"] == "client_id"
    assert desk.fail("clients.find", {"name": "Nobody"}).code == "NOT_FOUND"
    assert desk.fail("clients.find", {}).code == "VALIDATION_ERROR"
    assert desk.fail("clients.find", {"client_id": "c-1", "name": "x"}).code == "VALIDATION_ERROR"


def test_clients_search_pages_by_name(desk: Desk) -> None:
    for i in range(5):
        desk.add("Client", tenant=TENANT, client_id=f"c-x{i}", name=f"Acme Branch {i}")
    desk.add("Client", tenant=TENANT, client_id="c-old", name="Acme Branch Old", is_inactive=True)
    page1 = desk.ok("clients.search", {"query": "acme branch", "page_size": 2})
    page3 = desk.ok("clients.search", {"query": "acme branch", "page_size": 2, "page": 3})
    assert [c["name"] for c in page1["clients"]] == ["Acme Branch 0", "Acme Branch 1"]
    assert (page1["total"], page1["has_more"], page3["has_more"]) == (5, True, False)
    assert [c["name"] for c in page3["clients"]] == ["Acme Branch 4"]
    assert desk.ok("clients.search", {"query": "acme branch", "include_inactive": True})["total"] == 6
    assert desk.ok("clients.search", {"query": "100%_"})["total"] == 0
    err = desk.fail("clients.search", {"page": 0, "page_size": 1000})
    assert {f["path"] for f in err.details["fields"]} == {"page", "page_size"}


def test_contacts_find_and_search_within_a_client(desk: Desk) -> None:
    assert desk.ok("contacts.find", {"email": "peter@initech.example"})["contact"]["contact_id"] == "p-1"
    assert desk.fail("contacts.find", {"contact_id": "globex-p-1"}).code == "NOT_FOUND"
    got = desk.ok("contacts.search", {"client_id": "c-1", "query": "", "page_size": 1})
    assert (got["total"], got["contacts"][0]["full_name"], got["has_more"]) == (2, "Milton Waddams", True)
    assert desk.ok("contacts.search", {"query": "gibbons"})["contacts"][0]["contact_id"] == "p-1"
    err = desk.fail("contacts.search", {"client_id": "globex-c-1"})
    assert err.code == "NOT_FOUND" and err.details["field"] == "client_id"


def test_time_entry_on_a_ticket_touches_it(desk: Desk) -> None:
    t = desk.ticket()
    out = desk.ok("time.create_entry", {"user_id": "u-tech", "work_item": {"type": "ticket", "id": t["ticket_id"]},
                                        "started_at": "2026-11-30T09:00:00Z", "duration_minutes": 30})
    assert out["duration_minutes"] == 30
    assert desk.ok("tickets.find", {"ticket_id": t["ticket_id"]})["tickets"][0]["untouched"] is False
    err = desk.fail("time.create_entry", {"user_id": "u-tech", "work_item": {"type": "ticket", "id": "nope"},
                                          "started_at": "2026-11-30T09:00:00Z", "duration_minutes": 30})
    assert err.code == "NOT_FOUND" and err.details["field"] == "work_item.id"
    err = desk.fail("time.create_entry", {"user_id": "u-tech", "work_item": {"type": "ticket", "id": "x"},
                                          "started_at": "2026-11-30T09:00:00", "duration_minutes": 0})
    assert {f["path"] for f in err.details["fields"]} == {"duration_minutes", "started_at"}
    err = desk.fail("time.create_entry", {"user_id": "u-tech", "work_item": {"type": "ticket", "id": t["ticket_id"]},
                                          "started_at": "2026-11-30T09:00:00", "duration_minutes": 5})
    assert err.details["fields"][0]["path"] == "started_at"


def test_activity_notes_and_project_tasks(desk: Desk) -> None:
    note = desk.ok("crm.create_activity_note", {"entity": {"type": "contact", "id": "p-1"}, "note_type": "call",
                                                "body": "Called about renewal", "author_user_id": "u-tech"})
    assert note["entity_id"] == "p-1" and desk.rows("activity_notes")[0]["body"] == "Called about renewal"
    assert desk.fail("crm.create_activity_note", {"entity": {"type": "client", "id": "globex-c-1"}, "body": "x"}
                     ).details["field"] == "entity.id"
    desk.add("Project", tenant=TENANT, project_id="pr-1", name="Office move")
    desk.add("Project", tenant=OTHER, project_id="pr-9", name="theirs")
    task = desk.ok("projects.create_task", {"project_id": "pr-1", "name": "Patch cables", "assigned_user_id": "u-tech",
                                            "due_at": "2026-12-01T17:00:00+01:00"})
    assert task["status"] == "open" and desk.rows("project_tasks")[0]["project_id"] == "pr-1"
    assert desk.fail("projects.create_task", {"project_id": "pr-9", "name": "x"}).code == "NOT_FOUND"
    assert desk.fail("projects.create_task", {"project_id": "pr-1", "name": ""}).details["fields"][0]["path"] == "name"


def test_in_app_notifications_are_deduplicated_per_user_and_key(desk: Desk) -> None:
    first = desk.ok("notifications.send_in_app", {"user_id": "u-tech", "title": "SLA breach", "dedupe_key": "sla:1"})
    again = desk.ok("notifications.send_in_app", {"user_id": "u-tech", "title": "SLA breach!", "dedupe_key": "sla:1"})
    other = desk.ok("notifications.send_in_app", {"user_id": "u-tech2", "title": "SLA breach", "dedupe_key": "sla:1"})
    assert (first["deduplicated"], again["deduplicated"], other["deduplicated"]) == (False, True, False)
    assert again["notification_id"] == first["notification_id"] and len(desk.rows("notifications")) == 2
    assert desk.fail("notifications.send_in_app", {"user_id": "globex-u-tech", "title": "x"}).code == "NOT_FOUND"


def test_scheduling_assign_user_uses_the_schedule_service_and_its_conflict_modes(desk: Desk) -> None:
    t = desk.ticket(title="Printer jam")
    window = {"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z"}
    out = desk.ok("scheduling.assign_user", {"user_id": "u-tech", "work_item": {"type": "ticket",
                                                                               "id": t["ticket_id"]},
                                             "window": window})
    assert out["user_id"] == "u-tech" and out["work_item_id"] == t["ticket_id"] and not out["shifted"]
    assert desk.rows("schedule_entries")[0]["title"] == f"#{t['ticket_number']} Printer jam"
    assert len(desk.events("SCHEDULE_ENTRY_CREATED")) == 1
    busy = desk.fail("scheduling.assign_user", {"user_id": "u-tech", "work_item": {"type": "ticket",
                                                                                  "id": t["ticket_id"]},
                                                "window": window})
    assert busy.code == "CONFLICT"
    shifted = desk.ok("scheduling.assign_user", {"user_id": "u-tech", "work_item": {"type": "ticket",
                                                                                   "id": t["ticket_id"]},
                                                 "window": window, "conflict_mode": "shift"})
    assert shifted["shifted"] and shifted["scheduled_start"].startswith("2026-12-01T10:00")
    other = desk.ok("tickets.create", {"title": "theirs"}, tenant=OTHER)["ticket"]
    assert desk.fail("scheduling.assign_user", {"user_id": "u-tech", "work_item": {"type": "ticket",
                                                                                  "id": other["ticket_id"]},
                                                "window": window}).code == "NOT_FOUND"
