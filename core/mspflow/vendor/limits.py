"""Declared vendor rate limits, enforced exactly on a sliding window across every worker process.

A plugin declares its vendor's published limit once; the core keeps a log of the requests it let
through per key (the tenant, or a hash of the credentials) and admits a request only while fewer than
``limit`` of them fall inside the window. With ``MSPFLOW_BROKER_URL`` set the log is a Redis sorted set
checked and written by one atomic Lua script, on Redis's own clock, so N workers on any number of
machines together stay under the limit; without it (the embedded default: one process) an in-process
log does the same.

Why a log and not counters: a vendor that counts an exact sliding window ("request 61 within 60 s of
the first gets 429") refuses requests that per-second buckets would admit (Dramatiq's
``WindowRateLimiter`` can let a request through 59.2 s after another one). And why completion times:
each entry is written when the request is admitted and rewritten with the time its answer arrived, so
it is never earlier than the vendor's own receipt of the request; admission then compares against
``window_s + margin_s``. Latency between our admission and the vendor's receipt therefore cannot make
two requests look closer to the vendor than to us, however the network or the worker threads stall.
The margin (default 1 % of the window, at least 10 ms) covers what is left: the vendor timestamping
with a coarser clock. An entry still in flight counts as if it completed ``hold_s`` from admission, so
a worker killed mid-request leaves a conservative entry behind.

A request with no room waits up to ``max_wait_s``; past that, :func:`throttle` raises ``RATE_LIMITED``
with ``retry_after`` = the exact time until the oldest entry leaves the window, and the worker re-queues
the call without spending its failure budget.

The limit belongs to the vendor account, so other tools on it can still cause a 429. :func:`refused`
turns one into a wait (the vendor's ``Retry-After``, else the time until our own oldest logged request
leaves the window, else a backoff) and pauses every worker's admissions for that key until then.

Operators may replace a declared limit with ``MSPFLOW_RATE_LIMITS`` (``vendor=limit/window_s``, comma
separated, vendor names case-insensitive): ``MSPFLOW_RATE_LIMITS="huntress=40/60"`` leaves a Huntress
account headroom for other tools; ``huntress=10/2`` makes tests and benchmarks fast. Every process that
calls the vendor must see the same value.

Examples::

    Vendor("Huntress", base_url="https://api.huntress.io/v1",
           rate_limit=RateLimit(60, window_s=60, scope="credential"))

    permit = throttle(limit, "Huntress", key, hold_s=30)    # waits for room, or RATE_LIMITED
    ...                                                     # send the request
    permit.done()                                           # the log entry takes the completion time
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from mspflow.errors import ActionError

OVERRIDE_ENV = "MSPFLOW_RATE_LIMITS"
KEY_PREFIX = "mspflow-rl"


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per ``window_s`` seconds per tenant (or per credential).

    :param scope: ``"tenant"``, or ``"credential"`` when the vendor counts per account: the key is a hash
        of the auth headers, so tenants sharing one API key share one budget.
    :param max_wait_s: how long one request may wait for room before the call is re-queued with
        ``RATE_LIMITED`` (which does not spend the call's retry budget).
    :param margin_s: added to the window when admitting; None: 1 % of the window, at least 10 ms.
    """

    limit: int
    window_s: float = 60
    scope: Literal["tenant", "credential"] = "tenant"
    max_wait_s: float = 2.0
    margin_s: float | None = None

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s <= 0 or self.max_wait_s < 0 or (self.margin_s or 0) < 0:
            raise ValueError(f"RateLimit needs limit >= 1, window_s > 0, max_wait_s >= 0, margin_s >= 0: {self}")

    @property
    def margin(self) -> float:
        return self.margin_s if self.margin_s is not None else max(0.01, self.window_s / 100)

    @property
    def span(self) -> float:
        """The window admission compares against: ``window_s + margin``."""
        return self.window_s + self.margin

    def for_vendor(self, vendor: str) -> RateLimit:
        """This limit, or the operator's replacement from ``MSPFLOW_RATE_LIMITS``."""
        override = overrides().get(vendor.lower())
        if override is None:
            return self
        return replace(self, limit=override[0], window_s=override[1], margin_s=None)


_parsed: tuple[str, dict[str, tuple[int, float]]] = ("", {})


