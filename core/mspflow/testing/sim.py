"""A small base for stateful vendor simulators ("sandboxes").

A simulator answers the vendor's real paths with the vendor's own shapes, auth checks, error bodies,
paging and rate limits, from in-memory state. It is usable two ways, and the plugin's handlers cannot
tell either from the real vendor:

* as an ``httpx`` transport in-process: ``mspflow.testing.mount(sim.base_url, sim.transport())``;
* as a real HTTP server on loopback: ``sim.serve(port=8765)`` (``mspflow sim serve VENDOR``).

Examples::

    class AcmeSim(Simulator):
        vendor = "Acme"
        base_url = "https://api.acme.example"

        def authenticate(self, request):
            if request.headers.get("X-API-KEY") != self.api_key:
                return self.error(401, "bad key")

        def error(self, status, message, **extra):
            return self.json({"error": message, **extra}, status)

    sim = AcmeSim()

    @sim.route("POST", "/devices/{device_id}/reboot")       # or register routes in __init__
    def reboot(request, device_id): ...

``GET /_sim/requests`` lists the requests a simulator answered (method and path), so a black-box test
of ``mspflow sim serve`` can count them. Faults are injected through :attr:`Simulator.faults`: latency,
a share of 5xx answers, the next N answers rate-limited with ``Retry-After``, the next N bodies
malformed, and credentials rejected.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import httpx

RouteHandler = Callable[..., httpx.Response]


@dataclass
class Faults:
    """What goes wrong, on purpose. Counters count down as answers are served."""

    latency_s: float = 0.0
    error_rate: float = 0.0  # share of requests answered 503
    fail_next: int = 0  # the next N requests answer 503
    rate_limit_next: int = 0  # the next N requests answer 429
    retry_after_s: float = 1.0
    malformed_next: int = 0  # the next N successful answers have a broken JSON body
    reject_credentials: bool = False
    timeout_next: int = 0  # the next N requests raise a read timeout after being handled
    seed: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: RouteHandler


class Simulator:
    """Base class: routing, auth hook, vendor-shaped errors, paging helpers, fault injection."""

    vendor = "Vendor"
    base_url = "https://vendor.invalid"

    def hosts(self) -> tuple[str, ...]:
        """Every base URL this simulator answers for, to mount in-process (a vendor with several hosts, such as
        Microsoft's Graph, token and Bot Connector hosts, overrides it); ``base_url`` comes first."""
        return (self.base_url,)

    def __init__(self, *, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.requests: list[httpx.Request] = []
        self._routes: list[_Route] = []
        self._lock = threading.RLock()

    # -- routing ----------------------------------------------------------------------------------------

    def route(self, method: str, path: str) -> Callable[[RouteHandler], RouteHandler]:
        """Register ``handler(request, **path_params)``; ``{name}`` matches one path segment."""

        def decorate(handler: RouteHandler) -> RouteHandler:
            parts = re.split(r"\{(\w+)\}", path)  # literal, name, literal, name, ...
            regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
            self._routes.append(_Route(method.upper(), re.compile(f"^{regex}$"), handler))
            return handler

        return decorate

    def add_routes(self, routes: Iterable[tuple[str, str, RouteHandler]]) -> None:
        for method, path, handler in routes:
            self.route(method, path)(handler)

    # -- hooks a vendor simulator overrides ---------------------------------------------------------------

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        """Return an error response to reject the request, or None to let it through."""
        return None

    def error(self, status: int, message: str, **extra: Any) -> httpx.Response:
        """An error in the vendor's own shape."""
        return self.json({"error": message, **extra}, status)

    # -- what `mspflow demo` and the reliability suite use --------------------------------------------------

    def demo_secrets(self) -> dict[str, str]:
        """Tenant secrets that connect a demo tenant to this simulator (e.g. a fresh user token)."""
        return {}

    def demo_calls(self) -> list[tuple[str, dict[str, Any]]]:
        """``(action id, input)`` pairs known to succeed against this simulator, in order (the reliability
        suite starts from them)."""
        return []

    # -- helpers ------------------------------------------------------------------------------------------

    @staticmethod
    def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    @staticmethod
    def empty(status: int = 204) -> httpx.Response:
        return httpx.Response(status)

    @staticmethod
    def body(request: httpx.Request) -> Any:
        content = request.read()
        if not content:
            return None
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            from urllib.parse import parse_qsl

            return dict(parse_qsl(content.decode()))
        try:
            return json.loads(content)
        except ValueError:
            return content.decode(errors="replace")

    @staticmethod
    def keyset_page(items: list[dict[str, Any]], *, after: Any, page_size: int, id_key: str = "id"
                    ) -> list[dict[str, Any]]:
        """Items with ``id > after``, in id order, at most ``page_size`` (NinjaOne-style keyset paging)."""
        ordered = sorted(items, key=lambda item: item[id_key])
        if after is not None:
            ordered = [item for item in ordered if item[id_key] > after]
        return ordered[:page_size]

    @staticmethod
    def cursor_page(items: list[Any], *, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        """Offset cursor paging: the page and the next cursor (None at the end)."""
        start = int(cursor or 0)
        page = items[start:start + limit]
        nxt = start + limit
        return page, (str(nxt) if nxt < len(items) else None)

    def count(self, method: str, path_suffix: str) -> int:
        """How many requests matched (for tests: 'rebooted exactly once')."""
        return sum(1 for r in self.requests if r.method == method and r.url.path.endswith(path_suffix))

    # -- serving ------------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/_sim/requests":  # for black-box tests of a served simulator
            return self.json([{"method": r.method, "path": r.url.raw_path.decode().split("?", 1)[0]}
                              for r in self.requests])
        with self._lock:
            self.requests.append(request)
            f = self.faults
            if f.latency_s:
                time.sleep(f.latency_s)
            if f.reject_credentials:
                return self.error(401, "credentials rejected")
            if f.rate_limit_next > 0:
                f.rate_limit_next -= 1
                response = self.error(429, "rate limit exceeded")
                response.headers["Retry-After"] = f"{f.retry_after_s:g}"
                return response
            if f.fail_next > 0 or (f.error_rate and f._random.random() < f.error_rate):
                f.fail_next = max(0, f.fail_next - 1)
                return self.error(503, "service unavailable")
            denied = self.authenticate(request)
            if denied is not None:
                return denied
            response = self._dispatch(request)
            if f.timeout_next > 0:
                f.timeout_next -= 1
                raise httpx.ReadTimeout("simulated read timeout after the request was handled", request=request)
            if f.malformed_next > 0 and response.status_code < 400:
                f.malformed_next -= 1
                return httpx.Response(response.status_code, content=b'{"truncated": ',
                                      headers={"Content-Type": "application/json"})
            return response

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().split("?", 1)[0]
        allowed = False
        for route in self._routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method != request.method:
                allowed = True
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            return route.handler(request, **params)
        if allowed:
            return self.error(405, "method not allowed")
        return self.error(404, "not found")

    def transport(self) -> httpx.MockTransport:
        """This simulator as an ``httpx`` transport."""
        return httpx.MockTransport(self.handle)

    def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        """A real HTTP server on loopback (call ``serve_forever()`` or run it in a thread)."""
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = f"http://{self.headers.get('Host', f'{host}:{port}')}{self.path}"
                request = httpx.Request(self.command, url, headers=list(self.headers.items()), content=body)
                try:
                    response = sim.handle(request)
                except httpx.ReadTimeout:
                    time.sleep(0.5)  # a real server that stays silent: the client's read timeout decides
                    self.close_connection = True
                    return
                content = response.read()
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return ThreadingHTTPServer((host, port), Handler)

    def serve_in_thread(self, *, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
        """Start :meth:`serve` in a daemon thread; returns the server and its base URL."""
        server = self.serve(host=host, port=port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://{host}:{server.server_address[1]}"
