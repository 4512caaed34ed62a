"""Where a vendor request may connect, and how long it may take: checked at connection time.

Every pooled vendor client connects through :class:`GuardedBackend`, an ``httpcore`` network backend
that resolves the host itself, refuses a forbidden address *before any socket is opened*, and connects
to the address it checked (so a name cannot resolve to a public address for the check and to a private
one for the connection). Every read on the connection also honours the request's total deadline
(:func:`deadline`), so a reply trickled byte by byte cannot outlive it.

Always refused: link-local (``169.254.0.0/16``, ``fe80::/10``, where clouds serve instance metadata),
cloud metadata names and addresses (``metadata.google.internal``, ``100.100.100.200``,
``fd00:ec2::254``, …), unspecified, multicast and reserved addresses. Loopback is refused unless
``MSPFLOW_ALLOW_HTTP_VENDOR_URLS`` is set (tests, local simulators). Private addresses (``10/8``,
``192.168/16``, ``fc00::/7``, …) are allowed only for self-hosted vendors: an MSP's own Tactical RMM
server may well live on its LAN, a SaaS vendor's host never resolves there.

Examples::

    AddressPolicy(private=True).check("tactical.lan", "10.0.0.5")     # fine: self-hosted
    AddressPolicy(private=False).check("app.ninjarmm.com", "10.0.0.5") # ActionError VALIDATION_ERROR

    with deadline(30.0):
        client.get(...)          # connect, TLS, headers and every body chunk within 30 s in total
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore

from mspflow.errors import ActionError

METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    "metadata.azure.com", "metadata.platformequinix.com",
})
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "192.0.0.192",
))

_state = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Run the block under a total deadline of ``seconds`` (monotonic); yields the deadline's instant."""
    previous = getattr(_state, "deadline", None)
    _state.deadline = time.monotonic() + seconds
    try:
        yield _state.deadline
    finally:
        _state.deadline = previous


def deadline_passed() -> bool:
    """Whether this thread's current deadline (if any) has passed."""
    until = getattr(_state, "deadline", None)
    return until is not None and time.monotonic() >= until


def _remaining(timeout: float | None) -> float | None:
    until: float | None = getattr(_state, "deadline", None)
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's total deadline has passed")
    return left if timeout is None else min(timeout, left)


def is_metadata_host(host: str) -> bool:
    return host.lower().rstrip(".") in METADATA_HOSTS


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses a vendor connection may use (see the module docstring)."""

    private: bool = False
    loopback: bool = False

    def refusal(self, address: str) -> str | None:
        """Why ``address`` is refused, or None when it is allowed."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return "not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if ip.is_link_local:
            return "a link-local address (where clouds serve instance metadata)"
        if ip.is_loopback:
            return None if self.loopback else "a loopback address"
        if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
            return "an unspecified, multicast or reserved address"
        if ip.is_private or not ip.is_global:
            return None if self.private else "a private address, which a SaaS vendor's host never resolves to"
        return None

    def check(self, host: str, address: str) -> None:
        """Raise ``VALIDATION_ERROR`` (reason ``ADDRESS_REFUSED``) when ``host`` at ``address`` is refused."""
        why = "a cloud metadata host" if is_metadata_host(host) else self.refusal(address)
        if why is not None:
            raise ActionError.validation(
                f"vendor host {host!r} resolves to {address}, {why}; mspflow does not connect there",
                reason="ADDRESS_REFUSED", host=host, address=address)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the request's total deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _remaining(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, _remaining(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Resolve, check every address against ``policy``, then connect to a checked address only."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.SyncBackend()

    def resolve(self, host: str, port: int) -> list[str]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        timeout = _remaining(timeout)
        try:
            addresses = self.resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host!r} resolves to no address")
        for address in addresses:  # every address, not just the first: no mixing allowed and refused ones
            self.policy.check(host, address)
        error: Exception | None = None
        for address in addresses:
            try:
                stream = self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        assert error is not None
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("vendor connections never use unix sockets")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def guarded_transport(policy: AddressPolicy) -> Any:
    """An ``httpx.HTTPTransport`` whose connections go through :class:`GuardedBackend`."""
    import httpx

    transport = httpx.HTTPTransport()
    # httpx builds its pool without a way to pass a network backend; rebuild it with the same defaults.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), max_connections=100, max_keepalive_connections=20,
        keepalive_expiry=5.0, network_backend=GuardedBackend(policy))
    return transport
