"""The host API: one object a PSA (or the CLI) holds for the life of the process.

Examples::

    from mspflow import App

    app = App.from_env()                     # MSPFLOW_DATABASE_URL, plugins from entry points
    palette = app.catalog("acme").palette    # tiles the tenant may use
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mspflow.catalog import Catalog
    from mspflow.db.engine import Database
    from mspflow.plugins import Plugins
    from mspflow.registry import Registry
    from mspflow.secrets import SecretStore


class App:
    """Plugins, registry and database together.

    :param db: the database; defaults to ``MSPFLOW_DATABASE_URL`` or the embedded SQLite file.
    :param plugins: a loaded plugin set; defaults to every installed entry point plus built-ins.
    """

    def __init__(self, db: Database | None = None, plugins: Plugins | None = None,
                 secrets: SecretStore | None = None) -> None:
        self._db = db
        self._plugins = plugins
        self._secrets = secrets
        self._schema_checked = False

    @classmethod
    def from_env(cls) -> App:
        return cls()

    @cached_property
    def plugins(self) -> Plugins:
        if self._plugins is None:
            from mspflow.plugins import Plugins

            self._plugins = Plugins()
        return self._plugins

    @property
    def registry(self) -> Registry:
        return self.plugins.registry

    @property
    def db(self) -> Database:
        """The database, with its schema made current on first use (embedded default only)."""
        if self._db is None:
            from mspflow.db.engine import Database

            self._db = Database()
        if not self._schema_checked:
            from mspflow.db.migrate import ensure_schema

            ensure_schema(self._db)
            self._schema_checked = True
        return self._db

    @property
    def secrets(self) -> SecretStore:
        if self._secrets is None:
            from mspflow.secrets import DatabaseSecretStore, load_fernet

            self._secrets = DatabaseSecretStore(load_fernet(self.db))
        return self._secrets

    def catalog(self, tenant: str) -> Catalog:
        """Every module with its availability for ``tenant``; ``.palette`` holds the available ones."""
        from mspflow.catalog import build_catalog

        with self.db.sessions() as session:
            return build_catalog(self.registry, session, tenant)

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
