"""Reconciliation polling: each connected integration's active alerts, compared with the PSA's.

Every connected integration whose alert source has a poller gets a row in ``rmm_alert_polls`` (made by
``mspflow tenant connect``, removed by ``disconnect``): default every 15 minutes (5 to 60). Workers call
:func:`poll_due`; a round is taken with one conditional UPDATE (due, and not leased or its lease expired),
so exactly one poll runs per integration per interval however many worker processes look, with no
scheduler of its own: the database is the state. One round:

* an alert active in the RMM that the PSA lacks enters as ``triggered`` (the full pipeline);
* a local active alert the RMM no longer lists gets a synthesized ``reset``;
* a suppressed alert still firing after its maintenance window ended goes through the rules.

Examples::

    schedule(session, "acme-corp", "ninjaone", interval_minutes=10)
    poll_due(app)                        # what `mspflow worker` runs every 30 s
    reconcile(app, "acme-corp", "ninjaone")
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select, update

from mspflow.alerts.pipeline import LIVE, AlertPipeline
from mspflow.db.models import AlertPoll, RmmAlert
from mspflow.errors import ActionError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.alerts.events import AlertEvent
    from mspflow.app import App

log = logging.getLogger("mspflow.alerts")

DEFAULT_INTERVAL_MINUTES = 15
MIN_INTERVAL_MINUTES, MAX_INTERVAL_MINUTES = 5, 60
LEASE_S = 600.0
TICK_S = 30.0


def schedule(session: Session, tenant: str, provider: str, *, interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
             now: datetime | None = None) -> None:
    """Poll ``provider`` for ``tenant`` every ``interval_minutes`` (5 to 60), first round due now."""
    if not MIN_INTERVAL_MINUTES <= interval_minutes <= MAX_INTERVAL_MINUTES:
        raise ActionError("VALIDATION_ERROR", f"interval_minutes must be {MIN_INTERVAL_MINUTES} to "
                          f"{MAX_INTERVAL_MINUTES}, got {interval_minutes}",
                          details={"fields": [{"path": "interval_minutes", "message": "out of range"}]})
    row = session.get(AlertPoll, (tenant, provider))
    if row is None:
        session.add(AlertPoll(tenant=tenant, provider=provider, interval_minutes=interval_minutes,
                              next_due_at=now or datetime.now(UTC)))
    else:
        row.interval_minutes = interval_minutes
    session.flush()


def unschedule(session: Session, tenant: str, provider: str) -> None:
    session.execute(delete(AlertPoll).where(AlertPoll.tenant == tenant, AlertPoll.provider == provider))


def claim_due(app: App, *, now: datetime | None = None, owner: str | None = None) -> list[tuple[str, str]]:
    """Take this round of every due integration (one conditional UPDATE each); returns what this caller won."""
    now = now or datetime.now(UTC)
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    with app.db.sessions() as s:
        due = s.execute(select(AlertPoll.tenant, AlertPoll.provider, AlertPoll.interval_minutes).where(
            AlertPoll.next_due_at <= now)).all()
    won: list[tuple[str, str]] = []
    for tenant, provider, minutes in due:
        with app.db.session(write=True) as s:
            taken = s.execute(update(AlertPoll).where(
                AlertPoll.tenant == tenant, AlertPoll.provider == provider, AlertPoll.next_due_at <= now,
                or_(AlertPoll.lease_expires_at.is_(None), AlertPoll.lease_expires_at < now),
            ).values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=LEASE_S),
                     next_due_at=now + timedelta(minutes=minutes))).rowcount  # type: ignore[attr-defined]
        if taken == 1:
            won.append((tenant, provider))
    return won


def poll_due(app: App, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Run every due poll this process wins; a failed poll is recorded on its row and logged."""
    reports = []
    for tenant, provider in claim_due(app, now=now):
        error: str | None = None
        report: dict[str, Any] = {"tenant": tenant, "provider": provider}
        try:
            report |= reconcile(app, tenant, provider)
        except ActionError as exc:
            error = f"{exc.code}: {exc.message}"
        except Exception as exc:
            log.exception("alert poll of %s for tenant %s failed", provider, tenant)
            error = f"INTERNAL_ERROR: {type(exc).__name__}"
        with app.db.session(write=True) as s:
            s.execute(update(AlertPoll).where(AlertPoll.tenant == tenant, AlertPoll.provider == provider).values(
                lease_owner=None, lease_expires_at=None, last_polled_at=datetime.now(UTC), last_error=error))
        if error:
            log.warning("alert poll of %s for tenant %s failed: %s", provider, tenant, error)
            report["error"] = error
        reports.append(report)
    return reports


