"""Locks shared by every worker: one token refresh or login at a time per tenant and credential.

With ``MSPFLOW_BROKER_URL`` set (Redis), the lock holds across worker processes and machines; without
it (the embedded default: one process), an in-process lock does. Threads of one process always queue on
the in-process lock first, so a process holds at most one Redis lock per key.

Examples::

    with shared_lock("login", tenant, "tacticalrmm_knox_token"):
        ...   # read the token again: another worker may have logged in meanwhile
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any

from mspflow.errors import ActionError

_lock = threading.Lock()
_local: dict[tuple[str, ...], threading.Lock] = {}


def local_lock(*key: str) -> threading.Lock:
    """One in-process lock per key."""
    with _lock:
        return _local.setdefault(key, threading.Lock())


@cache
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


@contextmanager
def shared_lock(*key: str, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold ``key`` across every worker; ``TRANSIENT_FAILURE`` if it cannot be had within ``timeout_s``."""
    with local_lock(*key):
        url = os.environ.get("MSPFLOW_BROKER_URL")
        if not url:
            yield
            return
        lock = _redis(url).lock("mspflow-lock:" + ":".join(key), timeout=timeout_s, blocking_timeout=timeout_s)
        if not lock.acquire():
            raise ActionError("TRANSIENT_FAILURE", "another worker has held the login lock for too long; "
                              "this call will run again", details={"reason": "LOCK_TIMEOUT"})
        try:
            yield
        finally:
            with suppress(Exception):  # expired meanwhile: the next holder already has it
                lock.release()
