"""Throwaway installed distributions for plugin-discovery tests.

A distribution here is what pip leaves behind: a module on ``sys.path`` and a ``.dist-info`` folder
with ``METADATA`` and ``entry_points.txt``, so ``importlib.metadata`` finds it exactly as it finds
``mspflow-ninjaone``. Nothing is monkeypatched in the registry.
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path
from types import TracebackType

import pytest

from mspflow.plugins import discover, supported_range

COMPATIBLE = f"mspflow{supported_range()}"
"""The ``Requires-Dist`` a plugin built for this core declares."""


class Distributions:
    def __init__(self, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.site = site
        self.monkeypatch = monkeypatch
        self.modules: list[str] = []
        self.entry_points: list[str] = []

    def __enter__(self) -> Distributions:
        self.site.mkdir(parents=True, exist_ok=True)
        self.monkeypatch.syspath_prepend(str(self.site))
        pythonpath = os.environ.get("PYTHONPATH")
        self.monkeypatch.setenv("PYTHONPATH", f"{self.site}{os.pathsep}{pythonpath}" if pythonpath
                                else str(self.site))
        self.monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", "")
        discover.cache_clear()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for name in self.modules:
            sys.modules.pop(name, None)
        discover.cache_clear()

    def install(self, dist: str, module: str, source: str, *, version: str = "1.0.0",
                entry_point: str | None = None, requires: str | None = COMPATIBLE) -> None:
        """Install distribution ``dist`` holding module ``module`` with entry point ``name = module``.

        ``requires`` is its ``Requires-Dist`` on mspflow (``None``: it declares none).
        """
        self.install_many(dist, {module: source}, {entry_point or module: module}, version=version,
                          requires=requires)

    def install_many(self, dist: str, modules: dict[str, str], entry_points: dict[str, str], *,
                     version: str = "1.0.0", requires: str | None = COMPATIBLE) -> None:
        """Install one distribution holding several modules (name -> source) and entry points (name -> module)."""
        for module, source in modules.items():
            (self.site / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        requires_line = f"Requires-Dist: {requires}\n" if requires else ""
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{requires_line}")
        (info / "entry_points.txt").write_text(
            "[mspflow]\n" + "".join(f"{name} = {module}\n" for name, module in entry_points.items()))
        (info / "RECORD").write_text("")
        self.modules += list(modules)
        self.entry_points += list(entry_points)
        # Only what this test installed: plugins installed in the environment (plugins/*) stay out.
        self.monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", ",".join(self.entry_points))
        importlib.invalidate_caches()
        discover.cache_clear()
