"""The simulator keeps Huntress's documented behaviour, so the plugin is tested against it."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from mspflow_huntress.sim import CLOSED_ID, MACBOOK, PENDING_ID, SENT_ID, STATUSES, HuntressSimulator


def basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


@pytest.fixture
def api() -> Iterator[tuple[HuntressSimulator, httpx.Client]]:
    sim = HuntressSimulator(rate_limit=3, window_s=60)
    with httpx.Client(base_url="https://api.huntress.io", transport=sim.transport(),
                      headers=basic(sim.api_key, sim.api_secret)) as client:
        yield sim, client


def test_request_61_within_the_window_is_429_and_refusals_take_no_slot(
        api: tuple[HuntressSimulator, httpx.Client]) -> None:
    sim, client = api
    assert [client.get("/v1/account").status_code for _ in range(5)] == [200, 200, 200, 429, 429]
    assert sim.refused == 2 and len(sim.api_times()) == 3
    refused = client.get("/v1/account")
    assert refused.json() == {"error": "Rate limit exceeded"} and "Retry-After" not in refused.headers
    sim.send_retry_after = True
    assert 1 <= int(client.get("/v1/account").headers["Retry-After"]) <= 60
    assert client.get("/_sim/limiter").json() == {"limit": 3, "window_s": 60, "accepted": 3, "other_tool": 0,
                                                  "refused": 4}


def test_the_window_slides_and_other_tools_share_it() -> None:
    sim = HuntressSimulator(rate_limit=2, window_s=0.3)
    with httpx.Client(base_url="https://api.huntress.io", transport=sim.transport(),
                      headers=basic(sim.api_key, sim.api_secret)) as client:
        assert sim.other_tool(3) == 2  # the account's window is full
        assert client.get("/v1/account").status_code == 429
        deadline = 50  # polls of 50 ms
        while client.get("/v1/account").status_code == 429 and deadline:  # wait for the window to slide
            deadline -= 1
            import time

            time.sleep(0.05)
        assert deadline and sim.other_tool_requests == 2
        assert client.post("/_sim/other_tool", params={"count": 5}).json() == {"fitted": 1}


def test_auth_is_basic_and_a_bad_pair_is_401_before_the_limiter(api: tuple[HuntressSimulator, httpx.Client]
                                                                ) -> None:
    sim, client = api
    assert client.get("/v1/account", headers=basic(sim.api_key, "nope")).status_code == 401
    assert client.get("/v1/account", headers={"Authorization": "Bearer x"}).status_code == 401
    assert len(sim.api_times()) == 0


def test_lists_page_by_token_and_say_nothing_more_on_the_last_page() -> None:
    sim = HuntressSimulator()
    with httpx.Client(base_url="https://api.huntress.io", transport=sim.transport(),
                      headers=basic(sim.api_key, sim.api_secret)) as client:
        first = client.get("/v1/incident_reports", params={"limit": 3}).json()
        assert len(first["incident_reports"]) == 3 and first["pagination"]["next_page_token"] == "3"
        assert "page_token=3" in first["pagination"]["next_page_url"]
        rest = client.get("/v1/incident_reports", params={"limit": 500, "page_token": "3"}).json()
        assert rest["pagination"] == {} and len(rest["incident_reports"]) == len(sim.reports) - 3
        for i in range(5):
            sim.add_report(95_000 + i, MACBOOK)
        assert len(client.get("/v1/incident_reports").json()["incident_reports"]) == 10  # the default page
        assert client.get("/v1/incident_reports", params={"limit": 501}).status_code == 400
        assert client.get("/v1/incident_reports", params={"status": "resolved"}).status_code == 400
        assert {r["status"] for r in rest["incident_reports"] + first["incident_reports"]} == set(STATUSES)


def test_resolution_rules() -> None:
    sim = HuntressSimulator()
    with httpx.Client(base_url="https://api.huntress.io", transport=sim.transport()) as client:
        readonly = client.post(f"/v1/incident_reports/{SENT_ID}/resolution",
                               headers=basic(sim.readonly_key, sim.readonly_secret))
        assert readonly.status_code == 403
        user = basic(sim.api_key, sim.api_secret)
        assert client.post(f"/v1/incident_reports/{PENDING_ID}/resolution", headers=user).status_code == 409
        assert client.post(f"/v1/incident_reports/{CLOSED_ID}/resolution", headers=user).status_code == 422
        assert client.post("/v1/incident_reports/1/resolution", headers=user).status_code == 404
        done = client.post(f"/v1/incident_reports/{SENT_ID}/resolution", headers=user)
        assert done.status_code == 201 and done.json()["incident_report"]["status"] == "closed"
        assert client.post(f"/v1/incident_reports/{SENT_ID}/resolution", headers=user).status_code == 422
        assert sim.resolutions[SENT_ID] == 1


def test_demo_hooks_tell_the_enrichment_story() -> None:
    sim = HuntressSimulator()
    assert sim.demo_secrets() == {"huntress_api_key": sim.api_key, "huntress_api_secret": sim.api_secret}
    assert [a for a, _ in sim.demo_calls()] == ["huntress.incidents.get", "huntress.agents.get",
                                                "huntress.incidents.resolve"]
    assert sim.keys[sim.api_key][1] is True  # the demo's key may resolve


def test_the_window_can_be_shortened_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSPFLOW_HUNTRESS_SIM_LIMIT", "10/2")
    assert (HuntressSimulator().rate_limit, HuntressSimulator().window_s) == (10, 2.0)
    monkeypatch.delenv("MSPFLOW_HUNTRESS_SIM_LIMIT")
    assert (HuntressSimulator().rate_limit, HuntressSimulator().window_s) == (60, 60.0)
