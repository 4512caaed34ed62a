"""The registry: actions by ``id@version``, modules by group key, resolvers by availability key, receivers
by provider.

Each entry remembers which distribution registered it (and through which plugin, i.e. entry point), so a
conflict names both sides and a plugin that fails half-way can be removed whole without touching the
other entry points of its distribution. Registering an identical definition again is a no-op.

**Ownership.** An action-id namespace (``tacticalrmm`` in ``tacticalrmm.agents.reboot``), a module group
key and an explicit availability key each belong to one distribution. The core (distribution
``mspflow``) owns :data:`CORE_NAMESPACES` and the availability key ``core``. Registering into something
another distribution owns is a :class:`RegistrationError` naming both. The plugin loader settles
ownership *before* registering anything (:func:`conflicts`): two distributions claiming one namespace,
group or key are both refused, so the outcome never depends on which loads first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar

from mspflow.modules import Action, DefinitionError, Module

if TYPE_CHECKING:
    from mspflow.alerts.events import AlertSource
    from mspflow.availability import Resolver
    from mspflow.hookspecs import PermissionChecker
    from mspflow.inbound.receivers import Receiver


CORE = "mspflow"
"""The distribution name the core's own (built-in) registrations are owned by."""

CORE_NAMESPACES = frozenset({"transform", "scheduling", "control", "data", "communication"})
"""Action-id namespaces and group keys of the core groups; no plugin may register into them."""

CORE_AVAILABILITY_KEY = "core"


class RegistrationError(DefinitionError):
    """A definition clashes with the registry (conflict, unknown reference)."""


def namespace_of(action_id: str) -> str:
    """``tacticalrmm`` for ``tacticalrmm.agents.reboot``: the part before the first dot."""
    return action_id.split(".", 1)[0]


_T = TypeVar("_T")
ClaimKind = Literal["namespace", "group", "resolver", "entry point", "receiver", "alert source"]


@dataclass(frozen=True)
class Claim:
    """What one distribution asks to own: a namespace, a group key, an availability key or an entry-point name.

    :param example: what made the claim (``tacticalrmm.agents.reboot``), for the error message.
    :param value: a resolver claim's resolver; identical resolvers from two distributions do not conflict.
    :param explicit: a resolver claim through ``register_availability`` (``False``: carried by a module,
        which an explicit one may override).
    """

    kind: ClaimKind
    key: str
    owner: str
    example: str = ""
    value: object = None
    explicit: bool = True


def conflicts(claims: Iterable[Claim]) -> dict[str, list[str]]:
    """The distributions to refuse, each with why: every owner of a contested claim (fail closed).

    A namespace, group key or entry-point name claimed by two distributions refuses both, whatever the load
    order; one the core (:data:`CORE`) claims stays the core's and only the plugin is refused. An availability
    key conflicts when two distributions register *different* explicit resolvers for it (or, with no explicit
    one, modules carrying different resolvers); an explicit resolver overriding a module's is not a conflict.
    """
    by_key: dict[tuple[str, str], list[Claim]] = {}
    for claim in claims:
        by_key.setdefault((claim.kind, claim.key), []).append(claim)
    refused: dict[str, list[str]] = {}
    contested: dict[tuple[str, ...], list[str]] = {}  # rivals -> what they all claim
    for (kind, key), found in sorted(by_key.items()):
        if kind == "resolver":
            found = [c for c in found if c.explicit] or found
            if len({c.owner for c in found}) > 1 and len({_identity(c.value) for c in found}) < 2 \
                    and key != CORE_AVAILABILITY_KEY:
                continue  # the same resolver (e.g. rmm_integration("acme")) from two plugins: no clash
        owners = sorted({c.owner for c in found})
        if len(owners) < 2:
            continue
        what = f"{'action-id namespace' if kind == 'namespace' else kind} {key!r}"
        if CORE in owners:
            for c in found:
                if c.owner != CORE:
                    example = f" ({c.example})" if c.example and c.example != key else ""
                    refused.setdefault(c.owner, []).append(
                        f"{what} belongs to the mspflow core; {c.owner} cannot register into it{example}")
            continue
        by_owner = {o: sorted({c.example for c in found if c.owner == o and c.example and c.example != key})
                    for o in owners}
        shown = [f"{o}: {ex[0]}{f' and {len(ex) - 1} more' if len(ex) > 1 else ''}" for o, ex in by_owner.items() if ex]
        contested.setdefault(tuple(owners), []).append(what + (f" ({'; '.join(shown)})" if shown else ""))
    for rivals, whats in contested.items():
        names = ", ".join(rivals[:-1]) + " and " + rivals[-1]
        both = len(rivals) == 2
        message = (f"{names} {'both' if both else 'all'} claim {', '.join(whats)}; it belongs to one distribution, "
                   f"so {'both are' if both else 'all are'} refused until "
                   f"{'one of them is' if both else 'all but one are'} uninstalled")
        for owner in rivals:
            refused.setdefault(owner, []).append(message)
    return refused


