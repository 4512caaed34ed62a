"""tickets.*: the actions the alert pipeline and workflows rely on, on SQLite and PostgreSQL."""

from __future__ import annotations

from psa_support import OTHER, TENANT, Desk


def test_create_numbers_per_tenant_seeds_statuses_and_publishes_ticket_created(desk: Desk) -> None:
    first = desk.ticket(client_id="c-1", contact_id="p-1", priority="high", tags=["disk", "disk"],
                        source="rmm_alert", source_ref="alert-7", custom_fields={"site": "HQ"})
    second = desk.ticket()
    other = desk.ok("tickets.create", {"title": "Elsewhere"}, tenant=OTHER)["ticket"]
    assert (first["ticket_number"], second["ticket_number"], other["ticket_number"]) == ("1", "2", "1")
    assert first["status"] == "New" and not first["is_closed"] and first["version"] == 1
    assert first["tags"] == ["disk"] and first["custom_fields"] == {"site": "HQ"} and first["untouched"] is True
    events = desk.events("TICKET_CREATED")
    assert [e["payload"]["ticket_number"] for e in events if e["tenant"] == TENANT] == ["1", "2"]
    payload = events[0]["payload"]
    assert payload["ticket_id"] == first["ticket_id"] and payload["tenant"] == TENANT
    assert (payload["source"], payload["source_ref"]) == ("rmm_alert", "alert-7")
    audit = desk.rows("audit_log")
    assert {(a["action_id"], a["action_version"], a["target_ids"]["ticket_id"]) for a in audit} == {
        ("tickets.create", 1, first["ticket_id"]), ("tickets.create", 1, second["ticket_id"])}
    assert all(a["actor"] and a["run_id"] and a["created_at"] for a in audit)


def test_create_refuses_bad_input_with_field_paths_and_other_tenants_ids(desk: Desk) -> None:
    err = desk.fail("tickets.create", {"title": "", "tags": [""]})
    assert err.code == "VALIDATION_ERROR"
    assert {f["path"] for f in err.details["fields"]} == {"title", "tags.0"}
    err = desk.fail("tickets.create", {"title": "x", "status": "Bogus"})
    assert err.code == "VALIDATION_ERROR" and err.details["fields"][0]["path"] == "status"
    err = desk.fail("tickets.create", {"title": "x", "client_id": "globex-c-1"})
    assert err.code == "NOT_FOUND" and err.details["field"] == "client_id"
    err = desk.fail("tickets.create", {"title": "x", "assigned_user_id": "u-client"})
    assert err.code == "NOT_FOUND" and err.details["field"] == "assigned_user_id"
    assert desk.rows("tickets") == [] and desk.events("TICKET_CREATED") == []


def test_a_replayed_create_creates_nothing_new(desk: Desk) -> None:
    a = desk.ok("tickets.create", {"title": "Once"}, idempotency_key="k-1")
    b = desk.ok("tickets.create", {"title": "Once"}, idempotency_key="k-1")
    assert a == b and len(desk.rows("tickets")) == 1 and len(desk.events("TICKET_CREATED")) == 1


def test_comments_internal_and_public_and_what_touches_a_ticket(desk: Desk) -> None:
    t = desk.ticket()
    out = desk.ok("tickets.add_comment", {"ticket_id": t["ticket_id"], "body": "auto note", "is_internal": True})
    assert out["is_internal"] is True and out["author_kind"] == "automation"
    found = desk.ok("tickets.find", {"ticket_id": t["ticket_id"]})["tickets"]
    assert found[0]["untouched"] is True
    desk.ok("tickets.add_comment", {"ticket_id": t["ticket_id"], "body": "I'm on it", "author_kind": "human",
                                    "author_user_id": "u-tech"})
    assert desk.ok("tickets.find", {"ticket_id": t["ticket_id"]})["tickets"][0]["untouched"] is False
    assert desk.fail("tickets.add_comment", {"ticket_id": "nope", "body": "x"}).code == "NOT_FOUND"
    other = desk.ok("tickets.create", {"title": "theirs"}, tenant=OTHER)["ticket"]
    assert desk.fail("tickets.add_comment", {"ticket_id": other["ticket_id"], "body": "x"}).code == "NOT_FOUND"
    err = desk.fail("tickets.add_comment", {"ticket_id": t["ticket_id"], "body": "", "author_kind": "robot"})
    assert {f["path"] for f in err.details["fields"]} == {"body", "author_kind"}


