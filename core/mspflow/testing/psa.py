"""Conformance tests for a host that implements the business-operations actions on its own records.

mspflow names a PSA's tickets, clients, contacts, ... by action ids (``tickets.create``, ...); the reference
implementation is the ``mspflow-psa`` distribution. A host that owns tickets registers its own plugin with the
same ids and schemas instead, and proves it with one class in its test suite::

    from mspflow.testing.psa import PsaConformance

    class TestMyPsa(PsaConformance):
        @pytest.fixture
        def app(self):                      # an mspflow.App whose plugins include the host's implementation
            ...

What is checked: every action id of :data:`CONTRACT` is registered at version 1 with a declared permission,
the same side-effectfulness and (at least) the contract's input properties and required fields; and the
ticket behaviour the alert pipeline and workflows rely on — per-tenant numbers, ``untouched``, comments,
links, the concurrency token (``CONFLICT``), close (``TICKET_CREATED`` / ``TICKET_CLOSED`` outbox events with
ticket id, number, tenant, source and source reference), engine replay, and tenant isolation (``NOT_FOUND``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mspflow.app import App

__all__ = ["CONTRACT", "PsaConformance"]

#: action id -> (side-effectful, input properties a host must accept, of which required).
CONTRACT: dict[str, tuple[bool, set[str], set[str]]] = {
    "tickets.create": (True, {"title", "description", "client_id", "contact_id", "board", "status", "priority",
                              "assigned_user_id", "assigned_team_id", "queue", "tags", "custom_fields", "source",
                              "source_ref"}, {"title"}),
    "tickets.add_comment": (True, {"ticket_id", "body", "is_internal", "author_kind", "author_user_id"},
                            {"ticket_id", "body"}),
    "tickets.update_fields": (True, {"ticket_id", "expected_version", "fields", "actor_kind"},
                              {"ticket_id", "expected_version", "fields"}),
    "tickets.assign": (True, {"ticket_id", "assigned_user_id", "assigned_team_id", "queue", "expected_version"},
                       {"ticket_id"}),
    "tickets.close": (True, {"ticket_id", "resolution", "public_note", "status", "expected_version"},
                      {"ticket_id", "resolution"}),
    "tickets.link_entities": (True, {"ticket_id", "links"}, {"ticket_id", "links"}),
    "tickets.add_attachment": (True, {"ticket_id", "file_name", "content_base64", "url", "content_type"},
                               {"ticket_id", "file_name"}),
    "tickets.find": (False, {"ticket_id", "ticket_number", "source", "source_ref", "client_id", "linked_to",
                             "state", "limit"}, set()),
    "clients.find": (False, {"client_id", "email", "name"}, set()),
    "clients.search": (False, {"query", "include_inactive", "page", "page_size"}, set()),
    "contacts.find": (False, {"contact_id", "email"}, set()),
    "contacts.search": (False, {"query", "client_id", "include_inactive", "page", "page_size"}, set()),
    "email.send": (True, {"to", "cc", "subject", "body_text", "body_html", "reply_to", "ticket_id"},
                   {"to", "subject", "body_text"}),
    "notifications.send_in_app": (True, {"user_id", "title", "body", "link", "dedupe_key"}, {"user_id", "title"}),
    "scheduling.assign_user": (True, {"user_id", "work_item", "window", "title", "notes", "conflict_mode"},
                               {"user_id", "work_item", "window"}),
    "projects.create_task": (True, {"project_id", "name", "description", "assigned_user_id", "due_at"},
                             {"project_id", "name"}),
    "time.create_entry": (True, {"user_id", "work_item", "started_at", "duration_minutes", "notes", "billable"},
                          {"user_id", "work_item", "started_at", "duration_minutes"}),
    "crm.create_activity_note": (True, {"entity", "note_type", "body", "author_user_id"}, {"entity", "body"}),
}


class PsaConformance:
    """The conformance suite; subclass it and provide an ``app`` fixture (see the module docstring)."""

    tenant = "conformance-a"
    other_tenant = "conformance-b"

    # -- helpers -------------------------------------------------------------------------------------------

    def call(self, app: App, action: str, input: dict[str, Any], *, tenant: str | None = None,
             **kw: Any) -> dict[str, Any]:
        result = app.execute(action, tenant=tenant or self.tenant, input=input, **kw)
        assert result.ok, f"{action}: {result.error and result.error.to_dict()}"
        assert result.output is not None
        return result.output

    def error(self, app: App, action: str, input: dict[str, Any], *, tenant: str | None = None) -> Any:
        result = app.execute(action, tenant=tenant or self.tenant, input=input)
        assert not result.ok and result.error is not None, f"{action} should have failed: {result.output}"
        return result.error

    def events(self, app: App, event_type: str) -> list[dict[str, Any]]:
        from mspflow import outbox

        with app.db.session() as s:
            return [e["payload"] for e in outbox.pending(s, event_type=event_type, limit=1000, include_delivered=True)
                    if e["tenant"] == self.tenant]

    # -- the contract --------------------------------------------------------------------------------------

    def test_every_action_of_the_contract_is_registered_with_its_schema(self, app: App) -> None:
        actions = {a.id: a for a in app.registry.actions.values() if a.version == 1}
        for action_id, (mutating, properties, required) in CONTRACT.items():
            assert action_id in actions, f"{action_id}@1 is not registered"
            action = actions[action_id]
            assert action.permission, f"{action_id} declares no permission"
            assert action.side_effectful == mutating, f"{action_id}: side_effectful should be {mutating}"
            schema = action.input_schema
            missing = properties - set(schema.get("properties", {}))
            assert not missing, f"{action_id} does not accept {sorted(missing)}"
            assert set(schema.get("required", [])) <= required, \
                f"{action_id} requires more than the contract: {sorted(set(schema.get('required', [])) - required)}"

    def test_create_find_and_untouched(self, app: App) -> None:
        a = self.call(app, "tickets.create", {"title": "Disk full", "source": "rmm_alert", "source_ref": "al-1",
                                              "priority": "high", "tags": ["disk"]})["ticket"]
        b = self.call(app, "tickets.create", {"title": "Second"})["ticket"]
        assert a["ticket_number"] != b["ticket_number"] and a["version"] >= 1 and not a["is_closed"]
        found = self.call(app, "tickets.find", {"source": "rmm_alert", "source_ref": "al-1"})["tickets"]
        assert [t["ticket_id"] for t in found] == [a["ticket_id"]] and found[0]["untouched"] is True
        self.call(app, "tickets.add_comment", {"ticket_id": a["ticket_id"], "body": "auto", "is_internal": True})
        assert self.call(app, "tickets.find", {"ticket_id": a["ticket_id"]})["tickets"][0]["untouched"] is True
        self.call(app, "tickets.add_comment", {"ticket_id": a["ticket_id"], "body": "on it", "author_kind": "human"})
        assert self.call(app, "tickets.find", {"ticket_id": a["ticket_id"]})["tickets"][0]["untouched"] is False
        created = self.events(app, "TICKET_CREATED")
        assert {(e["ticket_id"], e["ticket_number"], e["tenant"], e["source"], e["source_ref"]) for e in created} >= {
            (a["ticket_id"], a["ticket_number"], self.tenant, "rmm_alert", "al-1")}

    def test_update_fields_refuses_a_stale_token(self, app: App) -> None:
        t = self.call(app, "tickets.create", {"title": "x"})["ticket"]
        new = self.call(app, "tickets.update_fields", {"ticket_id": t["ticket_id"], "expected_version": t["version"],
                                                       "fields": {"priority": "low"}})["ticket"]
        assert new["priority"] == "low" and new["version"] != t["version"]
        err = self.error(app, "tickets.update_fields", {"ticket_id": t["ticket_id"], "expected_version": t["version"],
                                                        "fields": {"priority": "high"}})
        assert err.code == "CONFLICT"

    def test_link_close_and_ticket_closed(self, app: App) -> None:
        t = self.call(app, "tickets.create", {"title": "x", "source": "rmm_alert", "source_ref": "al-2"})["ticket"]
        links = self.call(app, "tickets.link_entities", {"ticket_id": t["ticket_id"], "links": [
            {"entity_type": "external", "entity_id": "device-7"}]})["links"]
        assert links[0]["entity_id"] == "device-7"
        linked = self.call(app, "tickets.find", {"linked_to": {"entity_type": "external", "entity_id": "device-7"}})
        assert [x["ticket_id"] for x in linked["tickets"]] == [t["ticket_id"]]
        closed = self.call(app, "tickets.close", {"ticket_id": t["ticket_id"], "resolution": "cleared",
                                                  "public_note": "Fixed."})["ticket"]
        assert closed["is_closed"] and closed["resolution"] == "cleared"
        assert self.error(app, "tickets.close", {"ticket_id": t["ticket_id"], "resolution": "again"}).code == "CONFLICT"
        assert [x["ticket_id"] for x in self.call(app, "tickets.find", {"state": "open"})["tickets"]
                if x["ticket_id"] == t["ticket_id"]] == []
        event = next(e for e in self.events(app, "TICKET_CLOSED") if e["ticket_id"] == t["ticket_id"])
        assert (event["ticket_number"], event["source"], event["source_ref"]) == (
            t["ticket_number"], "rmm_alert", "al-2")

    def test_a_replayed_create_creates_nothing(self, app: App) -> None:
        first = self.call(app, "tickets.create", {"title": "once"}, idempotency_key="conformance-replay")
        again = self.call(app, "tickets.create", {"title": "once"}, idempotency_key="conformance-replay")
        assert first == again
        assert len(self.call(app, "tickets.find", {"limit": 500})["tickets"]) == 1

    def test_tenants_never_see_each_others_tickets(self, app: App) -> None:
        theirs = self.call(app, "tickets.create", {"title": "theirs"}, tenant=self.other_tenant)["ticket"]
        assert self.call(app, "tickets.find", {"ticket_id": theirs["ticket_id"]})["tickets"] == []
        for action, extra in (("tickets.add_comment", {"body": "x"}), ("tickets.close", {"resolution": "x"}),
                              ("tickets.link_entities", {"links": [{"entity_type": "external", "entity_id": "e"}]}),
                              ("tickets.update_fields", {"expected_version": 1, "fields": {"priority": "low"}})):
            err = self.error(app, action, {"ticket_id": theirs["ticket_id"], **extra})
            assert err.code == "NOT_FOUND", f"{action} on another tenant's ticket: {err.code}"

    def test_bad_input_names_its_field(self, app: App) -> None:
        err = self.error(app, "tickets.create", {"title": ""})
        assert err.code == "VALIDATION_ERROR" and [f["path"] for f in err.details["fields"]] == ["title"]

