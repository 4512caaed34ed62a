"""`mspflow alerts ...` as a separate process on the embedded default: rules, windows, alerts, ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mspflow_tacticalrmm.sim import FILESERVER_ID, TacticalRMMSimulator

MSPFLOW = str(Path(sys.executable).with_name("mspflow"))


class Cli:
    def __init__(self, home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
        self.env |= {"MSPFLOW_HOME": str(home), "MSPFLOW_LOAD_PLUGINS": "psa,ninjaone,tacticalrmm", "COLUMNS": "200"}

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([MSPFLOW, *args], input=stdin, capture_output=True, text=True, env=self.env,
                              timeout=120, check=False)

    def json(self, *args: str, stdin: str = "") -> Any:
        done = self(*args, "--json", stdin=stdin)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def test_rules_are_added_listed_reordered_updated_and_deleted_with_clear_errors(cli: Cli) -> None:
    bad = cli("alerts", "rules", "add", "--tenant", "acme", "--name", "disks", "--conditions",
              '{"message_regex": "disk ("}')
    assert bad.returncode == 1 and bad.stderr.startswith("error: invalid rule: conditions.message_regex: not a valid "
                                                         "regular expression")
    assert "Traceback" not in bad.stderr
    not_json = cli("alerts", "rules", "add", "--tenant", "acme", "--name", "x", "--actions", "{oops")
    assert not_json.returncode == 1 and "--actions is not valid JSON" in not_json.stderr
    disks = cli.json("alerts", "rules", "add", "--tenant", "acme", "--name", "disks", "--priority", "20",
                     "--conditions", '{"keywords": ["disk"]}', "--actions", '{"create_ticket": {"board": "Alerts"}}')
    rest = cli.json("alerts", "rules", "add", "--tenant", "acme", "--name", "the rest")
    assert [r["name"] for r in cli.json("alerts", "rules", "list", "--tenant", "acme")] == ["disks", "the rest"]
    cli.json("alerts", "rules", "reorder", "--tenant", "acme", rest["rule_id"], disks["rule_id"])
    assert [r["name"] for r in cli.json("alerts", "rules", "list", "--tenant", "acme")] == ["the rest", "disks"]
    updated = cli.json("alerts", "rules", "update", "--tenant", "acme", disks["rule_id"], "--inactive")
    assert updated["is_active"] is False and updated["conditions"] == {"keywords": ["disk"]}
    assert cli("alerts", "rules", "delete", "--tenant", "acme", rest["rule_id"]).returncode == 0
    missing = cli("alerts", "rules", "delete", "--tenant", "other", disks["rule_id"])
    assert missing.returncode == 1 and "no alert rule" in missing.stderr


def test_windows_are_validated_when_added(cli: Cli) -> None:
    bad = cli("alerts", "windows", "add", "--tenant", "acme", "--name", "nightly", "--weekdays", "2",
              "--start-time", "22:00", "--duration-minutes", "120", "--timezone", "Mars/Olympus")
    assert bad.returncode == 1 and "timezone: unknown time zone 'Mars/Olympus'" in bad.stderr
    added = cli.json("alerts", "windows", "add", "--tenant", "acme", "--name", "nightly", "--weekdays", "2,3",
                     "--start-time", "22:00", "--duration-minutes", "120", "--timezone", "Europe/Berlin",
                     "--provider", "tacticalrmm")
    assert added["weekdays"] == [2, 3] and added["recurrence"] == "weekly"
    listed = cli("alerts", "windows", "list", "--tenant", "acme")
    assert "weekly on [2, 3] at 22:00 for 120 min (Europe/Berlin)" in listed.stdout
    assert cli("alerts", "windows", "delete", "--tenant", "acme", added["window_id"]).returncode == 0


def test_a_tactical_webhook_payload_is_ingested_into_a_ticket_and_listed(cli: Cli, tmp_path: Path) -> None:
    cli.json("alerts", "rules", "add", "--tenant", "acme", "--name", "all", "--actions",
             '{"create_ticket": {"board": "Alerts"}, "auto_resolve_ticket": true}')
    sim = TacticalRMMSimulator()
    alert = sim.add_alert(FILESERVER_ID, message="Disk C: 2% free", check_id=17, check_name="Disk space C:")
    body = tmp_path / "alert.json"
    body.write_bytes(sim.webhook(alert))
    [decided] = cli.json("alerts", "ingest", "--tenant", "acme", "--provider", "tacticalrmm", str(body))
    assert decided["outcome"] == "ticket_created" and decided["ticket_id"]
    again = cli.json("alerts", "ingest", "--tenant", "acme", "--provider", "tacticalrmm", "-", stdin=body.read_text())
    assert again[0]["outcome"] == "duplicate"
    [listed] = cli.json("alerts", "list", "--tenant", "acme", "--status", "active")
    assert listed["ticket_id"] == decided["ticket_id"] and listed["dedup_key"] == f"{FILESERVER_ID}|check:17"
    bad = cli("alerts", "list", "--tenant", "acme", "--status", "open")
    assert bad.returncode == 1 and "--status must be one of active, acknowledged, suppressed, resolved" in bad.stderr
    resolved = tmp_path / "resolved.json"
    resolved.write_bytes(sim.webhook(alert, "resolve"))
    [reset] = cli.json("alerts", "ingest", "--tenant", "acme", "--provider", "tacticalrmm", str(resolved))
    assert reset["outcome"] == "resolved_ticket_closed"
