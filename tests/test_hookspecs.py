"""Every hook is documented, described in the plugin guide, and implemented by a test plugin."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from mspflow import hookspecs
from mspflow.availability import Availability
from mspflow.hookspecs import hookimpl
from mspflow.modules import action
from mspflow.plugins import HOOK_ORDER, Plugins
from tests.factories import PingInput, PingOutput

HOOKS = [name for name, fn in vars(hookspecs).items()
         if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")]
GUIDE = Path(__file__).parents[1] / "docs" / "plugin-guide.md"


def test_the_hooks_are_the_documented_concerns() -> None:
    assert sorted(HOOKS) == sorted(HOOK_ORDER) == ["register_actions", "register_alert_sources",
                                                   "register_availability", "register_modules",
                                                   "register_permission_checker", "register_receivers"]


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Called" in doc, f"{name}: say when in the lifecycle it is called"
    assert ":param register:" in doc
    assert f"`{name}" in GUIDE.read_text(), f"{name}: describe it in docs/plugin-guide.md"


def ping(params: PingInput, ctx: Any) -> PingOutput:
    """Ping."""
    return PingOutput(ok=True)


class HostPlugin:
    """Implements every hook, as a host overriding availability and adding a tile-less action would."""

    @hookimpl
    def register_actions(self, register: Any) -> None:
        register(action("host.devices.ping", label="Ping", handler=ping))

    @hookimpl
    def register_availability(self, register: Any) -> None:
        class Flag:
            key = "flag:beta"

            def __call__(self, session: Any, tenant_id: str) -> Availability:
                return Availability.yes()

        register("flag:beta", Flag())

    @hookimpl
    def register_modules(self, register: Any) -> None:
        from mspflow.modules import Module

        register(Module("app:host", label="Host tools", availability="flag:beta",
                        allowed_action_ids=("host.devices.ping",)))

    @hookimpl
    def register_permission_checker(self, register: Any) -> None:
        register(lambda session, tenant_id, permission, call: permission != "rmm:execute_command")

    @hookimpl
    def register_receivers(self, register: Any) -> None:
        from mspflow import Receiver, webhook

        register(Receiver("host", verify=webhook.shared_secret("X-Host-Secret"), parse=lambda delivery: []))


def test_every_hook_registers_through_its_callback_in_order() -> None:
    loaded = Plugins(entry_points=[], extra=[("host", HostPlugin())], strict=True)
    reg = loaded.registry
    assert reg.owner_of("action", "host.devices.ping@1") == "host"
    assert reg.owner_of("resolver", "flag:beta") == "host"
    assert reg.modules["app:host"].effective_default_action_id == "host.devices.ping"
    assert reg.permission_checker is not None and reg.owner_of("permission", "checker") == "host"
    assert reg.permission_checker(None, "acme", "rmm:execute_command", None) is False
    assert reg.owner_of("receiver", "host") == "host" and reg.receivers["host"].secret == "host_webhook_secret"
    assert [p.name for p in loaded.loaded] == ["mspflow.builtin", "host"]


def test_pytest_plugin_fixtures_give_a_working_app(mspflow_app: Any, mspflow_connect: Any) -> None:
    from mspflow.tenants import UnknownProvider

    catalog = mspflow_app.catalog("acme")
    assert catalog.record("transform").available
    assert mspflow_app.db.url.startswith("sqlite:///")
    with pytest.raises(UnknownProvider, match="no installed plugin offers provider 'kaseya'"):
        mspflow_connect("acme", "kaseya")
