"""How a delivery proves it comes from the vendor: the verification strategies a receiver picks from.

A plugin never writes HMAC or comparison code: it names the strategy and the header, the core computes
and compares (constant time, :func:`hmac.compare_digest`). The key or shared secret is the tenant secret
``<provider>_webhook_secret`` (``mspflow tenant webhook T PROVIDER`` creates or rotates it).

Examples::

    webhook.hmac_signature("X-Level-Signature", prefix="sha256=")   # Level: sha256=<hex of HMAC(body)>
    webhook.shared_secret("X-Tactical-Secret")                      # a header carrying the secret itself
    webhook.shared_secret("Authorization", scheme="Bearer")         # Authorization: Bearer <secret>
    webhook.custom(check_bot_framework_jwt)                         # (request, secret) -> bool
    webhook.json_field("event_id")                                  # where the delivery id is
    sign("s3cret", b'{"a": 1}', prefix="sha256=")                   # what a vendor (or simulator) sends
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


@dataclass(frozen=True)
class InboundRequest:
    """What a verifier sees: the raw body exactly as received and the headers (names lower-case)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Verifier(Protocol):
    """A verification strategy. ``needs_secret``: the tenant's webhook secret must exist (else 401)."""

    needs_secret: bool

    def verify(self, request: InboundRequest, secret: str | None) -> bool: ...

    def secret_headers(self) -> tuple[str, ...]:
        """Header names whose values are never stored (the signature or secret itself)."""
        ...


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """``a == b`` in time that does not depend on where they differ."""
    return hmac.compare_digest(a.encode() if isinstance(a, str) else a, b.encode() if isinstance(b, str) else b)


def sign(secret: str, body: bytes, *, algorithm: str = "sha256", prefix: str = "",
         encoding: Literal["hex", "base64"] = "hex") -> str:
    """The signature header value a vendor sends for ``body``: ``prefix`` + HMAC(secret, body)."""
    digest = hmac.new(secret.encode(), body, algorithm).digest()
    return prefix + (digest.hex() if encoding == "hex" else base64.b64encode(digest).decode())


def new_secret() -> str:
    """A fresh signing key or shared secret (256 random bits, hex)."""
    return secrets.token_hex(32)


@dataclass(frozen=True)
class HmacSignature:
    """``header: <prefix><HMAC of the raw body with the webhook secret>``, hex (any case) or base64."""

    header: str
    prefix: str = ""
    algorithm: str = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    needs_secret: bool = True

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported HMAC algorithm {self.algorithm!r}; use one of {', '.join(ALGORITHMS)}")

    def verify(self, request: InboundRequest, secret: str | None) -> bool:
        given = request.header(self.header)
        if not given or not secret:
            return False
        given = given.strip()
        if self.prefix:
            if given[: len(self.prefix)].lower() != self.prefix.lower():
                return False
            given = given[len(self.prefix):]
        expected = sign(secret, request.body, algorithm=self.algorithm, encoding=self.encoding)
        if self.encoding == "hex":
            given, expected = given.lower(), expected.lower()
        try:
            given.encode("ascii")
        except UnicodeEncodeError:
            return False
        return constant_time_equals(given, expected)

    def secret_headers(self) -> tuple[str, ...]:
        return (self.header.lower(),)


@dataclass(frozen=True)
class SharedSecret:
    """A header carrying the webhook secret itself, optionally after a scheme (``Bearer <secret>``)."""

    header: str
    scheme: str | None = None
    needs_secret: bool = True

    def verify(self, request: InboundRequest, secret: str | None) -> bool:
        given = request.header(self.header)
        if not given or not secret:
            return False
        given = given.strip()
        if self.scheme:
            scheme, _, rest = given.partition(" ")
            if scheme.lower() != self.scheme.lower():
                return False
            given = rest.strip()
        try:
            return constant_time_equals(given.encode("utf-8"), secret.encode("utf-8"))
        except UnicodeEncodeError:
            return False

    def secret_headers(self) -> tuple[str, ...]:
        return (self.header.lower(),)


@dataclass(frozen=True)
class CustomVerifier:
    """A verifier of the plugin's own, e.g. the Bot Framework's JWT: ``check(request, secret) -> bool``.

    ``check`` may raise; that counts as a refusal (401). Use :func:`constant_time_equals` for any
    comparison of secret material. ``headers`` names headers whose values are never stored.
    """

    check: Callable[[InboundRequest, str | None], bool]
    needs_secret: bool = False
    headers: tuple[str, ...] = ("authorization",)

    def verify(self, request: InboundRequest, secret: str | None) -> bool:
        return self.check(request, secret) is True

    def secret_headers(self) -> tuple[str, ...]:
        return tuple(h.lower() for h in self.headers)


DeliveryIdFn = Callable[[Mapping[str, str], Any], "str | None"]


@dataclass(frozen=True)
class JsonField:
    """The delivery id is a field of the JSON body (dotted path: ``data.id``)."""

    path: str

    def __call__(self, headers: Mapping[str, str], payload: Any) -> str | None:
        value = payload
        for part in self.path.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return None if value is None or isinstance(value, (dict, list)) else str(value)


@dataclass(frozen=True)
class Header:
    """The delivery id is a request header (e.g. ``X-Request-Id``)."""

    name: str

    def __call__(self, headers: Mapping[str, str], payload: Any) -> str | None:
        return headers.get(self.name.lower()) or None


def body_hash(body: bytes) -> str:
    """The delivery id of a vendor that sends none: the SHA-256 of the raw body."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


class webhook:  # a namespace, read as `webhook.hmac_signature(...)`
    """Verification strategies and delivery-id lookups a receiver picks from."""

    hmac_signature = HmacSignature
    shared_secret = SharedSecret
    custom = CustomVerifier
    json_field = JsonField
    header = Header
    sign = staticmethod(sign)
    constant_time_equals = staticmethod(constant_time_equals)
