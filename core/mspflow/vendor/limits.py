"""Declared vendor rate limits, enforced across every worker process.

A plugin declares its vendor's published limit once; the core holds it through Dramatiq's window rate
limiter, on Redis when ``MSPFLOW_BROKER_URL`` is set (so N workers together stay under it) and in this
process otherwise.

Examples::

    Vendor("Huntress", base_url="https://api.huntress.io/v1", rate_limit=RateLimit(60, window_s=60))
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from mspflow.errors import ActionError


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per ``window_s`` seconds per tenant (or per credential).

    :param max_wait_s: how long one request may wait for room before the call is re-queued with
        ``RATE_LIMITED`` (which does not spend the call's retry budget).
    """

    limit: int
    window_s: int = 60
    scope: Literal["tenant", "credential"] = "tenant"
    max_wait_s: float = 2.0


_backend_lock = threading.Lock()
_limiter_backend: Any = None


def _backend() -> Any:
    global _limiter_backend
    with _backend_lock:
        if _limiter_backend is None:
            url = os.environ.get("MSPFLOW_BROKER_URL")
            if url:
                from dramatiq.rate_limits.backends import RedisBackend

                _limiter_backend = RedisBackend(url=url)
            else:
                from dramatiq.rate_limits.backends import StubBackend

                _limiter_backend = StubBackend()  # type: ignore[no-untyped-call]
        return _limiter_backend


def throttle(limit: RateLimit, vendor: str, key: str) -> None:
    """Wait for room under ``limit`` for ``key``; ``RATE_LIMITED`` once ``max_wait_s`` has passed."""
    from dramatiq.rate_limits import WindowRateLimiter

    limiter = WindowRateLimiter(  # type: ignore[no-untyped-call]
        _backend(), f"mspflow-rl:{vendor}:{key}", limit=limit.limit, window=limit.window_s)
    deadline = time.monotonic() + limit.max_wait_s
    while True:
        with limiter.acquire(raise_on_failure=False) as acquired:
            if acquired:
                return
        if time.monotonic() >= deadline:
            raise ActionError("RATE_LIMITED", f"{vendor} allows {limit.limit} requests per {limit.window_s} s; "
                              "this call will run again when the window has room",
                              details={"reason": "LOCAL_RATE_LIMIT"}, retry_after=float(limit.window_s) / 2)
        time.sleep(0.1)
