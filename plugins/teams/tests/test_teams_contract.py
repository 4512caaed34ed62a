"""The plugin contract (mspflow.testing.PluginContract) for every Teams action, with the tenant set up as a PSA
would (profile, capabilities, user links) and the simulator answering every Microsoft host."""

from collections.abc import Iterator

import pytest
from mspflow_teams import teams
from mspflow_teams.sim import TeamsSimulator

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
        from mspflow.microsoft import bind_profile

        super().connect(app, tenant, sim)
        for url in TeamsSimulator.hosts()[1:]:  # the suite mounts the first (Graph), echoing credentials
            mount(url, sim.transport())
        with app.db.session() as s:
            bind_profile(s, tenant, TeamsSimulator().demo_profile(), profile_id="p1", display_name="Contoso")
