"""The plugin-author helpers in mspflow.testing catch what they promise to catch."""

from __future__ import annotations

import pytest

from mspflow.testing import check_module
from tests.factories import rmm_module


def test_check_module_wants_descriptions() -> None:
    check_module(rmm_module("acme"))
    bare = rmm_module("bare")
    object.__setattr__(bare.actions[0], "description", "")
    with pytest.raises(AssertionError, match="docstring"):
        check_module(bare)
