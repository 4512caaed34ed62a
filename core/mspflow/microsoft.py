"""A tenant's Microsoft set-up as a plugin reads it: the bound profile, user links, bot conversations.

The host PSA owns these tables (``microsoft_profiles``, ``teams_integrations``, ``user_auth_accounts``,
``teams_conversation_references``); a handler reaches them through ``ctx.microsoft`` (a
:class:`MicrosoftStore` for the call's tenant), never through SQL of its own. Every query filters on the
tenant. Conversation references are written only by the Teams receiver (from activities whose JWT was
verified) and when the bot re-creates a conversation it was told is gone. Without a host's admin screens,
:func:`save_profile` and :func:`link_user` write the profile, its binding and the user links (``mspflow
tenant teams-profile`` and ``link-user``).

Examples::

    teams = ctx.microsoft.teams()                     # TeamsBinding | None
    oid = ctx.microsoft.entra_user_id(user_id)        # the user's Entra object id, or None
    ref = ctx.microsoft.personal_reference(oid)       # ConversationReference | None
    ctx.microsoft.save_reference(ConversationReference(...))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mspflow.clock import utcnow
from mspflow.errors import ActionError
from mspflow.inbound.verify import BOT_FRAMEWORK_CLOUDS

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MICROSOFT = "microsoft"
CLOUDS = tuple(BOT_FRAMEWORK_CLOUDS)
"""The clouds a profile may name: those whose Bot Framework tokens ``mspflow serve`` verifies (``china``,
which the table allows, is not supported yet)."""
ENDPOINT_KEYS = ("graph", "login", "bot_login", "openid")
"""The URLs a profile may override (a simulator, a sovereign set-up); each must still name an allowed host."""

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DOMAIN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_EXAMPLE_GUID = "5c0ffee0-0000-4000-8000-00000000b075"


@dataclass(frozen=True)
class MicrosoftProfile:
    """A named Entra app registration; ``client_secret_ref`` names the tenant secret holding its secret."""

    profile_id: str
    display_name: str
    client_id: str
    entra_tenant_id: str
    client_secret_ref: str
    cloud: str = "public"
    bot_multi_tenant: bool = False
    endpoints: dict[str, str] = field(default_factory=dict)
    archived: bool = False


@dataclass(frozen=True)
class TeamsBinding:
    """The tenant's Teams integration: its status, the profile it is bound to (None when the bound id names
    no profile), the enabled capabilities, the allowed notification categories (None: all), the Teams app id
    (``teams_integrations.app_id``) and the activity types its manifest declares per category
    (``package_metadata.activity_types``)."""

    install_status: str
    profile_id: str | None
    profile: MicrosoftProfile | None
    capabilities: tuple[str, ...]
    allowed_categories: tuple[str, ...] | None
    teams_app_id: str | None = None
    activity_types: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConversationReference:
    """Where the bot may write: a ``personal`` chat with one user or a ``channel`` of a team.

    ``bot_team_id`` is Bot Framework's thread id (``19:…@thread.tacv2``); ``graph_team_id`` the team's Graph
    GUID. They are different ids: never pass one where the other is expected.
    """

    conversation_id: str
    conversation_type: str
    service_url: str
    entra_user_id: str | None = None
    entra_tenant_id: str | None = None
    bot_team_id: str | None = None
    graph_team_id: str | None = None
    channel_id: str | None = None
    last_activity_at: datetime | None = None


class MicrosoftStore:
    """The tenant's Microsoft rows, read and written in the call's session."""

    def __init__(self, session: Callable[[], Session], tenant: str, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self.tenant = tenant
        self.clock = clock

    def teams(self) -> TeamsBinding | None:
        """The tenant's Teams integration row with its bound profile, or None when there is none."""
        from mspflow.db.models import MicrosoftProfile as P
        from mspflow.db.models import TeamsIntegration as T

        s = self._session()
        row = s.get(T, self.tenant)
        if row is None:
            return None
        profile = None
        if row.selected_profile_id:
            p = s.get(P, (self.tenant, row.selected_profile_id))
            if p is not None:
                profile = MicrosoftProfile(
                    profile_id=p.profile_id, display_name=p.display_name, client_id=p.client_id,
                    entra_tenant_id=p.entra_tenant_id, client_secret_ref=p.client_secret_ref, cloud=p.cloud,
                    bot_multi_tenant=bool(p.bot_multi_tenant), endpoints=dict(p.endpoints or {}),
                    archived=bool(p.is_archived))
        categories = row.allowed_notification_categories
        declared = (row.package_metadata or {}).get("activity_types")
        return TeamsBinding(install_status=row.install_status, profile_id=row.selected_profile_id, profile=profile,
                            capabilities=tuple(row.enabled_capabilities or ()),
                            allowed_categories=None if categories is None else tuple(categories),
                            teams_app_id=row.app_id,
                            activity_types={str(k): str(v) for k, v in declared.items()}
                            if isinstance(declared, dict) else {})

    def entra_user_id(self, user_id: str) -> str | None:
        """The Entra object id linked to the PSA user ``user_id`` (``user_auth_accounts``), or None."""
        from sqlalchemy import select

        from mspflow.db.models import UserAuthAccount as U

        return self._session().execute(select(U.provider_account_id).where(
            U.tenant == self.tenant, U.user_id == user_id, U.provider == MICROSOFT)).scalar_one_or_none()

    def personal_reference(self, entra_user_id: str) -> ConversationReference | None:
        """The user's personal chat with the bot, most recently active first."""
        from mspflow.db.models import TeamsConversationReference as R

        return self._one((R.entra_user_id == entra_user_id) & (R.conversation_type == "personal"))

    def channel_reference(self, channel_id: str) -> ConversationReference | None:
        """The latest reference the bot holds for the channel ``19:…@thread.tacv2``, or None."""
        from mspflow.db.models import TeamsConversationReference as R

        return self._one((R.channel_id == channel_id) & (R.conversation_type == "channel"))

    def _one(self, condition: Any) -> ConversationReference | None:
        from sqlalchemy import select

        from mspflow.db.models import TeamsConversationReference as R

        row = self._session().execute(select(R).where(R.tenant == self.tenant, condition)
                                      .order_by(R.last_activity_at.desc()).limit(1)).scalar_one_or_none()
        if row is None:
            return None
        return ConversationReference(
            conversation_id=row.conversation_id, conversation_type=row.conversation_type,
            service_url=row.service_url, entra_user_id=row.entra_user_id, entra_tenant_id=row.entra_tenant_id,
            bot_team_id=row.bot_team_id, graph_team_id=row.graph_team_id, channel_id=row.channel_id,
            last_activity_at=row.last_activity_at)

    def save_reference(self, ref: ConversationReference) -> None:
        """Insert or update the reference of ``ref.conversation_id`` (its service URL, ids, last activity)."""
        from sqlalchemy import select

        from mspflow.db.models import TeamsConversationReference as R

        s = self._session()
        row = s.execute(select(R).where(R.tenant == self.tenant, R.conversation_id == ref.conversation_id)
                        ).scalar_one_or_none()
        if row is None:
            row = R(tenant=self.tenant, conversation_id=ref.conversation_id)
            s.add(row)
        row.conversation_type = ref.conversation_type
        row.service_url = ref.service_url
        row.last_activity_at = ref.last_activity_at or self.clock()
        for name in ("entra_user_id", "entra_tenant_id", "bot_team_id", "graph_team_id", "channel_id"):
            value = getattr(ref, name)
            if value is not None:
                setattr(row, name, value)
        s.flush()

    def forget_reference(self, conversation_id: str) -> None:
        """Delete the reference of a conversation Teams says is gone."""
        from sqlalchemy import delete

        from mspflow.db.models import TeamsConversationReference as R

        self._session().execute(delete(R).where(R.tenant == self.tenant, R.conversation_id == conversation_id))


