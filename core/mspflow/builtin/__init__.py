"""The core's own groups and actions, registered through the same hooks as any plugin."""

from __future__ import annotations

from mspflow.availability import AlwaysAvailable
from mspflow.builtin.scheduling import scheduling
from mspflow.builtin.transform import transform
from mspflow.hookspecs import RegisterAction, RegisterModule, RegisterResolver, hookimpl


@hookimpl
def register_actions(register: RegisterAction) -> None:
    from mspflow.alerts.actions import create_ticket_action

    register(create_ticket_action)


@hookimpl
def register_availability(register: RegisterResolver) -> None:
    register("core", AlwaysAvailable())


@hookimpl
def register_modules(register: RegisterModule) -> None:
    register(transform)
    register(scheduling)
