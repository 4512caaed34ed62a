"""Huntress's 60 requests per minute per account, in one process: declared once, shared by tenants on one key,
and 429s from other tools on the account waited out without repeating a resolution.

Across worker processes (Redis, real workers): ``test_huntress_workers.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from mspflow_huntress import HUNTRESS_API
from mspflow_huntress.sim import FRONTDESK, SENT_ID

from mspflow import RateLimit
from mspflow.vendor import limits


def short_window(hunt: Any, monkeypatch: pytest.MonkeyPatch, limit: int, window: float, **sim: Any) -> None:
    """The simulator's account window and the workers' declared limit, both shortened alike."""
    monkeypatch.setenv(limits.OVERRIDE_ENV, f"huntress={limit}/{window:g}")
    hunt.sim.rate_limit, hunt.sim.window_s = limit, window
    for name, value in sim.items():
        setattr(hunt.sim, name, value)


def test_the_limit_is_declared_once_per_account() -> None:
    assert HUNTRESS_API.rate_limit == RateLimit(60, window_s=60, scope="credential")
    assert HUNTRESS_API.base_url == "https://api.huntress.io/v1"


def test_calls_beyond_the_window_wait_instead_of_tripping_huntress(hunt: Any, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    short_window(hunt, monkeypatch, 4, 1.0)
    for _ in range(10):
        assert hunt.ok("agents.get", {"agent_id": FRONTDESK})
    assert hunt.sim.refused == 0 and len(hunt.sim.api_times()) == 10


def test_tenants_sharing_one_key_share_one_budget(hunt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.OVERRIDE_ENV, "huntress=3/60")
    for tenant in ("globex", "initech"):
        hunt.connect(tenant)
    hunt.use_keys(hunt.sim.api_key, hunt.sim.api_secret, "globex")  # the same account key pair as acme
    hunt.use_readonly_key("initech")  # another key pair: another budget
    assert hunt.ok("account.get") and hunt.ok("account.get", tenant="globex") and hunt.ok("account.get")
    err = hunt.fail("account.get", tenant="globex")
    assert err.code == "RATE_LIMITED" and err.retryable and err.details["reason"] == "LOCAL_RATE_LIMIT"
    assert err.retry_after is not None and 0 < err.retry_after <= 60.6 + 1e-6
    assert hunt.ok("account.get", tenant="initech")
    assert len(hunt.sim.requests) == 4 and hunt.sim.refused == 0


@pytest.mark.parametrize("retry_after", [False, True], ids=["no-retry-after", "retry-after"])
def test_another_tools_429_is_waited_out_and_the_resolution_happens_once(
        hunt: Any, monkeypatch: pytest.MonkeyPatch, retry_after: bool) -> None:
    short_window(hunt, monkeypatch, 5, 1.0, send_retry_after=retry_after)
    assert hunt.sim.other_tool(5) == 5  # another tool fills the account's window
    out = hunt.ok("incidents.resolve", {"incident_report_id": SENT_ID})
    assert out["resolved"] is True and hunt.sim.resolutions[SENT_ID] == 1
    assert hunt.sim.refused >= 1 and hunt.sim.count("POST", "/resolution") == hunt.sim.refused + 1
    result = hunt.run("incidents.get", {"incident_report_id": SENT_ID})
    assert result.ok and result.attempt == 1  # waited inline: no attempt spent


def test_a_long_429_goes_back_to_the_worker_and_pauses_every_caller(hunt: Any) -> None:
    hunt.sim.other_tool(60)  # Huntress's real window, full for a minute
    err = hunt.fail("incidents.resolve", {"incident_report_id": SENT_ID})
    assert err.code == "RATE_LIMITED" and err.retryable and err.details["reason"] == "VENDOR_RATE_LIMIT"
    assert err.details["status"] == 429 and err.retry_after is not None and 0 < err.retry_after <= 60.6 + 1e-6
    assert "shared with other tools" in err.message
    again = hunt.fail("incidents.get", {"incident_report_id": SENT_ID})
    assert again.code == "RATE_LIMITED" and again.details["reason"] == "LOCAL_RATE_LIMIT"
    assert hunt.sim.refused == 1 and len(hunt.sim.requests) == 1  # the pause kept the second call home
    assert hunt.sim.resolutions[SENT_ID] == 0
