"""Testing helpers for plugin authors (the ``mspflow`` pytest plugin is loaded automatically).

Fixtures: ``mspflow_db`` (a migrated SQLite database in a temporary directory), ``mspflow_app``
(an :class:`mspflow.App` on it with every installed plugin loaded strictly) and ``mspflow_connect``
(``mspflow_connect(tenant, provider)`` marks an integration connected). :class:`PluginContract` is the
contract suite a plugin runs in one line (``class TestContract(PluginContract): module = acme``; see
:mod:`mspflow.testing.suite`); :func:`check_module` checks a module definition on its own;
:func:`check_imports` keeps a plugin to the public API (the import rule), which also keeps transports,
retries, throttling and redaction out of it. :func:`mount` routes a vendor's real base URL to its
simulator's transport in this process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mspflow.testing.contract import check_module
from mspflow.testing.imports import check_imports, import_offences
from mspflow.vendor.transport import mount, unmount

if TYPE_CHECKING:
    from mspflow.testing.suite import PluginContract

__all__ = ["PluginContract", "check_imports", "check_module", "import_offences", "mount", "unmount"]


def __getattr__(name: str) -> Any:
    if name == "PluginContract":  # imports pytest and Hypothesis: only for tests, never for `mspflow sim serve`
        from mspflow.testing.suite import PluginContract

        return PluginContract
    raise AttributeError(f"module 'mspflow.testing' has no attribute {name!r}")
