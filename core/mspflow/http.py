"""Vendor HTTP rails: the one place that knows about base URLs, auth, throttling, retries and errors.

A vendor plugin says *what* (paths, shapes, which auth, its rate limit); this module does *how*::

    http = ctx.http(vendor="NinjaOne", default_base_url="https://app.ninjarmm.com",
                    auth=auth.oauth2_authorization_code("/ws/oauth/token", credentials="ninjaone_credentials",
                                                        client_id="ninjaone_client_id",
                                                        client_secret="ninjaone_client_secret"))
    device = http.get(("v2", "device", device_id))          # each segment is percent-encoded
    http.post(("v2", "device", device_id, "reboot", mode), json={"reason": reason})

Guarantees:

* one ``httpx.Client`` per (tenant, vendor, base URL) per process, reused across calls, always with timeouts;
* base URLs come from the tenant's ``rmm_integrations.instance_url`` (else the plugin default) and must be
  ``https`` unless ``MSPFLOW_ALLOW_HTTP_VENDOR_URLS=1``; path segments can never change the endpoint;
* failures become :class:`~mspflow.errors.ActionError` with the vendor's status and message
  (``"NinjaOne API 404: …"``), every secret scrubbed;
* reads are retried on 429/5xx/connection errors with backoff (tenacity), honouring ``Retry-After``;
  a write is retried only when it certainly never left (connect errors), and a write whose outcome is
  unknown (timeout after sending) fails with ``details.outcome = "unknown"`` and is not retryable;
* declared rate limits hold across every worker process through Redis (Dramatiq's window rate limiter)
  when ``MSPFLOW_BROKER_URL`` is set, in-process otherwise;
* OAuth2 tokens are refreshed a few minutes before expiry, once at a time per tenant, rotated refresh
  tokens are stored at once, a 401 triggers one refresh and one retry, and a dead refresh token becomes
  ``INTEGRATION_INACTIVE`` (reconnect required).

Simulators plug in below the client: :func:`mount` routes a base URL to an ``httpx`` transport.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote

import httpx

from mspflow.errors import ActionError

if TYPE_CHECKING:
    from mspflow.context import ActionContext

ALLOW_HTTP_ENV = "MSPFLOW_ALLOW_HTTP_VENDOR_URLS"
Path = str | Sequence[str | int]

# -- transports (simulators) ---------------------------------------------------------------------------

_mounted: dict[str, httpx.BaseTransport] = {}
_clients: dict[tuple[str, str, str], httpx.Client] = {}
_lock = threading.Lock()


def mount(base_url: str, transport: httpx.BaseTransport) -> None:
    """Route requests for ``base_url`` to ``transport`` in this process (simulators, tests)."""
    with _lock:
        _mounted[normalize_base_url(base_url, allow_http=True)] = transport
        _close_clients()


def unmount(base_url: str | None = None) -> None:
    """Undo :func:`mount` for one base URL, or for all."""
    with _lock:
        if base_url is None:
            _mounted.clear()
        else:
            _mounted.pop(normalize_base_url(base_url, allow_http=True), None)
        _close_clients()


def _close_clients() -> None:
    for client in _clients.values():
        client.close()
    _clients.clear()


def _client(tenant: str, vendor: str, base_url: str, timeout: httpx.Timeout) -> httpx.Client:
    key = (tenant, vendor, base_url)
    with _lock:
        client = _clients.get(key)
        if client is None or client.is_closed:
            transport = _mounted.get(base_url)
            client = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={"User-Agent": "mspflow"}, follow_redirects=False)
            _clients[key] = client
        return client


# -- URLs ----------------------------------------------------------------------------------------------


def normalize_base_url(url: str, *, allow_http: bool | None = None) -> str:
    """``https://host[:port][/prefix]`` without a trailing slash; ``http`` only when allowed."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    parsed = httpx.URL(url)
    allowed = os.environ.get(ALLOW_HTTP_ENV, "") in {"1", "true", "yes"} if allow_http is None else allow_http
    if parsed.scheme != "https" and not (parsed.scheme == "http" and allowed):
        raise ActionError.validation(
            f"vendor URL {url!r} must use https (set {ALLOW_HTTP_ENV}=1 only for local testing)",
            reason="INSECURE_URL")
    if not parsed.host or parsed.query or parsed.fragment or parsed.userinfo:
        raise ActionError.validation(f"vendor URL {url!r} must be a plain scheme://host[:port][/path]",
                                     reason="BAD_URL")
    return url


def _segment(value: str | int) -> str:
    text = str(value)
    if text == "":
        raise ActionError.validation("an id in the request path is empty", reason="EMPTY_PATH_SEGMENT")
    if text.strip(".") == "":  # "." and ".." would be collapsed by URL normalization
        return text.replace(".", "%2E")
    return quote(text, safe="")


