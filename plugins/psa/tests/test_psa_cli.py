"""``mspflow tickets list`` and ``show``, as an operator runs them after workflows worked a ticket."""

from __future__ import annotations

import json
from pathlib import Path

from mspflow.testing.cli import cli_env, run_cli


def test_an_operator_lists_and_reads_tickets(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", plugin="psa")

    def run(action: str, payload: dict[str, object], tenant: str = "acme") -> dict:
        out = run_cli(env, "run", action, "--tenant", tenant, "--input", json.dumps(payload), "--json")
        return json.loads(out.stdout)["output"]

    first = run("tickets.create", {"title": "Printer on fire", "priority": "high", "source": "email",
                                   "source_ref": "m-1"})["ticket"]
    second = run("tickets.create", {"title": "Slow PC"})["ticket"]
    run("tickets.create", {"title": "Not yours"}, tenant="globex")
    run("tickets.add_comment", {"ticket_id": first["ticket_id"], "body": "Extinguished.", "is_internal": True})
    run("tickets.close", {"ticket_id": first["ticket_id"], "resolution": "Replaced the printer"})

    listed = json.loads(run_cli(env, "tickets", "list", "--tenant", "acme", "--json").stdout)["tickets"]
    assert [(t["ticket_number"], t["status"]) for t in listed] == [("2", "New"), ("1", "Resolved")]
    open_only = json.loads(run_cli(env, "tickets", "list", "--tenant", "acme", "--status", "new", "--json").stdout)
    assert [t["ticket_id"] for t in open_only["tickets"]] == [second["ticket_id"]]
    table = run_cli(env, "tickets", "list", "--tenant", "acme").stdout
    assert "Printer on fire" in table and "Not yours" not in table

    shown = json.loads(run_cli(env, "tickets", "show", "acme", "1", "--json").stdout)["ticket"]
    assert shown["resolution"] == "Replaced the printer" and shown["comments"][0]["body"] == "Extinguished."
    text = run_cli(env, "tickets", "show", "acme", "1").stdout
    assert "#1 Printer on fire" in text and "(internal)" in text and "source_ref: m-1" in text
    missing = run_cli(env, "tickets", "show", "acme", "99", ok=False)
    assert missing.returncode == 1 and "has no ticket '99'" in missing.stderr and "Traceback" not in missing.stderr
