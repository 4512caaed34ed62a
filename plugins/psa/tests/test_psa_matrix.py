"""Every one of the 18 actions: a host's permission checker can deny it, a replay of a mutating call changes
nothing, another tenant's ids are not found. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from psa_support import OTHER, Desk

from mspflow import hookimpl
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.plugins import Plugins

WINDOW = {"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z"}
Make = Callable[[Desk, str], dict[str, Any]]


def _ticket(d: Desk, tenant: str) -> str:
    return str(d.ok("tickets.create", {"title": "t"}, tenant=tenant)["ticket"]["ticket_id"])


def _project(d: Desk, tenant: str) -> str:
    d.add("Project", tenant=tenant, project_id=f"pr-{tenant}", name="p")
    return f"pr-{tenant}"


def _user(tenant: str) -> str:
    return "u-tech" if tenant != OTHER else "globex-u-tech"


#: action id -> (mutating, make a valid input for `tenant` (ids of that tenant)).
ACTIONS: dict[str, tuple[bool, Make]] = {
    "tickets.create": (True, lambda d, t: {"title": "x", "client_id": "c-1" if t != OTHER else "globex-c-1"}),
    "tickets.add_comment": (True, lambda d, t: {"ticket_id": _ticket(d, t), "body": "hi"}),
    "tickets.update_fields": (True, lambda d, t: {"ticket_id": _ticket(d, t), "expected_version": 1,
                                                  "fields": {"priority": "high"}}),
    "tickets.assign": (True, lambda d, t: {"ticket_id": _ticket(d, t), "assigned_user_id": _user(t)}),
    "tickets.close": (True, lambda d, t: {"ticket_id": _ticket(d, t), "resolution": "done", "public_note": "ok"}),
    "tickets.link_entities": (True, lambda d, t: {"ticket_id": _ticket(d, t),
                                                  "links": [{"entity_type": "external", "entity_id": "e-1"}]}),
    "tickets.add_attachment": (True, lambda d, t: {"ticket_id": _ticket(d, t), "file_name": "a.txt",
                                                   "content_base64": base64.b64encode(b"abc").decode()}),
    "tickets.find": (False, lambda d, t: {"ticket_id": _ticket(d, t)}),
    "clients.find": (False, lambda d, t: {"client_id": "c-1" if t != OTHER else "globex-c-1"}),
    "clients.search": (False, lambda d, t: {"query": "init"}),
    "contacts.find": (False, lambda d, t: {"contact_id": "p-1" if t != OTHER else "globex-p-1"}),
    "contacts.search": (False, lambda d, t: {"client_id": "c-1" if t != OTHER else "globex-c-1"}),
    "email.send": (True, lambda d, t: {"to": ["a@b.example"], "subject": "s", "body_text": "b",
                                       "ticket_id": _ticket(d, t)}),
    "notifications.send_in_app": (True, lambda d, t: {"user_id": _user(t), "title": "hi"}),
    "scheduling.assign_user": (True, lambda d, t: {"user_id": _user(t), "window": WINDOW,
                                                   "work_item": {"type": "ticket", "id": _ticket(d, t)}}),
    "projects.create_task": (True, lambda d, t: {"project_id": _project(d, t), "name": "n"}),
    "time.create_entry": (True, lambda d, t: {"user_id": _user(t), "work_item": {"type": "ticket",
                                                                                 "id": _ticket(d, t)},
                                              "started_at": "2026-12-01T09:00:00Z", "duration_minutes": 15}),
    "crm.create_activity_note": (True, lambda d, t: {"entity": {"type": "client",
                                                                "id": "c-1" if t != OTHER else "globex-c-1"},
                                                     "body": "b"}),
}
#: What a search returns for another tenant's id: nothing (the ids are not this tenant's), never an error.
SEARCHES = {"tickets.find", "clients.search"}
TABLES = ["tickets", "ticket_comments", "ticket_attachments", "entity_links", "time_entries", "activity_notes",
          "project_tasks", "notifications", "email_messages", "schedule_entries", "outbox_events", "audit_log"]


def test_the_library_is_the_18_actions_of_the_contract(app: App) -> None:
    actions = {a.id: a for a in app.registry.actions.values()}
    assert set(ACTIONS) <= set(actions) and len(ACTIONS) == 18
    for action_id in ACTIONS:
        action = actions[action_id]
        assert action.version == 1 and action.permission and action.input_schema and action.output_schema
        assert action.side_effectful == ACTIONS[action_id][0]


def counts(desk: Desk) -> dict[str, int]:
    return {t: len(desk.rows(t)) for t in TABLES}


@pytest.mark.parametrize("action", [a for a, (mutating, _) in ACTIONS.items() if mutating])
def test_a_replayed_mutating_call_changes_nothing(desk: Desk, action: str) -> None:
    params = ACTIONS[action][1](desk, "acme")
    first = desk.ok(action, params, idempotency_key=f"replay-{action}")
    before = counts(desk)
    assert desk.ok(action, params, idempotency_key=f"replay-{action}") == first
    assert counts(desk) == before


@pytest.mark.parametrize("action", [a for a in ACTIONS if a not in SEARCHES | {"tickets.create"}])
def test_another_tenants_ids_are_not_found(desk: Desk, action: str) -> None:
    params = ACTIONS[action][1](desk, OTHER)
    assert desk.fail(action, params).code == "NOT_FOUND"


class Host:
    """A host whose RBAC denies every permission the PSA actions declare."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def register_permission_checker(self, register: Any) -> None:
        def check(session: Any, tenant: str, permission: str, call: Any) -> bool:
            self.asked.append(permission)
            return False

        register(check)


