"""Plugin discovery and loading.

Plugins are found through the entry-point group ``mspflow`` (scanned once per process). Each entry
point is imported and registered on its own: one that fails to import or to register becomes a
:class:`LoadError` (shown by ``mspflow plugins``) and the others still load, including the other entry
points of the same distribution. Built-in plugins (the core's own actions) register through the very
same hooks.

**Ownership, settled before anything registers.** Every plugin's hooks are first called with a
recording ``register``; the loader then collects what each distribution claims (action-id namespaces,
group keys, availability keys, receiver providers, entry-point names) and refuses *every* distribution in
a contested claim (:func:`mspflow.registry.conflicts`), so a rogue distribution cannot evict the real one
by loading first, and load order never changes the outcome. The core's namespaces stay the core's.

**Plugin API version.** :data:`PLUGIN_API_VERSION` is ``(major, minor)`` of the core distribution's
version. Under semantic versioning a release that may break plugins bumps the major (while the major is
0: the minor), so a plugin declares the range it was built for in its dependencies, e.g.
``dependencies = ["mspflow>=0.2,<0.3"]``. The loader checks that range against the running core before
importing the plugin; a plugin whose range excludes it, or that declares none, is a load error.

Environment:

``MSPFLOW_LOAD_PLUGINS=name,name``
    load only these entry points (empty string: none); built-ins always load.
``MSPFLOW_STRICT_PLUGINS=1``
    any load error raises :class:`PluginLoadFailure` (tests and CI use this).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, partial
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from mspflow import hookspecs
from mspflow.modules import Action, Module
from mspflow.registry import (
    CORE,
    CORE_AVAILABILITY_KEY,
    CORE_NAMESPACES,
    Claim,
    RegistrationError,
    Registry,
    conflicts,
    namespace_of,
)

if TYPE_CHECKING:
    from importlib.metadata import Distribution

log = logging.getLogger("mspflow.plugins")
NAMESPACE = re.compile(r"[a-z][a-z0-9_]*")

PLUGIN_API_VERSION: tuple[int, int] = (0, 2)
"""The plugin API this core offers: ``(major, minor)`` of its version (``mspflow 0.2.x`` offers ``(0, 2)``).

