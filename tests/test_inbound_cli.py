"""`mspflow serve`, `mspflow tenant webhook` and `mspflow inbound list|show|replay` as separate processes.

The embedded default (SQLite + in-process broker) out of the box, and production (PostgreSQL + Redis with
`mspflow serve --workers 2` beside `mspflow worker`), each with the test receivers installed as a
throwaway distribution.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.inbound.verify import sign
from mspflow.testing.live import free_port
from tests.distributions import Distributions
from tests.inbound_support import SOURCE, delivery, handled, hooks_plugin, journal, wait_final

MSPFLOW = str(Path(sys.executable).with_name("mspflow"))


class Cli:
    """The mspflow command in a clean environment with the test receivers installed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.servers: list[tuple[subprocess.Popen[str], list[str]]] = []

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MSPFLOW, *args], env=self.env, capture_output=True, text=True, timeout=120,
                              input=stdin, check=False)

    def start(self, *args: str, ready: str, count: int = 1) -> tuple[subprocess.Popen[str], list[str]]:
        """Start a long-running command; return once ``ready`` appeared ``count`` times on its stderr."""
        proc = subprocess.Popen([MSPFLOW, *args], env=self.env, text=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        lines: list[str] = []
        seen = threading.Semaphore(0)

        def drain() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)
                if ready in line:
                    seen.release()

        threading.Thread(target=drain, daemon=True).start()
        for _ in range(count):
            if not seen.acquire(timeout=120):
                proc.kill()
                raise AssertionError(f"{args[0]} did not become ready:\n{''.join(lines)}")
        self.servers.append((proc, lines))
        return proc, lines

    def stop(self) -> None:
        for proc, _ in self.servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def environment(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    return env | {"MSPFLOW_HOME": str(tmp / "home"), "MSPFLOW_STRICT_PLUGINS": "1",
                  "MSPFLOW_LOAD_PLUGINS": os.environ["MSPFLOW_LOAD_PLUGINS"],
                  "PYTHONPATH": os.environ["PYTHONPATH"]} | extra


@pytest.fixture
def installed(dists: Distributions) -> Distributions:
    dists.install("mspflow-hooks", "mspflow_hooks", SOURCE.read_text())
    return dists


@pytest.fixture
def cli(installed: Distributions, tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(environment(tmp_path))
    yield runner
    runner.stop()


def post(url: str, secret: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    return httpx.post(url, content=raw, timeout=60, headers={
        "Content-Type": "application/json", "X-Acme-Signature": sign(secret, raw, prefix="sha256=")})


def test_tenant_webhook_prints_the_url_and_creates_or_rotates_the_secret(cli: Cli) -> None:
    made = cli("tenant", "webhook", "acme-corp", "acme", "--base-url", "https://psa.example/mspflow/")
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert lines[0] == "acme-corp: acme webhook created"
    assert lines[1].startswith("URL:    https://psa.example/mspflow/hooks/acme/")
    token = lines[1].rsplit("/", 1)[1]
    assert len(token) >= 43 and lines[2].startswith("secret: ") and len(lines[2].split()[1]) == 64
    again = cli("tenant", "webhook", "acme-corp", "acme", "--json")
    data = json.loads(again.stdout)
    assert (data["created"], data["rotated"], data["secret"]) == (False, False, None)
    assert data["url"] == f"http://127.0.0.1:8000/hooks/acme/{token}" and "--base-url" in again.stderr
    rotated = json.loads(cli("tenant", "webhook", "acme-corp", "acme", "--rotate", "--json").stdout)
    assert rotated["rotated"] and rotated["path"] != data["path"] and len(rotated["secret"]) == 64
    given = cli("tenant", "webhook", "acme-corp", "tacky", "--secret-stdin", stdin="vendor-made-secret\n")
    assert "secret: stored as tacky_webhook_secret (encrypted)" in given.stdout
    shown = json.loads(cli("tenant", "show", "acme-corp", "--json").stdout)
    assert {"acme_webhook_secret", "tacky_webhook_secret"} <= set(shown["secrets"])
    unknown = cli("tenant", "webhook", "acme-corp", "kaseya")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == ("error: no installed plugin receives webhooks for 'kaseya'; "
                                      "known: acme, boom, jwty, tacky")


def test_mspflow_serve_works_out_of_the_box_on_the_embedded_default(cli: Cli, tmp_path: Path) -> None:
    hook = json.loads(cli("tenant", "webhook", "acme-corp", "acme", "--json").stdout)
    db = Database(f"sqlite:///{tmp_path / 'home' / 'mspflow.sqlite3'}")
    with db.engine.begin() as conn:
        conn.execute(text(hooks_plugin().SCHEMA))
    port = free_port()
    server, lines = cli.start("serve", "--port", str(port), ready="listening on")
    startup = next(line for line in lines if "listening on" in line)
    assert f"listening on http://127.0.0.1:{port}; receivers: acme (mspflow-hooks), boom (mspflow-hooks), " \
           "jwty (mspflow-hooks), tacky (mspflow-hooks)" in startup and "in-process (embedded)" in startup
    url = f"http://127.0.0.1:{port}{hook['path']}"
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
    answer = post(url, hook["secret"], delivery("ev-cli", "cli-1"))
    assert answer.status_code == 200, answer.text
    event_id = answer.json()["event_id"]
    assert wait_final(db, event_id)["status"] == "PROCESSED" and handled(db, "cli-1") == 1
    assert post(url, "wrong", delivery("ev-cli-2")).status_code == 401
    unmapped = post(url, hook["secret"], delivery("ev-cli-3", org="org-404"))
    assert unmapped.status_code == 200 and wait_final(db, unmapped.json()["event_id"])["status"] == "IGNORED"

    listed = json.loads(cli("inbound", "list", "--tenant", "acme-corp", "--json").stdout)["events"]
    assert [e["delivery_id"] for e in listed][-1] == "ev-cli" and len(listed) == 2
    processed = json.loads(cli("inbound", "list", "--status", "processed", "--json").stdout)["events"]
    assert [e["event_id"] for e in processed] == [event_id] and processed[0]["event_count"] == 1
    ignored = json.loads(cli("inbound", "list", "--status", "IGNORED", "--json").stdout)["events"]
    assert [(e["reason"], e["error"]) for e in ignored] == [("organization 'org-404' is not mapped to a tenant", None)]
    table = cli("inbound", "list", "--tenant", "acme-corp")
    assert table.returncode == 0 and "Inbound deliveries" in table.stdout
    shown = json.loads(cli("inbound", "show", event_id).stdout)
    assert shown["payload"]["alerts"] == [{"alert_id": "cli-1"}] and "x-acme-signature" not in shown["headers"]

    refused = cli("inbound", "replay", event_id)
    assert refused.returncode == 1 and "already processed; pass --force" in refused.stderr
    replayed = cli("inbound", "replay", event_id, "--force", "--json")
    assert replayed.returncode == 0, replayed.stderr
    data = json.loads(replayed.stdout)
    assert (data["status"], data["was"], data["queued"]) == ("PROCESSED", "PROCESSED", False)
    assert handled(db, "cli-1") == 2
    missing = cli("inbound", "replay", "nope", "--json")
    assert missing.returncode == 1 and json.loads(missing.stdout)["error"]["code"] == "NOT_FOUND"
    bad = cli("inbound", "list", "--status", "DONE")
    assert bad.returncode == 1 and "--status must be one of RECEIVED" in bad.stderr

    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    db.dispose()


def test_serve_refuses_to_start_on_a_database_it_cannot_reach(installed: Distributions, tmp_path: Path) -> None:
    env = environment(tmp_path, MSPFLOW_DATABASE_URL=f"postgresql+psycopg://x@127.0.0.1:{free_port()}/x")
    result = subprocess.run([MSPFLOW, "serve", "--port", str(free_port())], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 1 and result.stderr.startswith("error: cannot reach the database")


@pytest.mark.postgres
@pytest.mark.redis
def test_production_serve_with_workers_beside_mspflow_worker(installed: Distributions, tmp_path: Path,
                                                             postgresql_url: str, redis_url: str) -> None:
    db = Database(postgresql_url)
    upgrade(db)
    with db.engine.begin() as conn:
        conn.execute(text(hooks_plugin().SCHEMA))
    cli = Cli(environment(tmp_path, MSPFLOW_DATABASE_URL=postgresql_url, MSPFLOW_BROKER_URL=redis_url,
                          MSPFLOW_SECRET_KEY=Fernet.generate_key().decode()))
    try:
        hook = json.loads(cli("tenant", "webhook", "acme-corp", "acme", "--json").stdout)
        port = free_port()
        cli.start("serve", "--port", str(port), "--workers", "2", ready="Application startup complete", count=2)
        url = f"http://127.0.0.1:{port}{hook['path']}"
        ids = [post(url, hook["secret"], delivery(f"prod-{i}", f"prod-{i}")).json()["event_id"] for i in range(20)]
        assert all(r["status"] == "RECEIVED" for r in journal(db))  # no worker yet: journaled, waiting in Redis
        worker, _ = cli.start("worker", "--threads", "4", ready="ready")
        rows = [wait_final(db, i) for i in ids]
        assert [r["status"] for r in rows] == ["PROCESSED"] * 20 and handled(db) == 20
        with db.engine.connect() as conn:
            owners = set(conn.execute(text("SELECT lease_owner FROM inbound_events")).scalars())
        assert {o.split(":")[1] for o in owners} == {str(worker.pid)}  # processed by the worker process
        again = post(url, hook["secret"], delivery("prod-0", "prod-0"))
        assert again.json() == {"status": "duplicate"}
        replayed = json.loads(cli("inbound", "replay", ids[0], "--force", "--json").stdout)
        assert replayed["queued"] is True
        wait_final(db, ids[0])
        deadline = time.monotonic() + 60
        while handled(db, "prod-0") < 2:
            assert time.monotonic() < deadline, "the replayed delivery was not processed by the worker"
            time.sleep(0.05)
    finally:
        cli.stop()
        db.dispose()
