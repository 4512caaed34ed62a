"""The simulator keeps Tactical RMM's traps, so the plugin is tested against them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from mspflow_tacticalrmm.sim import FRONTDESK_ID, LAPTOP_ID, REQUIRED_RUNSCRIPT, WEB_ID, TacticalRMMSimulator

BODY = {"script": 1, "output": "wait", "args": [], "env_vars": [], "timeout": 90, "run_as_user": False}


@pytest.fixture
def api() -> Iterator[tuple[TacticalRMMSimulator, httpx.Client]]:
    sim = TacticalRMMSimulator()
    with httpx.Client(base_url=sim.base_url, transport=sim.transport(),
                      headers={"X-API-KEY": sim.api_key}) as client:
        yield sim, client


@pytest.mark.parametrize("missing", REQUIRED_RUNSCRIPT)
def test_a_runscript_body_missing_a_required_key_is_a_500(api: tuple[TacticalRMMSimulator, httpx.Client],
                                                          missing: str) -> None:
    sim, client = api
    r = client.post(f"/agents/{FRONTDESK_ID}/runscript/", json={k: v for k, v in BODY.items() if k != missing})
    assert r.status_code == 500 and sim.script_runs == []


def test_runscript_answers(api: tuple[TacticalRMMSimulator, httpx.Client]) -> None:
    sim, client = api
    assert client.post(f"/agents/{FRONTDESK_ID}/runscript/", json=BODY).json() == "Removed 42 files (118 MB)\n"
    disconnected = client.post(f"/agents/{LAPTOP_ID}/runscript/", json=BODY)  # NATS "no responders", uncaught
    assert disconnected.status_code == 500 and "<title>Server Error (500)</title>" in disconnected.text
    forget = client.post(f"/agents/{LAPTOP_ID}/runscript/", json=BODY | {"output": "forget"})
    assert forget.status_code == 200 and forget.json() == "Clear temp files will now be run on WH-LT-02"
    sim.set_silent(FRONTDESK_ID)  # connected, but it does not answer
    assert client.post(f"/agents/{FRONTDESK_ID}/runscript/", json=BODY).json() == "timeout"
    sim.set_online(FRONTDESK_ID, True)
    sim.nats_down = True
    r = client.post(f"/agents/{FRONTDESK_ID}/runscript/", json=BODY)
    assert r.status_code == 200 and r.json() == "natsdown"
    r = client.post(f"/agents/{FRONTDESK_ID}/runscript/", json=BODY | {"script": 99})
    assert r.status_code == 404 and r.json() == {"detail": "No Script matches the given query."}
    r = client.post(f"/agents/{FRONTDESK_ID}/runscript/", json=BODY | {"run_on_server": True})
    assert r.status_code == 400 and r.json() == "This feature is disabled."


def test_router_and_errors(api: tuple[TacticalRMMSimulator, httpx.Client]) -> None:
    sim, client = api
    short = client.get("/agents/abcdefghijklmnopqrst/")  # 20 characters: the router refuses it
    assert short.status_code == 404 and short.headers["content-type"].startswith("text/html")
    unknown = client.get(f"/agents/{'z' * 21}/")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "No Agent matches the given query."}
    cmd = {"shell": "cmd", "cmd": "dir", "timeout": 5, "run_as_user": False}
    assert client.post(f"/agents/{LAPTOP_ID}/cmd/", json=cmd).status_code == 500  # not connected
    assert client.post(f"/agents/{LAPTOP_ID}/reboot/").status_code == 500
    sim.set_silent(WEB_ID)
    r = client.post(f"/agents/{WEB_ID}/cmd/", json=cmd)
    assert r.status_code == 400 and r.json() == "Unable to contact the agent"
    assert client.post(f"/agents/{FRONTDESK_ID}/cmd/", json={"shell": "cmd", "cmd": "dir"}).status_code == 500
    assert client.get("/agents/", params={"monitoring_type": "laptop"}).json() == "monitoring type does not exist"
    slashless = client.post(f"/agents/{FRONTDESK_ID}/reboot")
    assert slashless.status_code == 301 and sim.reboots[FRONTDESK_ID] == 0
    assert client.patch(f"/agents/{FRONTDESK_ID}/reboot/", json={}).json() == "Invalid date"
    brief = client.get("/agents/", params={"detail": "false"}).json()[0]
    assert set(brief) == {"id", "hostname", "agent_id", "client", "site"}


def test_auth_failures_are_drf_details() -> None:
    sim = TacticalRMMSimulator()
    with httpx.Client(base_url=sim.base_url, transport=sim.transport()) as client:
        none = client.get("/scripts/")
        assert none.status_code == 401 and none.json() == {"detail": "Authentication credentials were not provided."}
        bad = client.get("/scripts/", headers={"X-API-KEY": "nope"})
        assert bad.status_code == 401 and bad.json() == {"detail": "Invalid token."}
        knox = client.get("/scripts/", headers={"Authorization": "Token nope", "X-API-KEY": sim.api_key})
        assert knox.status_code == 401  # knox is tried first


def test_checkcreds_and_login() -> None:
    sim = TacticalRMMSimulator()
    with httpx.Client(base_url=sim.base_url, transport=sim.transport()) as client:
        plain = client.post("/v2/checkcreds/", json={"username": sim.username, "password": sim.password}).json()
        assert plain["totp"] is False and plain["token"] in sim.tokens
        assert client.get("/scripts/", headers={"Authorization": f"Token {plain['token']}"}).status_code == 200
        creds = {"username": sim.totp_username, "password": sim.password}
        assert client.post("/v2/checkcreds/", json=creds).json() == {"totp": True}
        assert client.post("/v2/login/", json=creds).status_code == 500  # request.data["twofactor"]
        assert client.post("/v2/login/", json=creds | {"twofactor": "000000"}).json() == "Bad credentials"
        done = client.post("/v2/login/", json=creds | {"twofactor": sim.totp_code}).json()
        assert done["username"] == sim.totp_username and done["token"] in sim.tokens
        wrong = client.post("/v2/checkcreds/", json={"username": sim.username, "password": "x"})
        assert wrong.status_code == 400 and wrong.json() == "Bad credentials"
        sim.expire_tokens()
        expired = client.get("/scripts/", headers={"Authorization": f"Token {plain['token']}"})
        assert expired.status_code == 401 and expired.json() == {"detail": "Invalid token."}  # knox's words


def test_demo_hooks_use_the_api_key() -> None:
    sim = TacticalRMMSimulator()
    assert sim.demo_secrets() == {"tacticalrmm_api_key": sim.api_key}
    assert [a for a, _ in sim.demo_calls()] == ["tacticalrmm.agents.find", "tacticalrmm.agents.run_script"]
    assert all(len(agent_id) >= 21 for agent_id in sim.agents)