The API is what a plugin imports from ``mspflow`` (its public names), the hooks, :class:`ActionContext`
and ``mspflow.testing``. Semantic versioning: patch releases never change it; a minor release only adds
to it (from 1.0 on); a release that may break a plugin built for the previous one bumps the major, or,
while the major is 0, the minor. A plugin pins the range it was built for (:func:`supported_range`).
"""

GROUP = "mspflow"
BUILTIN_PLUGINS = ("mspflow.builtin",)
HOOK_ORDER = (
    "register_actions", "register_availability", "register_modules", "register_permission_checker",
    "register_receivers", "register_alert_sources",
)


@dataclass(frozen=True)
class LoadError:
    """A plugin that could not be imported or registered."""

    distribution: str
    version: str
    entry_point: str
    error: str

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"{self.distribution}{version} ({self.entry_point}): {self.error}"


@dataclass
class PluginInfo:
    """What ``mspflow plugins`` reports about one loaded plugin."""

    name: str
    distribution: str
    version: str
    builtin: bool = False
    modules: list[str] = field(default_factory=list)
    action_count: int = 0


class IncompatiblePlugin(RuntimeError):
    """A plugin built for another plugin API version (its ``mspflow`` requirement excludes this core)."""


class PluginLoadFailure(RuntimeError):
    """Raised in strict mode (``MSPFLOW_STRICT_PLUGINS=1``) when any plugin failed to load."""

    def __init__(self, errors: list[LoadError]) -> None:
        self.errors = errors
        super().__init__("plugins failed to load:\n" + "\n".join(f"  - {e}" for e in errors))


@cache
def discover() -> tuple[EntryPoint, ...]:
    """Every entry point in the ``mspflow`` group; scanned once per process."""
    return tuple(sorted(entry_points(group=GROUP), key=lambda ep: ep.name))


def selected(eps: Iterable[EntryPoint], only: str | None) -> list[EntryPoint]:
    """Apply ``MSPFLOW_LOAD_PLUGINS`` (``None``: everything; ``""``: nothing)."""
    if only is None:
        return list(eps)
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    return [ep for ep in eps if ep.name in wanted]


def strict_mode() -> bool:
    from mspflow.settings import env_flag

    return env_flag("MSPFLOW_STRICT_PLUGINS")


class Plugins:
    """The loaded plugin set: a pluggy manager, the registry it filled, and what failed.

    :param extra: plugin objects (modules) to register besides entry points, e.g. a host's own.
    """

    def __init__(
        self,
        *,
        entry_points: Iterable[EntryPoint] | None = None,
        extra: Iterable[tuple[str, Any]] = (),
        strict: bool | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.errors: list[LoadError] = []
        self.info: dict[str, PluginInfo] = {}
        self._failed: set[str] = set()
        self._entry_points: dict[str, EntryPoint | None] = {}

        eps = selected(discover(), os.environ.get("MSPFLOW_LOAD_PLUGINS")) if entry_points is None \
            else list(entry_points)
        candidates: list[_Candidate] = [
            _Candidate(name, partial(import_module, name), PluginInfo(name, CORE, _core_version(), builtin=True))
            for name in BUILTIN_PLUGINS]
        for ep in eps:
            dist, version = _dist_of(ep)
            candidates.append(_Candidate(ep.name, ep.load, PluginInfo(ep.name, dist, version), ep))
        candidates += [_Candidate(name, partial(_identity, obj), PluginInfo(name, name, "")) for name, obj in extra]
        # Two distributions with one entry-point name: neither is imported.
        refused = conflicts(Claim("entry point", c.name, c.info.distribution, c.entry_point.value
                                  if c.entry_point else "") for c in candidates)
        # An entry point named like a namespace (``tacticalrmm``) claims it, loaded or refused: knocking the
        # real plugin out with a squatting entry point must not leave its namespace free for a third one.
        self._entry_point_claims = [Claim("namespace", c.name, c.info.distribution, f"entry point {c.name}")
                                    for c in candidates if c.entry_point is not None and NAMESPACE.fullmatch(c.name)]
        for c in candidates:
            if c.info.distribution in refused:
                self._fail(c.info, c.entry_point, RegistrationError("; ".join(refused[c.info.distribution])))
            else:
                self._add(c)
        self._register_all()

        if self.errors and (strict_mode() if strict is None else strict):
            raise PluginLoadFailure(self.errors)

    # -- loading ------------------------------------------------------------------------------------

    def _add(self, candidate: _Candidate) -> None:
        name, info, entry_point = candidate.name, candidate.info, candidate.entry_point
        try:
            if entry_point is not None and entry_point.dist is not None:
                check_api(entry_point.dist)  # before importing code built against another API
            plugin = candidate.load()
            self.pm.register(plugin, name=name)
            self.pm.check_pending()  # a misspelt hook name (register_module) is an error, not a no-op
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not stop the host
            self._fail(info, entry_point, exc)
            return
        self.info[name] = info
        self._entry_points[name] = entry_point

    def _register_all(self) -> None:
        # 1. Every hook of every plugin, with a register that only records (and checks definitions).
        recorded: dict[str, list[tuple[str, tuple[Any, ...]]]] = {name: [] for name in self.info}
        for hook_name in HOOK_ORDER:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                name = impl.plugin_name
                if name in self._failed:
                    continue
                register = partial(_record, recorded[name], hook_name)
                try:
                    impl.function(*[register for _ in impl.argnames])  # pluggy allows leaving it out
                except (Exception, SystemExit) as exc:
                    self._fail(self.info[name], self._entry_points.get(name), exc)
        # 2. Ownership: every distribution in a contested claim is refused, whatever the load order.
        claims = [Claim("namespace", ns, CORE) for ns in CORE_NAMESPACES]
        claims += [Claim("group", ns, CORE) for ns in CORE_NAMESPACES]
        claims.append(Claim("resolver", CORE_AVAILABILITY_KEY, CORE, value=CORE))
        claims += self._entry_point_claims
        for name, calls in recorded.items():
            if name in self.info:
                claims += [c for hook, args in calls for c in _claims(hook, args, self.info[name].distribution)]
        refused = conflicts(claims)
        for name in list(self.info):
            info = self.info[name]
            if info.distribution in refused and not info.builtin:
                why = RegistrationError("; ".join(refused[info.distribution]))
                self._fail(info, self._entry_points.get(name), why)
        # 3. Register what is left, hook by hook (so a module may offer another plugin's actions).
        registering: dict[str, Callable[..., None]] = {
            "register_actions": self.registry.add_action,
            "register_availability": self.registry.add_resolver,
            "register_modules": self.registry.add_module,
            "register_permission_checker": self.registry.set_permission_checker,
            "register_receivers": self.registry.add_receiver,
            "register_alert_sources": self.registry.add_alert_source,
        }
        for hook_name in HOOK_ORDER:
            for name, calls in recorded.items():
                for hook, args in calls:
                    if hook != hook_name or name in self._failed:
                        continue
                    info = self.info[name]
                    try:
                        registering[hook](*args, owner=info.distribution, plugin=name)
                    except (Exception, SystemExit) as exc:
                        self._fail(info, self._entry_points.get(name), exc)
        for name, info in self.info.items():
            info.modules = [m for m in self.registry.modules if self.registry.plugin_of("module", m) == name]
            info.action_count = sum(1 for k in self.registry.actions if self.registry.plugin_of("action", k) == name)

    def _fail(self, info: PluginInfo, entry_point: EntryPoint | None, exc: BaseException) -> None:
        target = entry_point.value if entry_point is not None else info.name
        error = LoadError(info.distribution, info.version, f"{info.name} = {target}", _summary(exc))
        log.error("mspflow plugin failed to load: %s", error, exc_info=exc)
        self.errors.append(error)
        self._failed.add(info.name)
        self.info.pop(info.name, None)
        self.registry.remove_plugin(info.name)
        if self.pm.has_plugin(info.name):
            self.pm.unregister(name=info.name)

    @property
    def loaded(self) -> list[PluginInfo]:
        return list(self.info.values())


@dataclass
class _Candidate:
    name: str
    load: Callable[[], Any]
    info: PluginInfo
    entry_point: EntryPoint | None = None


def _record(calls: list[tuple[str, tuple[Any, ...]]], hook: str, *args: Any) -> None:
    """A hook's ``register``: check the definition now (the error points at the plugin), register later."""
    if hook == "register_actions":
        if not isinstance(args[0], Action):
            raise RegistrationError(f"register_actions expects an mspflow.Action, got {type(args[0]).__name__}")
        args[0].check()
    elif hook == "register_modules":
        if not isinstance(args[0], Module):
            raise RegistrationError(f"register_modules expects an mspflow.Module, got {type(args[0]).__name__}")
        args[0].check()
    elif hook == "register_availability" and (len(args) != 2 or not args[0] or not callable(args[1])):
        raise RegistrationError("register_availability expects register(key, resolver) with a callable resolver")
    elif hook == "register_receivers":
        from mspflow.inbound.receivers import Receiver

        if not isinstance(args[0], Receiver):
            raise RegistrationError(f"register_receivers expects an mspflow.Receiver, got {type(args[0]).__name__}")
        args[0].check()
    elif hook == "register_alert_sources":
        from mspflow.alerts.events import AlertSource

        if not isinstance(args[0], AlertSource):
            raise RegistrationError(
                f"register_alert_sources expects an mspflow.AlertSource, got {type(args[0]).__name__}")
        args[0].check()
    calls.append((hook, args))


