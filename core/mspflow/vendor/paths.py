"""Vendor URLs and request paths: a base URL is ``scheme://host[:port][/prefix]``; ids are path segments.

Examples::

    normalize_base_url("eu.ninjarmm.com/")           # 'https://eu.ninjarmm.com'
    build_path(("v2", "device", "10/41"))            # '/v2/device/10%2F41'
    build_path(("agents", agent_id), trailing_slash=True)
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from mspflow.errors import ActionError

if TYPE_CHECKING:
    from mspflow.vendor.network import AddressPolicy
    from mspflow.vendor.spec import Vendor

ALLOW_HTTP_ENV = "MSPFLOW_ALLOW_HTTP_VENDOR_URLS"
EXTRA_HOSTS_ENV = "MSPFLOW_EXTRA_VENDOR_HOSTS"
"""Comma-separated hosts an operator allows for SaaS vendors beyond the ones their plugins declare."""
Path = str | Sequence[str | int]


def http_allowed() -> bool:
    """Whether ``MSPFLOW_ALLOW_HTTP_VENDOR_URLS`` permits plain-http and loopback vendor URLs (tests only)."""
    from mspflow.settings import env_flag

    return env_flag(ALLOW_HTTP_ENV)


def _shown(url: str) -> str:
    return repr(url[:200])


def normalize_base_url(url: str, *, allow_http: bool | None = None) -> str:
    """``https://host[:port][/prefix]`` without a trailing slash; ``http`` only when allowed.

    Anything else (another scheme, control characters or spaces, a malformed host, user info, a query or
    fragment) is ``VALIDATION_ERROR`` with reason ``INSECURE_URL`` or ``BAD_URL``, never an exception.
    """
    if not isinstance(url, str) or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url.strip()):
        raise ActionError.validation(f"vendor URL {_shown(str(url))} contains spaces or control characters",
                                     reason="BAD_URL")
    import httpx  # only here: building paths (at plugin import) must not load the HTTP client

    url = url.strip().rstrip("/")
    if "://" not in url:
        if ":" in url.split("/", 1)[0] and not url.split("/", 1)[0].rsplit(":", 1)[-1].isdigit():
            raise ActionError.validation(f"vendor URL {_shown(url)} must use https", reason="INSECURE_URL")
        url = "https://" + url
    try:
        parsed = httpx.URL(url)
        host, port = parsed.host, parsed.port
    except (httpx.InvalidURL, ValueError, TypeError):
        raise ActionError.validation(f"vendor URL {_shown(url)} is not a valid URL", reason="BAD_URL") from None
    allowed = http_allowed() if allow_http is None else allow_http
    if parsed.scheme != "https" and not (parsed.scheme == "http" and allowed):
        raise ActionError.validation(
            f"vendor URL {_shown(url)} must use https (set {ALLOW_HTTP_ENV}=1 only for local testing)",
            reason="INSECURE_URL")
    if not host or parsed.query or parsed.fragment or parsed.userinfo or "@" in url.split("://", 1)[1] \
            or (port is not None and not 0 < port < 65536):
        raise ActionError.validation(f"vendor URL {_shown(url)} must be a plain scheme://host[:port][/path]",
                                     reason="BAD_URL")
    return url


def extra_hosts() -> frozenset[str]:
    """Hosts the operator allows beyond the plugins' declarations (``MSPFLOW_EXTRA_VENDOR_HOSTS=h1,h2``)."""
    raw = os.environ.get(EXTRA_HOSTS_ENV, "")
    return frozenset(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())


def address_policy(vendor: Vendor) -> AddressPolicy:
    """Where ``vendor``'s connections may go: private addresses for self-hosted vendors only, loopback only
    with ``MSPFLOW_ALLOW_HTTP_VENDOR_URLS`` (see :mod:`mspflow.vendor.network`)."""
    from mspflow.vendor.network import AddressPolicy

    return AddressPolicy(private=vendor.self_hosted, loopback=http_allowed())


def check_instance_url(vendor: Vendor, url: str) -> str:
    """The base URL ``url`` names for ``vendor``, normalized, or ``VALIDATION_ERROR`` saying why not.

    Call it where an instance URL is saved (``tenants.connect``, a host's settings page); the client
    calls it again on every use, and checks the resolved address when it connects. A SaaS vendor's
    URL must name one of its declared hosts (``base_url``, ``regions``, ``hosts``) or one listed in
    ``MSPFLOW_EXTRA_VENDOR_HOSTS``; a self-hosted vendor's may name any https host. Either way a
    link-local, metadata, unspecified or multicast host is refused, and loopback unless
    ``MSPFLOW_ALLOW_HTTP_VENDOR_URLS`` is set (reason ``HOST_NOT_ALLOWED``).
    """
    import httpx

    from mspflow.vendor.network import is_metadata_host

    if vendor.normalize is not None:
        if not isinstance(url, str) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
            raise ActionError.validation(f"vendor URL {_shown(str(url))} contains control characters",
                                         reason="BAD_URL")
        url = vendor.normalize(url)
    base = normalize_base_url(url)
    host = httpx.URL(base).host.lower().rstrip(".")
    policy = address_policy(vendor)
    try:
        literal = str(ipaddress.ip_address(host))
    except ValueError:
        literal = None
    loopback = host == "localhost" or host.endswith(".localhost") \
        or (literal is not None and ipaddress.ip_address(literal).is_loopback)
    why: str | None = None
    if is_metadata_host(host):
        why = "a cloud metadata host"
    elif literal is not None and policy.refusal(literal) is not None:
        why = policy.refusal(literal)
    elif loopback and not policy.loopback:
        why = "a loopback host"
    elif not vendor.self_hosted and not loopback and host not in vendor.allowed_hosts | extra_hosts():
        hosts = ", ".join(sorted(vendor.allowed_hosts)) or "none"
        why = (f"not one of {vendor.name}'s hosts ({hosts}); an operator may allow more in "
               f"{EXTRA_HOSTS_ENV}=host,host")
    if why is not None:
        raise ActionError.validation(f"{vendor.name} instance URL {_shown(base)} names {host!r}: {why}",
                                     reason="HOST_NOT_ALLOWED", host=host)
    return base


def check_auth_url(vendor: Vendor, url: str) -> str:
    """The origin of a token endpoint, normalized, if its host is one of ``vendor.auth_hosts`` (or an
    operator's ``MSPFLOW_EXTRA_VENDOR_HOSTS``, or loopback with ``MSPFLOW_ALLOW_HTTP_VENDOR_URLS``); else
    ``VALIDATION_ERROR`` with reason ``HOST_NOT_ALLOWED``: a client secret is never sent elsewhere."""
    import httpx

    base = normalize_base_url(url)
    host = httpx.URL(base).host.lower().rstrip(".")
    loopback = host in ("localhost", "127.0.0.1", "::1")
    allowed = {h.lower() for h in vendor.auth_hosts} | extra_hosts()
    if not (host in allowed or (loopback and http_allowed())):
        raise ActionError.validation(f"{vendor.name} token URL {_shown(base)} names {host!r}, not one of its "
                                     f"identity hosts ({', '.join(sorted(allowed)) or 'none'})",
                                     reason="HOST_NOT_ALLOWED", host=host)
    return base


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


__all__ = ["ALLOW_HTTP_ENV", "EXTRA_HOSTS_ENV", "Path", "address_policy", "build_path", "check_auth_url",
           "check_instance_url",
           "extra_hosts", "http_allowed", "normalize_base_url"]