def bot_profile(session: Session, tenant: str) -> MicrosoftProfile | None:
    """The profile whose client id incoming Bot Framework tokens must name (its cloud picks the issuer and
    keys); None when Teams is bound to no profile or to an archived one."""
    binding = MicrosoftStore(lambda: session, tenant).teams()
    if binding is None or binding.profile is None or binding.profile.archived:
        return None
    return binding.profile


def save_profile(session: Session, tenant: str, *, profile_id: str, client_id: str, entra_tenant_id: str,
                 client_secret_ref: str, display_name: str, cloud: str = "public", bot_multi_tenant: bool = False,
                 endpoints: Mapping[str, str] | None = None, teams_app_id: str | None = None,
                 bind: bool = True) -> None:
    """Create or update the tenant's Microsoft profile ``profile_id`` (what a PSA's admin screen, or
    ``mspflow tenant teams-profile``, writes); with ``bind``, the tenant's Teams integration uses it, with
    both capabilities when none were enabled. Bad values are ``VALIDATION_ERROR``; binding a tenant whose
    Teams integration does not exist yet is ``NOT_FOUND`` (connect Teams first)."""
    from mspflow.db.models import MicrosoftProfile as Row
    from mspflow.db.models import TeamsIntegration
    from mspflow.vendor.paths import normalize_base_url

    problems = []
    if not _GUID.fullmatch(client_id):
        problems.append(f"client id {client_id!r} is not an application (client) id, e.g. {_EXAMPLE_GUID}")
    if not (_GUID.fullmatch(entra_tenant_id) or _DOMAIN.fullmatch(entra_tenant_id)):
        problems.append(f"Entra tenant {entra_tenant_id!r} is neither a directory (tenant) id nor a domain")
    if cloud not in CLOUDS:
        problems.append(f"cloud {cloud!r} is not one of {', '.join(CLOUDS)}")
    if not _NAME.fullmatch(client_secret_ref):
        problems.append(f"secret name {client_secret_ref!r} is not a secret name (letters, digits, _ . -)")
    unknown = sorted(set(endpoints or {}) - set(ENDPOINT_KEYS))
    if unknown:
        problems.append(f"unknown endpoint(s) {', '.join(unknown)}; known: {', '.join(ENDPOINT_KEYS)}")
    if problems:
        raise ActionError.validation("; ".join(problems))
    urls = {key: normalize_base_url(url) for key, url in (endpoints or {}).items()}
    integration = session.get(TeamsIntegration, tenant) if bind else None
    if bind and integration is None:
        raise ActionError.not_found(f"tenant {tenant!r} has no Teams integration; connect it first: "
                                    f"`mspflow tenant connect {tenant} teams`")
    row = session.get(Row, (tenant, profile_id))
    if row is None:
        row = Row(tenant=tenant, profile_id=profile_id)
        session.add(row)
    row.display_name, row.client_id, row.entra_tenant_id = display_name, client_id, entra_tenant_id
    row.client_secret_ref, row.cloud, row.bot_multi_tenant = client_secret_ref, cloud, bot_multi_tenant
    row.endpoints, row.is_archived = urls or None, False
    if integration is not None:
        integration.selected_profile_id = profile_id
        if teams_app_id is not None:
            integration.app_id = teams_app_id
        if not integration.enabled_capabilities:
            integration.enabled_capabilities = ["activity_notifications", "bot"]


