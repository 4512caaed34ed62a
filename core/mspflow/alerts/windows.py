"""Maintenance windows: quiet periods when alerts are stored ``suppressed`` and nothing else happens.

A window's scope is an integration (``provider``), a client and an asset; NULL means all. It is one-off
(``starts_at`` to ``ends_at``) or weekly (``weekdays`` 0=Monday…6, ``start_time`` ``HH:MM`` for
``duration_minutes``, in ``timezone``; a window may run past midnight).

Examples::

    add_window(session, "acme-corp", name="Patch night", recurrence="weekly", weekdays=[2],
               start_time="22:00", duration_minutes=180, timezone="Europe/Berlin", provider="ninjaone")
    matching_window(session, "acme-corp", provider="ninjaone", client_id=None, asset_id="a-1", at=now)
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mspflow.errors import ActionError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.db.models import MaintenanceWindow


class WindowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    provider: str | None = None
    client_id: str | None = None
    asset_id: str | None = None
    recurrence: Literal["once", "weekly"] = "once"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekdays: list[int] | None = None
    start_time: str | None = None
    duration_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    timezone: str = "UTC"
    is_active: bool = True

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
        return value

    @field_validator("start_time")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return time.fromisoformat(value).strftime("%H:%M")
        except ValueError:
            raise ValueError(f"{value!r} is not a time of day HH:MM") from None

    @model_validator(mode="after")
    def _shape(self) -> WindowSpec:
        if self.recurrence == "once":
            if self.starts_at is None or self.ends_at is None:
                raise ValueError("a one-off window needs starts_at and ends_at")
            if self.starts_at.tzinfo is None:
                self.starts_at = self.starts_at.replace(tzinfo=ZoneInfo(self.timezone))
            if self.ends_at.tzinfo is None:
                self.ends_at = self.ends_at.replace(tzinfo=ZoneInfo(self.timezone))
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
        else:
            if not self.weekdays or any(d not in range(7) for d in self.weekdays):
                raise ValueError("a weekly window needs weekdays, each 0 (Monday) to 6 (Sunday)")
            if self.start_time is None or self.duration_minutes is None:
                raise ValueError("a weekly window needs start_time (HH:MM) and duration_minutes")
        return self


def active_at(row: MaintenanceWindow, at: datetime) -> bool:
    """Whether the window covers the moment ``at``."""
    if not row.is_active:
        return False
    if row.recurrence == "once":
        if row.starts_at is None or row.ends_at is None:
            return False
        return _aware(row.starts_at) <= at < _aware(row.ends_at)
    zone = ZoneInfo(row.timezone or "UTC")
    local = at.astimezone(zone)
    start = time.fromisoformat(row.start_time or "00:00")
    for back in (0, 1, 2, 3, 4, 5, 6, 7):
        day = (local - timedelta(days=back)).date()
        if day.weekday() not in (row.weekdays or []):
            continue
        begins = datetime.combine(day, start, zone)
        if begins <= local < begins + timedelta(minutes=row.duration_minutes or 0):
            return True
    return False


def matching_window(session: Session, tenant: str, *, provider: str, client_id: str | None, asset_id: str | None,
                    at: datetime) -> MaintenanceWindow | None:
    """The first active window whose scope covers the alert at ``at``."""
    from sqlalchemy import select

    from mspflow.db.models import MaintenanceWindow as W

    rows = session.execute(select(W).where(W.tenant == tenant, W.is_active.is_(True)).order_by(W.created_at,
                                                                                                 W.window_id))
    for row in rows.scalars():
        if row.provider not in (None, provider) or row.asset_id not in (None, asset_id):
            continue
        if row.client_id is not None and row.client_id != client_id:
            continue
        if active_at(row, at):
            return row
    return None


def to_json(row: MaintenanceWindow) -> dict[str, Any]:
    return {"window_id": row.window_id, "tenant": row.tenant, "name": row.name, "provider": row.provider,
            "client_id": row.client_id, "asset_id": row.asset_id, "recurrence": row.recurrence,
            "starts_at": _iso(row.starts_at), "ends_at": _iso(row.ends_at), "weekdays": row.weekdays,
            "start_time": row.start_time, "duration_minutes": row.duration_minutes, "timezone": row.timezone,
            "is_active": row.is_active}


def add_window(session: Session, tenant: str, **spec: Any) -> dict[str, Any]:
    from mspflow.db.models import MaintenanceWindow

    try:
        checked = WindowSpec.model_validate(spec)
    except ValidationError as exc:
        fields = [{"path": ".".join(str(p) for p in e["loc"]) or "(window)",
                   "message": str(e["msg"]).removeprefix("Value error, ")}
                  for e in exc.errors(include_url=False, include_input=False)]
        raise ActionError("VALIDATION_ERROR", "invalid maintenance window: " + "; ".join(
            f"{f['path']}: {f['message']}" for f in fields), details={"fields": fields}) from None
    row = MaintenanceWindow(tenant=tenant, **checked.model_dump())
    session.add(row)
    session.flush()
    return to_json(row)


def list_windows(session: Session, tenant: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from mspflow.db.models import MaintenanceWindow as W

    rows = session.execute(select(W).where(W.tenant == tenant).order_by(W.created_at, W.window_id)).scalars()
    return [to_json(r) for r in rows]


def delete_window(session: Session, tenant: str, window_id: str) -> None:
    from mspflow.db.models import MaintenanceWindow

    row = session.get(MaintenanceWindow, window_id)
    if row is None or row.tenant != tenant:
        raise ActionError.not_found(f"no maintenance window {window_id!r} for tenant {tenant!r}; see "
                                    f"`mspflow alerts windows list --tenant {tenant}`", window_id=window_id)
    session.delete(row)
    session.flush()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _aware(moment).isoformat()
