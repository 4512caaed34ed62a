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

    def _poke(self, request: httpx.Request, thing: str) -> httpx.Response:
        self.pokes += 1
        return self.empty()

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
acme = Module("app:acme", label="Acme", availability=rmm_integration("acme"))


def _call(params: CallInput, ctx: Any) -> CallOutput:
    spec = vendor.Vendor("Acme", base_url=BASE, rate_limit=LIMIT["value"], paging=vendor.KeysetPaging(page_size=3))
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
    with db.session() as s:
        connect(s, app.registry, "acme", "acme", "http://eu.acme.example")
    insecure = read_(app, ["v2", "things", "1"])
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
