"""The four primary flows of the business-operations design, as the chained action calls a workflow makes."""

from __future__ import annotations

from psa_support import Desk


def test_email_to_ticket_triage(desk: Desk) -> None:
    """An email from a known contact becomes a triaged, assigned, acknowledged ticket."""
    sender, subject = "Peter@Initech.example", "Printer on fire"
    contact = desk.ok("contacts.find", {"email": sender})["contact"]
    client = desk.ok("clients.find", {"client_id": contact["client_id"]})["client"]
    ticket = desk.ok("tickets.create", {"title": subject, "description": "It is really on fire.",
                                        "client_id": client["client_id"], "contact_id": contact["contact_id"],
                                        "source": "email", "source_ref": "<m-1@initech.example>",
                                        "priority": "high", "tags": ["hardware"]})["ticket"]
    desk.ok("tickets.add_comment", {"ticket_id": ticket["ticket_id"], "is_internal": True,
                                    "body": "Triage: hardware, high priority (keywords: fire)."})
    assigned = desk.ok("tickets.assign", {"ticket_id": ticket["ticket_id"], "queue": "Hardware",
                                          "assigned_user_id": "u-tech", "expected_version": ticket["version"]})
    ack = desk.ok("email.send", {"to": [contact["email"]], "subject": f"[#{ticket['ticket_number']}] {subject}",
                                 "body_text": "We're on it.", "ticket_id": ticket["ticket_id"]})
    note = desk.ok("notifications.send_in_app", {"user_id": "u-tech", "title": f"New ticket #{ticket['ticket_number']}",
                                                 "dedupe_key": f"ticket:{ticket['ticket_id']}:assigned"})
    assert assigned["ticket"]["queue"] == "Hardware" and ack["status"] == "queued" and not note["deduplicated"]
    again = desk.ok("tickets.find", {"source": "email", "source_ref": "<m-1@initech.example>"})["tickets"]
    assert [t["ticket_id"] for t in again] == [ticket["ticket_id"]] and again[0]["untouched"] is True
    assert [e["payload"]["source"] for e in desk.events("TICKET_CREATED")] == ["email"]


def test_sla_breach_escalation(desk: Desk) -> None:
    """An open, untouched ticket past its SLA is raised, handed to the escalation queue and people are told,
    once, however often the check runs."""
    breached = desk.ticket(title="VPN down", priority="medium", client_id="c-1")
    worked = desk.ticket(title="Slow PC")
    desk.ok("tickets.add_comment", {"ticket_id": worked["ticket_id"], "body": "Looking", "author_kind": "human"})
    for _ in range(2):  # the SLA check runs every few minutes
        candidates = [t for t in desk.ok("tickets.find", {"state": "open"})["tickets"] if t["untouched"]]
        assert [t["ticket_id"] for t in candidates] == [breached["ticket_id"]]
        t = candidates[0]
        if t["priority"] != "critical":
            t = desk.ok("tickets.update_fields", {"ticket_id": t["ticket_id"], "expected_version": t["version"],
                                                  "fields": {"priority": "critical", "tags": ["sla-breach"]}}
                        )["ticket"]
            t = desk.ok("tickets.assign", {"ticket_id": t["ticket_id"], "queue": "Escalations",
                                           "assigned_user_id": "u-tech2"})["ticket"]
            desk.ok("tickets.add_comment", {"ticket_id": t["ticket_id"], "is_internal": True,
                                            "body": "SLA breached: escalated."})
        desk.ok("notifications.send_in_app", {"user_id": "u-tech2", "title": f"SLA breach #{t['ticket_number']}",
                                              "dedupe_key": f"sla:{t['ticket_id']}"})
    assert len(desk.rows("notifications")) == 1
    final = desk.ok("tickets.find", {"ticket_id": breached["ticket_id"]})["tickets"][0]
    assert (final["priority"], final["queue"], final["assigned_user_id"]) == ("critical", "Escalations", "u-tech2")
    assert final["untouched"] is True  # automation's own changes do not count


def test_auto_scheduling_dispatch(desk: Desk) -> None:
    """Unassigned open tickets are put on the technicians' board, shifting past what is already booked."""
    first, second = desk.ticket(title="Install printer"), desk.ticket(title="Replace disk")
    window = {"start": "2026-12-02T09:00:00Z", "end": "2026-12-02T10:00:00Z"}
    booked = []
    for t in reversed(desk.ok("tickets.find", {"state": "open"})["tickets"]):
        if t["assigned_user_id"] is None:
            entry = desk.ok("scheduling.assign_user", {"user_id": "u-tech", "window": window,
                                                       "conflict_mode": "shift",
                                                       "work_item": {"type": "ticket", "id": t["ticket_id"]}})
            desk.ok("tickets.assign", {"ticket_id": t["ticket_id"], "assigned_user_id": "u-tech",
                                       "expected_version": t["version"]})
            desk.ok("notifications.send_in_app", {"user_id": "u-tech", "title": f"Scheduled: {t['title']}",
                                                  "dedupe_key": f"dispatch:{entry['entry_id']}"})
            booked.append((t["ticket_id"], entry["scheduled_start"][:16], entry["shifted"]))
    assert booked == [(first["ticket_id"], "2026-12-02T09:00", False), (second["ticket_id"], "2026-12-02T10:00", True)]
    assert len(desk.events("SCHEDULE_ENTRY_CREATED")) == 2


def test_post_resolution_follow_up(desk: Desk) -> None:
    """A resolved ticket gets its time logged, is closed with a public note, and the contact a follow-up."""
    t = desk.ticket(title="Email not syncing", client_id="c-1", contact_id="p-1")
    desk.ok("time.create_entry", {"user_id": "u-tech", "work_item": {"type": "ticket", "id": t["ticket_id"]},
                                  "started_at": "2026-12-01T13:00:00Z", "duration_minutes": 45,
                                  "notes": "Rebuilt the profile"})
    closed = desk.ok("tickets.close", {"ticket_id": t["ticket_id"], "resolution": "Outlook profile rebuilt",
                                       "public_note": "Fixed: your mail syncs again."})
    event = desk.events("TICKET_CLOSED")[0]["payload"]  # what the follow-up workflow is triggered by
    assert event["ticket_id"] == t["ticket_id"] and closed["ticket"]["untouched"] is False
    contact = desk.ok("contacts.find", {"contact_id": t["contact_id"]})["contact"]
    mail = desk.ok("email.send", {"to": [contact["email"]], "subject": f"How did we do on #{event['ticket_number']}?",
                                  "body_text": "Rate us: https://survey.example/1", "ticket_id": t["ticket_id"]})
    desk.ok("crm.create_activity_note", {"entity": {"type": "contact", "id": contact["contact_id"]},
                                         "note_type": "follow_up", "body": f"Survey sent ({mail['message_id']})"})
    assert [n["note_type"] for n in desk.rows("activity_notes")] == ["follow_up"]
    actions = [a["action_id"] for a in desk.rows("audit_log")]
    assert actions.count("tickets.close") == 1 and "email.send" in actions and "crm.create_activity_note" in actions
