"""Testing helpers for plugin authors (the ``mspflow`` pytest plugin is loaded automatically).

Fixtures: ``mspflow_db`` (a migrated SQLite database in a temporary directory), ``mspflow_app``
(an :class:`mspflow.App` on it with every installed plugin loaded strictly) and ``mspflow_connect``
(``mspflow_connect(tenant, provider)`` marks an integration connected). :func:`check_module` runs the
plugin contract against a module definition; :func:`check_no_plumbing` keeps retries, throttling and
redaction out of a vendor package.
"""

from mspflow.testing.contract import check_module, check_no_plumbing

__all__ = ["check_module", "check_no_plumbing"]
