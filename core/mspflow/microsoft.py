"""A tenant's Microsoft set-up as a plugin reads it: the bound profile, user links, bot conversations.

The host PSA owns these tables (``microsoft_profiles``, ``teams_integrations``, ``user_auth_accounts``,
``teams_conversation_references``); a handler reaches them through ``ctx.microsoft`` (a
:class:`MicrosoftStore` for the call's tenant), never through SQL of its own. Every query filters on the
tenant. Conversation references are written only by the Teams receiver (from activities whose JWT was
verified) and when the bot re-creates a conversation it was told is gone.

Examples::

    teams = ctx.microsoft.teams()                     # TeamsBinding | None
    oid = ctx.microsoft.entra_user_id(user_id)        # the user's Entra object id, or None
    ref = ctx.microsoft.personal_reference(oid)       # ConversationReference | None
    ctx.microsoft.save_reference(ConversationReference(...))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mspflow.clock import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MICROSOFT = "microsoft"


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


def bind_profile(session: Session, tenant: str, profile: dict[str, Any], *, profile_id: str = "demo",
                 display_name: str = "Demo bot") -> None:
    """Bind the tenant's Teams integration to a Microsoft profile and link its users, as a PSA's admin screen
    would; idempotent. ``profile`` has the keys a simulator's ``demo_profile()`` returns: ``client_id``,
    ``entra_tenant_id``, ``client_secret_ref`` (the name of a tenant secret), ``teams_app_id`` and ``users``
    (PSA user id -> Entra object id). The tenant's ``teams_integrations`` row must exist (``tenants.connect``).
    """
    from mspflow.db.models import MicrosoftProfile, TeamsIntegration, UserAuthAccount

    if session.get(MicrosoftProfile, (tenant, profile_id)) is None:
        session.add(MicrosoftProfile(tenant=tenant, profile_id=profile_id, display_name=display_name,
                                     client_id=profile["client_id"], entra_tenant_id=profile["entra_tenant_id"],
                                     client_secret_ref=profile["client_secret_ref"]))
    row = session.get(TeamsIntegration, tenant)
    if row is not None:
        row.selected_profile_id, row.app_id = profile_id, profile["teams_app_id"]
        row.enabled_capabilities = ["activity_notifications", "bot"]
    for user, oid in profile["users"].items():
        if session.get(UserAuthAccount, (tenant, user, MICROSOFT)) is None:
            session.add(UserAuthAccount(tenant=tenant, user_id=user, provider=MICROSOFT, provider_account_id=oid))