def overrides() -> dict[str, tuple[int, float]]:
    """``MSPFLOW_RATE_LIMITS`` as ``{vendor (lower case): (limit, window_s)}``."""
    global _parsed
    raw = os.environ.get(OVERRIDE_ENV, "")
    if raw == _parsed[0]:
        return _parsed[1]
    from mspflow.settings import SettingError

    found: dict[str, tuple[int, float]] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, value = item.partition("=")
        count, _, window = value.partition("/")
        try:
            limit, seconds = int(count), float(window)
        except ValueError:
            limit, seconds = 0, 0.0
        if not name.strip() or limit < 1 or seconds <= 0:
            raise SettingError(f"{OVERRIDE_ENV}={raw!r}: write vendor=limit/window_seconds, comma separated, "
                               "e.g. huntress=40/60")
        found[name.strip().lower()] = (limit, seconds)
    _parsed = (raw, found)
    return found


# -- the request log: Redis (shared) or this process ------------------------------------------------------


class _Log(Protocol):
    def acquire(self, key: str, limit: int, span: float, hold: float) -> tuple[str | None, float]:
        """``(entry, 0)`` when admitted, else ``(None, seconds until room)``."""
        ...

    def done(self, key: str, entry: str) -> None:
        """The request of ``entry`` has its answer: the entry takes the current time."""
        ...

    def refused(self, key: str, span: float, wait: float | None) -> float | None:
        """Pause admissions for ``wait`` (None: until our oldest entry leaves the window); the pause."""
        ...


# KEYS: the log (sorted set: entry -> completion time), the pause key. ARGV: mode, then per mode.
# Times are Redis's own (TIME), so workers on machines with skewed clocks agree. Lua numbers reach
# the client as integers, so fractional seconds travel as strings.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mode = ARGV[1]
if mode == 'done' then
  redis.call('ZADD', KEYS[1], 'XX', now, ARGV[2])
  return 1
end
local span = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
local function until_room()
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if oldest[2] == nil then return nil end
  local s = tonumber(oldest[2])
  if s > now then s = now end  -- still in flight: it cannot leave before a window after now
  return s + span - now
end
if mode == 'refused' then
  local wait = tonumber(ARGV[3])
  if wait < 0 then wait = until_room() end
  if wait == nil then return false end
  local resume = now + wait
  local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
  if resume > paused then
    redis.call('SET', KEYS[2], string.format('%.6f', resume), 'PX', math.ceil(wait * 1000) + 1)
  end
  return tostring(wait)
end
local limit = tonumber(ARGV[3])
local hold = tonumber(ARGV[4])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return {0, tostring(paused - now)} end
if redis.call('ZCARD', KEYS[1]) < limit then
  local entry = string.format('%.6f', now) .. ':' .. ARGV[5]
  redis.call('ZADD', KEYS[1], now + hold, entry)
  redis.call('PEXPIRE', KEYS[1], math.ceil((span + hold) * 1000) + 1000)
  return {1, entry}
end
return {0, tostring(until_room())}
"""


class RedisLog:
    """The request log in Redis, shared by every process on the same broker."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_SCRIPT)

    def acquire(self, key: str, limit: int, span: float, hold: float) -> tuple[str | None, float]:
        admitted, value = self.script(keys=[key, key + ":paused"],
                                      args=["acquire", repr(span), limit, repr(hold), uuid.uuid4().hex])
        text = value.decode() if isinstance(value, bytes) else str(value)
        return (text, 0.0) if admitted == 1 else (None, max(0.0, float(text)))

    def done(self, key: str, entry: str) -> None:
        self.script(keys=[key, key + ":paused"], args=["done", entry])

    def refused(self, key: str, span: float, wait: float | None) -> float | None:
        value = self.script(keys=[key, key + ":paused"],
                            args=["refused", repr(span), repr(-1.0 if wait is None else wait)])
        return None if value is None else max(0.0, float(value))


