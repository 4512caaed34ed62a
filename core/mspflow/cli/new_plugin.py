"""``mspflow new-plugin NAME``: scaffold a plugin distribution (the work is :mod:`mspflow.scaffold`'s)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mspflow.cli import app
from mspflow.cli._output import fail


@app.command("new-plugin")
def new_plugin_cmd(
    name: Annotated[str, typer.Argument(help="The vendor's name: provider, action-id prefix, package mspflow_NAME.")],
    directory: Annotated[Path | None, typer.Option("--dir", help="Where to create it (default ./mspflow-NAME).")
                         ] = None,
) -> None:
    """Scaffold a plugin distribution whose own tests pass: tile, two actions, simulator, contract test."""
    from mspflow.scaffold import ScaffoldError, new_plugin

    try:
        written = new_plugin(name, directory)
    except ScaffoldError as exc:
        fail(str(exc))
    root = Path(os.path.commonpath(written))
    typer.echo(f"created {root} ({len(written)} files); next: cd {root} && pip install -e '.[test]' && pytest")
