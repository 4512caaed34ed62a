"""Printing for every command: JSON, tables, one-line errors, warnings, and the App with its guards.

Imports only the standard library and Typer at module level: each command imports what it uses.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from mspflow.app import App

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

#: A width no table reaches: piped output is never cut or folded to fit a terminal.
PIPE_WIDTH = 100_000


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def report(message: str, *, as_json: bool = False, code: str = "ERROR") -> None:
    """``error: <message>`` on stderr, one line; with ``as_json`` also ``{"error": {code, message}}``."""
    if as_json:
        print_json({"error": {"code": code, "message": message}})
    typer.echo(f"error: {one_line(message)}", err=True)


def fail(message: str, *, as_json: bool = False, code: str = "ERROR") -> NoReturn:
    """Report a failure and exit 1."""
    report(message, as_json=as_json, code=code)
    raise typer.Exit(1)


def warn(message: str) -> None:
    typer.echo(f"warning: {one_line(message)}", err=True)


def note(message: str) -> None:
    typer.echo(f"note: {one_line(message)}", err=True)


def one_line(text: str) -> str:
    """``text`` as a single line: newlines become spaces, surrounding blanks go."""
    return " ".join(text.split("\n")).strip() if "\n" in text else text.strip()


def console() -> Any:
    """A rich console for stdout; when stdout is not a terminal, wide enough that tables are never cut."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=PIPE_WIDTH, soft_wrap=True)


def table(*columns: str, title: str, ids: tuple[str, ...] = ()) -> Any:
    """A rich table whose ``ids`` columns are never shortened (they fold onto a second line at worst)."""
    from rich.table import Table

    out = Table(title=title)
    for name in columns:
        if name in ids:
            out.add_column(name, no_wrap=True, overflow="fold")
        else:
            out.add_column(name)
    return out


# -- the App, with plugin load errors and database problems reported in one line --------------------


def load(as_json: bool = False) -> App:
    """The App, with plugin load errors reported on stderr (strict mode turns them into a failure)."""
    from mspflow.app import App
    from mspflow.plugins import PluginLoadFailure

    instance = App.from_env()
    try:
        errors = instance.plugins.errors
    except PluginLoadFailure as exc:
        fail(str(exc), as_json=as_json, code="PLUGIN_LOAD_ERROR")
    if errors:
        warn(f"{len(errors)} plugin(s) failed to load; see `mspflow plugins`")
    return instance


def db_guard(as_json: bool, instance: App) -> None:
    """Touch the database once (creating or checking the schema) and report any problem in one line."""
    try:
        instance.db  # noqa: B018 - first touch creates or checks the schema
    except Exception as exc:
        described = describe_failure(exc)
        if described is None:
            raise
        fail(described[1], as_json=as_json, code=described[0])


def describe_failure(exc: BaseException) -> tuple[str, str] | None:
    """(code, one-line message) for a failure an operator can fix (database URL, file, schema), else None."""
    from mspflow.db.errors import DatabaseProblem, database_problem

    if isinstance(exc, DatabaseProblem):
        return exc.code, str(exc)
    from mspflow.db.migrate import SchemaNotCurrent

    if isinstance(exc, SchemaNotCurrent):
        return "SCHEMA_NOT_CURRENT", str(exc)
    problem = database_problem(exc)
    return None if problem is None else (problem.code, str(problem))


# -- process set-up --------------------------------------------------------------------------------------


class OneLineFormatter(logging.Formatter):
    """Warnings as ``warning: <message> (<ExceptionType>: <first line>)``: an expected fault (a resolver
    that cannot read its table, a busy database) is one line, not a stack. Errors keep their detail.

    Set ``MSPFLOW_LOG_TRACEBACKS=1`` to see warnings' tracebacks too.
    """

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.ERROR:
            return f"{record.levelname.lower()}: {super().format(record)}"
        text = one_line(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
            text += f" ({type(exc).__name__}: {first})" if first else f" ({type(exc).__name__})"
        return f"{record.levelname.lower()}: {text}"


def setup_process() -> None:
    """Logging to stderr as one line per record, and no pydantic plugin scan (a CLI has no use for it)."""
    # pydantic scans every installed distribution's entry points for its own plugins the first time a
    # model is validated; the CLI pays that on every start. An explicit setting still wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    root = logging.getLogger()
    if root.handlers:  # embedded (a test or a host called main()): leave their logging alone
        return
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("MSPFLOW_LOG_TRACEBACKS") == "1":
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(OneLineFormatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def undecodable_argument(argv: list[str]) -> str | None:
    """A message naming the first argument that is not valid UTF-8 (Python keeps such bytes as surrogates)."""
    for i, arg in enumerate(argv):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            name = argv[i - 1] if i and argv[i - 1].startswith("--") and "=" not in argv[i - 1] else None
            if name is None and arg.startswith("--") and "=" in arg:
                name = arg.split("=", 1)[0]
            where = f"the value of {name}" if name else f"argument {i + 1}"
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            return f"{where} is not valid UTF-8: '{shown}'"
    return None
