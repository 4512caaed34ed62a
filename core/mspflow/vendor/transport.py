"""Pooled ``httpx`` clients per (tenant, vendor, base URL), and the mount table simulators plug into.

Examples::

    mount("https://app.ninjarmm.com", NinjaOneSimulator().transport())   # tests, the demo
    unmount()                                                             # all of them
"""

from __future__ import annotations

import threading

import httpx

from mspflow.vendor.paths import normalize_base_url

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


def mounted(base_url: str) -> httpx.BaseTransport | None:
    """The transport :func:`mount` routes ``base_url`` to, if any."""
    with _lock:
        return _mounted.get(base_url)


def _close_clients() -> None:
    for client in _clients.values():
        client.close()
    _clients.clear()


def pooled_client(tenant: str, vendor: str, base_url: str, timeout: httpx.Timeout) -> httpx.Client:
    """The process-wide client of (tenant, vendor, base URL): connections are reused across calls."""
    key = (tenant, vendor, base_url)
    with _lock:
        client = _clients.get(key)
        if client is None or client.is_closed:
            client = httpx.Client(base_url=base_url, timeout=timeout, transport=_mounted.get(base_url),
                                  headers={"User-Agent": "mspflow"}, follow_redirects=False)
            _clients[key] = client
        return client