def build_path(path: Path, *, trailing_slash: bool = False) -> str:
    """A path from segments, each percent-encoded, so an id can never add ``/``, ``?``, ``#`` or ``..``.

    A plain string is a constant path written by the plugin and is used as is.
    """
    if isinstance(path, str):
        text = path if path.startswith("/") else "/" + path
    else:
        text = "/" + "/".join(_segment(p) for p in path)
    return text + "/" if trailing_slash and not text.endswith("/") else text


# -- auth ----------------------------------------------------------------------------------------------


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


_token_cache: dict[tuple[str, str, str], tuple[str, float]] = {}
_refresh_locks: dict[tuple[str, ...], threading.Lock] = {}


def _refresh_lock(*key: str) -> threading.Lock:
    with _lock:
        return _refresh_locks.setdefault(key, threading.Lock())


@dataclass(frozen=True)
class OAuth2ClientCredentials:
    token_path: str
    client_id: str
    client_secret: str
    scope: str | None = None

    def _key(self, http: VendorClient) -> tuple[str, str, str]:
        return (http.tenant, http.base_url, http.secret(self.client_id))

    def headers(self, http: VendorClient) -> dict[str, str]:
        key = self._key(http)
        cached = _token_cache.get(key)
        if cached is None or cached[1] - time.time() < 60:
            with _refresh_lock("cc", *key):
                cached = _token_cache.get(key)
                if cached is None or cached[1] - time.time() < 60:
                    cached = self._fetch(http)
                    _token_cache[key] = cached
        http.remember(cached[0])
        return {"Authorization": f"Bearer {cached[0]}"}

    def _fetch(self, http: VendorClient) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "client_id": http.secret(self.client_id),
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
        return {"Authorization": f"Bearer {creds['access_token']}"}

    def refresh(self, http: VendorClient) -> bool:
        self._refresh(http, stale=str(self._load(http).get("access_token", "")))
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
        with _refresh_lock("ac", http.tenant, self.credentials), http.locked_secret(self.credentials):
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


# -- rate limits ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per ``window_s`` seconds per tenant (or per credential)."""

    limit: int
    window_s: int = 60
    scope: Literal["tenant", "credential"] = "tenant"
    max_wait_s: float = 2.0


_limiter_backend: Any = None


def _backend() -> Any:
    global _limiter_backend
    with _lock:
        if _limiter_backend is None:
            url = os.environ.get("MSPFLOW_BROKER_URL")
            if url:
                from dramatiq.rate_limits.backends import RedisBackend

                _limiter_backend = RedisBackend(url=url)
            else:
                from dramatiq.rate_limits.backends import StubBackend

                _limiter_backend = StubBackend()  # type: ignore[no-untyped-call]
        return _limiter_backend


def _throttle(limit: RateLimit, vendor: str, key: str) -> None:
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


# -- errors --------------------------------------------------------------------------------------------

_ERROR_FIELDS = ("error_description", "errorMessage", "message", "detail", "error", "title", "resultCode")


