"""The contract between the mspflow core and its plugins (pluggy project ``mspflow``).

One verb family. Each hook receives a ``register`` callback, so the core keeps control of
de-duplication, validation and conflict reporting. The core calls the hooks once per process, when
plugins are loaded, in this order: ``register_actions``, ``register_availability``,
``register_modules`` (so a module may offer actions another plugin registered),
``register_permission_checker``, and for the inbound side ``register_receivers`` then
``register_alert_sources``. A typical
integration implements only ``register_modules``::

    from mspflow import hookimpl

    @hookimpl
    def register_modules(register):
        register(acme)          # the tile, its availability resolver and its actions, in one call

A plugin is found through the entry-point group ``mspflow``; in its ``pyproject.toml``::

    [project.entry-points.mspflow]
    acme = "mspflow_acme"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.alerts.events import AlertSource
    from mspflow.availability import Resolver
    from mspflow.inbound.receivers import Receiver
    from mspflow.modules import Action, Module
    from mspflow.runtime import ActionCall

PROJECT = "mspflow"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class RegisterModule(Protocol):
    def __call__(self, module: Module) -> None: ...


class RegisterResolver(Protocol):
    def __call__(self, key: str, resolver: Resolver) -> None: ...


class RegisterAction(Protocol):
    def __call__(self, action: Action) -> None: ...


class PermissionChecker(Protocol):
    def __call__(self, session: Session, tenant_id: str, permission: str, call: ActionCall) -> bool: ...


class RegisterPermissionChecker(Protocol):
    def __call__(self, checker: PermissionChecker) -> None: ...


class RegisterReceiver(Protocol):
    def __call__(self, receiver: Receiver) -> None: ...


class RegisterAlertSource(Protocol):
    def __call__(self, source: AlertSource) -> None: ...


@hookspec
def register_modules(register: RegisterModule) -> None:
    """Register palette tiles (modules) together with their availability resolver and actions.

    Called once per process when plugins load, after ``register_actions`` and
    ``register_availability``. ``register(module)`` is idempotent: the same definition twice is a
    no-op; a different definition under the same group key, action key or resolver key is an error
    naming both plugins. A module is rejected when it has no availability key, or when its default or
    allowed action ids name actions that are not registered.

    :param register: call it with each :class:`mspflow.Module` the plugin offers.
    """


@hookspec
def register_availability(register: RegisterResolver) -> None:
    """Register availability resolvers under a key such as ``rmm:ninjaone``.

    Called once per process, after ``register_actions`` and before ``register_modules``. A resolver
    registered here takes precedence over the one a module carries for the same key, so a host can
    answer availability from its own schema. A resolver is ``(session, tenant_id) -> Availability | bool``;
    it should raise rather than guess when it cannot tell, and the core then treats the module as
    unavailable (fail closed) and logs why.

    :param register: call it as ``register(key, resolver)``.
    """


@hookspec
def register_actions(register: RegisterAction) -> None:
    """Register actions that belong to no tile of the plugin's own (e.g. core actions, or extra
    actions a module elsewhere lists in ``allowed_action_ids``).

    Called once per process, first of the three registration hooks. Actions are keyed by
    ``id@version``; the same definition twice is a no-op, a different one under the same key is an
    error naming both plugins.

    :param register: call it with each :class:`mspflow.Action` (build one with :func:`mspflow.action`).
    """


@hookspec
def register_permission_checker(register: RegisterPermissionChecker) -> None:
    """Register the host's permission check for actions that declare a permission.

    Called once per process, after ``register_modules``. Before running an action that declares a
    permission (e.g. ``rmm:execute_command``), the runtime calls
    ``checker(session, tenant_id, permission, call)``; ``False`` fails the call with
    ``PERMISSION_DENIED``. Without a checker (standalone use) every permission is granted. At most one
    checker may be registered; a second, different one is an error naming both plugins.

    :param register: call it with the checker.
    """


@hookspec
def register_receivers(register: RegisterReceiver) -> None:
    """Register how a provider's webhook deliveries are verified, identified and parsed (the inbound side).

    Called once per process, after ``register_permission_checker``. ``register(receiver)`` takes a
    :class:`mspflow.Receiver`: its ``provider`` names the route ``/hooks/{provider}/{token}`` served by
    ``mspflow serve`` (or the host's ASGI server); ``verify`` a strategy from :class:`mspflow.webhook`
    (HMAC of the raw body, shared-secret header, or a custom check); ``delivery_id`` where the vendor's
    delivery id is (default: a hash of the body); ``parse`` turns a journaled delivery into typed events in
    a worker, and ``on_event`` handles each. One receiver per provider, owned by one distribution: the same
    definition twice is a no-op; two distributions claiming one provider are both refused, with an error
    naming both (fail closed: the provider then has no receiver until one of them is uninstalled).

    :param register: call it with each :class:`mspflow.Receiver` the plugin offers.
    """


@hookspec
def register_alert_sources(register: RegisterAlertSource) -> None:
    """Register a provider's RMM alerts with the core's alert pipeline: normalizer, optional poller, optional
    outbound reset.

    Called once per process, after ``register_receivers``. ``register(source)`` takes a
    :class:`mspflow.AlertSource`: ``normalize`` turns the provider's journaled webhook deliveries into
    :class:`mspflow.AlertEvent` objects (give the same function as the provider's receiver ``parse`` and no
    ``on_event``: the core then upserts, deduplicates, applies maintenance windows and rules, and creates,
    comments and closes tickets through the ``tickets.*`` actions); ``poll`` returns the provider's
    currently active alerts for the reconciliation poll (every 15 minutes per connected integration by
    default); ``reset_action`` names one of the plugin's own actions that resets an alert in the RMM when
    its ticket is closed, so it runs with the runtime's idempotency and records. One source per provider,
    owned by one distribution: the same definition twice is a no-op; two distributions claiming one
    provider are both refused, with an error naming both.

    :param register: call it with each :class:`mspflow.AlertSource` the plugin offers.
    """