def _claims(hook: str, args: tuple[Any, ...], owner: str) -> list[Claim]:
    """What one ``register(...)`` call asks ``owner`` to own."""
    if hook == "register_actions":
        return [Claim("namespace", namespace_of(args[0].id), owner, args[0].id)]
    if hook == "register_availability":
        return [Claim("resolver", args[0], owner, f"register_availability({args[0]!r})", value=args[1])]
    if hook == "register_modules":
        module: Module = args[0]
        found = [Claim("group", module.group_key, owner, module.group_key)]
        found += [Claim("namespace", namespace_of(a.id), owner, a.id) for a in module.actions]
        if module.availability is not None and not isinstance(module.availability, str):
            found.append(Claim("resolver", module.availability.key, owner, module.group_key,
                               value=module.availability, explicit=False))
        return found
    if hook == "register_receivers":
        return [Claim("receiver", args[0].provider, owner)]
    if hook == "register_alert_sources":
        return [Claim("alert source", args[0].provider, owner)]
    return []


def check_api(dist: Distribution) -> None:
    """Raise :class:`IncompatiblePlugin` unless ``dist`` requires an ``mspflow`` range this core is in."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    name = dist.metadata["Name"] or "this plugin"
    core = _core_version()
    ranges = []
    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == CORE and (req.marker is None or req.marker.evaluate({"extra": ""})):
            ranges.append(req.specifier)
    api = ".".join(map(str, PLUGIN_API_VERSION))
    if not any(str(r) for r in ranges):
        raise IncompatiblePlugin(
            f"{name} declares no supported mspflow range; its dependencies need e.g. "
            f"\"mspflow{supported_range()}\" (this is mspflow {core}, plugin API {api})")
    for spec in ranges:
        if not spec.contains(core, prereleases=True):
            raise IncompatiblePlugin(
                f"{name} is built for mspflow{spec}, not this mspflow {core} (plugin API {api}); install a "
                f"release of {name} built for mspflow{supported_range()}")


def supported_range() -> str:
    """The dependency range a plugin built against this core declares: ``>=0.2,<0.3`` (``>=1.4,<2`` from 1.0)."""
    major, minor = PLUGIN_API_VERSION
    return f">={major}.{minor},<{major}.{minor + 1}" if major == 0 else f">={major}.{minor},<{major + 1}"


def _identity(obj: Any) -> Any:
    return obj


def _summary(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return ep.name, ""
    return dist.metadata["Name"] or ep.name, dist.version or ""


@cache
def _core_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mspflow")
    except PackageNotFoundError:  # running from a source tree: the API version is all we know
        return "{}.{}.0".format(*PLUGIN_API_VERSION)
