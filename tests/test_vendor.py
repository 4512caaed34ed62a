"""The vendor HTTP rails, against a small simulator: URLs, auth, errors, retries, throttling, OAuth2."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from mspflow import auth, vendor
from mspflow.app import App
from mspflow.availability import rmm_integration
from mspflow.db.engine import Database
from mspflow.errors import ActionError
from mspflow.hookspecs import hookimpl
from mspflow.modules import Module
from mspflow.plugins import Plugins
from mspflow.tenants import connect
from mspflow.testing.sim import Simulator
from mspflow.vendor import auth as auth_module
from mspflow.vendor import limits, transport

BASE = "https://api.acme.example"
KEY = "acme-key-7f3c9b2e11"


class AcmeSim(Simulator):
    vendor = "Acme"
    base_url = BASE

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()
        self.refresh_tokens: set[str] = {"refresh-0"}
        self.issued = 0
        self.pokes = 0
        self.route("GET", "/v2/things/{thing}")(lambda r, thing: self.json({"id": thing}))
        self.route("POST", "/v2/things/{thing}/poke")(self._poke)
        self.route("GET", "/v2/fail/{status}")(
            lambda r, status: self.error(int(status), f"no luck for key {r.headers.get('X-API-KEY')}"))
        self.route("POST", "/oauth/token")(self._token)
        self.route("GET", "/v2/items")(self._items)
        self.route("GET", "/v2/moved")(lambda r: httpx.Response(301, headers={"Location": "https://new.example/"}))
        self.route("GET", "/v2/long")(  # a long plain-text error page that quotes the key
            lambda r: httpx.Response(400, text="x" * 280 + " key " + r.headers["X-API-KEY"] + " y" * 100))
        self.route("GET", "/v2/reply")(lambda r: self.reply)
        self.reply = httpx.Response(200, json={"id": 1})
        self.poke_reply: httpx.Response | None = None

    def _poke(self, request: httpx.Request, thing: str) -> httpx.Response:
        self.pokes += 1
        return self.poke_reply if self.poke_reply is not None else self.empty()

    def _items(self, request: httpx.Request) -> httpx.Response:
        items = [{"id": i} for i in range(1, 8)]
        after = request.url.params.get("after")
        size = int(request.url.params["pageSize"])
        return self.json(self.keyset_page(items, after=int(after) if after else None, page_size=size))

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = self.body(request)
        if form["grant_type"] == "refresh_token":
            if form["refresh_token"] not in self.refresh_tokens:
                return self.error(400, "refresh token is invalid", error_code="invalid_grant")
            self.refresh_tokens.discard(form["refresh_token"])  # rotation: one use each
        elif form["client_secret"] != "cs-secret-value":
            return self.error(401, "bad client")
        self.issued += 1
        token, refresh = f"tok-{self.issued}-abcdef", f"refresh-{self.issued}"
        self.tokens.add(token)
        self.refresh_tokens.add(refresh)
        return self.json({"access_token": token, "refresh_token": refresh, "expires_in": 3600})

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/oauth/token":
            return None
        header = request.headers.get("Authorization", "")
        bearer = header.removeprefix("Bearer ")
        basic = "Basic " + base64.b64encode(b"svc:pw-9c1e77ab").decode()
        if request.headers.get("X-API-KEY") == KEY or bearer in self.tokens or header in (basic, f"Token {KEY}"):
            return None
        return self.error(401, "not authenticated")


class CallInput(BaseModel):
    method: str = "GET"
    path: list[str | int]
    auth: str = "key"
    params: dict[str, Any] = {}


class CallOutput(BaseModel):
    body: Any = None


AUTHS: dict[str, Any] = {
    "key": auth.api_key_header("X-API-KEY", secret="acme_api_key"),
    "cc": auth.oauth2_client_credentials("/oauth/token", client_id="acme_client_id",
                                              client_secret="acme_client_secret"),
    "basic": auth.basic("acme_user", "acme_password"),
    "raw": auth.raw_authorization("acme_api_key", prefix="Token "),
    "ac": auth.oauth2_authorization_code("/oauth/token", credentials="acme_credentials",
                                              client_id="acme_client_id", client_secret="acme_client_secret"),
}
LIMIT: dict[str, vendor.RateLimit | None] = {"value": None}
ACME = vendor.Vendor("Acme", base_url=BASE, hosts=("eu.acme.example",))
acme = Module("app:acme", label="Acme", availability=rmm_integration("acme"), vendor=ACME)


def _call(params: CallInput, ctx: Any) -> CallOutput:
    spec = vendor.Vendor("Acme", base_url=BASE, hosts=ACME.hosts, rate_limit=LIMIT["value"],
                         paging=vendor.KeysetPaging(page_size=3))
    client = ctx.http(spec, auth=AUTHS[params.auth])
    if params.path == ["pages"]:
        return CallOutput(body=client.pages(("v2", "items")))
    if params.method == "GET":
        return CallOutput(body=client.get(tuple(params.path), params=params.params))
    return CallOutput(body=client.post(tuple(params.path)))


@acme.action("acme.things.read", label="Read")
def read(params: CallInput, ctx: Any) -> CallOutput:
    """Read."""
    return _call(params, ctx)


@acme.action("acme.things.write", label="Write", side_effectful=True)
def write(params: CallInput, ctx: Any) -> CallOutput:
    """Write."""
    return _call(params, ctx)


class Plugin:
    @hookimpl
    def register_modules(self, register: Any) -> None:
        register(acme)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[AcmeSim]:
    s = AcmeSim()
    vendor.mount(BASE, s.transport())
    monkeypatch.setattr(limits, "_limiter_backend", None)
    monkeypatch.setattr(auth_module, "_token_cache", {})
    LIMIT["value"] = None
    yield s
    vendor.unmount()


@pytest.fixture
def app(db: Database, sim: AcmeSim, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    instance = App(db=db, plugins=Plugins(entry_points=[], extra=[("mspflow-acme", Plugin())], strict=True))
    with db.session() as s:
        connect(s, instance.registry, "acme", "acme")
        for name, value in {"acme_api_key": KEY, "acme_user": "svc", "acme_password": "pw-9c1e77ab",
                            "acme_client_id": "cid", "acme_client_secret": "cs-secret-value",
                            "acme_credentials": json.dumps({"access_token": "expired", "refresh_token": "refresh-0",
                                                            "expires_at": time.time() - 5})}.items():
            instance.secrets.set(s, "acme", name, value)
    yield instance
    instance.close()


def read_(app: App, path: list[Any], **extra: Any) -> Any:
    return app.execute("acme.things.read", tenant="acme", input={"path": path, **extra})


def write_(app: App, path: list[Any], **extra: Any) -> Any:
    return app.execute("acme.things.write", tenant="acme", input={"method": "POST", "path": path, **extra})


# -- URLs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", ["../things/x", "..", ".", "1/poke", "x?y=1#z", "%2e%2e", " "])
def test_hostile_ids_stay_one_segment(app: App, sim: AcmeSim, hostile: str) -> None:
    result = read_(app, ["v2", "things", hostile])
    assert result.ok and result.output == {"body": {"id": hostile}}
    assert sim.requests[-1].url.raw_path.count(b"/") == 3


def test_https_only_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ActionError, match="must use https"):
        vendor.normalize_base_url("http://127.0.0.1:8080")
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")
    assert vendor.normalize_base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert vendor.normalize_base_url("eu.ninjarmm.com") == "https://eu.ninjarmm.com"
    with pytest.raises(ActionError, match="plain scheme"):
        vendor.normalize_base_url("https://user:pw@host.example")


def test_instance_url_overrides_the_default_and_is_checked(app: App, db: Database, sim: AcmeSim) -> None:
    vendor.mount("https://eu.acme.example", sim.transport())
    with db.session() as s:
        connect(s, app.registry, "acme", "acme", "https://eu.acme.example/")
    assert read_(app, ["v2", "things", "1"]).ok
    assert sim.requests[-1].url.host == "eu.acme.example"
    with db.session() as s, pytest.raises(ActionError, match="https"):
        connect(s, app.registry, "acme", "acme", "http://eu.acme.example")  # refused when saved ...
    from sqlalchemy import update

    from mspflow.db.models import RmmIntegration

    with db.session() as s:
        s.execute(update(RmmIntegration).values(instance_url="http://eu.acme.example"))
    insecure = read_(app, ["v2", "things", "1"])  # ... and when used
    assert insecure.error.code == "VALIDATION_ERROR" and "https" in insecure.error.message


def test_one_client_per_tenant_vendor_and_base_url_is_reused(app: App) -> None:
    read_(app, ["v2", "things", "1"])
    first = dict(transport._clients)
    read_(app, ["v2", "things", "2"])
    assert transport._clients == first and len(first) == 1
    [client] = first.values()
    assert client.timeout.read == 30.0 and not client.is_closed


# -- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(400, "VALIDATION_ERROR"), (422, "VALIDATION_ERROR"),
                                              (401, "PERMISSION_DENIED"), (403, "PERMISSION_DENIED"),
                                              (404, "NOT_FOUND"), (409, "CONFLICT")])
def test_vendor_failures_map_onto_the_taxonomy_without_secrets(app: App, status: int, code: str) -> None:
    result = read_(app, ["v2", "fail", status])
    assert result.error.code == code
    assert result.error.message.startswith(f"Acme API {status}: no luck for key [REDACTED]")
    assert KEY not in json.dumps(result.to_json()) and result.error.details["status"] == status
    if status in (401, 403):
        assert "reconnect" in result.error.message


def test_reads_retry_5xx_then_succeed_or_fail_retryable(app: App, sim: AcmeSim) -> None:
    sim.faults.fail_next = 2
    assert read_(app, ["v2", "things", "1"]).ok and len(sim.requests) == 3
    sim.faults.fail_next = 5
    result = read_(app, ["v2", "things", "1"])
    assert result.error.code == "TRANSIENT_FAILURE" and result.error.retryable
    assert "Acme API 503" in result.error.message


def test_429_honours_retry_after_inline_or_hands_it_to_the_worker(app: App, sim: AcmeSim) -> None:
    sim.faults.rate_limit_next, sim.faults.retry_after_s = 1, 0.05
    assert read_(app, ["v2", "things", "1"]).ok
    sim.faults.rate_limit_next, sim.faults.retry_after_s = 1, 120
    started = time.monotonic()
    slow = read_(app, ["v2", "things", "1"])
    assert slow.error.code == "RATE_LIMITED" and slow.error.retry_after == 120 and slow.error.retryable
    assert time.monotonic() - started < 5


def test_429s_are_waited_out_apart_from_the_retry_attempts(app: App, sim: AcmeSim) -> None:
    sim.faults.rate_limit_next, sim.faults.retry_after_s, sim.faults.fail_next = 2, 0.01, 2
    assert read_(app, ["v2", "things", "1"]).ok and len(sim.requests) == 5  # 429, 429, 503, 503, 200
    sim.faults.rate_limit_next, sim.faults.retry_after_s = 1, 0.01
    assert write_(app, ["v2", "things", "1", "poke"]).ok and sim.pokes == 1  # refused, so sent again
    sim.faults.rate_limit_next, sim.faults.retry_after_s = 100, 0  # never any room: no hot loop
    err = read_(app, ["v2", "things", "1"]).error
    assert err.code == "RATE_LIMITED" and err.retryable and err.details["reason"] == "VENDOR_RATE_LIMIT"
    assert sim.faults.rate_limit_next == 95


def test_writes_are_not_repeated_on_5xx_or_unknown_outcome(app: App, sim: AcmeSim) -> None:
    sim.faults.fail_next = 1
    failed = write_(app, ["v2", "things", "1", "poke"])
    assert failed.error.code == "TRANSIENT_FAILURE" and failed.error.retryable and len(sim.requests) == 1
    sim.faults.timeout_next = 1
    unknown = write_(app, ["v2", "things", "2", "poke"])
    assert unknown.error.code == "TRANSIENT_FAILURE" and unknown.error.retryable is False
    assert unknown.error.details["outcome"] == "unknown" and sim.pokes == 1  # carried out once, not repeated
    sim.faults.timeout_next = 1
    assert read_(app, ["v2", "things", "3"]).ok  # a read that timed out is simply asked again


def test_a_write_that_never_left_is_retried(app: App, sim: AcmeSim) -> None:
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return sim.handle(request)

    vendor.mount(BASE, httpx.MockTransport(flaky))
    assert write_(app, ["v2", "things", "1", "poke"]).ok and sim.pokes == 1 and calls["n"] == 2


def test_malformed_body_is_a_transient_failure(app: App, sim: AcmeSim) -> None:
    sim.faults.malformed_next = 1
    result = read_(app, ["v2", "things", "1"])
    assert result.error.code == "TRANSIENT_FAILURE" and result.error.details["reason"] == "MALFORMED_BODY"


def test_keyset_pages_follow_after_until_a_short_page(app: App, sim: AcmeSim) -> None:
    result = read_(app, ["pages"])
    assert [i["id"] for i in result.output["body"]] == list(range(1, 8))
    assert [r.url.params.get("after") for r in sim.requests] == [None, "3", "6"]


def test_missing_secret_is_integration_inactive(app: App, db: Database) -> None:
    with db.session() as s:
        app.secrets.delete(s, "acme", "acme_api_key")
    result = read_(app, ["v2", "things", "1"])
    assert result.error.code == "INTEGRATION_INACTIVE" and result.error.details["reason"] == "SECRET_MISSING"


# -- throttling -------------------------------------------------------------------------------------------


def test_declared_rate_limit_refuses_beyond_the_window(app: App) -> None:
    LIMIT["value"] = vendor.RateLimit(limit=2, window_s=60, max_wait_s=0)
    assert read_(app, ["v2", "things", "1"]).ok and read_(app, ["v2", "things", "2"]).ok
    third = read_(app, ["v2", "things", "3"])
    assert third.error.code == "RATE_LIMITED" and third.error.details["reason"] == "LOCAL_RATE_LIMIT"


@pytest.mark.redis
def test_rate_limit_is_shared_across_processes_through_redis(app: App, redis_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSPFLOW_BROKER_URL", redis_url)
    LIMIT["value"] = vendor.RateLimit(limit=2, window_s=60, max_wait_s=0)
    assert read_(app, ["v2", "things", "1"]).ok and read_(app, ["v2", "things", "2"]).ok
    monkeypatch.setattr(limits, "_limiter_backend", None)  # as if this were another worker process
    assert read_(app, ["v2", "things", "3"]).error.code == "RATE_LIMITED"
    import redis

    assert any(b"mspflow-rl:Acme:acme" in k for k in redis.Redis.from_url(redis_url).scan_iter())


# -- OAuth2 ---------------------------------------------------------------------------------------------


def test_client_credentials_token_is_cached_and_refetched_after_401(app: App, sim: AcmeSim) -> None:
    assert read_(app, ["v2", "things", "1"], auth="cc").ok and read_(app, ["v2", "things", "2"], auth="cc").ok
    assert sim.issued == 1
    sim.tokens.clear()  # the vendor revokes it
    assert read_(app, ["v2", "things", "3"], auth="cc").ok and sim.issued == 2


def test_expired_user_token_is_refreshed_once_and_rotation_is_stored(app: App, db: Database, sim: AcmeSim) -> None:
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(read_(app, ["v2", "things", "1"], auth="ac")))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert sim.issued == 1  # one refresh for six concurrent calls
    with db.sessions() as s:
        stored = json.loads(app.secrets.get(s, "acme", "acme_credentials") or "{}")
    assert stored["refresh_token"] == "refresh-1" and stored["access_token"] == "tok-1-abcdef"
    assert stored["expires_at"] > time.time() + 3000


def test_401_refreshes_once_and_retries(app: App, sim: AcmeSim) -> None:
    assert read_(app, ["v2", "things", "1"], auth="ac").ok
    sim.tokens.clear()
    assert read_(app, ["v2", "things", "2"], auth="ac").ok and sim.issued == 2


def test_dead_refresh_token_means_reconnect(app: App, sim: AcmeSim) -> None:
    sim.refresh_tokens.clear()
    result = read_(app, ["v2", "things", "1"], auth="ac")
    assert result.error.code == "INTEGRATION_INACTIVE" and result.error.details["reason"] == "RECONNECT_REQUIRED"
    assert "mspflow tenant authorize acme acme" in result.error.message and "refresh-0" not in result.error.message


def test_rotated_token_survives_a_failing_action(app: App, db: Database, sim: AcmeSim) -> None:
    result = read_(app, ["v2", "fail", 404], auth="ac")
    assert result.error.code == "NOT_FOUND"
    with db.sessions() as s:
        assert json.loads(app.secrets.get(s, "acme", "acme_credentials") or "{}")["refresh_token"] == "refresh-1"


@pytest.mark.parametrize("strategy", ["basic", "raw"])
def test_basic_and_raw_authorization_strategies(app: App, sim: AcmeSim, strategy: str) -> None:
    assert read_(app, ["v2", "things", "1"], auth=strategy).ok
    failed = read_(app, ["v2", "fail", 400], auth=strategy)
    assert "pw-9c1e77ab" not in json.dumps(failed.to_json())


def test_redirects_and_empty_ids_are_refused(app: App, sim: AcmeSim) -> None:
    moved = read_(app, ["v2", "moved"])
    assert moved.error.code == "INTEGRATION_INACTIVE" and moved.error.details["reason"] == "REDIRECTED"
    assert "https://new.example/" in moved.error.message
    empty = read_(app, ["v2", "things", ""])
    assert empty.error.code == "VALIDATION_ERROR" and len(sim.requests) == 1


# -- issue 9: replies that cannot be read ------------------------------------------------------------------

class RawStream(httpx.SyncByteStream):
    """A body httpx decodes only when the client reads it (as from the network)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data


