"""How a delivery proves it comes from the vendor: the verification strategies a receiver picks from.

A plugin never writes HMAC or comparison code: it names the strategy and the header, the core computes
and compares (constant time, :func:`hmac.compare_digest`). The key or shared secret is the tenant secret
``<provider>_webhook_secret`` (``mspflow tenant webhook T PROVIDER`` creates or rotates it).

Examples::

    webhook.hmac_signature("X-Level-Signature", prefix="sha256=")   # Level: sha256=<hex of HMAC(body)>
    webhook.shared_secret("X-Tactical-Secret")                      # a header carrying the secret itself
    webhook.shared_secret("Authorization", scheme="Bearer")         # Authorization: Bearer <secret>
    webhook.custom(check_my_vendor)                                 # (request, secret) -> bool
    webhook.bot_framework()                                         # Bot Framework JWT (Teams bots), 403
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
    #: What the verifier's ``load(session, tenant)`` read for the connection's tenant (e.g. the bot app id).
    context: Mapping[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Verifier(Protocol):
    """A verification strategy. ``needs_secret``: the tenant's webhook secret must exist (else 401).

    Optional attributes: ``refusal_status`` (default 401), the status a refused delivery is answered with;
    ``load(session, tenant) -> Mapping`` per-tenant values read in the connection lookup's transaction,
    handed to ``verify`` as ``request.context``.
    """

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


BOT_FRAMEWORK_OPENID = "https://login.botframework.com/v1/.well-known/openidconfiguration"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
BOT_FRAMEWORK_CLOUDS = {  # cloud: (OpenID metadata, issuer) of tokens the Bot Framework sends to a bot
    "public": (BOT_FRAMEWORK_OPENID, BOT_FRAMEWORK_ISSUER),
    "gcch": ("https://login.botframework.azure.us/v1/.well-known/openidconfiguration", "https://api.botframework.us"),
    "dod": ("https://login.botframework.azure.us/v1/.well-known/openidconfiguration", "https://api.botframework.us"),
}
OPENID_HOSTS = frozenset({"login.botframework.com", "login.botframework.azure.us"})
"""Hosts the Bot Framework's OpenID metadata may come from (a profile's override must name one, or loopback
with ``MSPFLOW_ALLOW_HTTP_VENDOR_URLS`` for a simulator): whoever serves the keys decides what is valid."""
JWKS_MIN_REFRESH_S = 300.0
"""An unknown key id fetches the signing keys again, at most this often per metadata URL."""
CLOCK_SKEW_S = 300
_jwks: dict[str, tuple[dict[str, Any], float]] = {}


def _fetch_json(url: str) -> Any:
    import httpx

    from mspflow.vendor.network import AddressPolicy
    from mspflow.vendor.paths import http_allowed, normalize_base_url
    from mspflow.vendor.transport import transport_for

    parsed = httpx.URL(url)
    origin = normalize_base_url(f"{parsed.scheme}://{parsed.netloc.decode('ascii')}")
    with httpx.Client(base_url=origin, timeout=httpx.Timeout(10.0),
                      transport=transport_for(origin, AddressPolicy(loopback=http_allowed())),
                      follow_redirects=False) as client:
        response = client.get(parsed.raw_path.decode("ascii"))
        response.raise_for_status()
        return response.json()


def signing_keys(openid_url: str, *, refresh: bool = False) -> dict[str, Any]:
    """The signing keys (``kid`` → JWK) published through the OpenID metadata at ``openid_url``, cached per
    process; ``refresh`` fetches them again (at most every :data:`JWKS_MIN_REFRESH_S` seconds). The keys must
    be served from the metadata's own host."""
    import time

    import httpx

    cached = _jwks.get(openid_url)
    if cached is not None and (not refresh or time.monotonic() - cached[1] < JWKS_MIN_REFRESH_S):
        return cached[0]
    metadata = _fetch_json(openid_url)
    jwks_uri = str(metadata["jwks_uri"]) if isinstance(metadata, dict) else ""
    if httpx.URL(jwks_uri).host != httpx.URL(openid_url).host:
        raise ValueError("the signing keys are not served from the OpenID metadata's host")
    keys = {str(k["kid"]): k for k in _fetch_json(jwks_uri).get("keys", []) if isinstance(k, dict) and "kid" in k}
    _jwks[openid_url] = (keys, time.monotonic())
    return keys


