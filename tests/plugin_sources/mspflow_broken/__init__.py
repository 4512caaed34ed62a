"""mspflow-broken: a plugin with three defects the contract suite (mspflow.testing.PluginContract) must name.

1. ``broken.devices.reboot`` leaves validation to its handler, which calls the vendor first: the schema
   promises a string of 1 to 64 characters, the model takes anything.
2. ``broken.devices.get`` logs the vendor's answer through its own logger, past the core's scrubbing, so a
   credential the vendor echoes reaches the logs.
3. The package imports ``mspflow.db`` (the import rule).
"""

import logging
from typing import Any

from pydantic import BaseModel, Field

from mspflow import ActionContext, ActionError, Module, Vendor, auth, hookimpl, rmm_integration
from mspflow.db.models import Asset  # noqa: F401 - defect 3: past the public API

broken = Module("app:broken", label="Broken RMM", icon="broken", availability=rmm_integration("broken"),
                description="Reboot and inspect Broken-managed devices, badly.",
                vendor=Vendor("Broken", base_url="https://api.broken.example",
                              auth=auth.api_key_header("X-API-KEY", "broken_api_key")),
                simulator="mspflow_broken.sim:BrokenSimulator")
log = logging.getLogger("mspflow_broken")


class RebootInput(BaseModel):
    device_id: Any = Field(json_schema_extra={"type": "string", "minLength": 1, "maxLength": 64})


class RebootOutput(BaseModel):
    reboot_requested: bool


@broken.action("broken.devices.reboot", label="Reboot device", side_effectful=True)
def reboot(params: RebootInput, ctx: ActionContext) -> RebootOutput:
    """Reboot one device."""
    ctx.http().post(("devices", str(params.device_id), "reboot"))  # defect 1: the vendor first ...
    if not isinstance(params.device_id, str) or not 0 < len(params.device_id) <= 64:  # ... then the check
        raise ActionError.validation("device_id must be a string of 1 to 64 characters", fields=["device_id"])
    return RebootOutput(reboot_requested=True)


class DeviceInput(BaseModel):
    device_id: str = Field(min_length=1, max_length=64)


class Device(BaseModel):
    device_id: str
    hostname: str


@broken.action("broken.devices.get", label="Get device")
def get_device(params: DeviceInput, ctx: ActionContext) -> Device:
    """One device's host name."""
    body = ctx.http().get(("devices", params.device_id))
    log.info("Broken answered %s", body)  # defect 2: its own logger, unscrubbed
    return Device(device_id=params.device_id, hostname=str(body["hostname"]))


@hookimpl
def register_modules(register: Any) -> None:
    register(broken)