def broken_gzip() -> httpx.Response:
    return httpx.Response(200, stream=RawStream(b"\x1f\x8b\x08\x00not gzip at all"),
                          headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


UNREADABLE = {
    "truncated-json": lambda: httpx.Response(200, content=b'{"jobUid": ', headers={"Content-Type": "application/json"}),
    "html-login-page": lambda: httpx.Response(
        200, text="<!doctype html><html><head><title>Sign in</title></head></html>",
        headers={"Content-Type": "text/html"}),
    "invalid-gzip": broken_gzip,
}


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_a_write_accepted_with_an_unreadable_reply_is_done_and_never_repeated(app: App, sim: AcmeSim,
                                                                               kind: str) -> None:
    sim.poke_reply = UNREADABLE[kind]()
    result = write_(app, ["v2", "things", "1", "poke"])
    err = result.error
    assert err.code == "TRANSIENT_FAILURE" and err.retryable is False
    assert err.details["outcome"] == "done" and err.details["status"] == 200
    assert "carried out" in err.message and "<" not in err.message
    assert sim.pokes == 1  # sent once, and the error tells nobody to send it again


def test_invalid_gzip_on_a_read_is_a_transient_vendor_fault(app: App, sim: AcmeSim) -> None:
    sim.reply = broken_gzip()
    result = read_(app, ["v2", "reply"])
    assert result.error.code == "TRANSIENT_FAILURE" and result.error.retryable
    assert result.error.details["reason"] == "MALFORMED_BODY" and "outcome" not in result.error.details


def test_a_5xx_on_a_write_is_an_unknown_outcome_but_503_is_a_refusal(app: App, sim: AcmeSim) -> None:
    sim.poke_reply = httpx.Response(500, text="<html><head><title>Server Error (500)</title></head>"
                                              "<body>Traceback ... secret stuff</body></html>",
                                    headers={"Content-Type": "text/html"})
    unknown = write_(app, ["v2", "things", "1", "poke"])
    assert unknown.error.code == "TRANSIENT_FAILURE" and unknown.error.retryable is False
    assert unknown.error.details["outcome"] == "unknown"
    assert "'Server Error (500)'" in unknown.error.message and "Traceback" not in unknown.error.message


# -- issue 9: messages scrubbed before they are cut -----------------------------------------------------------


def test_a_long_vendor_error_is_scrubbed_before_it_is_cut(app: App, sim: AcmeSim) -> None:
    result = read_(app, ["v2", "long"])
    text = json.dumps(result.to_json())
    assert result.error.code == "VALIDATION_ERROR"
    assert KEY[:6] not in text  # not even the first characters of the key survive the cut


def test_vendor_message_scrubs_then_cuts() -> None:
    from mspflow.errors import vendor_message
    from mspflow.redaction import Redactor

    secret = "S3cr3tValue-1234567890"  # 22 characters, straddling the 300-character cut
    response = httpx.Response(400, text="y" * 290 + secret + "z" * 50)
    message = vendor_message(response, Redactor({secret}))
    assert "S3cr3tVal" not in message and len(message) <= 300


# -- issue 9: retry delays --------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ("inf", 3600.0), ("1e400", 3600.0), ("Infinity", 3600.0), ("999999", 3600.0), ("120", 120.0),
    ("nan", None), ("-5", None), ("soon", None), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0)])
