"""Core group ``scheduling``: put technicians on the dispatch board.

``scheduling.create_entry`` inserts a schedule entry, its assignees and (when it overlaps and the caller
said ``override``) the accepted conflicts, plus a ``SCHEDULE_ENTRY_CREATED`` outbox event, all in the
call's one transaction, so the host's calendar sync never sees an entry without its event or an event
without its entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, model_validator

from mspflow.clock import aware
from mspflow.context import ActionContext
from mspflow.errors import ActionError
from mspflow.modules import Module

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# SQLAlchemy and the models are imported inside the functions that query: registering this module
# (every CLI start, `mspflow plugins` included) must not pay for the ORM.

scheduling = Module(
    "scheduling",
    label="Scheduling",
    description="Put technicians on the dispatch board.",
    tile_kind="core",
    icon="calendar",
    availability="core",
)

MAX_SHIFTS = 100  # a window shifted this often past busy entries is a board too full to place it on


class Window(BaseModel):
    start: datetime = Field(description="Start; ISO 8601. Without an offset it is read in `timezone`.")
    end: datetime = Field(description="End; must be after start.")
    timezone: str | None = Field(None, description="IANA zone for times without an offset (default UTC).")


class Link(BaseModel):
    type: Literal["ticket", "project_task"]
    id: str = Field(min_length=1)


class CreateEntryInput(BaseModel):
    assigned_user_ids: Annotated[list[str], Field(min_length=1)]
    title: str = Field(min_length=1, max_length=1024)
    window: Window
    link: Link | None = None
    status: str = Field("scheduled", min_length=1, max_length=32)
    notes: str | None = None
    conflict_mode: Literal["fail", "shift", "override"] = "fail"

    @model_validator(mode="after")
    def _unique_assignees(self) -> CreateEntryInput:
        self.assigned_user_ids = list(dict.fromkeys(self.assigned_user_ids))
        return self


class CreateEntryOutput(BaseModel):
    entry_id: str
    assigned_user_ids: list[str]
    scheduled_start: datetime
    scheduled_end: datetime
    work_item_type: Literal["ticket", "project_task", "ad_hoc"]
    work_item_id: str | None
    shifted: bool = False
    conflicts: list[dict[str, str]] = Field(default_factory=list)


def _utc(moment: datetime, zone: str | None, field: str) -> datetime:
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(zone) if zone else UTC)
        except (ZoneInfoNotFoundError, ValueError):
            raise ActionError.validation(f"unknown time zone {zone!r}; use an IANA name such as "
                                         "'Europe/Berlin'", fields=["window.timezone"]) from None
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise _out_of_range(field) from None


def _out_of_range(field: str) -> ActionError:
    return ActionError.validation("the time is outside the years 1 to 9999 once converted to UTC or shifted",
                                  fields=[field])


def _check_users(session: Session, tenant: str, user_ids: list[str]) -> None:
    from sqlalchemy import select

    from mspflow.db.models import User

    # FOR UPDATE serializes concurrent scheduling of the same technicians on PostgreSQL, so two calls
    # cannot both find a slot free; SQLite serializes writers anyway.
    rows = session.execute(
        select(User.user_id, User.user_type, User.is_inactive)
        .where(User.tenant == tenant, User.user_id.in_(user_ids))
        .with_for_update()
    ).all()
    usable = {r.user_id for r in rows if r.user_type == "internal" and not r.is_inactive}
    bad = [u for u in user_ids if u not in usable]
    if bad:
        found = {r.user_id: r for r in rows}
        reasons = {u: ("client user" if u in found and found[u].user_type != "internal" else
                       "inactive" if u in found else "unknown") for u in bad}
        raise ActionError.not_found(
            f"cannot schedule user(s) {', '.join(bad)}: only active internal users can be scheduled",
            user_ids=bad, reasons=reasons)


def _check_link(session: Session, tenant: str, link: Link | None) -> None:
    from sqlalchemy import select

    from mspflow.db.models import ProjectTask, Ticket

    if link is None:
        return
    model: Any = Ticket if link.type == "ticket" else ProjectTask
    key = Ticket.ticket_id if link.type == "ticket" else ProjectTask.task_id
    if session.execute(select(key).where(model.tenant == tenant, key == link.id)).first() is None:
        raise ActionError.not_found(f"no {link.type.replace('_', ' ')} {link.id!r}", link_type=link.type,
                                    link_id=link.id)


def _overlaps(session: Session, tenant: str, user_ids: list[str], start: datetime,
              end: datetime) -> list[tuple[str, str, datetime]]:
    """(entry id, user id, entry end) of existing entries that overlap [start, end) for these users."""
    from sqlalchemy import select

    from mspflow.db.models import ScheduleEntry, ScheduleEntryAssignee

    E, A = ScheduleEntry, ScheduleEntryAssignee
    rows = session.execute(
        select(E.entry_id, A.user_id, E.scheduled_end)
        .join(A, (A.tenant == E.tenant) & (A.entry_id == E.entry_id))
        .where(E.tenant == tenant, A.user_id.in_(user_ids), E.status != "cancelled",
               E.scheduled_start < end, E.scheduled_end > start)
        .order_by(E.scheduled_end, E.entry_id)
    ).all()
    return [(r.entry_id, r.user_id, aware(r.scheduled_end)) for r in rows]


@scheduling.action("scheduling.create_entry", label="Create schedule entry", category="Business Operations",
                   side_effectful=True, permission="user_schedule:create")
def create_entry(params: CreateEntryInput, ctx: ActionContext) -> CreateEntryOutput:
    """Put one or more technicians on the dispatch board, optionally linked to a ticket or project task.

    Overlaps with their existing entries fail the call (``fail``), move the window after the latest
    overlapping entry keeping its length (``shift``), or are accepted and recorded (``override``).
    """
    from mspflow import outbox
    from mspflow.db.models import ScheduleConflict, ScheduleEntry, ScheduleEntryAssignee

    session, tenant = ctx.session, ctx.tenant_id
    zone = params.window.timezone
    start, end = _utc(params.window.start, zone, "window.start"), _utc(params.window.end, zone, "window.end")
    if end <= start:
        raise ActionError.validation("the window's end must be after its start", fields=["window.end"])
    users = params.assigned_user_ids
    _check_users(session, tenant, users)
    _check_link(session, tenant, params.link)

    overlaps = _overlaps(session, tenant, users, start, end)
    shifted = False
    if overlaps and params.conflict_mode == "fail":
        busy = sorted({user for _, user, _ in overlaps})
        raise ActionError.conflict(
            f"user(s) {', '.join(busy)} already have entries in this window; pick another time or use "
            "conflict_mode 'shift' or 'override'",
            user_ids=busy, conflicting_entry_ids=sorted({entry for entry, _, _ in overlaps}))
    if overlaps and params.conflict_mode == "shift":
        length = end - start
        for _ in range(MAX_SHIFTS):
            start = max(entry_end for _, _, entry_end in overlaps)
            try:
                end = start + length
            except OverflowError:  # shifted past 9999-12-31
                raise _out_of_range("window.end") from None
            overlaps = _overlaps(session, tenant, users, start, end)
            if not overlaps:
                break
        else:
            raise ActionError.conflict(f"no free slot found after {MAX_SHIFTS} shifts", user_ids=users)
        shifted = True

    entry = ScheduleEntry(
        tenant=tenant, title=params.title, scheduled_start=start, scheduled_end=end, status=params.status,
        notes=params.notes, work_item_type=params.link.type if params.link else "ad_hoc",
        work_item_id=params.link.id if params.link else None,
    )
    session.add(entry)
    session.flush()
    session.add_all(ScheduleEntryAssignee(tenant=tenant, entry_id=entry.entry_id, user_id=u) for u in users)
    conflicts = [{"conflicting_entry_id": other, "user_id": user} for other, user, _ in overlaps]
    session.add_all(ScheduleConflict(tenant=tenant, entry_id=entry.entry_id, conflicting_entry_id=c[
        "conflicting_entry_id"], user_id=c["user_id"], resolution="override") for c in conflicts)
    output = CreateEntryOutput(
        entry_id=entry.entry_id, assigned_user_ids=users, scheduled_start=start, scheduled_end=end,
        work_item_type=entry.work_item_type, work_item_id=entry.work_item_id,
        shifted=shifted, conflicts=conflicts,
    )
    outbox.emit(session, tenant, outbox.SCHEDULE_ENTRY_CREATED, {
        "tenant": tenant, "entry_id": entry.entry_id, "assigned_user_ids": users,
        "entry": {"title": entry.title, "scheduled_start": start.isoformat(), "scheduled_end": end.isoformat(),
                  "status": entry.status, "notes": entry.notes, "work_item_type": entry.work_item_type,
                  "work_item_id": entry.work_item_id},
        "run_id": ctx.run_id, "invocation_id": ctx.invocation_id,
    })
    return output


class AssignUserInput(BaseModel):
    user_id: str = Field(min_length=1, description="The technician (an active internal user).")
    work_item: Link = Field(description="The ticket or project task to work on.")
    window: Window
    title: str | None = Field(None, min_length=1, max_length=1024,
                              description="Default: the ticket's number and title, or the task's name.")
    notes: str | None = None
    conflict_mode: Literal["fail", "shift", "override"] = "fail"


class AssignUserOutput(CreateEntryOutput):
    user_id: str


@scheduling.action("scheduling.assign_user", label="Assign technician", category="Business Operations",
                   side_effectful=True, permission="user_schedule:create")
def assign_user(params: AssignUserInput, ctx: ActionContext) -> AssignUserOutput:
    """Put one technician on the dispatch board for a ticket or project task: ``scheduling.create_entry``'s
    service (same checks, conflict modes and ``SCHEDULE_ENTRY_CREATED`` event) with the work item's title."""
    from sqlalchemy import select

    from mspflow.db.models import ProjectTask, Ticket

    title = params.title
    if title is None:
        if params.work_item.type == "ticket":
            row = ctx.session.execute(select(Ticket.ticket_number, Ticket.title).where(
                Ticket.tenant == ctx.tenant_id, Ticket.ticket_id == params.work_item.id)).first()
            title = (f"#{row.ticket_number} {row.title}" if row.ticket_number else row.title) if row else None
        else:
            title = ctx.session.execute(select(ProjectTask.task_name).where(
                ProjectTask.tenant == ctx.tenant_id, ProjectTask.task_id == params.work_item.id)).scalar()
        if title is None:  # the link check below says NOT_FOUND with the details
            _check_link(ctx.session, ctx.tenant_id, params.work_item)
        title = (title or "Scheduled work")[:1024] or "Scheduled work"
    entry = create_entry(CreateEntryInput(assigned_user_ids=[params.user_id], title=title, window=params.window,
                                          link=params.work_item, notes=params.notes,
                                          conflict_mode=params.conflict_mode), ctx)
    ctx.records.audit({"entry_id": entry.entry_id, "user_id": params.user_id,
                       f"{params.work_item.type}_id": params.work_item.id})
    return AssignUserOutput(**entry.model_dump(), user_id=params.user_id)
