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
             iexact: Mapping[str, str] | None = None, order_by: Sequence[str] = (), limit: int | None = None,
             offset: int = 0, for_update: bool = False) -> list[dict[str, Any]]:
        """Rows matching ``where``; with ``search=(columns, text)``, whose columns contain ``text``; with
        ``iexact``, whose columns equal the values (both case-insensitive). ``order_by`` names columns,
        ``-name`` for descending."""
        from sqlalchemy import func, select

        t = self._table(table)
        stmt = select(t).where(*self._filters(t, where, search))
        for name, value in (iexact or {}).items():
            stmt = stmt.where(func.lower(self._column(t, name)) == value.lower())
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
        """The tenant's next value of the sequence ``name`` (1, 2, ...), taken under a row lock (two calls
        creating a tenant's very first ticket at once both get a number, never the same one)."""
        from sqlalchemy import select, update
        from sqlalchemy.dialects import postgresql, sqlite

        from mspflow.db.models import RecordCounter as C

        session = self._session()
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(C).values(tenant=self.tenant, name=name, value=0).on_conflict_do_nothing())
        where = (C.tenant == self.tenant, C.name == name)
        current = int(session.execute(select(C.value).where(*where).with_for_update()).scalar_one())
        session.execute(update(C).where(*where).values(value=current + 1))
        return current + 1

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


# -- read views for the operator's CLI (`mspflow tickets list|show`), on the reference schema -----------------


def ticket_list(session: Session, tenant: str, *, status: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """The tenant's tickets, newest first, with their status name (``status`` filters on it, case-insensitive)."""
    from sqlalchemy import func, select

    from mspflow.db.models import Ticket as T
    from mspflow.db.models import TicketStatus as S

    stmt = (select(T.ticket_id, T.ticket_number, T.title, T.priority, T.assigned_user_id, T.queue, T.source,
                   T.source_ref, T.version, T.created_at, T.closed_at, S.name.label("status"),
                   S.is_closed)
            .outerjoin(S, (S.tenant == T.tenant) & (S.status_id == T.status_id))
            .where(T.tenant == tenant).order_by(T.created_at.desc(), T.ticket_id).limit(limit))
    if status is not None:
        stmt = stmt.where(func.lower(S.name) == status.lower())
    return [_plain(dict(r._mapping)) for r in session.execute(stmt)]


def ticket_detail(session: Session, tenant: str, number: str) -> dict[str, Any] | None:
    """One ticket by its per-tenant number: its fields, comments, links, attachments and time entries."""
    from sqlalchemy import select

    from mspflow.db.models import Base

    tables = Base.metadata.tables
    t, s = tables["tickets"], tables["ticket_statuses"]
    row = session.execute(select(t, s.c.name.label("status"), s.c.is_closed)
                          .outerjoin(s, (s.c.tenant == t.c.tenant) & (s.c.status_id == t.c.status_id))
                          .where(t.c.tenant == tenant, t.c.ticket_number == number)).first()
    if row is None:
        return None
    ticket = _plain({k: v for k, v in row._mapping.items() if k != "tenant"})

    def children(name: str, *where: Any, order: str = "created_at") -> list[dict[str, Any]]:
        c = tables[name]
        rows = session.execute(select(c).where(c.c.tenant == tenant, *where).order_by(c.c[order]))
        return [_plain({k: v for k, v in r._mapping.items() if k != "tenant"}) for r in rows]

    tid = ticket["ticket_id"]
    tables_ = {n: tables[n] for n in ("ticket_comments", "entity_links", "ticket_attachments", "time_entries")}
    ticket["comments"] = children("ticket_comments", tables_["ticket_comments"].c.ticket_id == tid)
    ticket["links"] = children("entity_links", tables_["entity_links"].c.ticket_id == tid)
    ticket["attachments"] = children("ticket_attachments", tables_["ticket_attachments"].c.ticket_id == tid)
    ticket["time_entries"] = children("time_entries", tables_["time_entries"].c.work_item_type == "ticket",
                                      tables_["time_entries"].c.work_item_id == tid)
    return ticket


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    from mspflow.clock import aware

    return {k: aware(v).isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