def verify_jwt(token: str, *, openid_url: str, issuer: str, audience: str,
               algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512"),
               endorsement: str | None = None) -> dict[str, Any]:
    """The claims of ``token`` once its signature (a key from the OpenID metadata, refetched once for an
    unknown key id), issuer, audience and expiry (with 5 minutes of clock skew) check out; else raises.

    ``endorsement``: the signing key's ``endorsements`` must list it (the Bot Framework endorses each key
    for the channels it may sign for: an activity's ``channelId``); a key without that list is refused.
    """
    import jwt

    kid = jwt.get_unverified_header(token).get("kid")
    keys = signing_keys(openid_url)
    if kid not in keys:
        keys = signing_keys(openid_url, refresh=True)
    if kid not in keys:
        raise ValueError("the token is signed with an unknown key")
    key = jwt.PyJWK(keys[kid]).key
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=list(algorithms), audience=audience, issuer=issuer,
                                        leeway=CLOCK_SKEW_S, options={"require": ["exp", "iss", "aud"]})
    if endorsement is not None:
        endorsed = keys[kid].get("endorsements")
        if not isinstance(endorsed, list) or endorsement not in endorsed:
            raise ValueError(f"the signing key is not endorsed for {endorsement!r}")
    return claims


def _check_openid_host(url: str) -> None:
    import httpx

    from mspflow.vendor.paths import http_allowed

    host = httpx.URL(url).host.lower()
    if host not in OPENID_HOSTS and not (http_allowed() and host in ("127.0.0.1", "localhost", "::1")):
        raise ValueError(f"OpenID metadata host {host!r} is not the Bot Framework's")


@dataclass(frozen=True)
class BotFrameworkJwt:
    """The Bot Framework's ``Authorization: Bearer <JWT>``, checked as Microsoft's authentication doc asks.

    Signature by a key from the OpenID metadata (cached, refetched on an unknown key id), issuer
    ``https://api.botframework.com`` (``https://api.botframework.us`` for a GCC High or DoD profile, with
    that cloud's metadata), audience the tenant's bot app id (the client id of the Microsoft
    profile its Teams integration is bound to), expiry, a signing key endorsed for the activity's
    ``channelId`` (``msteams``), and the token's ``serviceurl`` claim equal to the
    activity's ``serviceUrl``: only then can a ``serviceUrl`` from an activity be stored and used. A
    refusal is answered 403. ``openid_url`` may be overridden per profile (``endpoints.openid``, for a
    simulator), on an https host or, with ``MSPFLOW_ALLOW_HTTP_VENDOR_URLS``, loopback.
    """

    openid_url: str = BOT_FRAMEWORK_OPENID
    issuer: str = BOT_FRAMEWORK_ISSUER
    needs_secret: bool = False
    refusal_status: int = 403

    def load(self, session: Any, tenant: str) -> dict[str, Any]:
        from mspflow.microsoft import bot_profile

        profile = bot_profile(session, tenant)
        if profile is None or profile.cloud not in BOT_FRAMEWORK_CLOUDS:
            return {}
        openid_url, issuer = BOT_FRAMEWORK_CLOUDS[profile.cloud] if profile.cloud != "public" \
            else (self.openid_url, self.issuer)
        return {"audience": profile.client_id, "issuer": issuer,
                "openid_url": profile.endpoints.get("openid") or openid_url}

    def verify(self, request: InboundRequest, secret: str | None) -> bool:
        import json

        from mspflow.vendor.paths import normalize_base_url

        audience = request.context.get("audience")
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if not audience or scheme.lower() != "bearer" or not token.strip():
            return False
        openid_url = str(request.context.get("openid_url") or self.openid_url)
        _check_openid_host(normalize_base_url(openid_url))  # https (or loopback in development), no user info
        issuer = str(request.context.get("issuer") or self.issuer)
        activity = json.loads(request.body)
        channel = activity.get("channelId") if isinstance(activity, dict) else None
        # An activity naming its channel must be signed by a key endorsed for that channel (an activity
        # without one asserts nothing, as the Bot Framework SDKs' EndorsementsValidator has it).
        claims = verify_jwt(token.strip(), openid_url=openid_url, issuer=issuer, audience=str(audience),
                            endorsement=channel if isinstance(channel, str) and channel.strip() else None)
        service_url = activity.get("serviceUrl") if isinstance(activity, dict) else None
        claimed = claims.get("serviceurl")
        return isinstance(service_url, str) and isinstance(claimed, str) and constant_time_equals(
            claimed.encode("utf-8"), service_url.encode("utf-8"))

    def secret_headers(self) -> tuple[str, ...]:
        return ("authorization",)


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
    bot_framework = BotFrameworkJwt
    json_field = JsonField
    header = Header
    sign = staticmethod(sign)
    constant_time_equals = staticmethod(constant_time_equals)
