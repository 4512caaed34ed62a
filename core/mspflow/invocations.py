"""Reading invocation records (``mspflow invocations``, ``App.invocation``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mspflow.db.models import WorkflowActionInvocation as Inv


def to_json(row: Inv) -> dict[str, Any]:
    error = None
    if row.error_code:
        error = {"code": row.error_code, "message": row.error_message, "retryable": bool(row.error_retryable),
                 "details": row.error_details or {}}
    return {
        "invocation_id": row.invocation_id, "tenant": row.tenant, "run_id": row.run_id,
        "step_path": row.step_path, "action_id": row.action_id, "version": row.action_version,
        "idempotency_key": row.idempotency_key, "status": row.status, "attempt": row.attempt,
        "input": row.input, "output": row.output, "error": error,
        "created_at": _iso(row.created_at), "started_at": _iso(row.started_at),
        "completed_at": _iso(row.completed_at),
    }


def get(session: Session, invocation_id: str, *, tenant: str | None = None) -> dict[str, Any] | None:
    stmt = select(Inv).where(Inv.invocation_id == invocation_id)
    if tenant is not None:
        stmt = stmt.where(Inv.tenant == tenant)
    row = session.execute(stmt).scalar_one_or_none()
    return None if row is None else to_json(row)


def recent(
    session: Session, tenant: str, *, status: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    stmt = select(Inv).where(Inv.tenant == tenant)
    if status:
        stmt = stmt.where(Inv.status == status.upper())
    stmt = stmt.order_by(Inv.created_at.desc(), Inv.invocation_id).limit(limit)
    return [to_json(r) for r in session.execute(stmt).scalars()]


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
