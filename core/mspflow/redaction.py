"""Redaction: secret values and secret-named keys never leave a call in clear text.

A :class:`Redactor` belongs to one action call. It knows every secret of the call's tenant (the context
loads the whole set, in one query, on the first secret read or vendor client) plus what the call added
(tokens a vendor returned); everything the core stores, logs or returns for that call passes through it
first. It finds each secret in every form it can be stored or printed in: raw, JSON-escaped (with and
without ``ensure_ascii``, and with ``\\/``), percent-encoded (``quote``, ``quote_plus``, either hex case),
base64 (standard and URL-safe, also inside a longer encoded string such as a Basic ``user:secret`` pair),
HTML-escaped and Python ``repr``/``ascii`` escaped.

**Scrub, then cut.** Cutting first can split a secret so that its prefix no longer matches and
survives. Whatever shortens text that may hold a secret calls :func:`truncate` (or
:meth:`Redactor.truncate`), which scrubs the whole text before it cuts, and never cuts a mask in half.

**What is scrubbed when.** A call that reads no secret and creates no vendor client knows no secret
values: it masks secret-named keys and nothing else (its stored input is masked by key only, always).

Examples::

    r = Redactor()
    r.add("s3cr3t-token-value")
    r.text("401 for token s3cr3t-token-value")       # '401 for token [REDACTED]'
    r.text('{"key": "czNjcjN0LXRva2VuLXZhbHVl"}')     # its base64 too: '{"key": "[REDACTED]"}'
    r.data({"api_key": "abc", "note": "ok"})          # {'api_key': '[REDACTED]', 'note': 'ok'}
    r.truncate("x" * 290 + "s3cr3t-token-value", 300) # the secret is masked, not cut
    cap({"blob": "x" * 100_000})                      # {'_truncated': True, 'bytes': ..., 'preview': ...}
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
ELLIPSIS = " …"
MAX_STORED_BYTES = 32 * 1024
SECRET_KEY = re.compile(
    r"(token|password|passwd|secret|api[_-]?key|apikey|authorization|credential|private[_-]?key|cookie)",
    re.IGNORECASE,
)
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


def encodings(value: str) -> set[str]:
    """Every form ``value`` takes when stored or printed, as it appears inside a longer encoded text."""
    forms = {value}
    for ensure_ascii in (True, False):
        escaped = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/"), json.dumps(escaped, ensure_ascii=ensure_ascii)[1:-1]}
    for encoded in (quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/")):
        forms |= {encoded, _PERCENT.sub(lambda m: m.group(0).lower(), encoded)}
    escaped_html = html.escape(value)
    forms |= {escaped_html, escaped_html.replace("&#x27;", "&#39;"), html.escape(value, quote=False)}
    forms |= {repr(value)[1:-1], ascii(value)[1:-1], repr(value + "'\"")[1:-4], ascii(value + "'\"")[1:-4]}
    raw = value.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms |= {encode(raw).decode(), encode(raw).decode().rstrip("=")}  # the value encoded on its own
        for offset in range(3):  # where the value starts inside a longer encoded string, modulo 3 bytes
            encoded = encode(b"\0" * offset + raw).decode()
            start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
            forms.add(encoded[start:end])  # only the characters no neighbouring byte changes
    return {f for f in forms if len(f) >= _MIN_SECRET_LEN}


class Redactor:
    """Scrubs known secret values, in every encoding, from text and masks secret-named keys in data."""

    def __init__(self, values: Iterable[str] | None = None) -> None:
        self._values: set[str] = set()
        self._forms: list[str] = []
        self.add_all(values or ())

    def add(self, value: str | None) -> None:
        """Remember a secret value (and, for a JSON secret, each string inside it)."""
        self.add_all([value] if value else [])

    def add_all(self, values: Iterable[str | None]) -> None:
        """Remember several secret values at once (a tenant's whole set)."""
        fresh: set[str] = set()
        for value in values:
            if not value:
                continue
            found = {value}
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, (dict, list)):
                found |= set(_strings(parsed))
            fresh |= {v for v in found if len(v) >= _MIN_SECRET_LEN} - self._values
        if not fresh:
            return
        self._values |= fresh
        forms = set(self._forms)
        for value in fresh:
            forms |= encodings(value)
        self._forms = sorted(forms, key=lambda f: (-len(f), f))  # longest first: no partial leftovers

    def __contains__(self, value: str) -> bool:
        return value in self._values

    def text(self, text: str) -> str:
        """``text`` with every known secret, in every encoding, replaced by ``[REDACTED]``."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def truncate(self, text: str, limit: int) -> str:
        """Scrub ``text``, then cut it to at most ``limit`` characters (see :func:`truncate`)."""
        return truncate(text, limit, self)

    def data(self, value: Any) -> Any:
        """A copy of ``value`` with secret values scrubbed and secret-named keys masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {(self.text(k) if isinstance(k, str) else k):
                    (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else self.data(v))
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


def truncate(text: str, limit: int, redactor: Redactor | None = None) -> str:
    """``text`` scrubbed by ``redactor`` and then cut to at most ``limit`` characters, ending in `` …``.

    Every place that shortens text which may hold a secret (a vendor's error body, a preview) calls this
    instead of slicing: a slice taken before scrubbing can cut through a secret and leave its first
    characters, which no longer match, in clear text. A cut never splits a ``[REDACTED]`` mask.
    """
    if redactor is not None:
        text = redactor.text(text)
    if len(text) <= limit:
        return text
    cut = max(0, limit - len(ELLIPSIS))
    mask = text.rfind(MASK, max(0, cut - len(MASK) + 1), cut + len(MASK) - 1)
    if mask != -1 and mask < cut < mask + len(MASK):
        cut = mask  # the cut would fall inside a mask: keep the mask whole or drop it
    return text[:cut] + ELLIPSIS


def cap(value: Any, limit: int = MAX_STORED_BYTES, redactor: Redactor | None = None) -> Any:
    """``value`` if its JSON fits in ``limit`` bytes, else a truncation marker with a (scrubbed) preview."""
    encoded = json.dumps(value, default=str)
    return value if _fits(encoded, limit) else _marker(encoded, limit, redactor)


def cap_json(value: Any, limit: int = MAX_STORED_BYTES) -> str:
    """``json.dumps(cap(value, limit))``, serializing ``value`` only once when it fits."""
    encoded = json.dumps(value, default=str)
    return encoded if _fits(encoded, limit) else json.dumps(_marker(encoded, limit, None))


def _fits(encoded: str, limit: int) -> bool:
    return len(encoded) * 4 <= limit or len(encoded.encode()) <= limit  # at most 4 UTF-8 bytes a character


def _marker(encoded: str, limit: int, redactor: Redactor | None) -> dict[str, Any]:
    return {"_truncated": True, "bytes": len(encoded.encode()), "preview": truncate(encoded, limit // 2, redactor)}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
