"""Redaction: secret values and secret-named keys never leave a call in clear text.

A :class:`Redactor` belongs to one action call. Every secret the handler reads through its context is
added to it; everything the core stores, logs or returns for that call passes through it first.

Examples::

    r = Redactor()
    r.add("s3cr3t-token-value")
    r.text("401 for token s3cr3t-token-value")       # '401 for token [REDACTED]'
    r.data({"api_key": "abc", "note": "ok"})          # {'api_key': '[REDACTED]', 'note': 'ok'}
    cap({"blob": "x" * 100_000})                      # {'_truncated': True, 'bytes': ..., 'preview': ...}
"""

from __future__ import annotations

import json
import re
from typing import Any

MASK = "[REDACTED]"
MAX_STORED_BYTES = 32 * 1024
SECRET_KEY = re.compile(
    r"(token|password|passwd|secret|api[_-]?key|apikey|authorization|credential|private[_-]?key|cookie)",
    re.IGNORECASE,
)
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


class Redactor:
    """Scrubs known secret values from text and masks secret-named keys in data."""

    def __init__(self, values: set[str] | None = None) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values or ():
            self.add(value)

    def add(self, value: str | None) -> None:
        """Remember a secret value (and, for a JSON secret, each string inside it)."""
        if not value:
            return
        found = {value}
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            found |= set(_strings(parsed))
        fresh = {v for v in found if len(v) >= _MIN_SECRET_LEN} - self._values
        if fresh:
            self._values |= fresh
            ordered = sorted(self._values, key=len, reverse=True)  # longest first: no partial leftovers
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def text(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text

    def data(self, value: Any) -> Any:
        """A copy of ``value`` with secret values scrubbed and secret-named keys masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                        else self.data(v)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


def cap(value: Any, limit: int = MAX_STORED_BYTES) -> Any:
    """``value`` if its JSON fits in ``limit`` bytes, else a truncation marker with a preview."""
    encoded = json.dumps(value, default=str)
    if len(encoded.encode()) <= limit:
        return value
    return {"_truncated": True, "bytes": len(encoded.encode()), "preview": encoded[: limit // 2]}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
