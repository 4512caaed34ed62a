"""Module (a palette tile) and Action (a typed workflow operation) definitions.

A plugin declares a module and hangs its actions on it with the ``@module.action`` decorator::

    acme = Module("app:acme", label="Acme RMM", icon="acme", availability=rmm_integration("acme"))

    @acme.action("acme.devices.reboot", label="Reboot device", side_effectful=True)
    def reboot(params: RebootInput, ctx: ActionContext) -> RebootOutput:
        ...

The input and output models are read from the handler's annotations; their JSON Schemas feed the
designer. Definitions are plain frozen values: registering the same definition twice is a no-op,
and the registry compares them to detect two plugins claiming one id.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from mspflow.availability import Resolver
    from mspflow.vendor.spec import OAuthApp, Vendor

ACTION_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,2}$")
"""``provider.noun.verb`` (or ``group.verb`` for core actions such as ``scheduling.create_entry``)."""

GROUP_KEY = re.compile(r"^[a-z][a-z0-9_]*(:[a-z0-9][a-z0-9_-]*)?$")

MAX_DURATION_S = 24 * 3600.0
"""The longest ``max_duration_s`` an action may declare."""

Idempotency = Literal["engine_provided", "none"]
TileKind = Literal["core", "app"]
Handler = Callable[[Any, Any], Any]


class DefinitionError(ValueError):
    """A module or action definition is malformed; the message says what to change."""


@dataclass(frozen=True, eq=True)
class Action:
    """One typed workflow action. Handlers raise :class:`mspflow.ActionError`; they never return errors."""

    id: str
    version: int
    handler: Handler = field(compare=True, repr=False)
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    label: str
    description: str = ""
    category: str = "Integrations"
    icon: str | None = None
    side_effectful: bool = False
    idempotency: Idempotency = "none"
    permission: str | None = None
    max_duration_s: float | None = None
    """How long one call may take at most (seconds), e.g. a remote script's longest wait; its lease lasts
    that long plus a margin, and a worker interrupts it soon after (see :mod:`mspflow.runtime`)."""
    redact_input: tuple[str, ...] = ()
    """Top-level input fields kept out of the invocation record (e.g. an email's body): the handler gets them,
    the record shows ``[REDACTED]``."""

    @property
    def key(self) -> str:
        """Registry key, ``id@version``."""
        return f"{self.id}@{self.version}"

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        """The input model's JSON Schema, with the rules of :mod:`mspflow.inputs` (what the runtime accepts)."""
        from mspflow.inputs import RuleSchema

        return self.input_model.model_json_schema(schema_generator=RuleSchema)

    @cached_property
    def output_schema(self) -> dict[str, Any]:
        from mspflow.inputs import RuleSchema

        return self.output_model.model_json_schema(schema_generator=RuleSchema)

    def check(self) -> None:
        """Raise :class:`DefinitionError` if this action cannot be registered."""
        if not ACTION_ID.match(self.id):
            raise DefinitionError(
                f"action id {self.id!r} must look like 'provider.noun.verb' (lowercase letters, digits, "
                "underscores, separated by dots)"
            )
        if self.version < 1:
            raise DefinitionError(f"action {self.id!r}: version must be an integer >= 1, got {self.version}")
        if self.side_effectful and self.idempotency != "engine_provided":
            raise DefinitionError(
                f"action {self.key} is side-effectful but declares idempotency={self.idempotency!r}; "
                "side-effectful actions must use idempotency='engine_provided' so retries are safe"
            )
        if self.max_duration_s is not None and not (
                isinstance(self.max_duration_s, int | float) and math.isfinite(self.max_duration_s)
                and 0 < self.max_duration_s <= MAX_DURATION_S):
            raise DefinitionError(
                f"action {self.key}: max_duration_s must be a number of seconds above 0 and at most "
                f"{MAX_DURATION_S:g}, got {self.max_duration_s!r}")
        for role, model in (("input", self.input_model), ("output", self.output_model)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise DefinitionError(
                    f"action {self.key}: {role} model must be a pydantic BaseModel subclass"
                )


@dataclass(eq=False)
class Module:
    """A palette tile: a group of actions shown to a tenant when its availability resolver says so.

    :param group_key: ``app:<vendor>`` for integrations, a bare word for core groups.
    :param availability: a resolver (e.g. ``rmm_integration("ninjaone")``), or the key of a resolver
        registered elsewhere through ``register_availability``.
    :param default_action_id: the action the tile drops onto the canvas; defaults to the first action.
    :param allowed_action_ids: ids (any version) the tile offers besides its own actions.
    :param vendor: the vendor API its actions call through ``ctx.http()`` (a :class:`mspflow.Vendor`).
    :param simulator: ``"package.module:Class"`` of its sandbox simulator (``mspflow sim serve``).
    :param oauth: the OAuth2 app an operator authorizes with ``mspflow tenant authorize``.
    """

    group_key: str
    label: str
    availability: Resolver | str | None = None
    description: str = ""
    icon: str | None = None
    tile_kind: TileKind = "app"
    default_action_id: str | None = None
    allowed_action_ids: tuple[str, ...] = ()
    actions: list[Action] = field(default_factory=list)
    vendor: Vendor | None = None
    simulator: str | None = None
    """``"package.module:Class"`` of the vendor sandbox simulator, imported only when used."""
    oauth: OAuthApp | None = None

    @property
    def provider(self) -> str | None:
        """``ninjaone`` for ``app:ninjaone``: the name tenants connect (``rmm_integrations.provider``, secrets,
        CLI arguments); None for core groups."""
        kind, _, name = self.group_key.partition(":")
        return name if kind == "app" and name else None

    @property
    def availability_key(self) -> str | None:
        if self.availability is None or isinstance(self.availability, str):
            return self.availability
        return self.availability.key

    @property
    def action_ids(self) -> tuple[str, ...]:
        """Every action id the tile offers, its own first, without duplicates."""
        ids = dict.fromkeys([a.id for a in self.actions] + list(self.allowed_action_ids))
        return tuple(ids)

    @property
    def effective_default_action_id(self) -> str | None:
        if self.default_action_id:
            return self.default_action_id
        ids = self.action_ids
        return ids[0] if ids else None

    def signature(self) -> tuple[Any, ...]:
        """What makes two module definitions the same (used to tell a re-registration from a conflict)."""
        return (
            self.group_key, self.label, self.availability, self.description, self.icon, self.tile_kind,
            self.effective_default_action_id, self.action_ids, tuple(self.actions), self.vendor, self.simulator,
            self.oauth,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Module) and self.signature() == other.signature()

    def __hash__(self) -> int:
        return hash(self.group_key)

    def check(self) -> None:
        """Raise :class:`DefinitionError` for problems visible without the registry."""
        if not GROUP_KEY.match(self.group_key):
            raise DefinitionError(f"module group key {self.group_key!r} must look like 'app:vendor'")
        if not self.availability_key:
            raise DefinitionError(
                f"module {self.group_key!r} has no availability key; pass availability=rmm_integration(...) "
                "or the key of a registered resolver so the tile is shown only to connected tenants"
            )
        default = self.effective_default_action_id
        if default is None:
            raise DefinitionError(f"module {self.group_key!r} offers no actions and names no default action")
        if default not in self.action_ids:
            raise DefinitionError(
                f"module {self.group_key!r}: default action {default!r} is not among its actions "
                f"{list(self.action_ids)}"
            )

    def action(
        self,
        id: str,
        *,
        label: str,
        version: int = 1,
        description: str | None = None,
        category: str = "Integrations",
        icon: str | None = None,
        side_effectful: bool = False,
        idempotency: Idempotency | None = None,
        permission: str | None = None,
        input_model: type[BaseModel] | None = None,
        output_model: type[BaseModel] | None = None,
        max_duration_s: float | None = None,
        redact_input: tuple[str, ...] = (),
    ) -> Callable[[Handler], Handler]:
        """Decorator that defines an action of this module from a handler ``(params, ctx) -> output``.

        Models default to the handler's annotations; the description defaults to its docstring.
        Side-effectful actions get engine-provided idempotency unless told otherwise. ``max_duration_s``
        declares how long one call may take at most, when that can exceed the default lease (300 s).
        """

        def decorate(handler: Handler) -> Handler:
            hints = _handler_models(handler)
            act = Action(
                id=id,
                version=version,
                handler=handler,
                input_model=input_model or hints[0],
                output_model=output_model or hints[1],
                label=label,
                description=description if description is not None else _first_paragraph(handler.__doc__),
                category=category,
                icon=icon if icon is not None else self.icon,
                side_effectful=side_effectful,
                idempotency=idempotency or ("engine_provided" if side_effectful else "none"),
                permission=permission,
                max_duration_s=max_duration_s,
                redact_input=tuple(redact_input),
            )
            act.check()
            self.actions.append(act)
            return handler

        return decorate


def action(
    id: str,
    *,
    label: str,
    handler: Handler,
    version: int = 1,
    description: str | None = None,
    category: str = "Integrations",
    icon: str | None = None,
    side_effectful: bool = False,
    idempotency: Idempotency | None = None,
    permission: str | None = None,
    input_model: type[BaseModel] | None = None,
    output_model: type[BaseModel] | None = None,
    max_duration_s: float | None = None,
    redact_input: tuple[str, ...] = (),
) -> Action:
    """Build a tile-less :class:`Action` (for ``register_actions``) from a handler."""
    hints = _handler_models(handler)
    act = Action(
        id=id, version=version, handler=handler,
        input_model=input_model or hints[0], output_model=output_model or hints[1],
        label=label,
        description=description if description is not None else _first_paragraph(handler.__doc__),
        category=category, icon=icon, side_effectful=side_effectful,
        idempotency=idempotency or ("engine_provided" if side_effectful else "none"),
        permission=permission, max_duration_s=max_duration_s, redact_input=tuple(redact_input),
    )
    act.check()
    return act


def _handler_models(handler: Handler) -> tuple[Any, Any]:
    try:
        hints = typing.get_type_hints(handler)
    except Exception as exc:  # unresolvable forward reference in a plugin
        raise DefinitionError(f"cannot read the type hints of {handler.__qualname__}: {exc}") from exc
    params = [v for k, v in hints.items() if k != "return"]
    return (params[0] if params else None, hints.get("return"))


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return " ".join(doc.strip().split("\n\n", 1)[0].split())
