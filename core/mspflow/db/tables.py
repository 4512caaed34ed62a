"""Lightweight SQLAlchemy Core views of the tables hot read paths query, without the ORM models.

Importing :mod:`mspflow.db.models` builds every declarative class (tens of milliseconds at each
process start); the catalog's availability queries and the CLI's "does this tenant have records"
check need three tables and a handful of columns, so they use these ``table()`` clauses instead.
Names and types match :mod:`mspflow.db.models` (a test holds them equal); only the columns read here
are listed. Writes and everything else keep using the ORM models.
"""

from __future__ import annotations

from sqlalchemy import Boolean, DateTime, String, column, table

rmm_integrations = table(
    "rmm_integrations",
    column("tenant", String(255)),
    column("provider", String(64)),
    column("is_active", Boolean),
    column("connected_at", DateTime(timezone=True)),
)

tenant_addons = table(
    "tenant_addons",
    column("tenant", String(255)),
    column("addon_key", String(64)),
    column("expires_at", DateTime(timezone=True)),
)

teams_integrations = table(
    "teams_integrations",
    column("tenant", String(255)),
    column("install_status", String(32)),
)

ALL = (rmm_integrations, tenant_addons, teams_integrations)
