"""What a plugin declares about its vendor's API: data, not code — the core does the rest.

Examples::

    level = Vendor("Level", base_url="https://api.level.io/v2", auth=auth.raw_authorization("levelio_api_key"),
                   paging=CursorPaging(page_size=100))
    tactical = Vendor("Tactical RMM", self_hosted=True, trailing_slash=True, timeout_s=915)
    levelio = Module("app:levelio", label="Level", vendor=level, availability=rmm_integration("levelio"))

    http = ctx.http()                       # the tile's vendor, for the call's tenant
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mspflow.vendor.auth import Auth
    from mspflow.vendor.limits import RateLimit
    from mspflow.vendor.paging import Paging


@dataclass(frozen=True)
class Vendor:
    """A vendor's API as the core needs to know it.

    :param name: as shown in messages (``"NinjaOne API 404: …"``).
    :param base_url: the SaaS default; a tenant's instance URL overrides it (and must name an allowed host).
    :param regions: ``(name, base URL)`` pairs of a regional SaaS (``mspflow tenant authorize --region``).
    :param hosts: more hosts a tenant's instance URL may name, besides those of ``base_url`` and ``regions``.
    :param self_hosted: any https host the tenant names is allowed (never link-local or cloud metadata).
    :param auth: the default auth strategy; ``ctx.http(auth=...)`` overrides it per call.
    :param rate_limit: the vendor's published limit, enforced across every worker.
    :param paging: how its lists are paged (``http.pages(...)``).
    :param timeout_s: the total deadline of one request, connect to last byte.
    :param trailing_slash: every path ends in ``/`` (Django-style APIs).
    :param normalize: rewrites an instance URL an operator typed (``api.example.com/api/`` → the root).
    """

    name: str
    base_url: str | None = None
    regions: tuple[tuple[str, str], ...] = ()
    hosts: tuple[str, ...] = ()
    self_hosted: bool = False
    auth: Auth | None = None
    rate_limit: RateLimit | None = None
    paging: Paging | None = None
    timeout_s: float = 30.0
    trailing_slash: bool = False
    normalize: Callable[[str], str] | None = None

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Hosts a SaaS vendor's instance URL may name (empty for a self-hosted vendor: any public host)."""
        if self.self_hosted:
            return frozenset()
        urls = [u for u in (self.base_url, *(url for _, url in self.regions)) if u]
        import httpx  # only to parse hosts; plugins declare a Vendor at import, which must stay cheap

        return frozenset(h.lower() for h in (*(httpx.URL(u).host for u in urls), *self.hosts) if h)


@dataclass(frozen=True)
class OAuthApp:
    """How an operator authorizes a user-context OAuth2 app (``mspflow tenant authorize T PROVIDER``).

    Tokens land in the tenant secret ``credentials`` as JSON ``{"access_token", "refresh_token",
    "expires_at", "instance_url"}``; the base URL comes from the vendor's ``regions`` or the tenant.
    """

    authorize_path: str
    token_path: str
    scopes: str
    credentials: str
    client_id: str
    client_secret: str
    redirect_uri: str = "http://localhost/callback"
