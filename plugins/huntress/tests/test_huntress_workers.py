"""Across worker processes: real Redis, real PostgreSQL, ``mspflow worker`` processes, the simulator served on
loopback. Each test runs ``benchmarks/throttle.py`` with a shortened window (10 requests per 2 s) and reads its
figures; it asserts outcomes (429s, exactly-once), never durations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "throttle.py"


def throttle(postgresql_url: str, redis_url: str, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    env |= {"MSPFLOW_BENCH_POSTGRESQL_URL": postgresql_url, "MSPFLOW_BENCH_REDIS_URL": redis_url}
    done = subprocess.run([sys.executable, str(BENCHMARK), "--short", "--json", *args], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert not figures["timed_out"], figures
    return figures


def test_two_workers_of_eight_threads_never_trip_the_window(postgresql_url: str, redis_url: str) -> None:
    figures = throttle(postgresql_url, redis_url, "--calls", "60", "--processes", "2", "--threads", "8")
    assert (figures["limit"], figures["window_s"]) == (10, 2.0)
    assert figures["refused_429"] == 0, figures
    assert (figures["succeeded"], figures["failed"]) == (60, 0), figures
    assert figures["our_requests_accepted"] == 60 and figures["busiest_window"] <= 10
    assert figures["resolved_exactly_once"] and figures["resolutions"] == figures["resolves"] == 20


def test_another_tool_on_the_account_causes_429s_that_are_waited_out_exactly_once(
        postgresql_url: str, redis_url: str) -> None:
    figures = throttle(postgresql_url, redis_url, "--calls", "45", "--processes", "2", "--threads", "4",
                       "--other-tool", "1", "--every", "0.4")
    assert figures["other_tool_slots"] > 0 and figures["refused_429"] > 0, figures  # the account was contended
    assert (figures["succeeded"], figures["failed"]) == (45, 0), figures
    assert figures["our_requests_accepted"] == 45  # each call carried out once: refused sends are not
    assert figures["resolved_exactly_once"] and figures["resolutions"] == figures["resolves"] == 15
