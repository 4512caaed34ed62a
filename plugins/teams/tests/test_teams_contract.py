"""The plugin contract (mspflow.testing.PluginContract) for every Teams action, with the tenant set up as a PSA
would (profile, capabilities, user links) and the simulator answering every Microsoft host."""

from collections.abc import Iterator

import pytest
from mspflow_teams import teams
from mspflow_teams.sim import ALICE_OID, CLIENT_ID, DEMO_ON_CALL, ENTRA_TENANT, TEAMS_APP_ID, TeamsSimulator

from mspflow.app import App
from mspflow.testing import PluginContract, mount, unmount
from mspflow.testing.sim import Simulator


@pytest.fixture(autouse=True)
def _unmount_every_host() -> Iterator[None]:
    yield
    unmount()


class TestContract(PluginContract):
    module = teams

    def connect(self, app: App, tenant: str, sim: Simulator) -> None:
        from mspflow.db.models import MicrosoftProfile, TeamsIntegration, UserAuthAccount

        super().connect(app, tenant, sim)
        for url in TeamsSimulator.hosts()[1:]:  # the suite mounts the first (Graph), echoing credentials
            mount(url, sim.transport())
        with app.db.session() as s:
            if s.get(MicrosoftProfile, (tenant, "p1")) is None:
                s.add(MicrosoftProfile(tenant=tenant, profile_id="p1", display_name="Contoso", client_id=CLIENT_ID,
                                       entra_tenant_id=ENTRA_TENANT, client_secret_ref="teams_client_secret"))
                s.add(UserAuthAccount(tenant=tenant, user_id=DEMO_ON_CALL, provider="microsoft",
                                      provider_account_id=ALICE_OID))
            row = s.get(TeamsIntegration, tenant)
            assert row is not None
            row.selected_profile_id, row.app_id = "p1", TEAMS_APP_ID
            row.enabled_capabilities = ["activity_notifications", "bot"]
