"""The plugin-author helpers in mspflow.testing catch what they promise to catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from mspflow.testing import check_module, check_no_plumbing
from tests.factories import rmm_module


@pytest.mark.parametrize("line", ["time.sleep(2 ** attempt)", "for attempt in tenacity.Retrying():",
                                  "delay = response.headers['Retry-After']", "TOKEN_CACHE = {}",
                                  "while True:", "text = redact(text)"])
def test_check_no_plumbing_names_the_offending_line(tmp_path: Path, line: str) -> None:
    package = tmp_path / "mspflow_acme"
    package.mkdir()
    (package / "__init__.py").write_text(f'"""Acme."""\nraise_on = "retryable"\n{line}\n')
    with pytest.raises(AssertionError, match=r"mspflow_acme/__init__.py:3"):
        check_no_plumbing(package)
    (package / "__init__.py").write_text('"""Acme."""\nerr = dict(retryable=False)\n')
    check_no_plumbing(package)


def test_check_module_wants_descriptions() -> None:
    check_module(rmm_module("acme"))
    bare = rmm_module("bare")
    object.__setattr__(bare.actions[0], "description", "")
    with pytest.raises(AssertionError, match="docstring"):
        check_module(bare)