def vendor_message(response: httpx.Response) -> str:
    """The vendor's own words from an error body (JSON string, common object fields, or text)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for field in _ERROR_FIELDS:
            value = body.get(field)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    return json.dumps(body)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def vendor_error(vendor: str, response: httpx.Response) -> ActionError:
    """Map a failed response onto the taxonomy (secrets are scrubbed later, by the caller's redactor)."""
    status = response.status_code
    text = f"{vendor} API {status}: {vendor_message(response)}"
    details: dict[str, Any] = {"status": status}
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            details["vendor_error"] = body["error"]
    except ValueError:
        pass
    if status in (400, 422):
        return ActionError("VALIDATION_ERROR", text, details=details)
    if status in (401, 403):
        return ActionError("PERMISSION_DENIED", f"{text} (reconnect the integration, or give its API key the "
                           "rights this action needs)", details=details)
    if status == 404:
        return ActionError("NOT_FOUND", text, details=details)
    if status == 409:
        return ActionError("CONFLICT", text, details=details)
    if status == 429:
        return ActionError("RATE_LIMITED", text, details=details, retry_after=_retry_after(response))
    if status >= 500:
        return ActionError("TRANSIENT_FAILURE", text, details=details, retry_after=_retry_after(response))
    return ActionError("INTERNAL_ERROR", f"{text} (unexpected status)", details=details)


class _Retry(Exception):
    def __init__(self, error: ActionError) -> None:
        self.error = error


# -- the client ----------------------------------------------------------------------------------------

READ_ATTEMPTS = 3
MAX_INLINE_RETRY_AFTER_S = 10.0


class VendorClient:
    """What ``ctx.http(...)`` returns: JSON requests against one vendor for one tenant."""

    def __init__(self, ctx: ActionContext, *, vendor: str, base_url: str, auth: Auth | None,
                 rate_limit: RateLimit | None = None, timeout: float = 30.0,
                 trailing_slash: bool = False) -> None:
        self.ctx = ctx
        self.vendor = vendor
        self.tenant = ctx.tenant_id
        self.provider = ctx.provider or vendor.lower()
        self.base_url = base_url
        self.auth = auth
        self.rate_limit = rate_limit
        self.trailing_slash = trailing_slash
        self.timeout = httpx.Timeout(timeout, connect=10.0)  # per request: the shared client may differ
        self.client = _client(self.tenant, vendor, base_url, self.timeout)

    # secrets, through the context so they are scrubbed from everything the call records
    def secret(self, name: str, *, fresh: bool = False) -> str:
        value = self.ctx.secret(name, fresh=fresh)
        assert value is not None
        return value

    def remember(self, value: str) -> None:
        self.ctx.redactor.add(value)

    def store_secret(self, name: str, value: str) -> None:
        self.remember(value)
        self.ctx.store_secret(name, value)

    def locked_secret(self, name: str) -> Any:
        return self.ctx.locked_secret(name)

    def token_request(self, path: str, form: dict[str, str], *, dead_grant_is_reconnect: bool = False
                      ) -> dict[str, Any]:
        for value in form.values():
            self.remember(value)
        try:
            response = self.client.post(build_path(path), data=form, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise self._scrub(ActionError("TRANSIENT_FAILURE", f"{self.vendor} token endpoint unreachable: "
                                          f"{type(exc).__name__}")) from None
        if response.status_code >= 400:
            err = vendor_error(self.vendor, response)
            if dead_grant_is_reconnect and response.status_code in (400, 401):
                err = ActionError.inactive(
                    f"{self.vendor} refused the refresh token for tenant {self.tenant!r} "
                    f"({vendor_message(response)}); reconnect required (standalone: "
                    f"`mspflow tenant authorize {self.tenant} {self.provider}`)", reason="RECONNECT_REQUIRED")
            raise self._scrub(err)
        body = response.json()
        for key in ("access_token", "refresh_token"):
            if isinstance(body.get(key), str):
                self.remember(body[key])
        return dict(body)

    def _scrub(self, err: ActionError) -> ActionError:
        r = self.ctx.redactor
        return ActionError(err.code, r.text(err.message), details=r.data(err.details), retryable=err.retryable,
                           retry_after=err.retry_after)

    def _throttle_key(self) -> str:
        if self.rate_limit and self.rate_limit.scope == "credential" and self.auth is not None:
            digest = hashlib.sha256(json.dumps(self.auth.headers(self), sort_keys=True).encode()).hexdigest()
            return digest[:16]
        return self.tenant

    def request(self, method: str, path: Path, *, params: dict[str, Any] | None = None, json: Any = None,
                data: Any = None, side_effect: bool | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        """Send one request with auth, throttling, retries and error mapping; returns a 2xx response."""
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

        writes = method.upper() != "GET" if side_effect is None else side_effect
        url = build_path(path, trailing_slash=self.trailing_slash)
        clean = {k: v for k, v in (params or {}).items() if v is not None}

        def wait(state: Any) -> float:
            err = state.outcome.exception()
            hinted = getattr(getattr(err, "error", None), "retry_after", None)
            return float(hinted) if hinted is not None else min(2.0, 0.2 * 2 ** (state.attempt_number - 1))

        try:
            for attempt in Retrying(stop=stop_after_attempt(READ_ATTEMPTS), wait=wait, reraise=True,
                                    retry=retry_if_exception_type(_Retry), sleep=time.sleep):
                with attempt:
                    return self._send(method, url, clean, json, data, writes, headers or {})
        except _Retry as final:
            raise self._scrub(final.error) from None
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, params: dict[str, Any], body: Any, data: Any,
              writes: bool, extra_headers: dict[str, str]) -> httpx.Response:
        if self.rate_limit is not None:
            _throttle(self.rate_limit, self.vendor, self._throttle_key())
        for refreshed in (False, True):
            headers = {"Accept": "application/json", **extra_headers}
            if self.auth is not None:
                headers |= self.auth.headers(self)
            try:
                response = self.client.request(method, url, params=params, json=body, data=data, headers=headers,
                                               timeout=self.timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing left this process: safe to try again, read or write.
                raise _Retry(ActionError("TRANSIENT_FAILURE", f"{self.vendor} API unreachable: "
                                         f"{type(exc).__name__}")) from None
            except httpx.TransportError as exc:
                if writes:
                    raise self._scrub(ActionError(
                        "TRANSIENT_FAILURE", f"{self.vendor} API did not answer ({type(exc).__name__}) after the "
                        "request was sent; it may or may not have been carried out, so it is not repeated "
                        "automatically: check in the vendor console", details={"outcome": "unknown"},
                        retryable=False)) from None
                raise _Retry(ActionError("TRANSIENT_FAILURE", f"{self.vendor} API did not answer: "
                                         f"{type(exc).__name__}")) from None
            if response.status_code == 401 and not refreshed and self.auth is not None and self.auth.refresh(self):
                continue
            break
        if response.status_code < 300:
            return response
        if response.status_code < 400:  # redirects are not followed: they mean a wrong instance URL
            raise self._scrub(ActionError.inactive(
                f"{self.vendor} API {response.status_code}: redirected to "
                f"{response.headers.get('Location', '(no location)')}; check the integration's instance URL",
                reason="REDIRECTED", status=response.status_code))
        err = vendor_error(self.vendor, response)
        inline_ok = err.retry_after is None or err.retry_after <= MAX_INLINE_RETRY_AFTER_S
        if (err.code == "RATE_LIMITED" and inline_ok) or (err.code == "TRANSIENT_FAILURE" and not writes and inline_ok):
            raise _Retry(err)
        raise self._scrub(err)

    # -- JSON conveniences ------------------------------------------------------------------------------

    def get(self, path: Path, *, params: dict[str, Any] | None = None) -> Any:
        return _json(self.request("GET", path, params=params), self.vendor)

    def post(self, path: Path, *, json: Any = None, data: Any = None, params: dict[str, Any] | None = None,
             side_effect: bool = True, headers: dict[str, str] | None = None) -> Any:
        """POST; pass ``headers={"Idempotency-Key": ctx.idempotency_key}`` where the vendor honours one."""
        return _json(self.request("POST", path, json=json, data=data, params=params, side_effect=side_effect,
                                  headers=headers), self.vendor)

    def put(self, path: Path, *, json: Any = None) -> Any:
        return _json(self.request("PUT", path, json=json), self.vendor)

    def patch(self, path: Path, *, json: Any = None, side_effect: bool = True) -> Any:
        return _json(self.request("PATCH", path, json=json, side_effect=side_effect), self.vendor)

    def delete(self, path: Path) -> Any:
        return _json(self.request("DELETE", path), self.vendor)

    def keyset_pages(self, path: Path, *, id_key: str = "id", page_size: int = 100, after_param: str = "after",
                     size_param: str = "pageSize", params: dict[str, Any] | None = None,
                     limit: int | None = None) -> list[Any]:
        """Every item of a keyset-paged list (``after=<last id>``), stopping at a short page or ``limit``."""
        items: list[Any] = []
        after: Any = None
        while limit is None or len(items) < limit:
            page = self.get(path, params={**(params or {}), size_param: page_size, after_param: after})
            if not isinstance(page, list):
                raise ActionError("INTERNAL_ERROR", f"{self.vendor} API returned a {type(page).__name__} "
                                  "where a list was expected")
            items.extend(page)
            if len(page) < page_size or not page:
                break
            after = page[-1][id_key]
        return items if limit is None else items[:limit]


def _json(response: httpx.Response, vendor: str) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise ActionError("TRANSIENT_FAILURE", f"{vendor} API returned a malformed body "
                          f"(status {response.status_code})", details={"reason": "MALFORMED_BODY"}) from None


def make_client(ctx: ActionContext, *, vendor: str, auth: Auth | None = None, default_base_url: str | None = None,
                instance_url: str | None = None, rate_limit: RateLimit | None = None, timeout: float = 30.0,
                trailing_slash: bool = False, normalize: Callable[[str], str] | None = None) -> VendorClient:
    """Build the client ``ctx.http`` returns; the base URL is the tenant's instance URL or the default."""
    base = instance_url or default_base_url
    if not base:
        raise ActionError.inactive(
            f"{vendor} has no instance URL for tenant {ctx.tenant_id!r}; set it in the integration settings "
            f"(standalone: `mspflow tenant connect {ctx.tenant_id} {ctx.provider or vendor.lower()} "
            "--instance-url https://…`)", reason="INSTANCE_URL_MISSING")
    if normalize is not None:
        base = normalize(base)
    return VendorClient(ctx, vendor=vendor, base_url=normalize_base_url(base), auth=auth, rate_limit=rate_limit,
                        timeout=timeout, trailing_slash=trailing_slash)
