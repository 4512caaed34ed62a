"""Pooled ``httpx`` clients per (tenant, vendor, base URL), and the mount table simulators plug into.

Examples::

    mount("https://app.ninjarmm.com", NinjaOneSimulator().transport())   # tests, the demo
    unmount()                                                             # all of them
    mount_routes({"https://api.huntress.io": "http://127.0.0.1:8123"})     # a worker: the demo's served sims
"""

from __future__ import annotations

import threading

import httpx

from mspflow.vendor.network import AddressPolicy, guarded_transport
from mspflow.vendor.paths import normalize_base_url

_mounted: dict[str, httpx.BaseTransport] = {}
_clients: dict[tuple[str, str, str, AddressPolicy], httpx.Client] = {}
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


class _Forward(httpx.BaseTransport):
    """Sends each request to a simulator served on loopback, keeping its path and ``Host`` header."""

    def __init__(self, target: str) -> None:
        url = httpx.URL(target)
        if url.scheme != "http" or url.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"a simulator route must point at http://127.0.0.1:PORT, not {target!r}")
        self.target = url
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_with(scheme=self.target.scheme, host=self.target.host, port=self.target.port)
        forwarded = httpx.Request(request.method, url, headers=request.headers, content=request.read(),
                                  extensions=request.extensions)
        return self.inner.handle_request(forwarded)

    def close(self) -> None:
        self.inner.close()


def mount_routes(routes: dict[str, str]) -> None:
    """Route each vendor base URL to a simulator served on loopback (``mspflow demo`` hands its workers
    these through ``MSPFLOW_SIMULATOR_ROUTES``); targets other than loopback are refused."""
    for base_url, target in routes.items():
        mount(base_url, _Forward(target))


def mounted(base_url: str) -> httpx.BaseTransport | None:
    """The transport :func:`mount` routes ``base_url`` to, if any."""
    with _lock:
        return _mounted.get(base_url)


def _close_clients() -> None:
    for client in _clients.values():
        client.close()
    _clients.clear()


def transport_for(base_url: str, policy: AddressPolicy) -> httpx.BaseTransport:
    """The mounted simulator for ``base_url``, else a real transport that connects only where ``policy``
    allows (:mod:`mspflow.vendor.network`)."""
    return mounted(base_url) or guarded_transport(policy)


def pooled_client(tenant: str, vendor: str, base_url: str, timeout: httpx.Timeout,
                  policy: AddressPolicy | None = None) -> httpx.Client:
    """The process-wide client of (tenant, vendor, base URL): connections are reused across calls."""
    policy = policy or AddressPolicy()
    key = (tenant, vendor, base_url, policy)
    with _lock:
        client = _clients.get(key)
        if client is None or client.is_closed:
            transport = _mounted.get(base_url) or guarded_transport(policy)
            client = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={"User-Agent": "mspflow"}, follow_redirects=False)
            _clients[key] = client
        return client
