"""ActionContext: the only door from an action handler to the outside world."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ActionContext:
    """What a handler may use: who it runs for, where in which run, and the tenant-scoped doors.

    :param tenant_id: the tenant the call runs for; every query a handler makes must filter on it.
    :param run_id: the workflow run, and ``step_path`` the step inside it.
    :param attempt: 1 for the first try, incremented on each retry.
    :param idempotency_key: the key the engine claimed for a side-effectful call.
    :param session: a database session in the call's transaction.
    """

    tenant_id: str
    session: Session
    run_id: str | None = None
    step_path: str | None = None
    attempt: int = 1
    idempotency_key: str | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("mspflow.action"))
    clock: Callable[[], datetime] = _utcnow
