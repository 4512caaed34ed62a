"""The reliability suite: hostile inputs, faults and crashes, one figure per area.

Run with ``nox -s reliability`` (``./dev reliability``); CI runs the short ``ci`` profile, and
``MSPFLOW_RELIABILITY_PROFILE=full`` runs the long one. Each area records its figure with
``figures.record(area, text, ok)`` and then asserts ``ok``; the table of every figure recorded is printed
at the end of the run, so a missed figure is visible beside the ones that held.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mspflow.app import App
from mspflow.db.engine import Database
from tests.reliability.world import World

PROFILES = {
    # fuzzed inputs per database, crash rounds, queued calls in the load test
    "ci": {"fuzz": 10_000, "crash_calls": 40, "crash_kills": 2, "load": 10_000, "secret_rounds": 1},
    "full": {"fuzz": 50_000, "crash_calls": 200, "crash_kills": 6, "load": 10_000, "secret_rounds": 3},
}


@dataclass
class Figure:
    area: str
    text: str
    ok: bool


class Figures:
    """Where a test records its area's figure.

    The figure travels on the test's report (``user_properties``), so the table is complete when the suite
    runs in several processes (pytest-xdist) as well as in one.
    """

    def __init__(self, node: pytest.Item) -> None:
        self.node = node

    def record(self, area: str, text: str, ok: bool) -> bool:
        self.node.user_properties.append((FIGURE, (area, text, ok)))
        return ok


FIGURE = "reliability-figure"
_ROWS: list[Figure] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    assert isinstance(request.node, pytest.Item)
    return Figures(request.node)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _ROWS.extend(Figure(*value) for name, value in report.user_properties if name == FIGURE)


@pytest.fixture(scope="session")
def profile() -> dict[str, int]:
    name = os.environ.get("MSPFLOW_RELIABILITY_PROFILE", "ci")
    if name not in PROFILES:
        raise pytest.UsageError(f"MSPFLOW_RELIABILITY_PROFILE={name!r}; use one of {', '.join(PROFILES)}")
    return PROFILES[name]


@pytest.fixture
def world(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Every installed plugin on its mounted simulator, two tenants connected to all of them."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    # the suite calls Huntress far more often than its 60 a minute; the limiter has its own tests
    monkeypatch.setenv("MSPFLOW_RATE_LIMITS", "huntress=1000000/60")
    w = World(App(db=db))
    yield w
    w.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _ROWS:
        return
    tr = terminalreporter
    tr.section("reliability figures")
    width = max(len(f.area) for f in _ROWS)
    for f in _ROWS:
        tr.write_line(f"{'ok  ' if f.ok else 'MISS'}  {f.area:<{width}}  {f.text}")
    profile = os.environ.get("MSPFLOW_RELIABILITY_PROFILE", "ci")
    tr.write_line(f"(profile {profile}; {sum(not f.ok for f in _ROWS)} missed)")