def _identity(value: object) -> object:
    try:
        hash(value)
    except TypeError:
        return id(value)
    return value


@dataclass
class _Entry:
    owner: str
    explicit: bool = True  # resolvers: False when it only came along with a module
    plugin: str | None = None  # the entry point (plugin name) that registered it, for removal


@dataclass
class Registry:
    actions: dict[str, Action] = field(default_factory=dict)
    modules: dict[str, Module] = field(default_factory=dict)
    resolvers: dict[str, Resolver] = field(default_factory=dict)
    permission_checker: PermissionChecker | None = None
    receivers: dict[str, Receiver] = field(default_factory=dict)
    alert_sources: dict[str, AlertSource] = field(default_factory=dict)
    _module_index: dict[str, Module] | None = field(default=None, repr=False)
    _versions_index: dict[str, list[Action]] | None = field(default=None, repr=False)
    _owners: dict[tuple[str, str], _Entry] = field(default_factory=dict, repr=False)

    # -- registration -------------------------------------------------------------------------------

    def add_action(self, action: Action, owner: str, *, plugin: str | None = None) -> None:
        """Register ``action``; identical re-registration is a no-op, a different one is an error.

        Its namespace must be free or already ``owner``'s.
        """
        action.check()
        self._check_namespace(namespace_of(action.id), owner, action.id)
        existing = self.actions.get(action.key)
        if existing is not None:
            if existing == action:
                return
            raise RegistrationError(
                f"action {action.key} is already registered by {self.owner_of('action', action.key)!r} "
                f"with a different definition; {owner!r} cannot register another one under the same id "
                "and version (bump the version or rename the action)"
            )
        self.actions[action.key] = action
        self._owners[("action", action.key)] = _Entry(owner, plugin=plugin)
        self._versions_index = None

    def add_resolver(self, key: str, resolver: Resolver, owner: str, *, explicit: bool = True,
                     plugin: str | None = None) -> None:
        """Register ``resolver`` under ``key``.

        An explicit registration (``register_availability``) overrides one that merely came with a
        module; two different explicit ones conflict. The key ``core`` is the core's.
        """
        if not key:
            raise RegistrationError(f"{owner!r} registered a resolver without a key")
        if not callable(resolver):
            raise RegistrationError(f"{owner!r}: resolver for {key!r} is not callable")
        if key == CORE_AVAILABILITY_KEY and owner != CORE and explicit:
            raise RegistrationError(f"availability key {key!r} belongs to the mspflow core; {owner!r} cannot "
                                    "register a resolver for it")
        existing = self.resolvers.get(key)
        entry = self._owners.get(("resolver", key))
        if existing is not None and entry is not None:
            if existing == resolver:
                entry.explicit = entry.explicit or explicit
                return
            if explicit and not entry.explicit:
                pass  # a host or plugin overrides the module's default resolver
            elif not explicit and entry.explicit:
                return  # the module's default yields to the explicit override
            else:
                raise RegistrationError(
                    f"availability key {key!r} is already registered by {entry.owner!r} with a different "
                    f"resolver; {owner!r} cannot register another one"
                )
        self.resolvers[key] = resolver
        self._owners[("resolver", key)] = _Entry(owner, explicit, plugin)

    def add_module(self, module: Module, owner: str, *, plugin: str | None = None) -> None:
        """Register a whole integration in one idempotent call: tile, its resolver and its actions.

        Nothing is registered when any part is rejected.
        """
        module.check()
        group_owner = CORE if module.group_key in CORE_NAMESPACES else self.owner_of("module", module.group_key)
        if group_owner is not None and group_owner != owner:
            raise RegistrationError(
                f"module group {module.group_key!r} belongs to {group_owner!r}; {owner!r} cannot register "
                "a module under it"
            )
        existing = self.modules.get(module.group_key)
        if existing is not None:
            if existing == module:
                return
            raise RegistrationError(
                f"module {module.group_key!r} is already registered by "
                f"{self.owner_of('module', module.group_key)!r} with a different definition; "
                f"{owner!r} cannot register another one"
            )
        known = {a.id for a in self.actions.values()} | {a.id for a in module.actions}
        missing = [i for i in module.action_ids if i not in known]
        if missing:
            raise RegistrationError(
                f"module {module.group_key!r} ({owner}) offers actions that are not registered: "
                f"{', '.join(missing)}"
            )
        snapshot = self._snapshot()
        try:
            for act in module.actions:
                self.add_action(act, owner, plugin=plugin)
            if not isinstance(module.availability, str) and module.availability is not None:
                self.add_resolver(module.availability.key, module.availability, owner, explicit=False,
                                  plugin=plugin)
        except Exception:
            self._restore(snapshot)
            raise
        self.modules[module.group_key] = module
        self._owners[("module", module.group_key)] = _Entry(owner, plugin=plugin)
        self._module_index = None

    def set_permission_checker(self, checker: PermissionChecker, owner: str, *, plugin: str | None = None) -> None:
        """Install the host's permission check; one per process."""
        if not callable(checker):
            raise RegistrationError(f"{owner!r}: the permission checker is not callable")
        current = self.owner_of("permission", "checker")
        if self.permission_checker is not None and self.permission_checker != checker:
            raise RegistrationError(
                f"a permission checker is already registered by {current!r}; {owner!r} cannot register "
                "another one"
            )
        self.permission_checker = checker
        self._owners[("permission", "checker")] = _Entry(owner, plugin=plugin)

    def add_receiver(self, receiver: Receiver, owner: str, *, plugin: str | None = None) -> None:
        """Register the receiver of ``receiver.provider``: one per provider, owned by one distribution.

        The same definition again is a no-op; another one for the provider is refused, naming both owners.
        (Two distributions claiming one provider are both refused by the loader before anything registers.)
        """
        receiver.check()
        self._add_per_provider("receiver", self.receivers, receiver.provider, receiver, owner, plugin)

    def add_alert_source(self, source: AlertSource, owner: str, *, plugin: str | None = None) -> None:
        """Register the alert source of ``source.provider``: one per provider, owned by one distribution."""
        source.check()
        self._add_per_provider("alert source", self.alert_sources, source.provider, source, owner, plugin)

    def _add_per_provider(self, kind: str, table: dict[str, _T], provider: str, item: _T, owner: str,
                          plugin: str | None) -> None:
        existing = table.get(provider)
        if existing is not None:
            if existing == item:
                return
            raise RegistrationError(
                f"{kind} {provider!r} is already registered by {self.owner_of(kind, provider)!r}; {owner!r} cannot "
                "register another one for the same provider"
            )
        table[provider] = item
        self._owners[(kind, provider)] = _Entry(owner, plugin=plugin)

    def remove_owner(self, owner: str) -> None:
        """Forget everything distribution ``owner`` registered."""
        self._remove(lambda entry: entry.owner == owner)

    def remove_plugin(self, plugin: str) -> None:
        """Forget everything one plugin (entry point) registered; its distribution's other plugins stay."""
        self._remove(lambda entry: entry.plugin == plugin)

    def _remove(self, doomed: Callable[[_Entry], bool]) -> None:
        for (kind, key), entry in list(self._owners.items()):
            if not doomed(entry):
                continue
            del self._owners[(kind, key)]
            if kind == "action":
                self.actions.pop(key, None)
                self._versions_index = None
            elif kind == "module":
                self.modules.pop(key, None)
            elif kind == "permission":
                self.permission_checker = None
            elif kind == "receiver":
                self.receivers.pop(key, None)
            elif kind == "alert source":
                self.alert_sources.pop(key, None)
            else:
                self.resolvers.pop(key, None)
        self._module_index = None
        # An override that went away uncovers the resolver its module carried.
        for module in self.modules.values():
            resolver = module.availability
            if resolver is not None and not isinstance(resolver, str) and resolver.key not in self.resolvers:
                carrier = self._owners.get(("module", module.group_key))
                self.add_resolver(resolver.key, resolver, carrier.owner if carrier else "", explicit=False,
                                  plugin=carrier.plugin if carrier else None)

    def _check_namespace(self, namespace: str, owner: str, what: str) -> None:
        if namespace in CORE_NAMESPACES:
            holder: str | None = CORE
        else:
            holder = next((e.owner for (kind, key), e in self._owners.items()
                           if kind == "action" and namespace_of(key) == namespace), None)
        if holder is not None and holder != owner:
            raise RegistrationError(
                f"action-id namespace {namespace!r} belongs to {holder!r}; {owner!r} cannot register {what}"
            )

    # -- lookup -------------------------------------------------------------------------------------

    def owner_of(self, kind: str, key: str) -> str | None:
        entry = self._owners.get((kind, key))
        return entry.owner if entry else None

    def plugin_of(self, kind: str, key: str) -> str | None:
        """The plugin (entry-point name) that registered ``key``, when registered through the loader."""
        entry = self._owners.get((kind, key))
        return entry.plugin if entry else None

    def action(self, action_id: str, version: int | None = None) -> Action | None:
        """The action ``action_id`` at ``version``, or its latest version when ``version`` is None."""
        if version is not None:
            return self.actions.get(f"{action_id}@{version}")
        versions = self._versions().get(action_id)
        return versions[-1] if versions else None

    def module_of(self, action_id: str) -> Module | None:
        """The module whose tile gates ``action_id`` (core actions may belong to none).

        The module that defines the action wins; else, of the tiles offering it through
        ``allowed_action_ids``, the first by group key, so the answer never depends on load order.
        """
        if self._module_index is None:  # rebuilt after registrations change; looked up on every call
            index: dict[str, Module] = {}
            for module in sorted(self.modules.values(), key=lambda m: m.group_key):
                for act in module.actions:
                    index[act.id] = module
            for module in sorted(self.modules.values(), key=lambda m: m.group_key):
                for aid in module.allowed_action_ids:
                    index.setdefault(aid, module)
            self._module_index = index
        return self._module_index.get(action_id)

    def actions_of(self, module: Module) -> list[Action]:
        """Every registered version of every action the module offers, in the module's order."""
        versions = self._versions()
        return [a for aid in module.action_ids for a in versions.get(aid, ())]

    def _versions(self) -> dict[str, list[Action]]:
        """Action id -> its registered versions, oldest first; rebuilt after registrations change."""
        if self._versions_index is None:
            index: dict[str, list[Action]] = {}
            for act in sorted(self.actions.values(), key=lambda a: a.version):
                index.setdefault(act.id, []).append(act)
            self._versions_index = index
        return self._versions_index

    def _snapshot(self) -> tuple[dict[str, Action], dict[str, Resolver], dict[tuple[str, str], _Entry]]:
        return dict(self.actions), dict(self.resolvers), {k: _Entry(e.owner, e.explicit, e.plugin)
                                                          for k, e in self._owners.items()}

    def _restore(
        self, snap: tuple[dict[str, Action], dict[str, Resolver], dict[tuple[str, str], _Entry]]
    ) -> None:
        self.actions, self.resolvers, self._owners = snap
        self._versions_index = None
