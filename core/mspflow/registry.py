"""The registry: actions by ``id@version``, modules by group key, resolvers by availability key, receivers
by provider.

Each entry remembers which plugin (distribution) registered it, so a conflict names both sides and a
plugin that fails half-way can be removed whole. Registering an identical definition again is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mspflow.modules import Action, DefinitionError, Module

if TYPE_CHECKING:
    from mspflow.availability import Resolver
    from mspflow.hookspecs import PermissionChecker
    from mspflow.inbound.receivers import Receiver


class RegistrationError(DefinitionError):
    """A definition clashes with the registry (conflict, unknown reference)."""


@dataclass
class _Entry:
    owner: str
    explicit: bool = True  # resolvers: False when it only came along with a module


@dataclass
class Registry:
    actions: dict[str, Action] = field(default_factory=dict)
    modules: dict[str, Module] = field(default_factory=dict)
    resolvers: dict[str, Resolver] = field(default_factory=dict)
    permission_checker: PermissionChecker | None = None
    receivers: dict[str, Receiver] = field(default_factory=dict)
    #: providers two distributions claimed: neither gets a receiver (fail closed); provider -> both owners
    contested_receivers: dict[str, tuple[str, str]] = field(default_factory=dict)
    _module_index: dict[str, Module] | None = field(default=None, repr=False)
    _versions_index: dict[str, list[Action]] | None = field(default=None, repr=False)
    _owners: dict[tuple[str, str], _Entry] = field(default_factory=dict, repr=False)

    # -- registration -------------------------------------------------------------------------------

    def add_action(self, action: Action, owner: str) -> None:
        """Register ``action``; identical re-registration is a no-op, a different one is an error."""
        action.check()
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
        self._owners[("action", action.key)] = _Entry(owner)
        self._versions_index = None

    def add_resolver(self, key: str, resolver: Resolver, owner: str, *, explicit: bool = True) -> None:
        """Register ``resolver`` under ``key``.

        An explicit registration (``register_availability``) overrides one that merely came with a
        module; two different explicit ones conflict.
        """
        if not key:
            raise RegistrationError(f"{owner!r} registered a resolver without a key")
        if not callable(resolver):
            raise RegistrationError(f"{owner!r}: resolver for {key!r} is not callable")
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
        self._owners[("resolver", key)] = _Entry(owner, explicit)

    def add_module(self, module: Module, owner: str) -> None:
        """Register a whole integration in one idempotent call: tile, its resolver and its actions.

        Nothing is registered when any part is rejected.
        """
        module.check()
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
                self.add_action(act, owner)
            if not isinstance(module.availability, str) and module.availability is not None:
                self.add_resolver(module.availability.key, module.availability, owner, explicit=False)
        except Exception:
            self._restore(snapshot)
            raise
        self.modules[module.group_key] = module
        self._owners[("module", module.group_key)] = _Entry(owner)
        self._module_index = None

    def set_permission_checker(self, checker: PermissionChecker, owner: str) -> None:
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
        self._owners[("permission", "checker")] = _Entry(owner)

    def add_receiver(self, receiver: Receiver, owner: str) -> None:
        """Register the receiver of ``receiver.provider``; one per provider, owned by one distribution.

        The same definition again is a no-op. A different one from the same distribution is refused. A
        second distribution claiming the provider is refused and the first one's receiver is withdrawn
        too (fail closed: nobody receives deliveries a plugin cannot be sure are meant for it).
        """
        receiver.check()
        provider = receiver.provider
        if provider in self.contested_receivers:
            first, second = self.contested_receivers[provider]
            raise RegistrationError(
                f"receiver {provider!r} is claimed by both {first!r} and {second!r}; {owner!r} cannot register "
                "it either (uninstall all but one of them)"
            )
        existing = self.receivers.get(provider)
        if existing is not None:
            if existing == receiver:
                return
            current = self.owner_of("receiver", provider) or ""
            if current != owner:
                del self.receivers[provider]
                self._owners.pop(("receiver", provider), None)
                self.contested_receivers[provider] = (current, owner)
                raise RegistrationError(
                    f"receiver {provider!r} is registered by both {current!r} and {owner!r}; neither is used "
                    "(fail closed): uninstall one of them"
                )
            raise RegistrationError(
                f"receiver {provider!r} is already registered by {owner!r} with a different definition"
            )
        self.receivers[provider] = receiver
        self._owners[("receiver", provider)] = _Entry(owner)

    def remove_owner(self, owner: str) -> None:
        """Forget everything ``owner`` registered (a plugin that failed part-way)."""
        for (kind, key), entry in list(self._owners.items()):
            if entry.owner != owner:
                continue
            del self._owners[(kind, key)]
            if kind == "action":
                self.actions.pop(key, None)
                self._versions_index = None
            elif kind == "module":
                self.modules.pop(key, None)
                self._module_index = None
            elif kind == "permission":
                self.permission_checker = None
            elif kind == "receiver":
                self.receivers.pop(key, None)
            else:
                self.resolvers.pop(key, None)
        # An override that went away uncovers the resolver its module carried.
        for module in self.modules.values():
            resolver = module.availability
            if resolver is not None and not isinstance(resolver, str) and resolver.key not in self.resolvers:
                self.add_resolver(resolver.key, resolver, self.owner_of("module", module.group_key) or "",
                                  explicit=False)

    # -- lookup -------------------------------------------------------------------------------------

    def owner_of(self, kind: str, key: str) -> str | None:
        entry = self._owners.get((kind, key))
        return entry.owner if entry else None

    def action(self, action_id: str, version: int | None = None) -> Action | None:
        """The action ``action_id`` at ``version``, or its latest version when ``version`` is None."""
        if version is not None:
            return self.actions.get(f"{action_id}@{version}")
        versions = self._versions().get(action_id)
        return versions[-1] if versions else None

    def module_of(self, action_id: str) -> Module | None:
        """The module whose tile offers ``action_id`` (core actions may belong to none)."""
        if self._module_index is None:  # rebuilt after registrations change; looked up on every call
            index: dict[str, Module] = {}
            for module in self.modules.values():
                for aid in module.action_ids:
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
        return dict(self.actions), dict(self.resolvers), {k: _Entry(e.owner, e.explicit)
                                                          for k, e in self._owners.items()}

    def _restore(
        self, snap: tuple[dict[str, Action], dict[str, Resolver], dict[tuple[str, str], _Entry]]
    ) -> None:
        self.actions, self.resolvers, self._owners = snap
        self._versions_index = None
