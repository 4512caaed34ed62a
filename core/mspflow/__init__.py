"""mspflow: integration workflow modules for an MSP's PSA.

A plugin is one Python module that declares a palette tile (:class:`Module`), when the tile is
available to a tenant (:func:`rmm_integration`, ...), and the typed actions it offers, then hands the
module to the core through the ``register_modules`` hook::

    from pydantic import BaseModel
    from mspflow import ActionContext, Module, Vendor, auth, hookimpl, rmm_integration

    acme = Module("app:acme", label="Acme RMM", icon="acme", availability=rmm_integration("acme"),
                  vendor=Vendor("Acme", base_url="https://api.acme.example",
                                auth=auth.api_key_header("X-API-KEY", "acme_api_key")))

    class RebootInput(BaseModel):
        device_id: str

    class RebootOutput(BaseModel):
        reboot_requested: bool

    @acme.action("acme.devices.reboot", label="Reboot device", side_effectful=True)
    def reboot(params: RebootInput, ctx: ActionContext) -> RebootOutput:
        ctx.http().post(("devices", params.device_id, "reboot"))   # ids are percent-encoded by the core
        return RebootOutput(reboot_requested=True)

    @hookimpl
    def register_modules(register):
        register(acme)

and in the plugin's ``pyproject.toml`` its entry point and the plugin API it was built for
(:data:`PLUGIN_API_VERSION`; a plugin whose range excludes the running core is refused at load)::

    [project]
    dependencies = ["mspflow>=0.2,<0.3"]

    [project.entry-points.mspflow]
    acme = "mspflow_acme"

Everything a plugin's non-test code needs is a name exported here (its simulator and tests may also
use :mod:`mspflow.testing`); the import rule is checked by ``mspflow.testing.check_imports``. A host
imports :class:`App`. Names are imported lazily so ``import mspflow`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mspflow.alerts.events import AlertEvent, AlertSource, vendor_json, vendor_text, vendor_time
    from mspflow.alerts.store import StoredAlert
    from mspflow.app import App
    from mspflow.assets import SyncedAsset
    from mspflow.availability import Availability, Resolver, rmm_integration, teams_integration
    from mspflow.catalog import Catalog, CatalogRecord
    from mspflow.context import ActionContext
    from mspflow.errors import ActionError
    from mspflow.hookspecs import hookimpl
    from mspflow.inbound.receivers import Delivery, Ignore, Receiver
    from mspflow.inbound.verify import webhook
    from mspflow.inputs import EnvVar, LocalDateTime, exactly_one_of, required_if
    from mspflow.microsoft import ConversationReference
    from mspflow.modules import Action, DefinitionError, Module, action
    from mspflow.plugins import PLUGIN_API_VERSION
    from mspflow.registry import RegistrationError, Registry
    from mspflow.vendor import (
        CursorPaging,
        KeysetPaging,
        NoAnswer,
        OAuthApp,
        RateLimit,
        TokenPaging,
        Vendor,
        VendorClient,
    )
    from mspflow.vendor.auth import auth

_EXPORTS = {
    "ActionContext": "mspflow.context",
    "App": "mspflow.app",
    "Availability": "mspflow.availability",
    "Resolver": "mspflow.availability",
    "rmm_integration": "mspflow.availability",
    "teams_integration": "mspflow.availability",
    "Catalog": "mspflow.catalog",
    "CatalogRecord": "mspflow.catalog",
    "ActionError": "mspflow.errors",
    "hookimpl": "mspflow.hookspecs",
    "Delivery": "mspflow.inbound.receivers",
    "Ignore": "mspflow.inbound.receivers",
    "Receiver": "mspflow.inbound.receivers",
    "webhook": "mspflow.inbound.verify",
    "ConversationReference": "mspflow.microsoft",
    "EnvVar": "mspflow.inputs",
    "LocalDateTime": "mspflow.inputs",
    "exactly_one_of": "mspflow.inputs",
    "required_if": "mspflow.inputs",
    "Action": "mspflow.modules",
    "DefinitionError": "mspflow.modules",
    "Module": "mspflow.modules",
    "action": "mspflow.modules",
    "PLUGIN_API_VERSION": "mspflow.plugins",
    "RegistrationError": "mspflow.registry",
    "Registry": "mspflow.registry",
    "StoredAlert": "mspflow.alerts.store",
    "AlertEvent": "mspflow.alerts.events",
    "AlertSource": "mspflow.alerts.events",
    "vendor_json": "mspflow.alerts.events",
    "vendor_text": "mspflow.alerts.events",
    "vendor_time": "mspflow.alerts.events",
    "SyncedAsset": "mspflow.assets",
    "CursorPaging": "mspflow.vendor",
    "KeysetPaging": "mspflow.vendor",
    "NoAnswer": "mspflow.vendor",
    "OAuthApp": "mspflow.vendor",
    "RateLimit": "mspflow.vendor",
    "TokenPaging": "mspflow.vendor",
    "Vendor": "mspflow.vendor",
    "VendorClient": "mspflow.vendor",
    "auth": "mspflow.vendor.auth",
}

__all__ = [
    "PLUGIN_API_VERSION",
    "Action",
    "ActionContext",
    "ActionError",
    "AlertEvent",
    "AlertSource",
    "App",
    "Availability",
    "Catalog",
    "CatalogRecord",
    "ConversationReference",
    "CursorPaging",
    "DefinitionError",
    "Delivery",
    "EnvVar",
    "Ignore",
    "KeysetPaging",
    "LocalDateTime",
    "Module",
    "NoAnswer",
    "OAuthApp",
    "RateLimit",
    "Receiver",
    "RegistrationError",
    "Registry",
    "Resolver",
    "StoredAlert",
    "SyncedAsset",
    "TokenPaging",
    "Vendor",
    "VendorClient",
    "action",
    "auth",
    "exactly_one_of",
    "hookimpl",
    "required_if",
    "rmm_integration",
    "teams_integration",
    "vendor_json",
    "vendor_text",
    "vendor_time",
    "webhook",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'mspflow' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
