"""Tenant-scoped rows of the reference PSA schema, for business-operations plugins (``ctx.records``).

A plugin that does business work in the PSA (``plugins/psa``: tickets, clients, time, ...) reads and writes
the reference tables through this door instead of importing SQLAlchemy: every statement is filtered on the
call's tenant by the core (another tenant's id is simply *not found*), runs in the call's transaction (so
it commits with the call's result, or not at all), and names tables and columns that exist (a typo is an
``INTERNAL_ERROR``, never a query on something else).

Examples::

    ticket = ctx.records.get("tickets", ticket_id=params.ticket_id)          # None: no such ticket here
    rows = ctx.records.find("contacts", {"client_id": cid}, search=(["full_name", "email"], "ann"),
                            order_by=["full_name"], limit=25, offset=0)
    done = ctx.records.update("tickets", {"ticket_id": tid}, {"title": "x", "version": v + 1},
                              expect={"version": v})                        # 0: stale token, nothing written
    number = ctx.records.next_value("ticket_number")                         # per-tenant sequence, 1, 2, ...
    ctx.records.emit("TICKET_CREATED", {...})                                # an outbox event, same transaction
    ctx.records.audit({"ticket_id": tid})                                     # audit_log: actor, action, run
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mspflow.errors import ActionError

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Table
    from sqlalchemy.orm import Session

__all__ = ["TABLES", "Records"]

#: The tables a business-operations plugin may touch (each has a ``tenant`` column).
TABLES = frozenset({
    "users", "clients", "contacts", "tickets", "ticket_statuses", "ticket_comments", "ticket_attachments",
    "entity_links", "time_entries", "activity_notes", "projects", "project_tasks", "notifications",
    "email_messages", "schedule_entries", "schedule_entry_assignees", "assets", "rmm_alerts",
})

Where = Mapping[str, Any]


class Records:
    """The call's tenant's rows. ``where`` maps a column to a value (``None`` is IS NULL; a list or tuple is IN)."""

    def __init__(self, session: Callable[[], Session], tenant: str, *, actor: str = "service:mspflow",
                 action: tuple[str, int] | None = None, run_id: str | None = None,
                 invocation_id: str | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self._session = session
        self.tenant = tenant
        self.actor = actor
        self.action = action
        self.run_id = run_id
        self.invocation_id = invocation_id
        self._clock = clock

    # -- reading -----------------------------------------------------------------------------------------

    def get(self, table: str, *, for_update: bool = False, **key: Any) -> dict[str, Any] | None:
        """The one row matching ``key`` (e.g. ``ticket_id=...``) in this tenant, or None."""
        rows = self.find(table, key, limit=1, for_update=for_update)
        return rows[0] if rows else None

    def find(self, table: str, where: Where | None = None, *, search: tuple[Sequence[str], str] | None = None,
             order_by: Sequence[str] = (), limit: int | None = None, offset: int = 0,
             for_update: bool = False) -> list[dict[str, Any]]:
        """Rows matching ``where`` and, with ``search=(columns, text)``, whose columns contain ``text``
        (case-insensitive). ``order_by`` names columns, ``-name`` for descending."""
        from sqlalchemy import select

        t = self._table(table)
        stmt = select(t).where(*self._filters(t, where, search))
        for name in order_by:
            col = self._column(t, name.lstrip("-"))
            stmt = stmt.order_by(col.desc() if name.startswith("-") else col.asc())
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        if for_update:
            stmt = stmt.with_for_update()
        return [dict(r._mapping) for r in self._session().execute(stmt)]

    def count(self, table: str, where: Where | None = None, *,
              search: tuple[Sequence[str], str] | None = None) -> int:
        from sqlalchemy import func, select

        t = self._table(table)
        stmt = select(func.count()).select_from(t).where(*self._filters(t, where, search))
        return int(self._session().execute(stmt).scalar_one())

    def exists(self, table: str, where: Where) -> bool:
        return bool(self.find(table, where, limit=1))

    # -- writing -----------------------------------------------------------------------------------------

    def insert(self, table: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Insert one row for this tenant (defaults filled, ``tenant`` set by the core); returns it."""
        from sqlalchemy import insert

        t = self._table(table)
        row = {k: v for k, v in values.items()}
        for name in row:
            self._column(t, name)
        row["tenant"] = self.tenant
        for col in t.columns:  # Python-side defaults (ids, flags), so the caller sees the complete row
            if col.name not in row and col.default is not None and getattr(col.default, "is_scalar", False):
                row[col.name] = col.default.arg  # type: ignore[attr-defined]
            elif col.name not in row and col.default is not None and callable(getattr(col.default, "arg", None)):
                row[col.name] = col.default.arg({})  # type: ignore[attr-defined]
        if "created_at" in t.columns and "created_at" not in row:
            row["created_at"] = self.now()
        if "updated_at" in t.columns and "updated_at" not in row:
            row["updated_at"] = row["created_at"]
        self._session().execute(insert(t).values(**row))
        return row

    def update(self, table: str, key: Where, values: Mapping[str, Any], *, expect: Where | None = None) -> int:
        """Update the rows matching ``key`` (and ``expect``, a compare-and-swap); returns how many changed."""
        from sqlalchemy import update

        t = self._table(table)
        changes = dict(values)
        for name in changes:
            self._column(t, name)
        if "updated_at" in t.columns and "updated_at" not in changes:
            changes["updated_at"] = self.now()
        stmt = update(t).where(*self._filters(t, {**key, **(expect or {})}, None)).values(**changes)
        return int(self._session().execute(stmt).rowcount)  # type: ignore[attr-defined]

    def next_value(self, name: str) -> int:
        """The tenant's next value of the sequence ``name`` (1, 2, ...), taken under a row lock."""
        from sqlalchemy import insert, select, update

        from mspflow.db.models import RecordCounter as C

        session = self._session()
        where = (C.tenant == self.tenant, C.name == name)
        current = session.execute(select(C.value).where(*where).with_for_update()).scalar()
        if current is None:
            session.execute(insert(C).values(tenant=self.tenant, name=name, value=1))
            return 1
        session.execute(update(C).where(*where).values(value=current + 1))
        return int(current) + 1

    def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        """An outbox event for the host and for workflow triggers, in the call's transaction."""
        from mspflow import outbox

        return outbox.emit(self._session(), self.tenant, event_type,
                           {**payload, "run_id": self.run_id, "invocation_id": self.invocation_id})

    def audit(self, target_ids: Mapping[str, Any]) -> None:
        """Record this call in ``audit_log``: tenant, actor, action id and version, target ids, run id, time."""
        action_id, version = self.action or ("", 0)
        from mspflow.db.models import AuditLogEntry

        session = self._session()
        session.add(AuditLogEntry(tenant=self.tenant, actor=self.actor, action_id=action_id,
                                  action_version=version, target_ids=dict(target_ids), run_id=self.run_id,
                                  invocation_id=self.invocation_id, created_at=self.now()))
        session.flush()

    def now(self) -> datetime:
        from mspflow.clock import utcnow

        return (self._clock or utcnow)()

    # -- plumbing ----------------------------------------------------------------------------------------

    def _table(self, name: str) -> Table:
        from mspflow.db.models import Base

        if name not in TABLES:
            raise ActionError.internal(f"{name!r} is not a reference table a plugin may use")
        return Base.metadata.tables[name]

    @staticmethod
    def _column(table: Table, name: str) -> ColumnElement[Any]:
        if name == "tenant" or name not in table.columns:
            raise ActionError.internal(f"table {table.name!r} has no column {name!r} a plugin may set or query")
        return table.columns[name]

    def _filters(self, t: Table, where: Where | None,
                 search: tuple[Sequence[str], str] | None) -> list[ColumnElement[bool]]:
        from sqlalchemy import func, or_

        out: list[ColumnElement[bool]] = [t.columns["tenant"] == self.tenant]
        for name, value in (where or {}).items():
            col = self._column(t, name)
            if value is None:
                out.append(col.is_(None))
            elif isinstance(value, (list, tuple, set, frozenset)):
                out.append(col.in_(list(value)))
            else:
                out.append(col == value)
        if search is not None and search[1]:
            columns, text = search
            pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            out.append(or_(*(func.lower(self._column(t, c)).like(pattern, escape="\\") for c in columns)))
        return out
