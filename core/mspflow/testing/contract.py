"""The plugin contract, as a function a plugin's own tests call."""

from __future__ import annotations

import json

from mspflow.modules import Module
from mspflow.registry import Registry


def check_module(module: Module) -> None:
    """Assert that ``module`` registers cleanly on its own and describes itself fully.

    Checks: the definition is accepted by a fresh registry (twice: registration is idempotent),
    every action has a label and a description, and its input/output JSON Schemas are JSON-serializable.
    """
    registry = Registry()
    registry.add_module(module, "contract-check")
    registry.add_module(module, "contract-check")
    for action in module.actions:
        assert action.label.strip(), f"{action.key}: empty label"
        assert action.description.strip(), f"{action.key}: add a docstring or description= for the designer"
        json.dumps(action.input_schema)
        json.dumps(action.output_schema)
