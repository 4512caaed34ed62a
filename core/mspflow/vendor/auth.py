"""Declarative auth strategies: a plugin names which one its vendor uses; the core does the rest.

Each strategy produces the request headers of one call, and after a 401 says whether new credentials
are worth one retry (``refresh``). Secrets are read through the call's context, so every value is
scrubbed from what the call records.

Examples::

    auth.api_key_header("X-API-KEY", "tacticalrmm_api_key")
    auth.raw_authorization("levelio_api_key")                 # the key is the whole Authorization value
    auth.basic("huntress_api_key", "huntress_api_secret")
    auth.oauth2_client_credentials("/ws/oauth/token", client_id="…_client_id", client_secret="…_secret")
    auth.oauth2_authorization_code("/ws/oauth/token", credentials="ninjaone_credentials", ...)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mspflow.errors import ActionError, vendor_error, vendor_message
from mspflow.vendor.locks import local_lock, shared_lock
from mspflow.vendor.paths import Path, build_path

if TYPE_CHECKING:  # httpx is imported by the functions that send requests: declaring auth is cheap
    import httpx

    from mspflow.redaction import Redactor
    from mspflow.vendor.client import VendorClient
    from mspflow.vendor.spec import OAuthApp


class Auth(Protocol):
    def headers(self, http: VendorClient) -> dict[str, str]: ...

    def refresh(self, http: VendorClient) -> bool:
        """Called after a 401; True when new credentials are worth one retry."""
        ...


@dataclass(frozen=True)
class ApiKeyHeader:
    header: str
    secret: str
    prefix: str = ""

    def headers(self, http: VendorClient) -> dict[str, str]:
        return {self.header: self.prefix + http.secret(self.secret)}

    def refresh(self, http: VendorClient) -> bool:
        return False


@dataclass(frozen=True)
class BasicAuth:
    username_secret: str
    password_secret: str

    def headers(self, http: VendorClient) -> dict[str, str]:
        pair = f"{http.secret(self.username_secret)}:{http.secret(self.password_secret)}".encode()
        token = base64.b64encode(pair).decode()
        http.remember(token)  # the encoded pair is as secret as the password
        return {"Authorization": f"Basic {token}"}

    def refresh(self, http: VendorClient) -> bool:
        return False


_token_cache: dict[tuple[str, ...], tuple[str, float]] = {}


@dataclass(frozen=True)
class OAuth2ClientCredentials:
    """App-only tokens by the client-credentials grant, cached per (tenant, token URL, client, scope) until a
    minute before they expire and dropped after a 401.

    :param token_path: a path on the vendor's base URL, or an absolute URL on another host (an identity
        provider such as ``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token``); that host must
        be one the vendor declares (``Vendor(hosts=...)``), checked before the secret is sent.
    :param client_id: the tenant secret holding the client id, or ``client_id_value`` the id itself when
        it is not secret (an Entra app id kept in a profile).
    :param client_secret: the tenant secret holding the client secret.
    :param scope: sent as ``scope`` (``https://graph.microsoft.com/.default``).
    """

    token_path: str
    client_id: str = ""
    client_secret: str = ""
    scope: str | None = None
    client_id_value: str | None = None

    def _client_id(self, http: VendorClient) -> str:
        return self.client_id_value if self.client_id_value is not None else http.secret(self.client_id)

    def _key(self, http: VendorClient) -> tuple[str, ...]:
        where = self.token_path if "://" in self.token_path else http.base_url + self.token_path
        return (http.tenant, where, self._client_id(http), self.scope or "")

    def headers(self, http: VendorClient) -> dict[str, str]:
        key = self._key(http)
        cached = _token_cache.get(key)
        if cached is None or cached[1] - time.time() < 60:
            with local_lock("cc", *key):
                cached = _token_cache.get(key)
                if cached is None or cached[1] - time.time() < 60:
                    cached = self._fetch(http)
                    _token_cache[key] = cached
        http.remember(cached[0])
        return {"Authorization": f"Bearer {cached[0]}"}

    def _fetch(self, http: VendorClient) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "client_id": self._client_id(http),
                "client_secret": http.secret(self.client_secret)}
        if self.scope:
            form["scope"] = self.scope
        body = http.token_request(self.token_path, form)
        return str(body["access_token"]), time.time() + float(body.get("expires_in", 3600))

    def refresh(self, http: VendorClient) -> bool:
        _token_cache.pop(self._key(http), None)
        return True


@dataclass(frozen=True)
class OAuth2AuthorizationCode:
    """User-context tokens from the authorization-code flow, kept in one JSON tenant secret:
    ``{"access_token", "refresh_token", "expires_at" (epoch s), ...}``; refresh tokens rotate."""

    token_path: str
    credentials: str
    client_id: str
    client_secret: str
    refresh_margin_s: float = 300.0

    def headers(self, http: VendorClient) -> dict[str, str]:
        creds = self._load(http)
        if float(creds.get("expires_at") or 0) - time.time() < self.refresh_margin_s:
            creds = self._refresh(http, stale=str(creds.get("access_token", "")))
        http.sent[self.credentials] = str(creds["access_token"])
        return {"Authorization": f"Bearer {creds['access_token']}"}

    def refresh(self, http: VendorClient) -> bool:
        # The token this call sent is the stale one; reading the secret again could already see another
        # worker's new token and refresh a second time.
        stale = http.sent.get(self.credentials) or str(self._load(http).get("access_token", ""))
        self._refresh(http, stale=stale)
        return True

    def _load(self, http: VendorClient, *, fresh: bool = False) -> dict[str, Any]:
        raw = http.secret(self.credentials, fresh=fresh)
        try:
            creds = json.loads(raw)
        except ValueError:
            creds = None
        if not isinstance(creds, dict) or not creds.get("access_token"):
            raise ActionError.inactive(
                f"{http.vendor} credentials for tenant {http.tenant!r} are malformed; reconnect the integration",
                reason="RECONNECT_REQUIRED", name=self.credentials)
        return creds

    def _refresh(self, http: VendorClient, *, stale: str) -> dict[str, Any]:
        # One refresh at a time per tenant: threads wait on the lock, other processes on the secret's row
        # lock; whoever comes second finds a new token already stored and uses it.
        with local_lock("ac", http.tenant, self.credentials), http.locked_secret(self.credentials):
            creds = self._load(http, fresh=True)
            if creds.get("access_token") != stale and float(creds.get("expires_at") or 0) - time.time() > 60:
                return creds
            if not creds.get("refresh_token"):
                raise ActionError.inactive(
                    f"the {http.vendor} token for tenant {http.tenant!r} expired and there is no refresh token; "
                    f"reconnect required (standalone: `mspflow tenant authorize {http.tenant} {http.provider}`)",
                    reason="RECONNECT_REQUIRED")
            body = http.token_request(self.token_path, {
                "grant_type": "refresh_token", "refresh_token": str(creds["refresh_token"]),
                "client_id": http.secret(self.client_id), "client_secret": http.secret(self.client_secret),
            }, dead_grant_is_reconnect=True)
            creds = {**creds, "access_token": body["access_token"],
                     "refresh_token": body.get("refresh_token") or creds["refresh_token"],
                     "expires_at": time.time() + float(body.get("expires_in", 3600))}
            http.store_secret(self.credentials, json.dumps(creds))
            return creds


@dataclass(frozen=True)
class LoginToken:
    """A token from the vendor's login route, kept as a durable tenant secret and sent in a header.

    The login posts ``{field: secret value}`` (from ``fields``) as JSON to ``path``, reads the token at
    ``token_field`` of the reply, stores it in the tenant secret ``store_as`` and sends it as
    ``header: prefix + token``. After a 401 it logs in again once — under a lock per tenant and vendor that
    holds across worker processes on Redis — so concurrent calls that all hit an expired token share one
    login (vendors throttle their login routes). ``check`` reads a 2xx reply that is nonetheless a refusal
    (e.g. "two-factor code required") and raises :class:`~mspflow.ActionError`; ``refused`` is the advice
    added when the vendor refuses the credentials.
    """

    path: Path
    fields: tuple[tuple[str, str], ...]
    store_as: str
    token_field: str = "token"
    header: str = "Authorization"
    prefix: str = ""
    check: Callable[[Any], None] | None = None
    refused: str = "check the credentials stored in the tenant's secrets"

    def headers(self, http: VendorClient) -> dict[str, str]:
        token = http.scope.secret(self.store_as, required=False)
        if token is None:
            token = self._login(http, stale=None)
        http.sent[self.store_as] = token
        return {self.header: self.prefix + token}

    def refresh(self, http: VendorClient) -> bool:
        # Stale is the token this call sent, not the secret read again: by now it may hold the token another
        # call logged in for, which must be used, not replaced by a second login.
        stale = http.sent.get(self.store_as) or http.scope.secret(self.store_as, required=False)
        self._login(http, stale=stale)
        return True

    def _login(self, http: VendorClient, *, stale: str | None) -> str:
        with shared_lock("login", http.vendor, http.tenant, self.store_as):
            current = http.scope.secret(self.store_as, required=False, fresh=True)
            if current is not None and current != stale:
                return current  # another call logged in while this one waited
            body = http.login_request(self.path, {field: http.secret(name) for field, name in self.fields},
                                      refused=self.refused)
            if self.check is not None:
                self.check(body)
            token = body.get(self.token_field) if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise ActionError("TRANSIENT_FAILURE", f"{http.vendor} login answered without a token "
                                  f"(no {self.token_field!r} in the reply)",
                                  details={"reason": "LOGIN_REPLY_SHAPE", "field": self.token_field})
            http.store_secret(self.store_as, token)
            return token


def post_token_form(client: httpx.Client, path: str, form: dict[str, str], *, vendor: str,
                    redactor: Redactor) -> tuple[httpx.Response | None, dict[str, Any]]:
    """POST an OAuth2 token form; ``(failed response, {})`` on 4xx/5xx, ``(None, body)`` on success.

    Every form value and every token in the reply is added to ``redactor`` first.
    """
    import httpx

    for value in form.values():
        redactor.add(value)
    try:
        response = client.post(build_path(path), data=form, headers={"Accept": "application/json"})
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise ActionError("TRANSIENT_FAILURE", f"{vendor} token endpoint unreachable: "
                          f"{type(exc).__name__}") from None
    if response.status_code >= 400:
        return response, {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise ActionError("TRANSIENT_FAILURE", f"{vendor} token endpoint answered {response.status_code} "
                          "without an access_token", details={"reason": "TOKEN_REPLY_SHAPE"})
    for key in ("access_token", "refresh_token"):
        if isinstance(body.get(key), str):
            redactor.add(body[key])
    return None, body


def exchange_code(oauth: OAuthApp, base_url: str, code: str, *, client_id: str, client_secret: str,
                  vendor: str, redactor: Redactor) -> dict[str, Any]:
    """Trade an authorization code for tokens; the credentials JSON ``OAuth2AuthorizationCode`` reads.

    Refusals are ``PERMISSION_DENIED`` with the vendor's words, every secret scrubbed by ``redactor``.
    """
    import httpx

    from mspflow.vendor.network import AddressPolicy, deadline
    from mspflow.vendor.paths import http_allowed
    from mspflow.vendor.transport import transport_for

    redactor.add(code)
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(30.0, connect=10.0),
                      transport=transport_for(base_url, AddressPolicy(loopback=http_allowed())),
                      follow_redirects=False) as client, deadline(60.0):
        failed, body = post_token_form(client, oauth.token_path, {
            "grant_type": "authorization_code", "code": code, "redirect_uri": oauth.redirect_uri,
            "client_id": client_id, "client_secret": client_secret}, vendor=vendor, redactor=redactor)
    if failed is not None:
        raise ActionError.permission_denied(
            redactor.text(f"{vendor} refused the code ({failed.status_code}): {vendor_message(failed, redactor)}"),
            reason="CODE_REFUSED", status=failed.status_code)
    return {"access_token": body["access_token"], "refresh_token": body.get("refresh_token"),
            "expires_at": time.time() + float(body.get("expires_in", 3600)), "instance_url": base_url}


def token_error(vendor: str, tenant: str, provider: str, response: httpx.Response, *,
                dead_grant_is_reconnect: bool, redactor: Redactor | None = None) -> ActionError:
    """A refused token request: a dead refresh grant means reconnect, anything else maps as usual."""
    if dead_grant_is_reconnect and response.status_code in (400, 401):
        return ActionError.inactive(
            f"{vendor} refused the refresh token for tenant {tenant!r} ({vendor_message(response, redactor)}); "
            f"reconnect required (standalone: `mspflow tenant authorize {tenant} {provider}`)",
            reason="RECONNECT_REQUIRED")
    return vendor_error(vendor, response, redactor)


class auth:  # a namespace, read as `auth.api_key_header(...)`
    """Declarative auth strategies a plugin picks from."""

    api_key_header = ApiKeyHeader

    @staticmethod
    def raw_authorization(secret: str, prefix: str = "") -> ApiKeyHeader:
        """The secret (optionally prefixed) as the whole ``Authorization`` header."""
        return ApiKeyHeader("Authorization", secret, prefix)

    @staticmethod
    def bearer(secret: str) -> ApiKeyHeader:
        return ApiKeyHeader("Authorization", secret, "Bearer ")

    basic = BasicAuth
    oauth2_client_credentials = OAuth2ClientCredentials
    oauth2_authorization_code = OAuth2AuthorizationCode

    @staticmethod
    def login_token(path: Path, *, fields: Mapping[str, str], store_as: str, token_field: str = "token",
                    header: str = "Authorization", prefix: str = "", check: Callable[[Any], None] | None = None,
                    refused: str = "check the credentials stored in the tenant's secrets") -> LoginToken:
        """Log in with credentials from tenant secrets (``fields``: body field → secret name); see
        :class:`LoginToken`."""
        return LoginToken(path, tuple(fields.items()), store_as, token_field, header, prefix, check, refused)
