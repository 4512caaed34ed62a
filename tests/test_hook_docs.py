"""Every hook documented, and tested — by test, for whatever hooks ``mspflow.hookspecs`` declares.

A hookspec fails here when its docstring lacks a ``:param name:`` line for a parameter of its real
signature (or says nothing about when it is called), when the generated hooks reference does not show
it with its parameters, or when no test in ``tests/`` calls it: ``pm.hook.<name>(...)``, or implements it
with ``@hookimpl`` so that the loader's registration path calls it. A hook added tomorrow
(``register_receivers``, ``register_alert_sources``) is checked without editing this file.
"""

from __future__ import annotations

import ast
import inspect
import types
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mspflow import hookspecs
from tests.test_docs import reference

TESTS = Path(__file__).resolve().parent


def hookspecs_of(module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    marker = f"{hookspecs.PROJECT}_spec"
    return {name: fn for name, fn in vars(module).items() if callable(fn) and hasattr(fn, marker)}


def documentation_gaps(fn: Callable[..., Any]) -> list[str]:
    doc = inspect.getdoc(fn) or ""
    gaps = [f"no ':param {p}:' line" for p in inspect.signature(fn).parameters if f":param {p}:" not in doc]
    if "Called" not in doc:
        gaps.append("no sentence saying when it is Called")
    return gaps


@cache
def _calls_and_impls(root: Path) -> tuple[frozenset[str], frozenset[str]]:
    """Hook names called as ``<x>.hook.<name>`` and hook names implemented with ``@hookimpl`` in ``root``."""
    called: set[str] = set()
    implemented: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "hook":
                called.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                    (isinstance(d, ast.Name) and d.id == "hookimpl")
                    or (isinstance(d, ast.Attribute) and d.attr == "hookimpl")
                    or (isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", "")) == "hookimpl")
                    for d in node.decorator_list):
                implemented.add(node.name)
    return frozenset(called), frozenset(implemented)


def is_tested(name: str, root: Path = TESTS) -> bool:
    called, implemented = _calls_and_impls(root)
    return name in called or name in implemented


HOOKS = hookspecs_of(hookspecs)


def test_there_are_hooks() -> None:
    assert "register_modules" in HOOKS and len(HOOKS) >= 4


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_documents_every_parameter(name: str) -> None:
    gaps = documentation_gaps(HOOKS[name])
    assert not gaps, f"hookspec {name}: {'; '.join(gaps)} (mspflow/hookspecs.py)"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_in_the_hooks_reference(name: str) -> None:
    page = reference("hooks")
    section = page.split(f"## `{name}`", 1)
    assert len(section) == 2, f"docs: the hooks reference has no section for {name}"
    body = section[1].split("\n## ", 1)[0]
    for param in inspect.signature(HOOKS[name]).parameters:
        assert f"`{param}`" in body, f"docs: the {name} section does not name its parameter {param}"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_called_by_a_test(name: str) -> None:
    assert is_tested(name), (f"no test in tests/ calls hook {name}: call pm.hook.{name}(...) or register a test "
                             "plugin implementing it with @hookimpl")


def test_the_checks_bite_on_a_planted_hook(tmp_path: Path) -> None:
    planted = types.ModuleType("planted_hookspecs")
    exec(  # a hookspec module written for this test
        "from mspflow.hookspecs import hookspec\n"
        "@hookspec\n"
        "def register_receivers(register, verify):\n"
        "    '''Register inbound receivers.\n\n    :param register: call it with each receiver.\n    '''\n",
        planted.__dict__)
    found = hookspecs_of(planted)
    assert list(found) == ["register_receivers"]
    assert documentation_gaps(found["register_receivers"]) == ["no ':param verify:' line",
                                                              "no sentence saying when it is Called"]
    (tmp_path / "test_x.py").write_text("def test_it(pm):\n    pm.hook.register_alert_sources(register=print)\n"
                                        "@hookimpl\ndef register_actions(register): ...\n")
    assert not is_tested("register_receivers", tmp_path)
    assert is_tested("register_alert_sources", tmp_path) and is_tested("register_actions", tmp_path)