def test_update_fields_uses_the_concurrency_token(desk: Desk) -> None:
    t = desk.ticket()
    out = desk.ok("tickets.update_fields", {"ticket_id": t["ticket_id"], "expected_version": 1,
                                            "fields": {"priority": "critical", "status": "In Progress",
                                                       "custom_fields": {"a": 1}}})["ticket"]
    assert (out["priority"], out["status"], out["version"], out["untouched"]) == ("critical", "In Progress", 2, True)
    err = desk.fail("tickets.update_fields", {"ticket_id": t["ticket_id"], "expected_version": 1,
                                              "fields": {"title": "stale"}})
    assert err.code == "CONFLICT" and err.details["current_version"] == 2 and not err.retryable
    out = desk.ok("tickets.update_fields", {"ticket_id": t["ticket_id"], "expected_version": 2,
                                            "fields": {"status": "Waiting"}, "actor_kind": "human"})["ticket"]
    assert out["untouched"] is False and out["version"] == 3
    err = desk.fail("tickets.update_fields", {"ticket_id": t["ticket_id"], "expected_version": 3, "fields": {}})
    assert err.code == "VALIDATION_ERROR"
    err = desk.fail("tickets.update_fields", {"ticket_id": t["ticket_id"], "expected_version": 3,
                                              "fields": {"client_id": "globex-c-1"}})
    assert err.code == "NOT_FOUND" and err.details["field"] == "fields.client_id"


def test_assign_checks_the_user_and_the_optional_token(desk: Desk) -> None:
    t = desk.ticket()
    out = desk.ok("tickets.assign", {"ticket_id": t["ticket_id"], "assigned_user_id": "u-tech", "queue": "L1"})
    assert (out["ticket"]["assigned_user_id"], out["ticket"]["queue"], out["ticket"]["version"]) == ("u-tech", "L1", 2)
    assert desk.fail("tickets.assign", {"ticket_id": t["ticket_id"], "assigned_user_id": "globex-u-tech"}
                     ).code == "NOT_FOUND"
    assert desk.fail("tickets.assign", {"ticket_id": t["ticket_id"], "assigned_user_id": "u-tech2",
                                        "expected_version": 1}).code == "CONFLICT"
    assert desk.fail("tickets.assign", {"ticket_id": t["ticket_id"]}).code == "VALIDATION_ERROR"


def test_close_with_resolution_and_public_note_publishes_ticket_closed(desk: Desk) -> None:
    t = desk.ticket(source="rmm_alert", source_ref="a-1")
    out = desk.ok("tickets.close", {"ticket_id": t["ticket_id"], "resolution": "Alert cleared",
                                    "public_note": "Resolved automatically."})
    assert out["ticket"]["is_closed"] and out["ticket"]["status"] == "Resolved"
    assert out["ticket"]["resolution"] == "Alert cleared" and out["ticket"]["closed_at"]
    comments = desk.rows("ticket_comments")
    assert [(c["body"], c["is_internal"], c["author_kind"]) for c in comments] == [
        ("Resolved automatically.", False, "automation")]
    closed = desk.events("TICKET_CLOSED")
    assert len(closed) == 1 and closed[0]["payload"]["ticket_number"] == t["ticket_number"]
    assert (closed[0]["payload"]["source"], closed[0]["payload"]["source_ref"]) == ("rmm_alert", "a-1")
    again = desk.fail("tickets.close", {"ticket_id": t["ticket_id"], "resolution": "again"})
    assert again.code == "CONFLICT" and again.details["reason"] == "ALREADY_CLOSED"
    t2 = desk.ticket()
    err = desk.fail("tickets.close", {"ticket_id": t2["ticket_id"], "resolution": "x", "status": "Waiting"})
    assert err.code == "VALIDATION_ERROR" and err.details["fields"][0]["path"] == "status"
    assert desk.fail("tickets.close", {"ticket_id": t2["ticket_id"], "resolution": "x", "expected_version": 9}
                     ).code == "CONFLICT"


