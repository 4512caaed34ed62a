"""The vendor client a handler gets from ``ctx.http()``: JSON requests against one vendor for one tenant.

Guarantees:

* one pooled ``httpx.Client`` per (tenant, vendor, base URL) per process, always with timeouts;
* the base URL is the tenant's instance URL (else the vendor's default), checked against the vendor's
  declaration; path segments are percent-encoded and can never change the endpoint;
* failures become :class:`~mspflow.errors.ActionError` with the vendor's status and message
  (``"NinjaOne API 404: …"``), every secret of the tenant scrubbed;
* reads are retried on 429/5xx/connection errors with backoff, honouring ``Retry-After``; a write is
  retried only when it certainly never left (connect errors); a write whose outcome is unknown (timeout
  after sending) fails with ``details.outcome = "unknown"`` and is not retryable;
* declared rate limits hold across every worker process (:mod:`mspflow.vendor.limits`);
* auth is the vendor's declared strategy (:mod:`mspflow.vendor.auth`): a 401 triggers one refresh and
  one retry where the strategy can refresh.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from mspflow.errors import ActionError, vendor_error, vendor_message
from mspflow.vendor.auth import post_token_form, token_error
from mspflow.vendor.limits import throttle
from mspflow.vendor.paths import Path, build_path, normalize_base_url
from mspflow.vendor.transport import pooled_client

if TYPE_CHECKING:
    from mspflow.redaction import Redactor
    from mspflow.vendor.auth import Auth
    from mspflow.vendor.spec import Vendor


class CallScope(Protocol):
    """What the vendor layer needs from the call it serves (:class:`mspflow.ActionContext` is one)."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def provider(self) -> str | None: ...

    @property
    def redactor(self) -> Redactor: ...

    def secret(self, name: str, *, required: bool = True, fresh: bool = False) -> str | None: ...

    def store_secret(self, name: str, value: str) -> None: ...

    def locked_secret(self, name: str) -> AbstractContextManager[None]: ...


class _Retry(Exception):
    def __init__(self, error: ActionError) -> None:
        self.error = error


READ_ATTEMPTS = 3
MAX_INLINE_RETRY_AFTER_S = 10.0


class VendorClient:
    """JSON requests against one vendor for one tenant, with auth, throttling, retries and errors."""

    def __init__(self, scope: CallScope, vendor: Vendor, *, base_url: str, auth: Auth | None = None,
                 timeout_s: float | None = None) -> None:
        self.scope = scope
        self.spec = vendor
        self.vendor = vendor.name
        self.tenant = scope.tenant_id
        self.provider = scope.provider or vendor.name.lower()
        self.base_url = base_url
        self.auth = auth if auth is not None else vendor.auth
        self.rate_limit = vendor.rate_limit
        self.trailing_slash = vendor.trailing_slash
        timeout = vendor.timeout_s if timeout_s is None else timeout_s
        self.timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))  # per request: the pool may differ
        self.client = pooled_client(self.tenant, vendor.name, base_url, self.timeout)

    # secrets, through the call so they are scrubbed from everything it records
    def secret(self, name: str, *, fresh: bool = False) -> str:
        value = self.scope.secret(name, fresh=fresh)
        assert value is not None
        return value

    def remember(self, value: str) -> None:
        self.scope.redactor.add(value)

    def store_secret(self, name: str, value: str) -> None:
        self.remember(value)
        self.scope.store_secret(name, value)

    def locked_secret(self, name: str) -> AbstractContextManager[None]:
        return self.scope.locked_secret(name)

    def token_request(self, path: str, form: dict[str, str], *, dead_grant_is_reconnect: bool = False
                      ) -> dict[str, Any]:
        """POST an OAuth2 token form to this vendor; refusals map onto the taxonomy, scrubbed."""
        failed, body = post_token_form(self.client, path, form, vendor=self.vendor, redactor=self.scope.redactor)
        if failed is not None:
            raise self._scrub(token_error(self.vendor, self.tenant, self.provider, failed,
                                          dead_grant_is_reconnect=dead_grant_is_reconnect))
        return body

    def login_request(self, path: Path, body: dict[str, str], *, refused: str) -> Any:
        """POST a login body (no auth header, no retries: a login is cheap to ask for again later).

        A refusal (400/401/403) is ``PERMISSION_DENIED`` with the vendor's words and ``refused`` as advice.
        """
        for value in body.values():
            self.remember(value)
        if self.rate_limit is not None:
            throttle(self.rate_limit, self.vendor, self.tenant)
        try:
            response = self.client.post(build_path(path, trailing_slash=self.trailing_slash), json=body,
                                        headers={"Accept": "application/json"}, timeout=self.timeout)
        except httpx.TransportError as exc:
            raise self._scrub(ActionError("TRANSIENT_FAILURE", f"{self.vendor} login endpoint unreachable: "
                                          f"{type(exc).__name__}", details={"reason": "LOGIN_UNREACHABLE"})) from None
        if response.status_code in (400, 401, 403):
            raise self._scrub(ActionError.permission_denied(
                f"{self.vendor} refused the login ({response.status_code}: {vendor_message(response)}); {refused}",
                reason="LOGIN_FAILED", status=response.status_code))
        if response.status_code >= 300:
            raise self._scrub(vendor_error(self.vendor, response))
        return _json(response, self.vendor)

    def _scrub(self, err: ActionError) -> ActionError:
        r = self.scope.redactor
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
            throttle(self.rate_limit, self.vendor, self._throttle_key())
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

    def iter_pages(self, path: Path, *, params: dict[str, Any] | None = None,
                   items: str | None = None) -> Iterator[list[Any]]:
        """Each page of a list, the way the vendor declared its paging (``Vendor(paging=...)``)."""
        paging = self.spec.paging
        if paging is None:
            raise ActionError.internal(f"{self.vendor} declares no paging; pass paging= to its Vendor(...)")
        query = {**(params or {}), paging.size: paging.page_size}
        sizes: list[int] = []
        while True:
            body = self.get(path, params=query)
            page = paging.items(self.vendor, body, items)
            sizes.append(len(page))
            yield page
            following = paging.next(self.vendor, body, page, sizes)
            if following is None:
                return
            query = {**query, **following}

    def pages(self, path: Path, *, params: dict[str, Any] | None = None, items: str | None = None,
              limit: int | None = None) -> list[Any]:
        """Every item of a paged list, stopping early once ``limit`` items are in."""
        found: list[Any] = []
        for page in self.iter_pages(path, params=params, items=items):
            found.extend(page)
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found


def _json(response: httpx.Response, vendor: str) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise ActionError("TRANSIENT_FAILURE", f"{vendor} API returned a malformed body "
                          f"(status {response.status_code})", details={"reason": "MALFORMED_BODY"}) from None


def make_client(scope: CallScope, vendor: Vendor, *, instance_url: str | None, auth: Auth | None = None,
                timeout_s: float | None = None) -> VendorClient:
    """The client ``ctx.http()`` returns; the base URL is the tenant's instance URL or the vendor's default."""
    base = instance_url or vendor.base_url
    if not base:
        raise ActionError.inactive(
            f"{vendor.name} has no instance URL for tenant {scope.tenant_id!r}; set it in the integration "
            f"settings (standalone: `mspflow tenant connect {scope.tenant_id} {scope.provider or vendor.name.lower()} "
            "--instance-url https://…`)", reason="INSTANCE_URL_MISSING")
    if vendor.normalize is not None:
        base = vendor.normalize(base)
    return VendorClient(scope, vendor, base_url=normalize_base_url(base), auth=auth, timeout_s=timeout_s)
