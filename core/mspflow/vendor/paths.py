"""Vendor URLs and request paths: a base URL is ``scheme://host[:port][/prefix]``; ids are path segments.

Examples::

    normalize_base_url("eu.ninjarmm.com/")           # 'https://eu.ninjarmm.com'
    build_path(("v2", "device", "10/41"))            # '/v2/device/10%2F41'
    build_path(("agents", agent_id), trailing_slash=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from mspflow.errors import ActionError

ALLOW_HTTP_ENV = "MSPFLOW_ALLOW_HTTP_VENDOR_URLS"
Path = str | Sequence[str | int]


def http_allowed() -> bool:
    """Whether ``MSPFLOW_ALLOW_HTTP_VENDOR_URLS`` permits plain-http and loopback vendor URLs (tests only)."""
    from mspflow.settings import env_flag

    return env_flag(ALLOW_HTTP_ENV)


def normalize_base_url(url: str, *, allow_http: bool | None = None) -> str:
    """``https://host[:port][/prefix]`` without a trailing slash; ``http`` only when allowed."""
    import httpx  # only here: building paths (at plugin import) must not load the HTTP client

    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    parsed = httpx.URL(url)
    allowed = http_allowed() if allow_http is None else allow_http
    if parsed.scheme != "https" and not (parsed.scheme == "http" and allowed):
        raise ActionError.validation(
            f"vendor URL {url!r} must use https (set {ALLOW_HTTP_ENV}=1 only for local testing)",
            reason="INSECURE_URL")
    if not parsed.host or parsed.query or parsed.fragment or parsed.userinfo:
        raise ActionError.validation(f"vendor URL {url!r} must be a plain scheme://host[:port][/path]",
                                     reason="BAD_URL")
    return url


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


__all__ = ["ALLOW_HTTP_ENV", "Path", "build_path", "http_allowed", "normalize_base_url"]
