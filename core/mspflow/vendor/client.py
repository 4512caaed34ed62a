"""The vendor client a handler gets from ``ctx.http()``: JSON requests against one vendor for one tenant.

Guarantees:

* one pooled ``httpx.Client`` per (tenant, vendor, base URL) per process, always with timeouts;
* the base URL is the tenant's instance URL (else the vendor's default), checked against the vendor's
  declaration; path segments are percent-encoded and can never change the endpoint;
* failures become :class:`~mspflow.errors.ActionError` with the vendor's status and message
  (``"NinjaOne API 404: …"``), every secret of the tenant scrubbed;
* every request has a total deadline (``Vendor.timeout_s``): connect, TLS, headers and every body chunk,
  so a reply trickled byte by byte cannot outlive it (:mod:`mspflow.vendor.network`); connections go
  only to addresses the vendor's policy allows, checked after resolving and before connecting;
* reads are retried on 5xx/connection errors with backoff, honouring ``Retry-After``; a write is
  retried only when it certainly never left (connect errors); a write whose outcome is unknown (timeout
  after sending, a 5xx other than 503, an answer the vendor declared as ``NoAnswer``) fails with
  ``details.outcome = "unknown"``, and one the vendor accepted (2xx) but whose reply cannot be read
  (malformed JSON, an HTML page, broken gzip, the wrong shape) with ``details.outcome = "done"``; neither
  is retryable, so the engine never sends it twice;
* ``expect=`` checks a reply's shape (``dict``, ``list``, a pydantic model, ``list[Model]``): a mismatch is
  ``TRANSIENT_FAILURE`` with reason ``VENDOR_REPLY_SHAPE`` naming the field, never a crash in a parser;
* declared rate limits hold across every worker process (:mod:`mspflow.vendor.limits`); a 429 (the
  request was refused, so this holds for writes too) is waited out apart from the retry budget;
* auth is the vendor's declared strategy (:mod:`mspflow.vendor.auth`): a 401 triggers one refresh and
  one retry where the strategy can refresh.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from mspflow.errors import ActionError, scrub_cut, vendor_error, vendor_message
from mspflow.vendor import limits
from mspflow.vendor.auth import post_token_form, token_error
from mspflow.vendor.locks import LOGIN_DEADLINE_S
from mspflow.vendor.paths import Path, address_policy, build_path, check_auth_url, check_instance_url

if TYPE_CHECKING:
    import httpx

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

    def sending_side_effect(self) -> None:
        """Called just before a side-effectful request leaves (the runtime records it durably)."""
        ...


class _Retry(Exception):
    def __init__(self, error: ActionError) -> None:
        self.error = error


class _Refused(Exception):
    """The vendor answered 429: the request was refused, so sending it again is safe, read or write."""

    def __init__(self, error: ActionError) -> None:
        self.error = error


READ_ATTEMPTS = 3
MAX_INLINE_RETRY_AFTER_S = 10.0
MAX_INLINE_REFUSALS = 5  # 429s in a row waited out in the call (a vendor answering Retry-After: 0 forever)


class VendorClient:
    """JSON requests against one vendor for one tenant, with auth, throttling, retries and errors."""

    def __init__(self, scope: CallScope, vendor: Vendor, *, base_url: str, auth: Auth | None = None,
                 timeout_s: float | None = None) -> None:
        # httpx and the transport are imported when a client is made, not when a plugin subclasses this
        # class: loading plugins (``mspflow plugins``, ``catalog``) then costs neither httpx nor httpcore.
        import httpx

        from mspflow.vendor.transport import pooled_client

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
        self.deadline_s = timeout  # the total of one request, connect to last byte
        self.timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))  # per request: the pool may differ
        self.client = pooled_client(self.tenant, vendor.name, base_url, self.timeout, address_policy(vendor))
        self.sent: dict[str, str] = {}  # credential name → the token this call last sent (auth strategies)

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
        """POST an OAuth2 token form to this vendor (``path``), or to an absolute URL on one of the vendor's
        declared hosts (an identity provider); refusals map onto the taxonomy, scrubbed."""
        import httpx

        from mspflow.vendor.network import deadline
        from mspflow.vendor.transport import pooled_client

        client = self.client
        if "://" in path:
            url = httpx.URL(path)
            origin = check_auth_url(self.spec, f"{url.scheme}://{url.netloc.decode('ascii')}")
            client = pooled_client(self.tenant, self.vendor + " token", origin, self.timeout,
                                   address_policy(self.spec))
            path = url.raw_path.decode("ascii")
        with deadline(self.deadline_s):
            failed, body = post_token_form(client, path, form, vendor=self.vendor,
                                           redactor=self.scope.redactor)
        if failed is not None:
            raise self._scrub(token_error(self.vendor, self.tenant, self.provider, failed,
                                          dead_grant_is_reconnect=dead_grant_is_reconnect,
                                          redactor=self.scope.redactor))
        return body

    def login_request(self, path: Path, body: dict[str, str], *, refused: str) -> Any:
        """POST a login body (no auth header, no retries: a login is cheap to ask for again later).

        A refusal (400/401/403) is ``PERMISSION_DENIED`` with the vendor's words and ``refused`` as advice.
        """
        import httpx

        from mspflow.vendor.network import deadline

        for value in body.values():
            self.remember(value)
        if self.rate_limit is not None:
            limits.throttle(self.rate_limit, self.vendor, self.tenant)
        try:
            with deadline(min(self.deadline_s, LOGIN_DEADLINE_S)):
                response = self.client.post(build_path(path, trailing_slash=self.trailing_slash), json=body,
                                            headers={"Accept": "application/json"}, timeout=self.timeout)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise self._scrub(ActionError("TRANSIENT_FAILURE", f"{self.vendor} login endpoint unreachable: "
                                          f"{type(exc).__name__}", details={"reason": "LOGIN_UNREACHABLE"})) from None
        redactor = self.scope.redactor
        if response.status_code in (400, 401, 403):
            raise self._scrub(ActionError.permission_denied(
                f"{self.vendor} refused the login ({response.status_code}: {vendor_message(response, redactor)}); "
                f"{refused}", reason="LOGIN_FAILED", status=response.status_code))
        if response.status_code >= 300:
            raise self._scrub(vendor_error(self.vendor, response, redactor))
        return self._decode(response, writes=False)  # a login done twice does no harm

    def _scrub(self, err: ActionError) -> ActionError:
        r = self.scope.redactor
        return ActionError(err.code, scrub_cut(err.message, r, 2000), details=r.data(err.details),
                           retryable=err.retryable, retry_after=err.retry_after)

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
                    return self._send_past_refusals(method, url, clean, json, data, writes, headers or {})
        except _Retry as final:
            raise self._scrub(final.error) from None
        raise AssertionError("unreachable")

    def _send_past_refusals(self, *args: Any) -> httpx.Response:
        """:meth:`_send` under the declared rate limit, waiting out the vendor's 429s without spending the
        retry budget.

        Each send is admitted by :func:`mspflow.vendor.limits.throttle`, and its log entry takes the time
        the answer came. A 429 means the vendor's window is full, perhaps with other tools' requests on
        the same account: wait as :func:`mspflow.vendor.limits.refused` says (``Retry-After``, else our
        own request log, else a backoff; every worker pauses too), then send again, read or write alike.
        Past ``MAX_INLINE_RETRY_AFTER_S`` of waiting in total, or ``MAX_INLINE_REFUSALS`` 429s, the call goes
        back to the worker as ``RATE_LIMITED`` with that ``retry_after`` (a budget of its own, not the
        failure budget).
        """
        waited, refusals = 0.0, 0
        while True:
            permit = None
            if self.rate_limit is not None:
                permit = limits.throttle(self.rate_limit, self.vendor, self._throttle_key(),
                                         hold_s=self.spec.timeout_s)
            try:
                return self._send(*args)
            except _Refused as refused:
                err = refused.error
            finally:
                if permit is not None:
                    permit.done()
            refusals += 1
            wait = limits.refused(self.rate_limit, self.vendor, self._throttle_key(), retry_after=err.retry_after,
                                  refusals=refusals)
            if waited + wait > MAX_INLINE_RETRY_AFTER_S or refusals >= MAX_INLINE_REFUSALS:
                raise self._scrub(ActionError(
                    "RATE_LIMITED", f"{err.message} (the vendor's limit may be shared with other tools; "
                    f"this call runs again in {wait:.1f} s)",
                    details={**err.details, "reason": "VENDOR_RATE_LIMIT", "refusals": refusals},
                    retry_after=round(wait, 3)))
            time.sleep(wait)
            waited += wait

    def _send(self, method: str, url: str, params: dict[str, Any], body: Any, data: Any,
              writes: bool, extra_headers: dict[str, str]) -> httpx.Response:
        for refreshed in (False, True):
            headers = {"Accept": "application/json", **extra_headers}
            if self.auth is not None:
                headers |= self.auth.headers(self)
            response = self._exchange(method, url, params, body, data, headers, writes)
            if response.status_code == 401 and not refreshed and self.auth is not None and self.auth.refresh(self):
                continue
            break
        if response.status_code < 300:
            return response
        if response.status_code < 400:  # redirects are not followed: they mean a wrong instance URL
            location = scrub_cut(response.headers.get("Location", "(no location)"), self.scope.redactor, 200)
            raise self._scrub(ActionError.inactive(
                f"{self.vendor} API {response.status_code}: redirected to {location}; check the integration's "
                "instance URL", reason="REDIRECTED", status=response.status_code))
        err = self._no_answer(response, writes) or vendor_error(self.vendor, response, self.scope.redactor,
                                                                side_effect=writes)
        if response.status_code in self.spec.retry_statuses:
            err = ActionError("TRANSIENT_FAILURE", f"{err.message} (the vendor asks for this to be sent again)",
                              details={**err.details, "reason": "VENDOR_RETRY_STATUS"}, retry_after=err.retry_after)
        if err.code == "RATE_LIMITED":
            raise _Refused(err)
        inline_ok = err.retry_after is None or err.retry_after <= MAX_INLINE_RETRY_AFTER_S
        if err.code == "TRANSIENT_FAILURE" and not writes and inline_ok and err.retryable:
            raise _Retry(err)
        raise self._scrub(err)

    def _exchange(self, method: str, url: str, params: dict[str, Any], body: Any, data: Any,
                  headers: dict[str, str], writes: bool) -> httpx.Response:
        """One request and its whole body, within the total deadline; failures say what is known of the outcome."""
        import httpx

        from mspflow.vendor.network import deadline

        request = self.client.build_request(method, url, params=params, json=body, data=data, headers=headers,
                                            timeout=self.timeout)
        if writes:
            self.scope.sending_side_effect()
        with deadline(self.deadline_s):
            try:
                response = self.client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing left this process: safe to try again, read or write.
                raise _Retry(ActionError("TRANSIENT_FAILURE", f"{self.vendor} API unreachable: "
                                         f"{self._why(exc)}")) from None
            except httpx.TransportError as exc:
                if writes:
                    raise self._scrub(ActionError(
                        "TRANSIENT_FAILURE", f"{self.vendor} API did not answer ({self._why(exc)}) after the "
                        "request was sent; it may or may not have been carried out, so it is not repeated "
                        "automatically: check in the vendor console", details={"outcome": "unknown"},
                        retryable=False)) from None
                raise _Retry(ActionError("TRANSIENT_FAILURE", f"{self.vendor} API did not answer: "
                                         f"{self._why(exc)}")) from None
            try:
                response.read()
            except (httpx.TransportError, httpx.DecodingError, httpx.StreamError) as exc:
                response.close()
                raise self._unreadable(response, writes, self._why(exc)) from None
        return response

    def _why(self, exc: Exception) -> str:
        from mspflow.vendor.network import deadline_passed

        if deadline_passed():
            return f"no complete answer within the request's deadline of {self.deadline_s:g} s"
        return type(exc).__name__

    def _unreadable(self, response: httpx.Response, writes: bool, why: str) -> ActionError:
        """A reply whose status arrived but whose body could not be read (or parsed, or had the wrong shape)."""
        import httpx

        status = response.status_code
        if status >= 300:
            bare = httpx.Response(status, headers={"Retry-After": response.headers.get("Retry-After", "")})
            err = vendor_error(self.vendor, bare, side_effect=writes)
            err.details["reason"] = "UNREADABLE_BODY"
            return self._scrub(err)
        return self._scrub(unreadable_reply(self.vendor, status, why, writes))

    def _no_answer(self, response: httpx.Response, writes: bool, body: Any = None) -> ActionError | None:
        """The vendor's declared "the target did not answer" replies (:class:`~mspflow.vendor.spec.NoAnswer`)."""
        if not self.spec.no_answer:
            return None
        if response.status_code < 300:
            words = body if isinstance(body, str) else None
        else:
            words = vendor_message(response, self.scope.redactor)
        status = response.status_code
        match = next((n for n in self.spec.no_answer if (n.answer is None or n.answer == words)
                      and (n.status is None or n.status == status)), None)
        if match is None:
            return None
        said = repr(words) if match.answer is not None else (words or "(no words)")
        where = f"{response.request.method} {response.request.url.path}"
        details: dict[str, Any] = {"reason": match.reason, "status": status, "vendor_answer": said}
        text = f"{self.vendor} API {status} to {where}: {said}: {match.explanation}"
        if writes:
            return ActionError("TRANSIENT_FAILURE", f"{text}; whether the request was carried out is unknown, so "
                               "it is not repeated automatically: check in the vendor console before running it "
                               "again", details={**details, "outcome": "unknown"}, retryable=False)
        return ActionError("TRANSIENT_FAILURE", text, details=details)

    def _decode(self, response: httpx.Response, *, writes: bool, expect: Any = None) -> Any:
        """The JSON body of a 2xx reply (None when empty), checked against ``expect``."""
        if response.status_code == 204 or not response.content:
            body = None
        else:
            try:
                body = response.json()
            except (ValueError, UnicodeDecodeError):
                raise self._unreadable(response, writes, "malformed JSON") from None
        declared = self._no_answer(response, writes, body)
        if declared is not None:
            raise self._scrub(declared)
        return self.reply(body, expect, side_effect=writes)

    def reply(self, data: Any, expect: Any, *, side_effect: bool = False) -> Any:
        """``data`` checked (and converted) by ``expect``: ``dict``, ``list``, a pydantic model, ``list[Model]``,
        any type pydantic validates. None means no check. A mismatch is ``TRANSIENT_FAILURE`` (reason
        ``VENDOR_REPLY_SHAPE``, ``details.field`` the path); on a side-effectful request ``outcome: "done"``."""
        if expect is None:
            return data
        from pydantic import ValidationError

        try:
            return _adapter(expect).validate_python(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            field = ".".join(str(p) for p in first["loc"]) or "(the whole reply)"
            raise self._scrub(reply_shape_error(self.vendor, field, str(first["msg"]), side_effect)) from None

    # -- JSON conveniences ------------------------------------------------------------------------------
    # ``expect`` checks the reply's shape (see :meth:`reply`); writes default to side-effectful.

    def get(self, path: Path, *, params: dict[str, Any] | None = None, expect: Any = None) -> Any:
        return self._decode(self.request("GET", path, params=params), writes=False, expect=expect)

    def post(self, path: Path, *, json: Any = None, data: Any = None, params: dict[str, Any] | None = None,
             side_effect: bool = True, headers: dict[str, str] | None = None, expect: Any = None) -> Any:
        """POST; pass ``headers={"Idempotency-Key": ctx.idempotency_key}`` where the vendor honours one."""
        response = self.request("POST", path, json=json, data=data, params=params, side_effect=side_effect,
                                headers=headers)
        return self._decode(response, writes=side_effect, expect=expect)

    def put(self, path: Path, *, json: Any = None, headers: dict[str, str] | None = None,
            expect: Any = None) -> Any:
        return self._decode(self.request("PUT", path, json=json, headers=headers), writes=True, expect=expect)

    def patch(self, path: Path, *, json: Any = None, side_effect: bool = True, headers: dict[str, str] | None = None,
              expect: Any = None) -> Any:
        response = self.request("PATCH", path, json=json, side_effect=side_effect, headers=headers)
        return self._decode(response, writes=side_effect, expect=expect)

    def delete(self, path: Path, *, headers: dict[str, str] | None = None, expect: Any = None) -> Any:
        return self._decode(self.request("DELETE", path, headers=headers), writes=True, expect=expect)

    def iter_pages(self, path: Path, *, params: dict[str, Any] | None = None,
                   items: str | None = None, expect: Any = None) -> Iterator[list[Any]]:
        """Each page of a list, the way the vendor declared its paging (``Vendor(paging=...)``); ``expect``
        checks each item (e.g. a pydantic model)."""
        paging = self.spec.paging
        if paging is None:
            raise ActionError.internal(f"{self.vendor} declares no paging; pass paging= to its Vendor(...)")
        query = {**(params or {}), paging.size: paging.page_size}
        sizes: list[int] = []
        while True:
            body = self.get(path, params=query)
            page = paging.items(self.vendor, body, items)
            sizes.append(len(page))
            following = paging.next(self.vendor, body, page, sizes)
            yield page if expect is None else self.reply(page, list[expect])
            if following is None:
                return
            query = {**query, **following}

    def pages(self, path: Path, *, params: dict[str, Any] | None = None, items: str | None = None,
              limit: int | None = None, expect: Any = None) -> list[Any]:
        """Every item of a paged list, stopping early once ``limit`` items are in."""
        found: list[Any] = []
        for page in self.iter_pages(path, params=params, items=items, expect=expect):
            found.extend(page)
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found


@lru_cache(maxsize=256)
def _adapter(expect: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(expect)


def unreadable_reply(vendor: str, status: int, why: str, side_effect: bool) -> ActionError:
    """A 2xx whose body cannot be read: on a side-effectful request it was done (never repeated)."""
    if side_effect:
        return ActionError("TRANSIENT_FAILURE", f"{vendor} API accepted the request ({status}) but its reply could "
                           f"not be read ({why}); it was carried out, so it is not repeated: check the result in the "
                           "vendor console", details={"reason": "UNREADABLE_BODY", "status": status, "outcome": "done"},
                           retryable=False)
    return ActionError("TRANSIENT_FAILURE", f"{vendor} API returned a reply that could not be read ({why}; status "
                       f"{status})", details={"reason": "MALFORMED_BODY", "status": status})


def reply_shape_error(vendor: str, field: str, problem: str, side_effect: bool) -> ActionError:
    """A parsed reply that does not have the shape the plugin declared (``expect=``)."""
    text = f"{vendor} API reply does not have the expected shape at {field!r}: {problem}"
    details: dict[str, Any] = {"reason": "VENDOR_REPLY_SHAPE", "field": field}
    if side_effect:
        return ActionError("TRANSIENT_FAILURE", f"{text}; the request was accepted, so it is not repeated: check "
                           "the result in the vendor console", details={**details, "outcome": "done"},
                           retryable=False)
    return ActionError("TRANSIENT_FAILURE", text, details=details)


def make_client(scope: CallScope, vendor: Vendor, *, instance_url: str | None, auth: Auth | None = None,
                timeout_s: float | None = None) -> VendorClient:
    """The client ``ctx.http()`` returns; the base URL is the tenant's instance URL or the vendor's default,
    checked against the vendor's declaration (:func:`~mspflow.vendor.paths.check_instance_url`)."""
    base = instance_url or vendor.base_url
    if not base:
        raise ActionError.inactive(
            f"{vendor.name} has no instance URL for tenant {scope.tenant_id!r}; set it in the integration "
            f"settings (standalone: `mspflow tenant connect {scope.tenant_id} {scope.provider or vendor.name.lower()} "
            "--instance-url https://…`)", reason="INSTANCE_URL_MISSING")
    return VendorClient(scope, vendor, base_url=check_instance_url(vendor, base), auth=auth, timeout_s=timeout_s)
