"""The plugin contract, as a function a plugin's own tests call."""

from __future__ import annotations

import json
import re
from pathlib import Path

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


# Declaring a limit (``rate_limit=RateLimit(...)``) is the plugin's job; enforcing it is not.
PLUMBING = re.compile(r"time\.sleep|Retry-After|backoff|tenacity|stamina|redact|retry(?!able)|cache|while True|"
                      r"Semaphore|token_bucket", re.IGNORECASE)


def check_no_plumbing(package: Path) -> None:
    """Assert that a vendor package holds no retry loops, backoff, sleeps, throttling or redaction of its own.

    Those live once, in :mod:`mspflow.http`; a plugin's files hold its vendor's paths, shapes and auth choice.
    """
    files = sorted(package.rglob("*.py"))
    assert files, f"no sources under {package}"
    offences = [f"{f.relative_to(package.parent)}:{n}: {line.strip()}"
                for f in files for n, line in enumerate(f.read_text().splitlines(), 1) if PLUMBING.search(line)]
    assert not offences, (
        f"{package.name} must not hold its own retry loops, backoff, sleeps, throttling, token caching or "
        "scrubbing of secrets: the core's mspflow.http does that. Offending lines:\n  " + "\n  ".join(offences))
