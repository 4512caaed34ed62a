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
class NoAnswer:
    """A reply meaning the vendor could not reach the target it relays to (e.g. Tactical RMM's ``"timeout"``).

    It matches the vendor's words (a whole 2xx JSON-string reply, or an error's message) when ``answer``
    is given, and the status when ``status`` is given. The call fails ``TRANSIENT_FAILURE`` with
    ``details.reason = reason``; on a side-effectful request the outcome is unknown (the target may have
    got it), so it is not retryable and ``details.outcome = "unknown"``. ``explanation`` is what the
    operator reads.

    Examples::

        NoAnswer("natsdown", "AGENT_NATSDOWN", "the server's message bus (NATS) is down")
        NoAnswer(None, "AGENT_NOT_CONNECTED", "the agent is not connected, or the server failed", status=500)
    """

    answer: str | None
    reason: str
    explanation: str
    status: int | None = None


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
    :param auth_hosts: hosts an auth strategy's absolute token URL may name (an identity provider such as
        ``login.microsoftonline.com``); they are never valid as the API's own base URL.
    :param retry_statuses: statuses the vendor documents as "refused, send again" (the Bot Framework's
        412, 502, 504): ``TRANSIENT_FAILURE``, retryable even for a write.
    :param no_answer: the vendor's words (a 2xx JSON-string reply or an error's message) meaning the target
        it relays to (an agent, a device) did not answer: see :class:`NoAnswer`.
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
    no_answer: tuple[NoAnswer, ...] = ()
    auth_hosts: tuple[str, ...] = ()
    retry_statuses: tuple[int, ...] = ()

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
