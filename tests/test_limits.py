"""The sliding-window limiter (mspflow.vendor.limits): exact, shared through Redis, honest about waits."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator

import pytest

from mspflow.errors import ActionError
from mspflow.settings import SettingError
from mspflow.vendor import limits
from mspflow.vendor.limits import LocalLog, RateLimit, RedisLog


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The in-process log, then the Redis one (MSPFLOW_BROKER_URL set)."""
    monkeypatch.setattr(limits, "_limiter_backend", None)
    monkeypatch.delenv(limits.OVERRIDE_ENV, raising=False)
    if request.param == "redis":
        monkeypatch.setenv("MSPFLOW_BROKER_URL", request.getfixturevalue("redis_url"))
    else:
        monkeypatch.delenv("MSPFLOW_BROKER_URL", raising=False)
    yield request.param


def test_rate_limit_fields_stay_compatible_and_margin_defaults_to_a_percent() -> None:
    limit = RateLimit(60, window_s=60, scope="credential")
    assert (limit.limit, limit.window_s, limit.scope, limit.max_wait_s) == (60, 60, "credential", 2.0)
    assert limit.margin == pytest.approx(0.6) and limit.span == pytest.approx(60.6)
    assert RateLimit(10, window_s=0.5).margin == 0.01 and RateLimit(5, margin_s=0).span == 60
    with pytest.raises(ValueError):
        RateLimit(0)


def test_operators_replace_a_declared_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.OVERRIDE_ENV, "Huntress=10/2, level=100/60")
    declared = RateLimit(60, window_s=60, scope="credential", max_wait_s=5)
    assert declared.for_vendor("Huntress") == RateLimit(10, window_s=2.0, scope="credential", max_wait_s=5)
    assert declared.for_vendor("NinjaOne") is declared
    for bad in ("huntress", "huntress=10", "huntress=0/60", "=1/1", "huntress=x/60"):
        monkeypatch.setenv(limits.OVERRIDE_ENV, bad)
        with pytest.raises(SettingError, match="MSPFLOW_RATE_LIMITS"):
            limits.overrides()


def test_admits_the_limit_then_says_exactly_when_there_is_room(backend: str) -> None:
    limit = RateLimit(3, window_s=30, max_wait_s=0)
    permits = [limits.throttle(limit, "Acme", "k") for _ in range(3)]
    for permit in permits:
        permit.done()
    with pytest.raises(ActionError) as refused:
        limits.throttle(limit, "Acme", "k")
    err = refused.value
    assert err.code == "RATE_LIMITED" and err.retryable and err.details["reason"] == "LOCAL_RATE_LIMIT"
    assert err.retry_after is not None and 29 < err.retry_after <= limit.span + 1e-6  # the oldest entry leaves then
    limits.throttle(limit, "Acme", "other-key").done()  # keys are separate budgets


def test_a_slot_frees_when_its_request_leaves_the_window_not_at_a_bucket_edge(backend: str) -> None:
    limit = RateLimit(1, window_s=1.0, margin_s=0.05, max_wait_s=0)
    limits.throttle(limit, "Acme", "k").done()
    time.sleep(0.3)  # per-second buckets could admit now; the sliding window cannot
    with pytest.raises(ActionError) as refused:
        limits.throttle(limit, "Acme", "k")
    wait = refused.value.retry_after
    assert wait is not None and 0 < wait <= 0.75 + 0.001  # span 1.05 less the 0.3 s slept (retry_after is rounded)
    time.sleep(wait + 0.01)
    limits.throttle(limit, "Acme", "k").done()


def test_a_waiting_request_gets_the_next_slot_within_max_wait(backend: str) -> None:
    limit = RateLimit(2, window_s=0.3, max_wait_s=2)
    for _ in range(5):
        limits.throttle(limit, "Acme", "k").done()


def test_an_entry_in_flight_counts_and_then_takes_its_completion_time(backend: str) -> None:
    log = limits._backend()
    entry, _ = log.acquire("mspflow-rl:Acme:f", 1, 0.3, 60.0)  # in flight: held for up to 60 s
    assert entry is not None
    refused, wait = log.acquire("mspflow-rl:Acme:f", 1, 0.3, 60.0)
    assert refused is None and 0 < wait <= 0.3 + 1e-9  # it cannot leave before a window after it completes
    time.sleep(0.35)
    assert log.acquire("mspflow-rl:Acme:f", 1, 0.3, 60.0)[0] is None  # still in flight: still counted
    log.done("mspflow-rl:Acme:f", entry)
    refused, wait = log.acquire("mspflow-rl:Acme:f", 1, 0.3, 60.0)
    assert refused is None and 0 < wait <= 0.3 + 1e-9  # a window from its completion, not from its admission


def test_a_vendor_429_pauses_every_caller_until_our_oldest_request_leaves(backend: str) -> None:
    limit = RateLimit(5, window_s=30, max_wait_s=0)
    limits.throttle(limit, "Acme", "k").done()
    wait = limits.refused(limit, "Acme", "k", retry_after=None, refusals=1)
    assert 29 < wait <= limit.span + 1e-6
    with pytest.raises(ActionError) as paused:
        limits.throttle(limit, "Acme", "k")  # room in our own log, but the vendor said no
    assert paused.value.retry_after is not None and paused.value.retry_after > 29
    assert limits.refused(limit, "Acme", "fresh", retry_after=0.2, refusals=1) == pytest.approx(0.2)
    assert 0.8 <= limits.refused(None, "Acme", "k", retry_after=None, refusals=1) <= 1.2  # no log: backoff


@pytest.mark.redis
def test_two_processes_share_one_log_through_redis(redis_url: str) -> None:
    first, second = RedisLog(redis_url), RedisLog(redis_url)  # as two workers would hold them
    assert first.acquire("mspflow-rl:Acme:shared", 2, 30, 0)[0] is not None
    assert second.acquire("mspflow-rl:Acme:shared", 2, 30, 0)[0] is not None
    assert first.acquire("mspflow-rl:Acme:shared", 2, 30, 0)[0] is None
    assert second.acquire("mspflow-rl:Acme:shared", 2, 30, 0)[0] is None
    assert LocalLog().acquire("mspflow-rl:Acme:shared", 2, 30, 0)[0] is not None  # the embedded log is its own


class ExactWindow:
    """A vendor counting an exact sliding window, with a random delay before each request reaches it."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.seen: deque[float] = deque()
        self.accepted = self.refused = 0
        self.lock = threading.Lock()

    def receive(self) -> None:
        with self.lock:
            now = time.monotonic()
            while self.seen and self.seen[0] <= now - self.window:
                self.seen.popleft()
            if len(self.seen) >= self.limit:
                self.refused += 1
            else:
                self.seen.append(now)
                self.accepted += 1


def test_many_threads_never_trip_an_exact_sliding_window(backend: str) -> None:
    import random

    vendor = ExactWindow(limit=5, window=0.5)
    limit = RateLimit(5, window_s=0.5, margin_s=0.0, max_wait_s=30)

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(6):
            permit = limits.throttle(limit, "Acme", "exact", hold_s=5)
            time.sleep(rnd.uniform(0, 0.03))  # admission to receipt: threads, network
            vendor.receive()
            time.sleep(rnd.uniform(0, 0.03))  # receipt to answer
            permit.done()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (vendor.accepted, vendor.refused) == (36, 0)