def link_user(session: Session, tenant: str, user_id: str, entra_object_id: str) -> None:
    """Link the tenant's PSA user ``user_id`` to an Entra object id (what ``teams.notify_user`` and
    ``teams.send_dm`` address); a second link of the same user replaces the first."""
    from mspflow.db.models import UserAuthAccount

    if not _GUID.fullmatch(entra_object_id):
        raise ActionError.validation(f"Entra object id {entra_object_id!r} is not an object id, e.g. {_EXAMPLE_GUID}")
    if not user_id or len(user_id) > 255:
        raise ActionError.validation("a user id has 1 to 255 characters")
    row = session.get(UserAuthAccount, (tenant, user_id, MICROSOFT))
    if row is None:
        session.add(UserAuthAccount(tenant=tenant, user_id=user_id, provider=MICROSOFT,
                                    provider_account_id=entra_object_id))
    else:
        row.provider_account_id = entra_object_id


def bind_profile(session: Session, tenant: str, profile: dict[str, Any], *, profile_id: str = "demo",
                 display_name: str = "Demo bot") -> None:
    """Bind the tenant's Teams integration to a Microsoft profile and link its users, as a PSA's admin screen
    would; idempotent. ``profile`` has the keys a simulator's ``demo_profile()`` returns: ``client_id``,
    ``entra_tenant_id``, ``client_secret_ref`` (the name of a tenant secret), ``teams_app_id`` and ``users``
    (PSA user id -> Entra object id). The tenant's ``teams_integrations`` row must exist (``tenants.connect``).
    """
    save_profile(session, tenant, profile_id=profile_id, display_name=display_name, client_id=profile["client_id"],
                 entra_tenant_id=profile["entra_tenant_id"], client_secret_ref=profile["client_secret_ref"],
                 teams_app_id=profile["teams_app_id"])
    for user, oid in profile["users"].items():
        link_user(session, tenant, user, oid)