def test_retry_after_is_finite_capped_and_validated(header: str, expected: float | None) -> None:
    from mspflow.errors import MAX_RETRY_AFTER_S, retry_after_of

    assert MAX_RETRY_AFTER_S == 3600.0
    assert retry_after_of(httpx.Response(429, headers={"Retry-After": header})) == expected


def test_an_infinite_retry_after_never_reaches_the_record(app: App, sim: AcmeSim) -> None:
    sim.faults.rate_limit_next, sim.faults.retry_after_s = 1, float("inf")
    result = read_(app, ["v2", "things", "1"])
    assert result.error.code == "RATE_LIMITED" and result.error.retry_after == 3600.0
    json.dumps(result.to_json(), allow_nan=False)  # no Infinity / NaN anywhere


# -- issue 9: checked replies -----------------------------------------------------------------------------


class Thing(BaseModel):
    id: int
    name: str | None = None


class Scope:
    """The least a VendorClient needs from a call (ActionContext is the real one)."""

    tenant_id = "acme"
    provider = "acme"

    def __init__(self) -> None:
        from mspflow.redaction import Redactor

        self.redactor = Redactor()

    def secret(self, name: str, *, required: bool = True, fresh: bool = False) -> str | None:
        return KEY

    def store_secret(self, name: str, value: str) -> None:
        raise AssertionError("not used")

    def locked_secret(self, name: str) -> Any:
        raise AssertionError("not used")

    def sending_side_effect(self) -> None:
        pass