def test_link_entities_checks_what_it_can_and_is_idempotent_per_entity(desk: Desk) -> None:
    t = desk.ticket()
    desk.add("Asset", tenant=TENANT, asset_id="as-1", name="WS-01")
    desk.add("Asset", tenant=OTHER, asset_id="as-9", name="theirs")
    links = [{"entity_type": "asset", "entity_id": "as-1"}, {"entity_type": "client", "entity_id": "c-1"},
             {"entity_type": "external", "entity_id": "ninja:123", "relation": "source"}]
    first = desk.ok("tickets.link_entities", {"ticket_id": t["ticket_id"], "links": links})
    assert [x["created"] for x in first["links"]] == [True, True, True]
    again = desk.ok("tickets.link_entities", {"ticket_id": t["ticket_id"], "links": links[:1]})
    assert again["links"][0]["created"] is False and again["links"][0]["link_id"] == first["links"][0]["link_id"]
    err = desk.fail("tickets.link_entities", {"ticket_id": t["ticket_id"],
                                              "links": [{"entity_type": "asset", "entity_id": "as-9"}]})
    assert err.code == "NOT_FOUND" and err.details["field"] == "links.0.entity_id"
    err = desk.fail("tickets.link_entities", {"ticket_id": t["ticket_id"], "links": [{"entity_type": "planet",
                                                                                      "entity_id": "x"}]})
    assert err.details["fields"][0]["path"] == "links.0.entity_type"
    found = desk.ok("tickets.find", {"linked_to": {"entity_type": "asset", "entity_id": "as-1"}})["tickets"]
    assert [f["ticket_id"] for f in found] == [t["ticket_id"]]


def test_find_by_source_reference_state_and_number_within_the_tenant(desk: Desk) -> None:
    a = desk.ticket(source="rmm_alert", source_ref="a-1")
    b = desk.ticket(source="rmm_alert", source_ref="a-2")
    desk.ok("tickets.create", {"title": "t", "source": "rmm_alert", "source_ref": "a-1"}, tenant=OTHER)
    desk.ok("tickets.close", {"ticket_id": b["ticket_id"], "resolution": "done"})
    got = desk.ok("tickets.find", {"source": "rmm_alert", "source_ref": "a-1"})["tickets"]
    assert [g["ticket_id"] for g in got] == [a["ticket_id"]] and got[0]["untouched"] is True
    assert [g["ticket_id"] for g in desk.ok("tickets.find", {"state": "open"})["tickets"]] == [a["ticket_id"]]
    assert [g["ticket_id"] for g in desk.ok("tickets.find", {"state": "closed"})["tickets"]] == [b["ticket_id"]]
    assert desk.ok("tickets.find", {"ticket_number": "2"})["tickets"][0]["ticket_id"] == b["ticket_id"]
    other = desk.ok("tickets.find", {}, tenant=OTHER)["tickets"]
    assert desk.ok("tickets.find", {"ticket_id": other[0]["ticket_id"]})["tickets"] == []
    assert desk.fail("tickets.find", {"limit": 0}).details["fields"][0]["path"] == "limit"


def test_tickets_created_at_once_get_distinct_numbers(desk: Desk) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: desk.run("tickets.create", {"title": f"t{i}"}), range(8)))
    assert all(r.ok for r in results), [r.error and r.error.to_dict() for r in results if not r.ok]
    assert sorted(int(r.output["ticket"]["ticket_number"]) for r in results if r.output) == list(range(1, 9))
