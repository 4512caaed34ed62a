"""The Teams tests' harness: the app, the simulator, and a tenant set up as a PSA would (add-on, install,
profile, capabilities, user links). A module of its own, not conftest: test modules import it by a name no
other plugin's tests use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mspflow_teams.sim import (
    ALICE_OID,
    BOB_OID,
    CAROL_OID,
    CLIENT_ID,
    DAVE_OID,
    ENTRA_TENANT,
    TEAMS_APP_ID,
    TeamsSimulator,
)

from mspflow.db.models import (
    MicrosoftProfile,
    TeamsConversationReference,
    TeamsIntegration,
    UserAuthAccount,
)
from mspflow.testing.harness import TENANT, PluginHarness

USERS = {"tech-alice": ALICE_OID, "tech-bob": BOB_OID, "tech-carol": CAROL_OID, "tech-dave": DAVE_OID}
SECRET_REF = "teams_client_secret"


class Teams(PluginHarness):
    """The app, the simulator, and a tenant's Microsoft set-up."""

    provider = "teams"
    sim: TeamsSimulator

    def configure(self, tenant: str = TENANT, *, capabilities: tuple[str, ...] = ("activity_notifications", "bot"),
                  categories: list[str] | None = None, archived: bool = False, profile: bool = True,
                  endpoints: dict[str, str] | None = None, activity_types: dict[str, str] | None = None) -> None:
        self.connect(tenant)
        with self.app.db.session() as s:
            if profile and s.get(MicrosoftProfile, (tenant, "p1")) is None:
                s.add(MicrosoftProfile(tenant=tenant, profile_id="p1", display_name="Contoso bot", client_id=CLIENT_ID,
                                       entra_tenant_id=ENTRA_TENANT, client_secret_ref=SECRET_REF))
            s.flush()
            if profile:
                p = s.get(MicrosoftProfile, (tenant, "p1"))
                assert p is not None
                p.is_archived = archived
                p.endpoints = endpoints
            row = s.get(TeamsIntegration, tenant)
            assert row is not None
            row.selected_profile_id = "p1"
            row.enabled_capabilities = list(capabilities)
            row.allowed_notification_categories = categories
            row.app_id = TEAMS_APP_ID
            row.package_metadata = {"activity_types": activity_types} if activity_types else None
            for user, oid in USERS.items():
                if s.get(UserAuthAccount, (tenant, user, "microsoft")) is None:
                    s.add(UserAuthAccount(tenant=tenant, user_id=user, provider="microsoft", provider_account_id=oid))
        self.set_secret(SECRET_REF, self.sim.client_secret, tenant)

    def add_reference(self, tenant: str = TENANT, **values: Any) -> None:
        with self.app.db.session() as s:
            s.add(TeamsConversationReference(tenant=tenant, last_activity_at=datetime.now(UTC), **values))

    def references(self, tenant: str = TENANT) -> list[dict[str, Any]]:
        from sqlalchemy import select

        with self.app.db.session() as s:
            rows = s.execute(select(TeamsConversationReference).where(TeamsConversationReference.tenant == tenant)
                             .order_by(TeamsConversationReference.conversation_id)).scalars().all()
            return [{c: getattr(r, c) for c in ("conversation_id", "conversation_type", "service_url",
                                                "entra_user_id", "entra_tenant_id", "bot_team_id", "graph_team_id",
                                                "channel_id")} for r in rows]
