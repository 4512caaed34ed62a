"""The plugin import rule, checked from the AST: a plugin reaches the core only through ``mspflow``.

A plugin's non-test code may import ``mspflow`` (its public names: ``from mspflow import Vendor``),
``pydantic``, the standard library and its own package. Its simulator (``sim.py`` or a ``sim``
package) may also import ``mspflow.testing…`` and ``httpx``. Everything else — ``mspflow.db``,
``sqlalchemy``, ``httpx`` in an action module — means the plugin does by hand what the core should
offer once, for every plugin; ask for it to be added to the public API instead.

Examples::

    from mspflow.testing import check_imports

    def test_the_plugin_uses_only_the_public_api():
        check_imports(Path(mspflow_acme.__file__).parent)
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PLUGIN_ALLOWED = ("mspflow", "pydantic", "pydantic_core", "typing_extensions", "annotated_types")
SIMULATOR_ALLOWED = (*PLUGIN_ALLOWED, "mspflow.testing", "httpx")


@dataclass(frozen=True)
class ImportOffence:
    file: Path
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: imports {self.module}"


def _is_simulator(path: Path, package: Path) -> bool:
    parts = path.relative_to(package).parts
    return parts[0] in ("sim.py", "sim")


def _allowed(module: str, allowed: tuple[str, ...], own: str) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == own or module == "mspflow":
        return True
    return any(module == a or (a != "mspflow" and module.startswith(a + ".")) for a in allowed)


def import_offences(package: Path) -> list[ImportOffence]:
    """Every import in the package at ``package`` that the plugin import rule does not allow."""
    import mspflow

    public = set(mspflow.__all__)
    own = package.name
    found: list[ImportOffence] = []
    for path in sorted(package.rglob("*.py")):
        allowed = SIMULATOR_ALLOWED if _is_simulator(path, package) else PLUGIN_ALLOWED
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:  # relative: the plugin's own package
                base = node.module or ""
                # ``from mspflow import db`` reaches a submodule just like ``import mspflow.db``
                modules = [base if base != "mspflow" or a.name in public else f"mspflow.{a.name}"
                           for a in node.names]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "mspflow" and node.attr not in public:
                modules = [f"mspflow.{node.attr}"]
            line = getattr(node, "lineno", 0)
            found += [ImportOffence(path, line, m) for m in modules if not _allowed(m, allowed, own)]
    return found


def check_imports(package: Path) -> None:
    """Assert the plugin package at ``package`` follows the import rule (see this module's docstring)."""
    offences = import_offences(package)
    assert not offences, (
        f"{package.name} reaches past mspflow's public API. A plugin imports mspflow (its public names), pydantic "
        "and the standard library; its simulator may also import mspflow.testing and httpx. Offending imports:\n  "
        + "\n  ".join(map(str, offences)))
