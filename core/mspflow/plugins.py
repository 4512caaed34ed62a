"""Plugin discovery and loading.

Plugins are found through the entry-point group ``mspflow`` (scanned once per process). Each entry
point is imported and registered on its own: one that fails to import or to register becomes a
:class:`LoadError` (shown by ``mspflow plugins``) and the others still load. Built-in plugins
(the core's own actions) register through the very same hooks.

Environment:

``MSPFLOW_LOAD_PLUGINS=name,name``
    load only these entry points (empty string: none); built-ins always load.
``MSPFLOW_STRICT_PLUGINS=1``
    any load error raises :class:`PluginLoadFailure` (tests and CI use this).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, partial
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from mspflow import hookspecs
from mspflow.registry import Registry

log = logging.getLogger("mspflow.plugins")

GROUP = "mspflow"
BUILTIN_PLUGINS = ("mspflow.builtin",)
HOOK_ORDER = (
    "register_actions", "register_availability", "register_modules", "register_permission_checker",
    "register_receivers",
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

        eps = selected(discover(), os.environ.get("MSPFLOW_LOAD_PLUGINS")) if entry_points is None \
            else list(entry_points)
        for name in BUILTIN_PLUGINS:
            self._add(name, partial(import_module, name),
                      PluginInfo(name, "mspflow", _core_version(), builtin=True))
        for ep in eps:
            dist, version = _dist_of(ep)
            self._add(ep.name, ep.load, PluginInfo(ep.name, dist, version), entry_point=ep)
        for name, obj in extra:
            self._add(name, partial(_identity, obj), PluginInfo(name, name, ""))
        self._register_all()

        if self.errors and (strict_mode() if strict is None else strict):
            raise PluginLoadFailure(self.errors)

    # -- loading ------------------------------------------------------------------------------------

    def _add(self, name: str, load: Callable[[], Any], info: PluginInfo,
             entry_point: EntryPoint | None = None) -> None:
        try:
            plugin = load()
            self.pm.register(plugin, name=name)
            self.pm.check_pending()  # a misspelt hook name (register_module) is an error, not a no-op
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not stop the host
            self._fail(info, entry_point, exc)
            return
        self.info[name] = info

    def _register_all(self) -> None:
        registering: dict[str, Callable[..., None]] = {
            "register_actions": self.registry.add_action,
            "register_availability": self.registry.add_resolver,
            "register_modules": self.registry.add_module,
            "register_permission_checker": self.registry.set_permission_checker,
            "register_receivers": self.registry.add_receiver,
        }
        for hook_name in HOOK_ORDER:
            # Call each plugin's implementation on its own so one failure is attributed and isolated.
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                name = impl.plugin_name
                if name in self._failed:
                    continue
                info = self.info[name]
                register = partial(registering[hook_name], owner=info.distribution)
                try:
                    impl.function(*[register for _ in impl.argnames])  # pluggy allows leaving it out
                except (Exception, SystemExit) as exc:
                    self._fail(info, None, exc)
        for name, info in self.info.items():
            if name in self._failed:
                continue
            owned = info.distribution
            info.modules = [m for m in self.registry.modules if self.registry.owner_of("module", m) == owned]
            info.action_count = sum(
                1 for k in self.registry.actions if self.registry.owner_of("action", k) == info.distribution
            )

    def _fail(self, info: PluginInfo, entry_point: EntryPoint | None, exc: BaseException) -> None:
        target = entry_point.value if entry_point is not None else info.name
        error = LoadError(info.distribution, info.version, f"{info.name} = {target}", _summary(exc))
        log.error("mspflow plugin failed to load: %s", error, exc_info=exc)
        self.errors.append(error)
        self._failed.add(info.name)
        self.info.pop(info.name, None)
        self.registry.remove_owner(info.distribution)
        if self.pm.has_plugin(info.name):
            self.pm.unregister(name=info.name)

    @property
    def loaded(self) -> list[PluginInfo]:
        return list(self.info.values())


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
    except PackageNotFoundError:
        return "0+unknown"