@pytest.fixture
def denied(db: Database) -> Iterator[tuple[Desk, Host]]:
    host = Host()
    app = App(db=db, plugins=Plugins(strict=True, extra=[("host", host)]))
    yield Desk(app), host
    app.close()


@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_hosts_permission_checker_can_deny_every_action(desk: Desk, denied: tuple[Desk, Host],
                                                            action: str) -> None:
    params = ACTIONS[action][1](desk, "acme")  # seeded through the permissive app
    before = counts(desk)
    deny, host = denied
    err = deny.fail(action, params)
    assert err.code == "PERMISSION_DENIED" and host.asked == [err.details["permission"]]
    assert counts(desk) == before
    declared = {a.id: a.permission for a in deny.app.registry.actions.values()}
    assert declared[action]


#: action id -> (an input with one bad value, the field path the error names).
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "tickets.create": ({"title": "x" * 1025}, "title"),
    "tickets.add_comment": ({"ticket_id": "t", "body": "x", "is_internal": "maybe"}, "is_internal"),
    "tickets.update_fields": ({"ticket_id": "t", "expected_version": 0, "fields": {"title": "x"}},
                              "expected_version"),
    "tickets.assign": ({"ticket_id": "t", "queue": ""}, "queue"),
    "tickets.close": ({"ticket_id": "t", "resolution": ""}, "resolution"),
    "tickets.link_entities": ({"ticket_id": "t", "links": []}, "links"),
    "tickets.add_attachment": ({"ticket_id": "t", "file_name": "a/b", "url": "https://x.example/a"}, "file_name"),
    "tickets.find": ({"state": "pending"}, "state"),
    "clients.find": ({"email": "x"}, "email"),
    "clients.search": ({"page_size": 0}, "page_size"),
    "contacts.find": ({"contact_id": ""}, "contact_id"),
    "contacts.search": ({"page": "two"}, "page"),
    "email.send": ({"to": ["nobody"], "subject": "s", "body_text": "b"}, "to.0"),
    "notifications.send_in_app": ({"user_id": "u", "title": ""}, "title"),
    "scheduling.assign_user": ({"user_id": "u", "work_item": {"type": "invoice", "id": "i"},
                                "window": WINDOW}, "work_item.type"),
    "projects.create_task": ({"project_id": "p", "name": "n", "due_at": "tomorrow"}, "due_at"),
    "time.create_entry": ({"user_id": "u", "work_item": {"type": "ticket", "id": "t"},
                           "started_at": "2026-12-01T09:00:00Z", "duration_minutes": 2000}, "duration_minutes"),
    "crm.create_activity_note": ({"entity": {"type": "client", "id": "c-1"}, "body": "b", "note_type": "gossip"},
                                 "note_type"),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_bad_input_is_a_validation_error_naming_the_field(desk: Desk, action: str) -> None:
    data, path = BAD[action]
    err = desk.fail(action, data)
    assert err.code == "VALIDATION_ERROR" and path in [f["path"] for f in err.details["fields"]], err.to_dict()


def test_the_business_operations_tile_is_in_every_tenants_palette(app: App) -> None:
    from mspflow.catalog import build_catalog

    with app.db.session() as s:
        catalog = build_catalog(app.registry, s, "brand-new-tenant")
    tile = next(r.to_json() for r in catalog.palette if r.module.group_key == "app:psa")
    assert tile["label"] == "Business Operations" and tile["available"] is True
    assert {a["id"] for a in tile["actions"]} == set(ACTIONS) - {"scheduling.assign_user"}
    assert {a["category"] for a in tile["actions"]} == {"Business Operations"}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_call_leaves_an_audit_entry(desk: Desk, action: str) -> None:
    result = desk.run(action, ACTIONS[action][1](desk, "acme"), run_id="run-audit")
    assert result.ok, result.error and result.error.to_dict()
    entries = [a for a in desk.rows("audit_log") if a["action_id"] == action and a["run_id"] == "run-audit"]
    assert len(entries) == 1 and entries[0]["action_version"] == 1
    assert entries[0]["invocation_id"] == result.invocation_id and entries[0]["actor"] == "service:mspflow"