class LocalLog:
    """The same log for one process (the embedded default), on the monotonic clock."""

    def __init__(self) -> None:
        self.url: str | None = None
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, float]] = {}
        self._paused: dict[str, float] = {}

    def _trim(self, key: str, span: float, now: float) -> dict[str, float]:
        log = self._entries.setdefault(key, {})
        for entry in [e for e, at in log.items() if at <= now - span]:
            del log[entry]
        return log

    def _until_room(self, log: dict[str, float], span: float, now: float) -> float | None:
        return min(log.values()) + span - now if log else None

    def acquire(self, key: str, limit: int, span: float, hold: float) -> tuple[str | None, float]:
        with self._lock:
            now = time.monotonic()
            if self._paused.get(key, 0.0) > now:
                return None, self._paused[key] - now
            log = self._trim(key, span, now)
            if len(log) < limit:
                entry = uuid.uuid4().hex
                log[entry] = now + hold
                return entry, 0.0
            oldest = min(min(log.values()), now)
            return None, oldest + span - now

    def done(self, key: str, entry: str) -> None:
        with self._lock:
            log = self._entries.get(key, {})
            if entry in log:
                log[entry] = time.monotonic()

    def refused(self, key: str, span: float, wait: float | None) -> float | None:
        with self._lock:
            now = time.monotonic()
            if wait is None:
                log = self._trim(key, span, now)
                wait = min(min(log.values()), now) + span - now if log else None
            if wait is None:
                return None
            self._paused[key] = max(self._paused.get(key, 0.0), now + wait)
            return wait


_backend_lock = threading.Lock()
_limiter_backend: Any = None


def _backend() -> _Log:
    """The log for this process: Redis when ``MSPFLOW_BROKER_URL`` is set (rebuilt if it changes)."""
    global _limiter_backend
    url = os.environ.get("MSPFLOW_BROKER_URL") or None
    with _backend_lock:
        if _limiter_backend is None or _limiter_backend.url != url:
            _limiter_backend = RedisLog(url) if url else LocalLog()
        backend: _Log = _limiter_backend
        return backend


def _key(vendor: str, key: str) -> str:
    return f"{KEY_PREFIX}:{vendor}:{key}"


@dataclass
class Permit:
    """Room for one request; :meth:`done` once its answer (or failure) is in."""

    log: _Log
    key: str
    entry: str

    def done(self) -> None:
        with contextlib.suppress(Exception):  # Redis gone: the entry keeps its later, conservative time
            self.log.done(self.key, self.entry)


def throttle(limit: RateLimit, vendor: str, key: str, *, hold_s: float = 0.0) -> Permit:
    """Wait for room under ``limit`` for ``key``; ``RATE_LIMITED`` (with the exact ``retry_after``) once
    ``max_wait_s`` cannot cover the wait. ``hold_s``: how long the request may stay in flight."""
    limit = limit.for_vendor(vendor)
    log, name = _backend(), _key(vendor, key)
    deadline = time.monotonic() + limit.max_wait_s
    while True:
        entry, wait = log.acquire(name, limit.limit, limit.span, hold_s)
        if entry is not None:
            return Permit(log, name, entry)
        if time.monotonic() + wait > deadline:
            raise ActionError("RATE_LIMITED", f"{vendor} allows {limit.limit} requests per {limit.window_s:g} s; "
                              f"this call will run again in {wait:.1f} s, when the window has room",
                              details={"reason": "LOCAL_RATE_LIMIT"}, retry_after=round(wait, 3))
        time.sleep(wait + random.uniform(0.0, 0.005))  # a little spread: waiters do not arrive in lockstep


BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def refused(limit: RateLimit | None, vendor: str, key: str, *, retry_after: float | None, refusals: int) -> float:
    """The vendor answered 429: how long to wait before sending again, and every worker pauses that long.

    The vendor's ``Retry-After`` when it gave one; else, with a declared limit, the time until our oldest
    logged request leaves the window (the vendor's window then certainly loses one entry); else a
    backoff by the number of refusals in a row, with jitter.
    """
    if limit is not None:
        limit = limit.for_vendor(vendor)
        try:
            wait = _backend().refused(_key(vendor, key), limit.span, retry_after)
        except Exception:  # Redis gone: fall back to the hint or a backoff, this process only
            wait = retry_after
        if wait is not None:
            return wait
    if retry_after is not None:
        return retry_after
    base = BACKOFF_S[min(max(refusals, 1), len(BACKOFF_S)) - 1]
    return base * random.uniform(0.8, 1.2)


__all__ = ["OVERRIDE_ENV", "Permit", "RateLimit", "overrides", "refused", "throttle"]
