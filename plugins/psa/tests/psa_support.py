"""Helpers for mspflow-psa's tests: the app with seeded records of two tenants (imported by name, so it never
collides with another plugin's conftest when every suite runs in one pytest)."""

from __future__ import annotations

from typing import Any

from mspflow import outbox
from mspflow.app import App
from mspflow.errors import ActionError
from mspflow.runtime import ActionResult

TENANT, OTHER = "acme", "globex"


class Desk:
    """The app plus seeded records for two tenants: users, clients, contacts."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.ids: dict[str, str] = {}

    def run(self, action: str, input: dict[str, Any], *, tenant: str = TENANT, **call: Any) -> ActionResult:
        return self.app.execute(action, tenant=tenant, input=input, **call)

    def ok(self, action: str, input: dict[str, Any], **call: Any) -> dict[str, Any]:
        result = self.run(action, input, **call)
        assert result.ok, result.error and result.error.to_dict()
        assert result.output is not None
        return result.output

    def fail(self, action: str, input: dict[str, Any], **call: Any) -> ActionError:
        result = self.run(action, input, **call)
        assert not result.ok and result.error is not None, result.output
        return result.error

    def add(self, model: str, **values: Any) -> Any:
        from mspflow.db import models

        with self.app.db.session() as s:
            row = getattr(models, model)(**values)
            s.add(row)
            s.flush()
            return row

    def rows(self, table: str, tenant: str = TENANT) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from mspflow.db.models import Base

        t = Base.metadata.tables[table]
        with self.app.db.session() as s:
            return [dict(r._mapping) for r in s.execute(select(t).where(t.c.tenant == tenant))]

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self.app.db.session() as s:
            return outbox.pending(s, event_type=event_type, limit=1000)

    def ticket(self, **extra: Any) -> dict[str, Any]:
        return self.ok("tickets.create", {"title": "Disk almost full", **extra})["ticket"]
