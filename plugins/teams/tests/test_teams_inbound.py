"""Capturing the bot's conversation references on a real ``mspflow serve`` (Uvicorn on loopback): only from
activities whose Bot Framework JWT checks out, as Microsoft's authentication doc asks (else 403)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from mspflow_teams.sim import (
    ALICE_OID,
    CLIENT_ID,
    ENDORSED,
    ENTRA_TENANT,
    GRAPH_TEAM_ID,
    SERVICE_DESK,
    TEAM_THREAD,
    TeamsSimulator,
)
from sqlalchemy import text
from teams_support import Teams

from mspflow.db.engine import Database
from mspflow.inbound import verify
from mspflow.inbound.journal import ensure_webhook
from mspflow.inbound.server import create_app
from mspflow.testing.live import LiveServer
from mspflow.testing.tokens import SigningKey

AMER = "https://smba.trafficmanager.net/amer/"


@pytest.fixture(autouse=True)
def _fresh_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "_jwks", {})


@pytest.fixture
def endpoint(teams: Teams) -> Iterator[str]:
    live = LiveServer(create_app(teams.app))
    with teams.app.db.session(write=True) as s:
        hook = ensure_webhook(s, teams.app.secrets, teams.app.registry, "acme", "teams")
    yield f"{live.url}/hooks/teams/{hook.token}"
    live.stop()


def journaled(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT event_id, status FROM inbound_events")).mappings()]


def wait_processed(db: Database, event_id: str) -> None:
    deadline = time.monotonic() + 60
    while not any(r["event_id"] == event_id and r["status"] in ("PROCESSED", "IGNORED", "FAILED")
                  for r in journaled(db)):
        assert time.monotonic() < deadline, journaled(db)
        time.sleep(0.02)


def test_a_signed_team_install_stores_the_channel_reference(teams: Teams, endpoint: str) -> None:
    answer = teams.sim.send_activity(endpoint, TeamsSimulator.install_activity(AMER))
    assert answer.status_code == 200, answer.text
    wait_processed(teams.app.db, answer.json()["event_id"])
    assert teams.references() == [{
        "conversation_id": SERVICE_DESK, "conversation_type": "channel", "service_url": AMER,
        "entra_user_id": None, "entra_tenant_id": ENTRA_TENANT, "bot_team_id": TEAM_THREAD,
        "graph_team_id": GRAPH_TEAM_ID, "channel_id": SERVICE_DESK}]
    # ... and the bot posts there, at the service URL it learned
    out = teams.ok("post_to_channel", {"channel_id": SERVICE_DESK, "text": "hello, service desk"})
    assert out["conversation_id"].startswith(SERVICE_DESK)
    assert any(r.url.path == "/amer/v3/conversations" for r in teams.sim.requests)


def test_a_personal_install_then_a_message_keep_the_latest_service_url(teams: Teams, endpoint: str) -> None:
    install = TeamsSimulator.install_activity(AMER, team=False)
    wait_processed(teams.app.db, teams.sim.send_activity(endpoint, install).json()["event_id"])
    moved = "https://smba.trafficmanager.net/emea/"
    message = {**install, "type": "message", "id": "m-1", "text": "hi bot", "serviceUrl": moved}
    message.pop("action")
    wait_processed(teams.app.db, teams.sim.send_activity(endpoint, message).json()["event_id"])
    [ref] = teams.references()
    assert (ref["conversation_type"], ref["entra_user_id"], ref["service_url"]) == ("personal", ALICE_OID, moved)


@pytest.mark.parametrize("forgery", ["wrong audience", "expired", "unknown signing key", "serviceUrl differs",
                                     "no token", "another issuer's key id", "key not endorsed for msteams",
                                     "key without endorsements"])
def test_a_forged_or_stale_activity_stores_nothing_and_is_refused_403(teams: Teams, endpoint: str,
                                                                        forgery: str) -> None:
    activity = TeamsSimulator.install_activity(AMER)
    sign: dict[str, Any] = {
        "wrong audience": {"audience": "00000000-0000-4000-8000-000000000bad"},
        "expired": {"expires_in": -3600},
        "unknown signing key": {"key": SigningKey("attacker-key")},
        "serviceUrl differs": {"service_url": "https://smba.trafficmanager.net/emea/"},
        "another issuer's key id": {"key": SigningKey(teams.sim.key.kid)},  # same kid, other key
    }.get(forgery, {})
    if forgery.startswith("key "):  # the metadata serves the key that signs, but not for Teams
        teams.sim.key = SigningKey("sim-bf-key-9", endorsements=("webchat",) if "msteams" in forgery else None)
    if forgery == "no token":
        import httpx

        answer = httpx.post(endpoint, json=activity, timeout=30)
    else:
        answer = teams.sim.send_activity(endpoint, activity, **sign)
    assert answer.status_code == 403, answer.text
    assert journaled(teams.app.db) == [] and teams.references() == []


def test_an_activity_with_an_attacker_service_url_is_refused_even_when_the_claim_matches_at_send(
        teams: Teams, endpoint: str) -> None:
    """A validly signed token vouches for the service URL; a stored one that is not a Teams host (here put in
    the table by hand) is still refused at send time, before any request or token leaves."""
    teams.add_reference(conversation_id=SERVICE_DESK, conversation_type="channel",
                        service_url="https://attacker.trafficmanager.net/amer", channel_id=SERVICE_DESK)
    err = teams.fail("post_to_channel", {"channel_id": SERVICE_DESK, "text": "hi"})
    assert (err.code, err.details["reason"]) == ("PERMISSION_DENIED", "SERVICE_URL_NOT_ALLOWED")
    assert teams.sim.requests == [] and teams.sim.tokens == []


def test_signing_keys_are_cached_and_fetched_again_for_an_unknown_key_id(
        teams: Teams, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def key_fetches() -> int:
        return sum(1 for r in teams.sim.requests if r.url.path == "/v1/.well-known/keys")

    for n in range(2):
        activity = {**TeamsSimulator.install_activity(AMER), "id": f"install-{n}"}
        assert teams.sim.send_activity(endpoint, activity).status_code == 200
    assert key_fetches() == 1  # cached
    monkeypatch.setattr(verify, "JWKS_MIN_REFRESH_S", 0.0)
    teams.sim.key = SigningKey("sim-bf-key-2", endorsements=ENDORSED)  # Microsoft rolled its keys
    answer = teams.sim.send_activity(endpoint, {**TeamsSimulator.install_activity(AMER), "id": "install-new"})
    assert answer.status_code == 200 and key_fetches() == 2


def test_the_token_names_the_tenants_own_bot(teams: Teams, endpoint: str) -> None:
    """Another tenant's bot (another audience) cannot write this tenant's references."""
    teams.configure("globex")
    from mspflow.db.models import MicrosoftProfile

    with teams.app.db.session() as s:
        p = s.get(MicrosoftProfile, ("acme", "p1"))
        assert p is not None
        p.client_id = "11111111-0000-4000-8000-000000000111"
    answer = teams.sim.send_activity(endpoint, TeamsSimulator.install_activity(AMER), audience=CLIENT_ID)
    assert answer.status_code == 403 and teams.references() == []


def test_an_uninstall_stores_nothing(teams: Teams, endpoint: str) -> None:
    activity = {**TeamsSimulator.install_activity(AMER, team=False), "action": "remove"}
    answer = teams.sim.send_activity(endpoint, activity)
    assert answer.status_code == 200
    wait_processed(teams.app.db, answer.json()["event_id"])
    assert teams.references() == []


def test_openid_metadata_only_from_the_bot_frameworks_host(teams: Teams, endpoint: str) -> None:
    from mspflow.db.models import MicrosoftProfile

    with teams.app.db.session() as s:
        p = s.get(MicrosoftProfile, ("acme", "p1"))
        assert p is not None
        p.endpoints = {"openid": "https://keys.attacker.example/v1/.well-known/openidconfiguration"}
    answer = teams.sim.send_activity(endpoint, TeamsSimulator.install_activity(AMER))
    assert answer.status_code == 403 and teams.references() == []


def test_a_gcc_high_profile_expects_its_own_clouds_issuer(teams: Teams, endpoint: str) -> None:
    """Tokens for a GCC High bot come from https://api.botframework.us: a public-cloud token is refused."""
    from mspflow.db.models import MicrosoftProfile

    with teams.app.db.session() as s:
        p = s.get(MicrosoftProfile, ("acme", "p1"))
        assert p is not None
        p.cloud = "gcch"
        p.endpoints = {"openid": "https://login.botframework.com/v1/.well-known/openidconfiguration"}  # the sim
    answer = teams.sim.send_activity(endpoint, TeamsSimulator.install_activity(AMER))
    assert answer.status_code == 403 and teams.references() == []


def test_a_served_simulator_delivers_a_signed_install_to_mspflow_serve(
        teams: Teams, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over real HTTP both ways: the served simulator signs, mspflow serve fetches its keys from it."""
    import httpx

    from mspflow.db.models import MicrosoftProfile

    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")
    server, url = teams.sim.serve_in_thread()
    try:
        with teams.app.db.session() as s:
            p = s.get(MicrosoftProfile, ("acme", "p1"))
            assert p is not None
            p.endpoints = {"openid": f"{url}/v1/.well-known/openidconfiguration"}
        reply = httpx.post(f"{url}/_sim/send_activity", json={"endpoint": endpoint, "service_url": AMER},
                           timeout=60).json()
        assert reply["status"] == 200, reply
        wait_processed(teams.app.db, __import__("json").loads(reply["body"])["event_id"])
    finally:
        server.shutdown()
        server.server_close()
    assert [r["channel_id"] for r in teams.references()] == [SERVICE_DESK]
