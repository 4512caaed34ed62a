"""Fetch a public https URL someone handed a workflow (an attachment link), safely.

Not a vendor call: no tenant credentials, no cookies, no redirects followed, and only https. The host is
resolved and *every* address checked before a socket opens (:class:`mspflow.vendor.network.GuardedBackend`
with private and loopback addresses refused, as well as link-local and cloud metadata ones), and the body is
read up to ``max_bytes`` and no further. A refusal is ``VALIDATION_ERROR`` with a ``reason``; a server that
cannot be reached or answers 5xx is a retryable ``TRANSIENT_FAILURE``.

Examples::

    fetched = fetch_public("https://files.example.com/report.pdf", max_bytes=10 * 1024 * 1024)
    fetched.content, fetched.content_type
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from mspflow.errors import ActionError
from mspflow.vendor.network import AddressPolicy, deadline, guarded_transport
from mspflow.vendor.transport import mounted

PUBLIC_ONLY = AddressPolicy(private=False, loopback=False)


@dataclass(frozen=True)
class Fetched:
    url: str
    content: bytes
    content_type: str | None


def fetch_public(url: str, *, max_bytes: int, timeout_s: float = 30.0, field: str = "url") -> Fetched:
    """GET ``url`` (https, public addresses only, at most ``max_bytes``) without any credentials."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ActionError.validation("only https:// URLs are fetched", fields=[field], reason="SCHEME_REFUSED")
    if parts.username or parts.password:
        raise ActionError.validation("a URL with credentials in it is not fetched", fields=[field],
                                     reason="CREDENTIALS_IN_URL")
    origin = f"https://{parts.netloc.lower()}"
    transport = mounted(origin) or guarded_transport(PUBLIC_ONLY)
    try:
        with deadline(timeout_s), httpx.Client(transport=transport, timeout=timeout_s, follow_redirects=False,
                                               headers={"User-Agent": "mspflow"}) as client, \
                client.stream("GET", url) as reply:
            if reply.is_redirect:
                raise ActionError.validation(f"{url} redirects elsewhere; give the final URL", fields=[field],
                                             reason="REDIRECT_NOT_FOLLOWED", status=reply.status_code)
            if reply.status_code >= 500:
                raise ActionError("TRANSIENT_FAILURE", f"the server answered {reply.status_code}",
                                  details={"status": reply.status_code}, retryable=True)
            if reply.status_code >= 400:
                raise ActionError.validation(f"the server answered {reply.status_code} for {url}", fields=[field],
                                             reason="FETCH_REFUSED", status=reply.status_code)
            declared = reply.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(max_bytes, field)
            body = bytearray()
            for chunk in reply.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise _too_big(max_bytes, field)
            return Fetched(url, bytes(body), reply.headers.get("content-type"))
    except httpx.HTTPError as exc:
        raise ActionError("TRANSIENT_FAILURE", f"cannot fetch {url}: {type(exc).__name__}",
                          details={"reason": "FETCH_FAILED"}, retryable=True) from None


def _too_big(max_bytes: int, field: str) -> ActionError:
    return ActionError.validation(f"the file is larger than the {max_bytes}-byte limit", fields=[field],
                                  reason="TOO_LARGE", max_bytes=max_bytes)
