"""The inbound side over real HTTP: a Uvicorn server on 127.0.0.1, the test receivers, SQLite and PostgreSQL.

Each answer of ``/hooks/{provider}/{token}``, journaling exactly once, and processing by worker threads
(the embedded in-process broker) through the test plugin's HMAC receiver.
"""

from __future__ import annotations

import json
import logging
import socket
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from mspflow import worker as worker_module
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.inbound.journal import ensure_webhook
from mspflow.inbound.processing import Processor
from mspflow.inbound.server import create_app
from mspflow.inbound.verify import sign
from tests.inbound_support import (
    TENANT,
    Hooks,
    LiveServer,
    delivery,
    handled,
    hooks_plugin,
    journal,
    make_app,
    wait_final,
)

MARKER = "payload-marker-7f3a"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)
    monkeypatch.setattr(worker_module, "BACKOFF_BASE_S", 0.01)
    hooks_plugin().CALLS.clear()


@pytest.fixture
def app(db: Database) -> Iterator[App]:
    instance = make_app(db)
    yield instance
    instance.close()


@pytest.fixture
def server(app: App) -> Iterator[LiveServer]:
    live = LiveServer(create_app(app, max_body_bytes=64 * 1024))
    yield live
    live.stop()


@pytest.fixture
def hooks(app: App, server: LiveServer) -> Hooks:
    return Hooks(app, server)


# -- 200 and processing ------------------------------------------------------------------------------------


def test_a_signed_delivery_is_journaled_answered_200_and_processed_by_a_worker(hooks: Hooks, db: Database) -> None:
    answer = hooks.post(delivery("ev-1", "a-1", "a-2"))
    assert answer.status_code == 200 and answer.json()["status"] == "accepted"
    row = wait_final(db, answer.json()["event_id"])
    assert (row["status"], row["attempt"], row["event_count"], row["delivery_id"]) == ("PROCESSED", 1, 2, "ev-1")
    assert handled(db, "a-1") == handled(db, "a-2") == 1
    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT tenant, provider FROM inbound_events")).one()
    assert tuple(stored) == (TENANT, "acme")


