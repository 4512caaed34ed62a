"""Database access: the reference schema, engine set-up and migrations.

``MSPFLOW_DATABASE_URL`` selects the database. Unset, mspflow uses a SQLite file in ``MSPFLOW_HOME``
(default ``~/.local/share/mspflow``); ``postgresql+psycopg://user@host/db`` is the production path.
"""

from mspflow.db.engine import Database, database_url, default_home

__all__ = ["Database", "database_url", "default_home"]