def client_for(spec: vendor.Vendor, instance_url: str | None = None) -> vendor.VendorClient:
    return vendor.make_client(Scope(), spec, instance_url=instance_url, auth=AUTHS["key"])


@pytest.mark.parametrize(("body", "field"), [(None, "(the whole reply)"), ([], "(the whole reply)"),
                                             ({"name": "x"}, "id"), ({"id": "one"}, "id")])
def test_a_reply_of_the_wrong_shape_names_the_field(sim: AcmeSim, body: Any, field: str) -> None:
    sim.reply = httpx.Response(200, json=body)
    with pytest.raises(ActionError) as caught:
        client_for(ACME).get(("v2", "reply"), expect=Thing)
    err = caught.value
    assert err.code == "TRANSIENT_FAILURE" and err.retryable and err.details["reason"] == "VENDOR_REPLY_SHAPE"
    assert err.details["field"] == field and repr(field) in err.message
    assert client_for(ACME).get(("v2", "things", "7"), expect=dict) == {"id": "7"}


def test_a_wrong_shape_after_a_write_is_done_not_retryable(sim: AcmeSim) -> None:
    sim.poke_reply = httpx.Response(200, json=["not", "an", "object"])
    with pytest.raises(ActionError) as caught:
        client_for(ACME).post(("v2", "things", "1", "poke"), expect=dict)
    assert caught.value.details["outcome"] == "done" and caught.value.retryable is False and sim.pokes == 1


