"""The documentation site cannot drift: its reference pages come from the code, and they show all of it.

``docs/gen_reference.py`` (an MkDocs hook) writes the CLI and hooks reference at build time; these tests
read the same output, so a command, option or hookspec missing from the built docs fails here, and
``nox -s docs`` (CI) builds the site in strict mode.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@cache
def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def reference(kind: str) -> str:
    """The generated page ``reference/<kind>.md`` (``cli`` or ``hooks``), as the site build writes it."""
    return str(_generator().PAGES[f"reference/{kind}.md"]())


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[str, Any]]:
    found = [(" ".join(path), command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _walk(sub, (*path, name))
    return found


def _cli_commands() -> list[tuple[str, Any]]:
    import typer

    from mspflow.cli import app

    return [c for c in _walk(typer.main.get_command(app), ("mspflow",)) if not getattr(c[1], "hidden", False)]


def _section(page: str, title: str) -> str:
    parts = page.split(f"\n## `{title}`\n", 1)
    assert len(parts) == 2, f"the CLI reference has no section for `{title}`"
    return parts[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("name", [name for name, _ in _cli_commands()])
def test_every_command_and_option_is_in_the_cli_reference(name: str) -> None:
    command = dict(_cli_commands())[name]
    body = _section(reference("cli"), name)
    assert (command.help or "").strip().split("\n")[0][:40] in body, f"{name}: its help is not shown"
    for param in command.params:
        if param.name == "help":
            continue
        shown = f"`{param.name.upper()}`" if param.param_type_name == "argument" else f"`{param.opts[0]}`"
        assert shown in body, f"{name}: {shown} is missing from the CLI reference"


def test_new_plugin_is_documented_with_its_options() -> None:
    body = _section(reference("cli"), "mspflow new-plugin")
    assert "`NAME` (required)" in body and "`--dir`" in body


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = set(re.findall(r":\s+([\w/-]+\.md)\s*$", config, flags=re.MULTILINE))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    generated = set(_generator().PAGES)
    assert pages - nav == set(), "pages missing from the nav in mkdocs.yml"
    assert nav - pages - generated == set(), "nav entries without a page"
    assert not generated & pages, "a generated page is committed; it is written at build time"
    assert "strict: true" in config and "docs/gen_reference.py" in config


def test_the_plugin_guide_starts_outside_this_repository() -> None:
    guide = (DOCS / "plugin-guide.md").read_text()
    first_block = guide.split("```sh\n", 1)[1].split("```", 1)[0]
    assert "pip install mspflow" in first_block and "mspflow new-plugin acme" in first_block
    assert "pip install -e '.[test]'" in first_block and "pytest" in first_block
    assert "plugins/" not in first_block  # no path of this repository


def test_ci_builds_the_docs_strictly() -> None:
    assert re.search(r"^\./dev docs ", (ROOT / ".ci" / "run").read_text(), flags=re.MULTILINE)
    noxfile = (ROOT / "noxfile.py").read_text()
    assert "def docs(" in noxfile and '"mkdocs", "build", "--strict"' in noxfile
