"""``mspflow demo`` as a person runs it, in a fresh directory: every story's outcome is read from what the
simulators recorded (``demo-simulators.json``) and from the database, never from the demo's printout."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from mspflow.testing.cli import MSPFLOW

STORIES = ["palettes", "disk-full-cleanup", "huntress-enrichment", "dispatcher-escalation", "outage-retry"]


def _demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}, **(env or {})}
    env |= {"MSPFLOW_HOME": str(tmp_path / "home"), "COLUMNS": "200",
            "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([MSPFLOW, "demo", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _requests(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    log = json.loads((tmp_path / "home" / "demo-simulators.json").read_text())
    return {provider: sim["requests"] for provider, sim in log["simulators"].items()}


def _asked(requests: list[dict[str, Any]], method: str, suffix: str, status: int | None = None) -> int:
    return sum(1 for r in requests if r["method"] == method and r["path"].endswith(suffix)
               and (status is None or r["status"] == status))


def _rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def check_outcomes(url: str, requests: dict[str, list[dict[str, Any]]]) -> None:
    """Every story's outcome, from the simulators' records and the database."""
    # palettes: one tenant connected to everything, the other to nothing with an expired Teams add-on
    integrations = _rows(url, "SELECT tenant, provider, is_active FROM rmm_integrations")
    assert {p for t, p, active in integrations if t == "demo-connected" and active} == \
        {"huntress", "levelio", "ninjaone", "tacticalrmm"}
    assert not [p for t, p, active in integrations if t == "demo-disconnected" and active]
    [(expires_at,)] = _rows(url, "SELECT expires_at FROM tenant_addons WHERE tenant = 'demo-disconnected' "
                                 "AND addon_key = 'teams'")
    assert expires_at is not None
    runs = {name: (status, attempt) for name, status, attempt in _rows(
        url, "SELECT workflow_name, status, attempt FROM workflow_runs WHERE tenant = 'demo-connected'")}
    assert runs == {"disk-full-cleanup": ("SUCCEEDED", 1), "huntress-enrichment": ("SUCCEEDED", 1),
                    "dispatcher-escalation": ("SUCCEEDED", 1), "outage-retry": ("SUCCEEDED", 2)}
    # disk-full: each of the two alerts became a ticket by the rule, the clean-up script ran once on each
    # agent, its output is the ticket's one self-remediation note, the alerts reset; the untouched ticket
    # closed, the one a technician wrote on stays open
    for agent in ("frontdesk", "fileserver"):
        assert sum(1 for r in requests["tacticalrmm"] if r["method"] == "POST" and r["status"] == 200
                   and r["path"].endswith(f"{agent}/runscript/")) == 1
    alerts = _rows(url, "SELECT a.status, a.ticket_id, t.source, t.closed_at FROM rmm_alerts a JOIN tickets t "
                        "ON t.tenant = a.tenant AND t.ticket_id = a.ticket_id "
                        "WHERE a.tenant = 'demo-connected' AND a.provider = 'tacticalrmm' ORDER BY t.ticket_number")
    assert [(status, source) for status, _, source, _ in alerts] == [("resolved", "rmm_alert")] * 2
    closed = {ticket_id: closed_at is not None for _, ticket_id, _, closed_at in alerts}
    for ticket_id, is_closed in closed.items():
        comments = _rows(url, "SELECT body, author_kind FROM ticket_comments WHERE tenant = 'demo-connected' "
                              "AND ticket_id = :t", t=ticket_id)
        notes = [body for body, kind in comments if kind == "automation" and body.startswith("Self-remediation")]
        assert len(notes) == 1 and "Removed 42 files" in notes[0]
        human = [body for body, kind in comments if kind == "human"]
        assert is_closed == (not human)  # closed exactly when no technician wrote on it
    assert sorted(closed.values()) == [False, True]
    # Huntress: the incident and its agent were read, the incident resolved once
    assert _asked(requests["huntress"], "GET", "/incident_reports/90001") >= 1
    assert _asked(requests["huntress"], "POST", "/incident_reports/90001/resolution", 201) == 1
    [(huntress_ticket,)] = _rows(url, "SELECT ticket_id FROM tickets WHERE tenant = 'demo-connected' "
                                      "AND source = 'huntress'")
    summaries = _rows(url, "SELECT body FROM ticket_comments WHERE tenant = 'demo-connected' AND ticket_id = :t",
                      t=huntress_ticket)
    assert [b for (b,) in summaries] == ["Huntress high: Foothold on FRONTDESK-01 on FRONTDESK-01 "
                                         "(Windows 11 Pro, Defender Healthy)."]
    # dispatcher: one schedule entry for the on-call technician, its outbox event, one channel post, one
    # activity-feed notification
    teams = requests["teams"]
    assert _asked(teams, "POST", "/v3/conversations", 201) == 1  # the post to the service-desk channel
    assert _asked(teams, "POST", "/teamwork/sendActivityNotification", 204) == 1
    entries = _rows(url, "SELECT title FROM schedule_entries WHERE tenant = 'demo-connected' ORDER BY title")
    assert [t for (t,) in entries] == ["Maintenance reboot: device 1041", "On-site: T-1001"]
    events = _rows(url, "SELECT event_type FROM outbox_events WHERE tenant = 'demo-connected' "
                        "AND event_type = 'SCHEDULE_ENTRY_CREATED'")
    assert len(events) == 2
    # outage: the reboot met a 503, the retry sent it once; the window was booked once (above)
    ninja = requests["ninjaone"]
    assert _asked(ninja, "POST", "/reboot/NORMAL", 503) >= 1
    assert _asked(ninja, "POST", "/v2/device/1041/reboot/NORMAL", 204) == 1


def test_the_demo_in_a_fresh_directory_runs_every_story_and_a_second_demo_repeats_no_side_effect(
        tmp_path: Path) -> None:
    result = _demo(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(s["name"], s["ok"]) for s in data["stories"]] == [(name, True) for name in STORIES]
    assert all(isinstance(s["steps"], list) and s["steps"] for s in data["stories"])
    url = f"sqlite:///{tmp_path / 'home' / 'mspflow.sqlite3'}"
    first = _requests(tmp_path)
    check_outcomes(url, first)

    again = _demo(tmp_path, "--json")
    assert again.returncode == 0, again.stderr
    assert all(s["replayed"] for s in json.loads(again.stdout)["stories"][1:])
    side_effects = [r for reqs in _requests(tmp_path).values() for r in reqs if r["method"] != "GET"]
    assert side_effects == []  # the simulators were asked nothing this time
    check_outcomes(url, first)  # the database holds the same: one run, entry and event each

    human = _demo(tmp_path)
    assert human.returncode == 0, human.stderr
    assert "Palettes side by side" in human.stdout and "addon_missing" in human.stdout
    assert "Run history" in human.stdout and "mspflow runs list --tenant demo-connected" in human.stdout



@pytest.mark.postgres
@pytest.mark.redis
def test_the_demo_on_postgresql_and_redis_runs_the_same_stories_on_worker_processes(
        tmp_path: Path, postgresql_url: str, redis_url: str) -> None:
    args = ("--json", "--database", postgresql_url, "--broker", redis_url, "--workers", "2")
    refused = _demo(tmp_path, *args)  # PostgreSQL keeps tenant secrets only with a key, and says so first
    assert refused.returncode == 1 and "MSPFLOW_SECRET_KEY" in refused.stderr
    result = _demo(tmp_path, *args, env={"MSPFLOW_SECRET_KEY": Fernet.generate_key().decode()})
    assert result.returncode == 0, result.stderr + result.stdout[:6000]
    data = json.loads(result.stdout)
    assert [(s["name"], s["ok"]) for s in data["stories"]] == [(name, True) for name in STORIES]
    check_outcomes(postgresql_url, _requests(tmp_path))
    owners = _rows(postgresql_url, "SELECT DISTINCT lease_owner FROM workflow_action_invocations "
                                   "WHERE run_id IN (SELECT run_id FROM workflow_runs)")
    demo_pid = data["pid"]
    assert owners and all(owner and f":{demo_pid}:" not in owner for (owner,) in owners)  # the workers ran them


def test_the_workers_simulator_routes_point_only_at_loopback() -> None:
    from mspflow.vendor.transport import mount_routes, mounted, unmount

    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        mount_routes({"https://api.huntress.io": "http://10.0.0.5:8080"})
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        mount_routes({"https://api.huntress.io": "https://127.0.0.1:8080"})
    mount_routes({"https://api.huntress.io": "http://127.0.0.1:8080"})
    assert mounted("https://api.huntress.io") is not None
    unmount()