def test_paged_items_are_checked_too(sim: AcmeSim) -> None:
    spec = vendor.Vendor("Acme", base_url=BASE, paging=vendor.KeysetPaging(page_size=3))
    things = client_for(spec).pages(("v2", "items"), expect=Thing)
    assert [t.id for t in things] == list(range(1, 8))


# -- issue 9: vendor URLs, checked when saved and when used --------------------------------------------

NINJA_LIKE = vendor.Vendor("Ninja", base_url="https://app.ninja.example",
                           regions=(("eu", "https://eu.ninja.example"),))
SELF_HOSTED = vendor.Vendor("Tactical", self_hosted=True)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://[::1", "https://rmm.example.com\r\nX-Evil: 1",
                                 "https://rmm.example.com/\nx", "ftp://rmm.example.com", "https://",
                                 "https://user:pw@rmm.example.com", "https://rmm.example.com:99999"])
def test_malformed_instance_urls_are_validation_errors(url: str) -> None:
    for spec in (NINJA_LIKE, SELF_HOSTED):
        with pytest.raises(ActionError) as caught:
            vendor.check_instance_url(spec, url)
        assert caught.value.code == "VALIDATION_ERROR", url


@pytest.mark.parametrize("url", ["https://169.254.169.254", "https://metadata.google.internal/computeMetadata",
                                 "https://[fe80::1]", "https://0.0.0.0", "https://[::ffff:169.254.169.254]",
                                 "https://127.0.0.1:8443", "https://localhost"])
