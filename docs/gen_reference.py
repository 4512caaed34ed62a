"""MkDocs hook (``hooks:`` in mkdocs.yml): reference pages generated from the code at build time.

``reference/cli.md`` is every command of the Typer app with its usage, help and options, and
``reference/hooks.md`` every hookspec with its signature and documented parameters. They are never
written to ``docs/`` nor committed, so a new command, option or hook cannot go undocumented.
``tests/test_docs.py`` and ``tests/test_hook_docs.py`` read the same output.
"""

from __future__ import annotations

import inspect
import re
from typing import Any


def _help(text: str | None) -> str:
    return _markdown(inspect.cleandoc(text or "").replace("\b\n", ""))


def _markdown(text: str) -> str:
    """reStructuredText roles and literals (``x``, :class:`x`) as Markdown code."""
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text.replace("``", "`"))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _commands(command: Any, path: tuple[str, ...], parent: Any) -> list[tuple[tuple[str, ...], Any, Any]]:
    """Every command under ``command`` (Typer bundles its own click: duck-typed, not isinstance)."""
    ctx = command.context_class(command, info_name=path[-1], parent=parent)
    found = [(path, command, ctx)]
    if hasattr(command, "commands"):
        for name in sorted(command.commands):
            found += _commands(command.commands[name], (*path, name), ctx)
    return found


def cli_reference() -> str:
    """Markdown for every command of ``mspflow`` (from the Typer app, as ``--help`` shows it)."""
    import typer

    from mspflow.cli import app

    root = typer.main.get_command(app)
    lines = ["# CLI reference", "",
             "Generated from the `mspflow` command itself when the documentation is built; "
             "[cli.md](../cli.md) walks through the common tasks.", ""]
    for path, command, ctx in _commands(root, ("mspflow",), None):
        if getattr(command, "hidden", False):
            continue
        name = " ".join(path)
        lines += [f"## `{name}`", "", _help(command.help), ""]
        usage = command.get_usage(ctx).removeprefix("Usage:").strip()
        usage = re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), usage)  # Typer writes {name}: NAME
        lines += ["```text", usage, "```", ""]
        if hasattr(command, "commands"):
            subs = [f"[`{name} {sub}`](#{_anchor(f'{name} {sub}')})" for sub in sorted(command.commands)]
            lines += ["Commands: " + ", ".join(subs), ""]
        params = [p for p in command.params if p.name != "help"]
        if params:
            lines += ["| argument or option | type | default | help |", "|---|---|---|---|"]
            for p in params:
                shown = ", ".join(f"`{o}`" for o in (*p.opts, *getattr(p, "secondary_opts", [])))
                if p.param_type_name == "argument":
                    shown = f"`{(p.name or '').upper()}`"
                shown += " (required)" if p.required else ""
                default = p.default if not callable(p.default) else None
                default_text = "" if default in (None, False, "", ()) or p.required else f"`{default}`"
                lines.append(f"| {shown} | {_cell(_type(p, ctx))} | {default_text} | "
                             f"{_cell(getattr(p, 'help', None) or '')} |")
            lines.append("")
    return "\n".join(lines)


def _type(param: Any, ctx: Any) -> str:
    """The parameter's type as ``--help`` shows it (Typer's own API, or click's)."""
    try:
        shown = param.display_type(ctx) if callable(getattr(param, "display_type", None)) else param.type.name
    except Exception:
        shown = getattr(getattr(param, "type", None), "name", "")
    return str(shown).strip("<>")


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", title.lower()).strip("-")


def hooks_reference() -> str:
    """Markdown for every hookspec of ``mspflow.hookspecs``: signature, docstring, parameters."""
    from mspflow import hookspecs

    marker = f"{hookspecs.PROJECT}_spec"
    lines = ["# Hooks reference", "",
             "Generated from `mspflow/hookspecs.py` when the documentation is built. Implement a hook with "
             "`@mspflow.hookimpl`; the [plugin guide](../plugin-guide.md#the-hooks) says which one to use.", ""]
    for name, fn in sorted(vars(hookspecs).items()):
        if not (callable(fn) and hasattr(fn, marker)):
            continue
        doc = inspect.getdoc(fn) or ""
        prose, params = [], []
        for line in doc.splitlines():
            match = re.match(r":param (\w+):\s*(.*)", line)
            if match:
                params.append([match.group(1), match.group(2)])
            elif params and line.startswith("    "):
                params[-1][1] += " " + line.strip()
            else:
                prose.append(line)
        signature = ", ".join(f"{p.name}: {p.annotation}".replace("'", "")
                              for p in inspect.signature(fn).parameters.values())
        lines += [f"## `{name}`", "", "```python", f"@hookimpl\ndef {name}({signature}) -> None: ...", "```", "",
                  _markdown("\n".join(prose).strip()), "", "| parameter | meaning |", "|---|---|"]
        lines += [f"| `{p}` | {_cell(_markdown(text))} |" for p, text in params]
        lines.append("")
    return "\n".join(lines)


PAGES = {"reference/cli.md": cli_reference, "reference/hooks.md": hooks_reference}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, make in PAGES.items():
        files.append(File.generated(config, path, content=make()))
    return files