def active_events(app: App, tenant: str, provider: str) -> list[AlertEvent]:
    """The provider's currently active alerts, from its poller, as the tenant's triggered events."""
    from mspflow.context import ActionContext
    from mspflow.inbound.keys import tenant_secrets
    from mspflow.redaction import Redactor

    source = app.registry.alert_sources.get(provider)
    if source is None or source.poll is None:
        raise ActionError.not_found(f"no installed plugin polls {provider} alerts")
    with app.db.sessions() as session:
        redactor = Redactor(set(tenant_secrets(app.secrets, session, tenant).values()))
        ctx = ActionContext(tenant_id=tenant, session_factory=lambda: session, run_id=f"alert-poll-{provider}",
                            secrets=lambda: app.secrets, redactor=redactor, db=app.db, provider=provider,
                            module=app.registry.modules.get(f"app:{provider}"), holds_write_lock=lambda: False)
        try:
            events = list(source.poll(ctx))
        finally:
            ctx.close()
            session.rollback()
    return [e.model_copy(update={"tenant": tenant, "provider": provider, "kind": "triggered"}) for e in events]


def reconcile(app: App, tenant: str, provider: str, *, now: datetime | None = None) -> dict[str, int]:
    """One poll round for one integration (see the module docstring); returns what it did."""
    now = now or datetime.now(UTC)
    events = active_events(app, tenant, provider)
    pipeline = AlertPipeline(app)
    firing = {e.external_alert_id for e in events}
    counts = {"active": len(events), "entered": 0, "released": 0, "reset": 0, "waiting": 0}
    with app.db.sessions() as s:
        local = {r.external_alert_id: (r.alert_id, r.status, r.asset_id) for r in s.execute(
            select(RmmAlert).where(RmmAlert.tenant == tenant, RmmAlert.provider == provider,
                                   or_(RmmAlert.status.in_(LIVE), RmmAlert.pipeline_state != "done"))).scalars()}
        known = set(s.execute(select(RmmAlert.external_alert_id).where(
            RmmAlert.tenant == tenant, RmmAlert.provider == provider,
            RmmAlert.external_alert_id.in_(list(firing) or [""]))).scalars())
    for event in events:
        ext = event.external_alert_id
        state = local.get(ext)
        try:
            if ext not in known:
                counts["entered"] += 1
                pipeline.handle(event)  # new to the PSA: the full pipeline
            elif state is not None and state[1] == "suppressed":  # still firing: through the rules once its window ends
                if pipeline.release(tenant, state[0]).outcome != "still_suppressed":
                    counts["released"] += 1
            elif state is not None:
                pipeline.handle(event)  # known and undecided (a worker died): finishes it; decided: a no-op
        except ActionError as exc:  # another alert with its dedup key is opening the ticket: next round joins it
            if exc.details.get("reason") != "ALERT_BEING_TICKETED":
                raise
            counts["waiting"] += 1
    for external_id, (_, status, _) in local.items():
        if external_id in firing or status not in LIVE:
            continue
        from mspflow.alerts.events import AlertEvent

        pipeline.handle(AlertEvent(kind="reset", tenant=tenant, provider=provider, external_alert_id=external_id,
                                   occurred_at=now, raw={"synthesized": True}))
        counts["reset"] += 1
    log.info("alert poll of %s for tenant %s: %s", provider, tenant, counts)
    return counts


class PollLoop:
    """A daemon thread calling :func:`poll_due` every :data:`TICK_S` seconds (``mspflow worker`` runs one)."""

    def __init__(self, app: App, every_s: float = TICK_S) -> None:
        self.app, self.every_s = app, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mspflow-alert-poll", daemon=True)

    def start(self) -> PollLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                poll_due(self.app)
            except Exception:
                log.exception("alert polling round failed")
            self._stop.wait(self.every_s)