def test_a_delivery_replayed_5_times_is_processed_once(hooks: Hooks, db: Database) -> None:
    body = json.dumps(delivery("ev-replayed", "once")).encode()
    answers = [hooks.post(body) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 6
    assert [a.json()["status"] for a in answers] == ["accepted"] + ["duplicate"] * 5
    wait_final(db, answers[0].json()["event_id"])
    assert len(journal(db)) == 1
    assert handled(db, "once") == 1 and hooks_plugin().CALLS["once"] == 1


def test_a_delivery_without_a_delivery_id_is_deduplicated_by_its_body(app: App, server: LiveServer,
                                                                       db: Database) -> None:
    tacky = Hooks(app, server, provider="tacky")
    body = b'{"agent_id": "agent-1", "message": "disk full"}'
    first = tacky.post(body, headers={"X-Tacky-Secret": tacky.secret})
    again = tacky.post(body, headers={"X-Tacky-Secret": tacky.secret})
    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate")
    row = wait_final(db, first.json()["event_id"])
    assert row["delivery_id"].startswith("sha256:") and row["event_count"] == 1


def test_a_delivery_whose_body_is_a_json_string_is_journaled_as_that_string(app: App, server: LiveServer,
                                                                           db: Database) -> None:
    tacky = Hooks(app, server, provider="tacky")
    answer = tacky.post(b'"disk full on agent-1"', headers={"X-Tacky-Secret": tacky.secret})
    assert answer.status_code == 200, answer.text
    row = wait_final(db, answer.json()["event_id"])
    assert row["payload"] == "disk full on agent-1"


def test_an_unmapped_delivery_is_200_and_recorded_ignored_with_the_reason(hooks: Hooks, db: Database) -> None:
    answer = hooks.post(delivery("ev-unmapped", org="org-999"))
    assert answer.status_code == 200 and answer.json()["status"] == "accepted"
    row = wait_final(db, answer.json()["event_id"])
    assert row["status"] == "IGNORED"
    assert row["error_message"] == "organization 'org-999' is not mapped to a tenant"
    assert handled(db) == 0


# -- refusals ----------------------------------------------------------------------------------------------


def test_a_signature_computed_over_a_different_body_is_refused(hooks: Hooks, db: Database) -> None:
    signed = json.dumps(delivery("ev-a", "a")).encode()
    sent = json.dumps(delivery("ev-a", "b")).encode()
    answer = hooks.post(sent, signature=sign(hooks.secret, signed, prefix="sha256="))
    assert answer.status_code == 401 and answer.json() == {"error": "missing or invalid signature"}
    assert journal(db) == []


@pytest.mark.parametrize("signature", ["", "sha256=", "sha1=00", "sha256=zz", "deadbeef", "sha256=" + "0" * 64,
                                       "sha256=ü".encode(), None])
def test_a_missing_or_bad_signature_is_401_nothing_journaled_nothing_logged(
        hooks: Hooks, db: Database, signature: str | bytes | None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps(delivery("ev-bad", MARKER)).encode()
    if signature is None:  # no header at all
        answer = hooks.client.post(hooks.path, content=body, headers={"Content-Type": "application/json"})
    else:
        answer = hooks.post(body, signature=signature)
    assert answer.status_code == 401
    assert journal(db) == []
    assert MARKER not in caplog.text and hooks.secret not in caplog.text
    assert "answered 401" in caplog.text


def test_a_signature_made_with_another_tenants_secret_is_refused(app: App, hooks: Hooks, db: Database) -> None:
    with app.db.session(write=True) as session:
        other = ensure_webhook(session, app.secrets, app.registry, "globex", "acme")
    body = json.dumps(delivery("ev-x")).encode()
    assert other.secret is not None
    assert hooks.post(body, signature=sign(other.secret, body, prefix="sha256=")).status_code == 401
    assert hooks.post(body, signature=sign(hooks.secret, body, prefix="SHA256=").upper()).status_code == 200


def test_a_wrong_or_missing_shared_secret_is_401(app: App, server: LiveServer, db: Database) -> None:
    tacky = Hooks(app, server, provider="tacky")
    body = b'{"agent_id": "agent-1", "message": "x"}'
    assert tacky.post(body, headers={"X-Tacky-Secret": tacky.secret + "x"}).status_code == 401
    assert tacky.post(body, headers={"X-Tacky-Secret": tacky.secret[:-1]}).status_code == 401
    assert tacky.post(body).status_code == 401
    assert journal(db) == []


def test_a_custom_verifier_decides_and_one_that_raises_refuses(app: App, server: LiveServer, db: Database) -> None:
    with app.db.session(write=True) as session:
        hook = ensure_webhook(session, app.secrets, app.registry, TENANT, "jwty")
    assert hook.secret is None and hook.secret_name is None  # nothing to paste: the check is the plugin's
    url = f"{server.url}{hook.path}"
    body = b'{"agent_id": "a", "message": "m"}'
    for token, status in (("Bearer raise", 401), ("Bearer bad", 401), ("Bearer good-token", 200)):
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/json", "Authorization": token})
        assert answer.status_code == status, token
    [row] = journal(db)
    assert "authorization" not in row["headers"]  # the custom verifier's header is not stored


def test_an_unknown_connection_token_or_provider_is_404(hooks: Hooks, db: Database) -> None:
    body = delivery("ev-404")
    assert hooks.post(body, path="/hooks/acme/not-a-token").status_code == 404
    assert hooks.post(body, path=f"/hooks/tacky/{hooks.token}").status_code == 404  # token of another provider
    assert hooks.post(body, path=f"/hooks/kaseya/{hooks.token}").status_code == 404
    assert hooks.post(body, path="/hooks/acme/" + "x" * 300).status_code == 404
    assert hooks.client.get(hooks.path).status_code == 405
    assert journal(db) == []


def test_a_body_over_the_cap_is_413(hooks: Hooks, db: Database) -> None:
    big = json.dumps(delivery("ev-big", note="x" * (64 * 1024))).encode()
    assert hooks.post(big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap is enforced while reading
        for i in range(0, len(big), 4096):
            yield big[i:i + 4096]

    answer = hooks.client.post(hooks.path, content=chunks(), headers={
        "Content-Type": "application/json", "X-Acme-Signature": sign(hooks.secret, big, prefix="sha256=")})
    assert answer.status_code == 413 and answer.json() == {"error": "body too large", "max_bytes": 64 * 1024}
    assert journal(db) == []
    body = json.dumps(delivery("ev-fits")).encode()
    fits = body + b" " * (64 * 1024 - len(body))
    assert hooks.post(fits).status_code == 200


def test_a_body_the_receiver_cannot_read_is_415(hooks: Hooks, app: App, server: LiveServer, db: Database) -> None:
    body = json.dumps(delivery("ev-415")).encode()
    assert hooks.post(body, content_type="text/plain").status_code == 415
    assert hooks.post(body, content_type=None).status_code == 415       # acme requires a Content-Type
    assert hooks.post(b"{not json", content_type="application/json").status_code == 415
    assert hooks.post(b"\xff\xfe{", content_type="application/json").status_code == 415
    refused = hooks.post(b"", content_type="application/json")
    assert refused.status_code == 415 and refused.json()["accepts"] == ["application/json"]
    assert journal(db) == []
    assert hooks.post(body, content_type="application/json; charset=utf-8").status_code == 200
    tacky = Hooks(app, server, provider="tacky")  # Tactical-style: JSON without a Content-Type is fine
    answer = tacky.post(b'{"agent_id": "a", "message": "m"}', content_type=None,
                        headers={"X-Tacky-Secret": tacky.secret})
    assert answer.status_code == 200


def test_a_verified_delivery_is_checked_before_its_media_type(hooks: Hooks) -> None:
    """An unverified sender learns nothing about what the receiver accepts."""
    assert hooks.post(b"plain", content_type="text/plain", signature="sha256=00").status_code == 401


def test_the_database_unavailable_is_503(db: Database, hooks: Hooks) -> None:
    body = json.dumps(delivery("ev-503")).encode()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE inbound_events"))
    answer = hooks.post(body)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert answer.json() == {"error": "temporarily unavailable; retry later"}


def test_a_database_that_is_down_is_503_and_healthz_says_so() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = make_app(Database(f"postgresql+psycopg://mspflow@127.0.0.1:{port}/mspflow", connect_args={
        "connect_timeout": 2}))
    live = LiveServer(create_app(down))
    try:
        client = httpx.Client(base_url=live.url, timeout=60)
        answer = client.post("/hooks/acme/some-token", content=b"{}", headers={"Content-Type": "application/json"})
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
        assert "Traceback" not in answer.text
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
    finally:
        live.stop()
        down.close()


def test_no_answer_carries_a_traceback(app: App, server: LiveServer, hooks: Hooks,
                                       caplog: pytest.LogCaptureFixture) -> None:
    boom = Hooks(app, server, provider="boom")
    answer = boom.post(b'{"agent_id": "' + MARKER.encode() + b'", "message": "m"}',
                       headers={"X-Boom-Secret": boom.secret})
    assert answer.status_code == 500 and answer.json() == {"error": "internal error"}
    assert "Traceback" not in answer.text and "KeyError" not in answer.text
    assert "KeyError" in caplog.text and MARKER not in caplog.text  # the frames are logged, not the payload
    for response in (hooks.post(b"{", content_type="application/json"), hooks.post(b"x", signature="bad"),
                     hooks.post(b"{}", path="/hooks/acme/nope"), hooks.client.get("/healthz")):
        assert "Traceback" not in response.text and "File " not in response.text


def test_healthz_answers_200_for_load_balancers(hooks: Hooks) -> None:
    answer = hooks.client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


# -- exactly once under load -------------------------------------------------------------------------------


def test_200_parallel_deliveries_from_20_client_threads_are_journaled_exactly_once(hooks: Hooks,
                                                                                  db: Database) -> None:
    bodies = [json.dumps(delivery(f"par-{i}", f"par-{i}")).encode() for i in range(200)]
    sends = bodies + bodies  # every delivery twice, the two copies racing each other

    def send(body: bytes) -> tuple[int, str]:
        answer = hooks.post(body)
        return answer.status_code, answer.json().get("status", "")

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, sends))
    assert Counter(answers) == {(200, "accepted"): 200, (200, "duplicate"): 200}
    rows = journal(db)
    assert sorted(r["delivery_id"] for r in rows) == sorted(f"par-{i}" for i in range(200))
    for row in rows:
        wait_final(db, row["event_id"])
    assert handled(db) == 200
    assert all(hooks_plugin().CALLS[f"par-{i}"] == 1 for i in range(200))


# -- the journal -------------------------------------------------------------------------------------------


def test_the_journal_holds_no_secret(app: App, hooks: Hooks, db: Database) -> None:
    api_key = "sk-live-0123456789abcdef"
    with app.db.session(write=True) as session:
        app.secrets.set(session, TENANT, "acme_api_key", api_key)
    body = delivery("ev-secret", note=f"called with {api_key}", password="hunter2-hunter2", nested={"k": api_key})
    answer = hooks.post(body, headers={"Authorization": "Bearer abcdefgh", "X-Trace": "t-1"})
    row = wait_final(db, answer.json()["event_id"])
    stored = json.dumps(row["payload"]) + json.dumps(row["headers"])
    assert api_key not in stored and "hunter2" not in stored and hooks.secret not in stored
    assert row["payload"]["note"] == "called with [REDACTED]" and row["payload"]["password"] == "[REDACTED]"
    assert "x-acme-signature" not in row["headers"] and row["headers"]["authorization"] == "[REDACTED]"
    assert row["headers"]["x-trace"] == "t-1"


def test_rotation_invalidates_the_old_token_and_secret(app: App, hooks: Hooks, db: Database) -> None:
    old_path, old_secret = hooks.path, hooks.secret
    with app.db.session(write=True) as session:
        new = ensure_webhook(session, app.secrets, app.registry, TENANT, "acme", rotate=True)
    assert new.rotated and new.token != hooks.token and new.secret not in (None, old_secret)
    body = json.dumps(delivery("ev-rot")).encode()
    assert hooks.post(body, path=old_path).status_code == 404
    new_path = f"/hooks/acme/{new.token}"
    assert hooks.post(body, path=new_path, signature=sign(old_secret, body, prefix="sha256=")).status_code == 401
    assert new.secret is not None
    assert hooks.post(body, path=new_path, signature=sign(new.secret, body, prefix="sha256=")).status_code == 200


# -- processing: retries, failures, idempotency -----------------------------------------------------------


def test_a_retryable_failure_is_retried_and_the_delivery_processed_once(hooks: Hooks, db: Database) -> None:
    answer = hooks.post({"event_id": "ev-flaky", "org": "org-1", "alerts": [{"alert_id": "f", "severity": "flaky"}]})
    row = wait_final(db, answer.json()["event_id"])
    assert (row["status"], row["attempt"]) == ("PROCESSED", 2)
    assert handled(db, "f") == 1 and hooks_plugin().CALLS["f"] == 2


@pytest.mark.parametrize(("severity", "code"), [("broken", "INTERNAL_ERROR"), ("refused", "VALIDATION_ERROR")])
def test_a_failure_that_is_not_retryable_is_recorded_once(hooks: Hooks, db: Database, severity: str,
                                                          code: str) -> None:
    answer = hooks.post({"event_id": f"ev-{severity}", "org": "org-1",
                         "alerts": [{"alert_id": severity, "severity": severity}]})
    row = wait_final(db, answer.json()["event_id"])
    assert (row["status"], row["attempt"], row["error_code"], row["error_retryable"]) == ("FAILED", 1, code, False)
    assert "Traceback" not in row["error_message"] and hooks_plugin().CALLS[severity] == 1


def test_a_delivery_that_does_not_parse_fails_with_validation_error(hooks: Hooks, db: Database) -> None:
    answer = hooks.post({"event_id": "ev-shape", "org": "org-1", "alerts": [{"no_id": 1}]})
    row = wait_final(db, answer.json()["event_id"])
    assert (row["status"], row["error_code"]) == ("FAILED", "VALIDATION_ERROR")
    assert "alert_id" in row["error_message"]


def test_processing_the_same_delivery_again_does_nothing(app: App, db: Database) -> None:
    instance = make_app(db)
    live = LiveServer(create_app(instance, enqueue=False))  # journal only: processed by hand below
    try:
        hooks = Hooks(instance, live)
        event_id = hooks.post(delivery("ev-twice", "twice")).json()["event_id"]
        assert journal(db)[0]["status"] == "RECEIVED"
        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = list(pool.map(lambda _: Processor(instance).process(event_id), range(4)))
        assert [o.status for o in outcomes if not o.duplicate].count("PROCESSED") == 1
        again = Processor(instance).process(event_id)
        assert (again.status, again.duplicate) == ("PROCESSED", True)
        assert handled(db, "twice") == 1 and journal(db)[0]["attempt"] == 1
    finally:
        live.stop()
        instance.close()


def test_deliveries_left_waiting_are_resumed_when_the_server_starts(db: Database) -> None:
    first = make_app(db)
    live = LiveServer(create_app(first, enqueue=False))
    hooks = Hooks(first, live)
    event_id = hooks.post(delivery("ev-left", "left")).json()["event_id"]
    live.stop()
    first.close()
    assert journal(db)[0]["status"] == "RECEIVED"
    second = make_app(db)
    again = LiveServer(create_app(second))
    try:
        assert wait_final(db, event_id)["status"] == "PROCESSED" and handled(db, "left") == 1
    finally:
        again.stop()
        second.close()


def test_a_server_without_its_secret_key_answers_503_and_says_why(postgresql_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    db = Database(postgresql_url)
    upgrade(db)
    with_key = make_app(db)
    with db.session(write=True) as session:
        hook = ensure_webhook(session, with_key.secrets, with_key.registry, TENANT, "acme")
    monkeypatch.delenv("MSPFLOW_SECRET_KEY")  # another process, started without the key
    without = make_app(db)
    live = LiveServer(create_app(without))
    try:
        answer = httpx.post(live.url + hook.path, content=b"{}", headers={"Content-Type": "application/json"})
        assert answer.status_code == 503 and "set MSPFLOW_SECRET_KEY" in caplog.text
    finally:
        live.stop()
        without.close()
        with_key.close()