def test_link_local_metadata_and_loopback_hosts_are_refused(url: str) -> None:
    with pytest.raises(ActionError) as caught:
        vendor.check_instance_url(SELF_HOSTED, url)
    assert caught.value.details["reason"] == "HOST_NOT_ALLOWED"


@pytest.mark.parametrize("spelling", ["1", "true", "yes", "on", "TRUE"])
def test_loopback_is_allowed_only_with_the_testing_flag(monkeypatch: pytest.MonkeyPatch, spelling: str) -> None:
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", spelling)
    assert vendor.check_instance_url(SELF_HOSTED, "http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert vendor.check_instance_url(NINJA_LIKE, "http://localhost:9") == "http://localhost:9"
    with pytest.raises(ActionError):
        vendor.check_instance_url(SELF_HOSTED, "https://169.254.169.254")  # never, flag or not


def test_saas_vendors_accept_their_declared_hosts_and_operator_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    assert vendor.check_instance_url(NINJA_LIKE, "eu.ninja.example/") == "https://eu.ninja.example"
    for url in ("https://evil.example", "https://10.0.0.5", "https://eu.ninja.example.evil.example"):
        with pytest.raises(ActionError) as caught:
            vendor.check_instance_url(NINJA_LIKE, url)
        assert caught.value.details["reason"] == "HOST_NOT_ALLOWED"
    with pytest.raises(ActionError, match="MSPFLOW_EXTRA_VENDOR_HOSTS"):
        vendor.check_instance_url(NINJA_LIKE, "https://evil.example")
    monkeypatch.setenv("MSPFLOW_EXTRA_VENDOR_HOSTS", " ninja.partner.example , other.example")
    assert vendor.check_instance_url(NINJA_LIKE, "https://ninja.partner.example") == "https://ninja.partner.example"
    assert vendor.check_instance_url(SELF_HOSTED, "https://10.0.0.5") == "https://10.0.0.5"  # an MSP's LAN


def test_connect_refuses_a_bad_url_and_a_stored_one_fails_cleanly(app: App, db: Database, sim: AcmeSim) -> None:
    for url in ("javascript:alert(1)", "https://[::1", "https://api.acme.example\r\nX: 1", "https://evil.example"):
        with db.session() as s, pytest.raises(ActionError) as caught:
            connect(s, app.registry, "acme", "acme", url)
        assert caught.value.code == "VALIDATION_ERROR"
    from sqlalchemy import update

    from mspflow.db.models import RmmIntegration

    for url in ("https://[::1", "javascript:alert(1)", "https://api.acme.example\r\nX-Evil: 1"):
        with db.session() as s:  # a URL saved by some other path, before this check existed
            s.execute(update(RmmIntegration).where(RmmIntegration.tenant == "acme").values(instance_url=url))
        result = read_(app, ["v2", "things", "1"])
        assert result.error.code == "VALIDATION_ERROR", (url, result.error)
    assert sim.requests == []


# -- issue 9: the resolved address is checked before any connection is opened ---------------------------


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connect a vendor client attempts (recorded, and refused unless it is loopback)."""
    import httpcore

    opened: list[tuple[str, int]] = []
    real = httpcore.SyncBackend.connect_tcp

    def guard(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        opened.append((host, port))
        assert host in ("127.0.0.1", "::1"), f"a test tried to connect to {host}"
        return real(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", guard)
    return opened


def resolve_to(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    import socket

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (family, socket.SOCK_STREAM, 6, "", (address, port))])


@pytest.mark.parametrize(("spec", "url", "address"), [
    (SELF_HOSTED, "https://rmm.customer.example", "169.254.169.254"),    # metadata via DNS
    (SELF_HOSTED, "https://rmm.customer.example", "fe80::1"),            # link-local
    (SELF_HOSTED, "https://rmm.customer.example", "::ffff:169.254.10.1"),
    (SELF_HOSTED, "https://rmm.customer.example", "127.0.0.1"),          # loopback without the flag
    (NINJA_LIKE, "https://eu.ninja.example", "10.1.2.3"),                # a SaaS host resolving privately
    (NINJA_LIKE, "https://eu.ninja.example", "192.168.0.10"),
])
def test_a_forbidden_resolved_address_is_refused_before_connecting(
        monkeypatch: pytest.MonkeyPatch, no_connect: list[tuple[str, int]], spec: vendor.Vendor, url: str,
        address: str) -> None:
    monkeypatch.delenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", raising=False)
    resolve_to(monkeypatch, address)
    with pytest.raises(ActionError) as caught:
        client_for(spec, url).get(("v2", "things", "1"))
    assert caught.value.code == "VALIDATION_ERROR" and caught.value.details["reason"] == "ADDRESS_REFUSED"
    assert caught.value.details["address"] == address
    assert no_connect == []  # refused before any connection was opened


def test_an_allowed_resolved_address_is_the_one_connected_to(monkeypatch: pytest.MonkeyPatch,
                                                            no_connect: list[tuple[str, int]]) -> None:
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")
    served = AcmeSim()
    server, url = served.serve_in_thread()
    try:
        resolve_to(monkeypatch, "127.0.0.1")  # the name resolves (by us) to loopback, which the flag allows
        port = int(url.rsplit(":", 1)[1])
        body = client_for(SELF_HOSTED, f"http://rmm.customer.example:{port}").get(("v2", "things", "9"))
    finally:
        server.shutdown()
        server.server_close()
    assert body == {"id": "9"} and no_connect == [("127.0.0.1", port)]
    assert served.requests[0].headers["Host"] == f"rmm.customer.example:{port}"


# -- issue 9: one total deadline per request ------------------------------------------------------------


class Drip:
    """A loopback HTTP server that trickles its reply one byte at a time (for at most 30 s)."""

    def __init__(self, part: str) -> None:
        import socketserver

        self.part = part
        self.connections = 0
        self.cut_off = 0  # connections the client closed before the reply was complete
        drip = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                drip.connections += 1
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                body = b'{"id": "' + b"x" * 200 + b'"}'
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + \
                    str(len(body)).encode() + b"\r\n\r\n"
                slow, fast = (head, b"") if drip.part == "headers" else (body, head)
                try:
                    self.wfile.write(fast)
                    self.wfile.flush()
                    for i in range(len(slow)):
                        self.wfile.write(slow[i:i + 1])
                        self.wfile.flush()
                        time.sleep(0.15)
                    if drip.part == "headers":
                        self.wfile.write(body)
                except OSError:
                    drip.cut_off += 1

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_slow_drip_reply_is_cut_off_at_the_total_deadline(monkeypatch: pytest.MonkeyPatch, part: str) -> None:
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")
    drip = Drip(part)
    spec = vendor.Vendor("Drip", self_hosted=True, timeout_s=1.0)
    try:
        with pytest.raises(ActionError) as read_err:
            client_for(spec, drip.url).get(("v2", "things", "1"))
        with pytest.raises(ActionError) as write_err:
            client_for(spec, drip.url).post(("v2", "things", "1", "poke"))
        for _ in range(100):  # the server notices the closed connection at its next byte
            if drip.cut_off == drip.connections:
                break
            time.sleep(0.05)
    finally:
        drip.close()
    assert read_err.value.code == "TRANSIENT_FAILURE" and "deadline of 1 s" in read_err.value.message
    assert write_err.value.retryable is False and "deadline of 1 s" in write_err.value.message
    # the body's drip: a 200 status had arrived, so the write was done; the headers' drip: unknown
    assert write_err.value.details["outcome"] == ("done" if part == "body" else "unknown")
    # a read whose headers never arrived is asked again (3 attempts); one whose body never did is not
    attempts = 4 if part == "headers" else 2
    assert drip.connections == attempts and drip.cut_off == attempts  # each closed early by the client


# -- issue 10.2: login-token refresh uses the token the call sent ------------------------------------------


class FakeLoginClient:
    """The parts of VendorClient LoginToken uses, over one shared secret store."""

    vendor, tenant = "Acme", "acme"

    def __init__(self, store: dict[str, str], logins: list[str]) -> None:
        self.store, self.logins, self.sent = store, logins, {}
        self.scope = self

    def secret(self, name: str, *, required: bool = True, fresh: bool = False) -> str | None:
        return self.store.get(name)

    def store_secret(self, name: str, value: str) -> None:
        self.store[name] = value

    def login_request(self, path: Any, body: dict[str, str], *, refused: str) -> Any:
        self.logins.append(body["username"])
        return {"token": f"tok-{len(self.logins)}"}


def test_a_401_after_another_call_logged_in_uses_its_token_instead_of_logging_in_again() -> None:
    strategy = auth.login_token(("login",), fields={"username": "acme_user"}, store_as="acme_token")
    store, logins = {"acme_user": "svc", "acme_token": "tok-old"}, []
    call = FakeLoginClient(store, logins)
    assert strategy.headers(call) == {"Authorization": "tok-old"}  # sent, and answered 401 ...
    store["acme_token"] = "tok-other"  # ... while another worker logged in and stored its token
    assert strategy.refresh(call) is True
    assert logins == [] and strategy.headers(call) == {"Authorization": "tok-other"}
    store["acme_token"] = "tok-other"
    assert strategy.refresh(call) and logins == ["svc"]  # that token refused too: now one login
