"""Black box, as an operator runs it: ``mspflow sim serve teams``, ``tenant connect``, ``set-secret``, ``run``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from mspflow_teams.sim import CLIENT_ID, CLIENT_SECRET, ENTRA_TENANT, SERVICE_DESK, TEAM_THREAD

from mspflow.db.engine import SQLITE_FILE, Database
from mspflow.testing.cli import cli_env, run_cli, served_simulator


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home", plugin="teams")


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    with served_simulator("teams", env) as url:
        yield url


def bind_profile(home: Path, sim: str) -> None:
    """What the PSA's Teams settings page writes: the profile (pointed at the simulator), the binding, and the
    channel reference the bot captured when it was added to the service-desk team."""
    from mspflow.db.models import MicrosoftProfile, TeamsConversationReference, TeamsIntegration

    db = Database(f"sqlite:///{home / SQLITE_FILE}")
    with db.session() as s:
        s.add(MicrosoftProfile(tenant="acme", profile_id="p1", display_name="Contoso bot", client_id=CLIENT_ID,
                               entra_tenant_id=ENTRA_TENANT, client_secret_ref="teams_client_secret",
                               endpoints={"graph": sim, "login": sim,
                                          "openid": f"{sim}/v1/.well-known/openidconfiguration"}))
        row = s.get(TeamsIntegration, "acme")
        assert row is not None
        row.selected_profile_id, row.enabled_capabilities = "p1", ["activity_notifications", "bot"]
        s.add(TeamsConversationReference(tenant="acme", conversation_id=SERVICE_DESK, conversation_type="channel",
                                         service_url=f"{sim}/amer", entra_tenant_id=ENTRA_TENANT,
                                         bot_team_id=TEAM_THREAD, channel_id=SERVICE_DESK,
                                         last_activity_at=datetime.now(UTC)))
    db.dispose()


def test_an_operator_posts_to_the_service_desk_channel_once(env: dict[str, str], served: str) -> None:
    run_cli(env, "tenant", "connect", "acme", "teams")
    run_cli(env, "tenant", "set-secret", "acme", "teams_client_secret", stdin=CLIENT_SECRET)
    bind_profile(Path(env["MSPFLOW_HOME"]), served)

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
