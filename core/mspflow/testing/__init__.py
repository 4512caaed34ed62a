"""Testing helpers for plugin authors (the ``mspflow`` pytest plugin is loaded automatically).

Fixtures: ``mspflow_db`` (a migrated SQLite database in a temporary directory), ``mspflow_app``
(an :class:`mspflow.App` on it with every installed plugin loaded strictly) and ``mspflow_connect``
(``mspflow_connect(tenant, provider)`` marks an integration connected). :func:`check_module` runs the
plugin contract against a module definition; :func:`check_imports` keeps a plugin to the public API
(the import rule), which also keeps transports, retries, throttling and redaction out of it.
:func:`mount` routes a vendor's real base URL to its simulator's transport in this process.
"""

from mspflow.testing.contract import check_module
from mspflow.testing.imports import check_imports, import_offences
from mspflow.vendor.transport import mount, unmount

__all__ = ["check_imports", "check_module", "import_offences", "mount", "unmount"]
