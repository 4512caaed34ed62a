"""The six Huntress actions against the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from mspflow_huntress.sim import (
    CLOSED_ID,
    CONTOSO,
    FABRIKAM,
    FILESERVER,
    FRONTDESK,
    MACBOOK,
    PENDING_ID,
    SENT_ID,
    STATUSES,
)


def params(hunt: Any, index: int = -1) -> dict[str, str]:
    return dict(hunt.sim.requests[index].url.params)


# -- huntress.incidents.find ------------------------------------------------------------------------------


def test_find_lists_reports_newest_first_without_bodies(hunt: Any) -> None:
    out = hunt.ok("incidents.find")
    ids = [r["id"] for r in out["incident_reports"]]
    assert out["count"] == len(hunt.sim.reports) and ids == sorted(ids, reverse=True)
    assert {r["status"] for r in out["incident_reports"]} == set(STATUSES)
    assert "body" not in out["incident_reports"][0]
    assert hunt.sent() == [("GET", "/v1/incident_reports")] and params(hunt) == {"limit": "500"}


@pytest.mark.parametrize(("filters", "expected"), [
    ({"status": "sent"}, {SENT_ID, PENDING_ID}),
    ({"severity": "critical"}, {PENDING_ID}),
    ({"agent_id": FRONTDESK}, {SENT_ID, CLOSED_ID}),
    ({"organization_id": CONTOSO, "status": "closed"}, {CLOSED_ID}),
    ({"indicator_type": "ransomware_canaries"}, {PENDING_ID}),
    ({"platform": "darwin", "status": "dismissed"}, set()),
])
def test_find_passes_each_filter_to_huntress(hunt: Any, filters: dict[str, Any], expected: set[int]) -> None:
    out = hunt.ok("incidents.find", filters)
    assert {r["id"] for r in out["incident_reports"]} == expected
    assert params(hunt) == {"limit": "500", **{k: str(v) for k, v in filters.items()}}


def test_find_refuses_values_huntress_does_not_document(hunt: Any) -> None:
    for bad in ({"status": "resolved"}, {"severity": "medium"}, {"platform": "ios"}, {"indicator_type": "x"},
                {"limit": 0}, {"agent_id": 0}):
        assert hunt.fail("incidents.find", bad).code == "VALIDATION_ERROR"
    assert hunt.sim.requests == []


def test_find_walks_pages_until_the_token_is_gone(hunt: Any) -> None:
    for i in range(1200):
        hunt.sim.add_report(100_000 + i, MACBOOK, severity="low")
    out = hunt.ok("incidents.find", {"severity": "low", "limit": 2000})
    assert out["count"] == len([r for r in hunt.sim.reports.values() if r["severity"] == "low"])
    assert len({r["id"] for r in out["incident_reports"]}) == out["count"]
    sent = [dict(r.url.params) for r in hunt.sim.requests]
    assert [p.get("page_token") for p in sent] == [None, "500", "1000"]
    assert all(p["limit"] == "500" and p["severity"] == "low" for p in sent)


def test_find_stops_paging_once_the_limit_is_reached(hunt: Any) -> None:
    for i in range(700):
        hunt.sim.add_report(100_000 + i, MACBOOK)
    out = hunt.ok("incidents.find", {"limit": 501})
    assert out["count"] == 501 and len(hunt.sim.requests) == 2


# -- huntress.incidents.get -------------------------------------------------------------------------------


def test_get_returns_the_report_with_its_body(hunt: Any) -> None:
    report = hunt.ok("incidents.get", {"incident_report_id": SENT_ID})["incident_report"]
    assert report["id"] == SENT_ID and report["agent_id"] == FRONTDESK and report["organization_id"] == CONTOSO
    assert report["status"] == "sent" and report["severity"] == "high" and report["body"].startswith("<p>")
    assert report["indicator_types"] == ["footholds"] and report["indicator_counts"] == {"footholds": 1}
    assert hunt.sent() == [("GET", f"/v1/incident_reports/{SENT_ID}")]


def test_get_unknown_report_is_not_found(hunt: Any) -> None:
    err = hunt.fail("incidents.get", {"incident_report_id": 424242})
    assert err.code == "NOT_FOUND" and "Incident Report not found" in err.message


def test_basic_auth_carries_the_key_pair_and_never_leaks_it(hunt: Any) -> None:
    hunt.ok("account.get")
    pair = f"{hunt.sim.api_key}:{hunt.sim.api_secret}".encode()
    assert hunt.sim.requests[0].headers["Authorization"] == "Basic " + base64.b64encode(pair).decode()
    hunt.use_keys(hunt.sim.api_key, "wrong-secret-value")
    err = hunt.fail("account.get")
    assert err.code == "PERMISSION_DENIED" and err.details["status"] == 401
    assert "wrong-secret-value" not in json.dumps(err.to_dict())


def test_missing_secret_names_it(hunt: Any) -> None:
    hunt.delete_secret("huntress_api_secret")
    err = hunt.fail("account.get")
    assert err.code == "INTEGRATION_INACTIVE" and "'huntress_api_secret'" in err.message


# -- huntress.incidents.resolve ---------------------------------------------------------------------------


@pytest.mark.parametrize("status_after", ["closed", "resolved", "something_new"])
def test_resolve_posts_no_body_and_passes_the_status_through(hunt: Any, status_after: str) -> None:
    hunt.sim.resolved_status = status_after
    out = hunt.ok("incidents.resolve", {"incident_report_id": SENT_ID})
    assert out["resolved"] is True and out["incident_report_id"] == SENT_ID and out["status"] == status_after
    assert out["incident_report"]["status"] == status_after and out["incident_report"]["closed_at"]
    assert hunt.sent() == [("POST", f"/v1/incident_reports/{SENT_ID}/resolution")]
    assert hunt.sim.requests[0].content == b"" and hunt.sim.resolutions[SENT_ID] == 1


def test_resolve_with_the_read_only_account_key_says_what_key_is_needed(hunt: Any) -> None:
    hunt.use_readonly_key()
    assert hunt.ok("incidents.get", {"incident_report_id": SENT_ID})  # reading is fine
    err = hunt.fail("incidents.resolve", {"incident_report_id": SENT_ID})
    assert err.code == "PERMISSION_DENIED" and not err.retryable
    assert err.details["reason"] == "READ_ONLY_KEY" and err.details["status"] == 403
    assert "read-only" in err.message and "user-based" in err.message and "huntress_api_key" in err.message
    assert hunt.sim.readonly_secret not in json.dumps(err.to_dict()) and hunt.sim.resolutions[SENT_ID] == 0


def test_resolve_with_a_pending_remediation_is_a_conflict(hunt: Any) -> None:
    err = hunt.fail("incidents.resolve", {"incident_report_id": PENDING_ID})
    assert err.code == "CONFLICT" and not err.retryable and err.details["status"] == 409
    assert err.details["reason"] == "REMEDIATIONS_NOT_APPROVED" and "approve" in err.message
    assert hunt.sim.reports[PENDING_ID]["status"] == "sent"


@pytest.mark.parametrize("report_id", [CLOSED_ID, 90004])
def test_resolve_a_report_that_is_not_sent_is_a_conflict(hunt: Any, report_id: int) -> None:
    err = hunt.fail("incidents.resolve", {"incident_report_id": report_id})
    assert err.code == "CONFLICT" and not err.retryable and err.details["status"] == 422
    assert err.details["reason"] == "NOT_SENT" and "'sent'" in err.message


def test_resolve_unknown_report_is_not_found(hunt: Any) -> None:
    err = hunt.fail("incidents.resolve", {"incident_report_id": 424242})
    assert err.code == "NOT_FOUND" and hunt.sim.resolutions == {}


def test_resolve_replays_instead_of_resolving_twice(hunt: Any) -> None:
    step = {"run_id": "run-1", "step_path": "steps.resolve"}
    first = hunt.run("incidents.resolve", {"incident_report_id": SENT_ID}, **step)
    again = hunt.run("incidents.resolve", {"incident_report_id": SENT_ID}, **step)
    assert first.ok and again.ok and again.replayed and again.output == first.output
    assert hunt.sim.resolutions[SENT_ID] == 1 and len(hunt.sim.requests) == 1


# -- huntress.organizations.list, agents.get, account.get ---------------------------------------------------


def test_organizations_list_and_filter(hunt: Any) -> None:
    out = hunt.ok("organizations.list")
    assert [o["name"] for o in out["organizations"]] == ["Northwind Traders", "Fabrikam", "Contoso"]
    contoso = out["organizations"][2]
    assert contoso == {"id": CONTOSO, "name": "Contoso", "key": "contoso", "agents_count": 2,
                       "incident_reports_count": 3, "created_at": contoso["created_at"],
                       "updated_at": contoso["updated_at"]}
    assert [o["id"] for o in hunt.ok("organizations.list", {"key": "fabrikam"})["organizations"]] == [FABRIKAM]
    assert params(hunt) == {"limit": "500", "key": "fabrikam"}
    assert hunt.ok("organizations.list", {"limit": 1})["count"] == 1


def test_agents_get(hunt: Any) -> None:
    agent = hunt.ok("agents.get", {"agent_id": FILESERVER})["agent"]
    assert agent["hostname"] == "FS-01" and agent["organization_id"] == CONTOSO and agent["platform"] == "windows"
    assert agent["os"] == "Windows Server 2022 Standard" and agent["defender_status"] == "Healthy"
    assert agent["mac_addresses"] == ["00:11:22:33:44:55"] and agent["tamper_protection_actual"] is True
    assert hunt.sent() == [("GET", f"/v1/agents/{FILESERVER}")]
    assert hunt.fail("agents.get", {"agent_id": 1}).code == "NOT_FOUND"


def test_account_get(hunt: Any) -> None:
    assert hunt.ok("account.get") == {"account": {"id": 7310, "name": "Contoso MSP", "subdomain": "contosomsp",
                                                  "status": "enabled", "support_type": "partner"}}
    assert hunt.sent() == [("GET", "/v1/account")]


def test_the_instance_url_overrides_the_base(hunt: Any) -> None:
    hunt.update_integration(instance_url="https://api.huntress.io/v1/")
    assert hunt.ok("account.get")["account"]["id"] == 7310 and hunt.sent() == [("GET", "/v1/account")]
