"""Vendor HTTP rails: the one place that knows about base URLs, auth, throttling, retries and errors.

A vendor plugin declares *what* (a :class:`Vendor`: name, hosts, auth choice, rate limit, paging) and
writes its paths and shapes; this package does *how*::

    ninja = Vendor("NinjaOne", base_url="https://app.ninjarmm.com",
                   auth=auth.oauth2_authorization_code("/ws/oauth/token", credentials="ninjaone_credentials",
                                                       client_id="ninjaone_client_id",
                                                       client_secret="ninjaone_client_secret"))
    http = ctx.http()                                     # the tile's vendor for this call's tenant
    device = http.get(("v2", "device", device_id))        # each segment is percent-encoded
    http.post(("v2", "device", device_id, "reboot", mode), json={"reason": reason})

One concept per module: :mod:`~mspflow.vendor.spec` (the declaration), :mod:`~mspflow.vendor.client`
(requests, retries, errors), :mod:`~mspflow.vendor.auth` (strategies), :mod:`~mspflow.vendor.limits`
(rate limits across workers), :mod:`~mspflow.vendor.paging` (list paging styles),
:mod:`~mspflow.vendor.paths` (URLs and percent-encoded paths), :mod:`~mspflow.vendor.transport` (pooled
clients, and :func:`mount` for simulators). The mapping of vendor failures onto the error taxonomy lives
beside the taxonomy, in :mod:`mspflow.errors`. The strategies' namespace is ``mspflow.auth`` (also
``ctx.auth``); this package does not re-export it, so ``mspflow.vendor.auth`` stays the module.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mspflow.vendor.auth import Auth
    from mspflow.vendor.client import VendorClient, make_client
    from mspflow.vendor.limits import RateLimit
    from mspflow.vendor.paging import CursorPaging, KeysetPaging, Paging, TokenPaging
    from mspflow.vendor.paths import ALLOW_HTTP_ENV, build_path, normalize_base_url
    from mspflow.vendor.spec import OAuthApp, Vendor
    from mspflow.vendor.transport import mount, unmount

# Names are imported on first use, so a plugin declaring a Vendor does not load httpx and the client.
_EXPORTS = {
    "Auth": "mspflow.vendor.auth",
    "VendorClient": "mspflow.vendor.client",
    "make_client": "mspflow.vendor.client",
    "RateLimit": "mspflow.vendor.limits",
    "CursorPaging": "mspflow.vendor.paging",
    "KeysetPaging": "mspflow.vendor.paging",
    "Paging": "mspflow.vendor.paging",
    "TokenPaging": "mspflow.vendor.paging",
    "ALLOW_HTTP_ENV": "mspflow.vendor.paths",
    "build_path": "mspflow.vendor.paths",
    "normalize_base_url": "mspflow.vendor.paths",
    "OAuthApp": "mspflow.vendor.spec",
    "Vendor": "mspflow.vendor.spec",
    "mount": "mspflow.vendor.transport",
    "unmount": "mspflow.vendor.transport",
}

__all__ = [
    "ALLOW_HTTP_ENV",
    "Auth",
    "CursorPaging",
    "KeysetPaging",
    "OAuthApp",
    "Paging",
    "RateLimit",
    "TokenPaging",
    "Vendor",
    "VendorClient",
    "build_path",
    "make_client",
    "mount",
    "normalize_base_url",
    "unmount",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'mspflow.vendor' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
