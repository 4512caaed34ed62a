"""A plugin's tests in a few lines: an App with the plugin loaded, its simulator, and one tenant's set-up.

Examples::

    class Ninja(PluginHarness):
        provider = "ninjaone"

    @pytest.fixture
    def ninja(app, sim):
        n = Ninja(app, sim)
        n.connect()
        return n

    def test_reboot(ninja):
        assert ninja.ok("devices.reboot", {"device_id": 1041}) == {...}
        assert ninja.fail("devices.reboot", {"device_id": "nope"}).code == "NOT_FOUND"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mspflow.app import App
    from mspflow.errors import ActionError
    from mspflow.runtime import ActionResult
    from mspflow.testing.sim import Simulator

TENANT = "acme"


@dataclass
class PluginHarness:
    """The app, the simulator and shorthands for one provider; subclass it and set :attr:`provider`."""

    app: App
    sim: Simulator
    provider: ClassVar[str] = ""

    def connect(self, tenant: str = TENANT, instance_url: str | None = None) -> None:
        from mspflow import tenants

        with self.app.db.session() as s:
            tenants.connect(s, self.app.registry, tenant, self.provider, instance_url)

    def disconnect(self, tenant: str = TENANT) -> None:
        from mspflow import tenants

        with self.app.db.session() as s:
            tenants.disconnect(s, self.app.registry, tenant, self.provider)

    def update_integration(self, tenant: str = TENANT, *, instance_url: Any = ..., **settings: Any) -> None:
        """Change the tenant's ``rmm_integrations`` row: its instance URL and/or keys of its settings."""
        from sqlalchemy import select

        from mspflow.db.models import RmmIntegration as R

        with self.app.db.session() as s:
            row = s.execute(select(R).where(R.tenant == tenant, R.provider == self.provider)).scalar_one()
            if instance_url is not ...:
                row.instance_url = instance_url
            if settings:
                row.settings = {**(row.settings or {}), **settings}

    def set_secret(self, name: str, value: str, tenant: str = TENANT) -> None:
        with self.app.db.session() as s:
            self.app.secrets.set(s, tenant, name, value)

    def secret(self, name: str, tenant: str = TENANT) -> str | None:
        with self.app.db.session() as s:
            return self.app.secrets.get(s, tenant, name)

    def delete_secret(self, name: str, tenant: str = TENANT) -> None:
        with self.app.db.session() as s:
            self.app.secrets.delete(s, tenant, name)

    def run(self, action: str, input: dict[str, Any] | None = None, *, tenant: str = TENANT,
            **call: Any) -> ActionResult:
        """Execute ``<provider>.<action>`` (``action`` without the provider prefix)."""
        return self.app.execute(f"{self.provider}.{action}", tenant=tenant, input=input or {}, **call)

    def ok(self, action: str, input: dict[str, Any] | None = None, **call: Any) -> dict[str, Any]:
        result = self.run(action, input, **call)
        assert result.ok, result.error and result.error.to_dict()
        assert result.output is not None
        return result.output

    def fail(self, action: str, input: dict[str, Any] | None = None, **call: Any) -> ActionError:
        result = self.run(action, input, **call)
        assert not result.ok and result.error is not None, result.output
        return result.error

    def sent(self, method: str | None = None) -> list[tuple[str, str]]:
        """(method, raw path as sent, percent-encoding kept) of the requests the simulator answered."""
        return [(r.method, r.url.raw_path.decode().split("?")[0]) for r in self.sim.requests
                if method in (None, r.method)]
