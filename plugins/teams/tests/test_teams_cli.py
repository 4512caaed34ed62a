"""Black box, as an operator runs it: ``mspflow sim serve teams``, ``tenant connect``, ``set-secret``,
``teams-profile``, ``link-user``, ``run``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from mspflow_teams.sim import ALICE_OID, CLIENT_ID, CLIENT_SECRET, ENTRA_TENANT, SERVICE_DESK, TEAM_THREAD, TEAMS_APP_ID

from mspflow.db.engine import SQLITE_FILE, Database
from mspflow.testing.cli import cli_env, run_cli, served_simulator


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home", plugin="teams")


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    with served_simulator("teams", env) as url:
        yield url


def set_up(env: dict[str, str], sim: str) -> dict[str, object]:
    """The operator's set-up: connect Teams, store the client secret, bind the app registration (pointed at
    the simulator), link a technician; returns ``teams-profile --json``."""
    run_cli(env, "tenant", "connect", "acme", "teams")
    run_cli(env, "tenant", "set-secret", "acme", "teams_client_secret", stdin=CLIENT_SECRET)
    bound = run_cli(env, "tenant", "teams-profile", "acme", "--client-id", CLIENT_ID, "--entra-tenant-id",
                    ENTRA_TENANT, "--teams-app-id", TEAMS_APP_ID, "--display-name", "Contoso bot",
                    "--endpoint", f"graph={sim}", "--endpoint", f"login={sim}",
                    "--endpoint", f"openid={sim}/v1/.well-known/openidconfiguration", "--json")
    run_cli(env, "tenant", "link-user", "acme", "tech-ada", ALICE_OID)
    return dict(json.loads(bound.stdout))


def capture_channel(home: Path, sim: str) -> None:
    """The channel reference the bot captures when it is added to the service-desk team (from a verified
    install activity: tests/test_teams_inbound.py), written directly here."""
    from mspflow.db.models import TeamsConversationReference

    db = Database(f"sqlite:///{home / SQLITE_FILE}")
    with db.session() as s:
        s.add(TeamsConversationReference(tenant="acme", conversation_id=SERVICE_DESK, conversation_type="channel",
                                         service_url=f"{sim}/amer", entra_tenant_id=ENTRA_TENANT,
                                         bot_team_id=TEAM_THREAD, channel_id=SERVICE_DESK,
                                         last_activity_at=datetime.now(UTC)))
    db.dispose()


def test_an_operator_sets_teams_up_and_notifies_a_linked_technician(env: dict[str, str], served: str) -> None:
    bound = set_up(env, served)
    assert bound == {"tenant": "acme", "profile_id": "default", "client_id": CLIENT_ID,
                     "entra_tenant_id": ENTRA_TENANT, "cloud": "public", "teams_app_id": TEAMS_APP_ID,
                     "client_secret_ref": "teams_client_secret", "client_secret_stored": True,
                     "endpoints": {"graph": served, "login": served,
                                   "openid": f"{served}/v1/.well-known/openidconfiguration"}}
    catalog = json.loads(run_cli(env, "catalog", "--tenant", "acme", "--palette", "--json").stdout)
    assert "app:teams" in [r["group_key"] for r in catalog["records"]]
    out = run_cli(env, "run", "teams.notify_user", "--tenant", "acme", "--json", "--input",
                  json.dumps({"user_id": "tech-ada", "title": "T-1001", "message": "you are on call"}), ok=False)
    result = json.loads(out.stdout)
    assert result["ok"], result
    state = httpx.get(f"{served}/_sim/state").json()
    assert len(state["notifications"][ALICE_OID]) == 1
    assert CLIENT_SECRET not in out.stdout + out.stderr


def test_teams_profile_refuses_bad_values_and_says_what_to_do(env: dict[str, str]) -> None:
    def refused(*args: str) -> str:
        out = run_cli(env, "tenant", *args, ok=False)
        assert out.returncode == 1, out
        return str(out.stderr)

    profile = ("teams-profile", "acme", "--client-id", CLIENT_ID, "--entra-tenant-id", ENTRA_TENANT)
    assert "mspflow tenant connect acme teams" in refused(*profile)  # Teams not connected yet
    run_cli(env, "tenant", "connect", "acme", "teams")
    assert "is not an application (client) id" in refused("teams-profile", "acme", "--client-id", "bot",
                                                          "--entra-tenant-id", ENTRA_TENANT)
    assert "cloud 'china' is not one of public, gcch, dod" in refused(*profile, "--cloud", "china")
    assert "unknown endpoint(s) connector" in refused(*profile, "--endpoint", "connector=https://x.example")
    assert "must use https" in refused(*profile, "--endpoint", "graph=ftp://graph.example")
    assert "write KEY=URL" in refused(*profile, "--endpoint", "graph")
    assert "is not an object id" in refused("link-user", "acme", "tech-ada", "ada@contoso.com")
    warned = run_cli(env, "tenant", *profile)
    assert "mspflow tenant set-secret acme teams_client_secret" in warned.stderr


def test_an_operator_posts_to_the_service_desk_channel_once(env: dict[str, str], served: str) -> None:
    set_up(env, served)
    capture_channel(Path(env["MSPFLOW_HOME"]), served)

    def post() -> dict[str, object]:
        out = run_cli(env, "run", "teams.post_to_channel", "--tenant", "acme", "--input",
                      json.dumps({"channel_id": SERVICE_DESK, "text": "P1: mail server down"}), "--json",
                      "--run-id", "run-1", "--step-path", "steps.post", ok=False)
        return dict(json.loads(out.stdout))

    first = post()
    assert first["ok"], first
    assert first["output"]["conversation_id"].startswith(SERVICE_DESK)  # type: ignore[index]
    again = post()
    assert again["replayed"] is True and again["output"] == first["output"]
    state = httpx.get(f"{served}/_sim/state").json()
    assert state["channels"][SERVICE_DESK] == [{"type": "message", "text": "P1: mail server down"}]
    assert CLIENT_SECRET not in json.dumps([first, again])
