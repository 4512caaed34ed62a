"""``mspflow new-plugin NAME``: a working plugin distribution to start an integration from.

It writes, from the templates in ``mspflow/templates/plugin``::

    mspflow-acme/
      pyproject.toml              the one entry-point line and the compatible core range
      README.md
      mspflow_acme/__init__.py    the tile, its availability, the vendor, one read and one side-effectful action
      mspflow_acme/sim.py         a small simulator of the vendor (``mspflow sim serve acme``)
      tests/test_contract.py      the plugin contract, in one line (mspflow.testing.PluginContract)
      tests/test_actions.py       the two actions against the simulator

and its tests pass as written (``pip install -e '.[test]' && pytest``).

Examples::

    new_plugin("acme")                          # ./mspflow-acme
    new_plugin("acme_rmm", Path("/src/acme"))   # distribution mspflow-acme-rmm, package mspflow_acme_rmm
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates" / "plugin"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
RESERVED = frozenset({"mspflow", "app", "core", "builtin", "test", "tests", "transform", "scheduling"})


class ScaffoldError(ValueError):
    """The plugin cannot be created; the message says what to change."""


def core_requirement() -> str:
    """The core range a plugin built against this core declares (``mspflow>=0.2,<0.3`` for plugin API 0.2),
    as :func:`mspflow.plugins.supported_range` says and the loader checks."""
    from mspflow.plugins import supported_range

    return f"mspflow{supported_range()}"


def check_name(name: str) -> None:
    """Raise :class:`ScaffoldError` unless ``name`` makes a valid provider, package and distribution name."""
    if name.startswith("mspflow"):
        raise ScaffoldError(f"give the vendor's name, not the distribution's: {name!r} -> "
                            f"{name.removeprefix('mspflow').lstrip('-_') or 'acme'!r} (the distribution will be "
                            f"mspflow-<name>)")
    if not NAME.match(name) or keyword.iskeyword(name) or name.endswith("_") or "__" in name:
        raise ScaffoldError(
            f"{name!r} is not a valid plugin name: use 2 to 40 lowercase letters, digits and single underscores, "
            "starting with a letter (it becomes the provider, the action-id prefix, the package mspflow_<name> "
            "and the distribution mspflow-<name>), e.g. acme or acme_rmm")
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} is reserved by mspflow; pick the vendor's name")


def new_plugin(name: str, directory: Path | None = None) -> list[Path]:
    """Write the plugin distribution for ``name`` into ``directory`` (default ``./mspflow-<name>``), which
    must not exist; returns the files written."""
    check_name(name)
    dist, package = f"mspflow-{name.replace('_', '-')}", f"mspflow_{name}"
    target = Path(directory) if directory is not None else Path.cwd() / dist
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose a new directory with --dir")
    words = name.split("_")
    values = {"name": name, "dist": dist, "package": package, "requirement": core_requirement(),
              "label": " ".join(w.capitalize() for w in words), "cls": "".join(w.capitalize() for w in words),
              "host": name.replace("_", "-")}
    written: list[Path] = []
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATES).with_suffix("")
        if relative.parts[0] == "package":
            relative = Path(package, *relative.parts[1:])
        text = template.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return written
