"""The provider-generic alert pipeline: one normalized event in, the PSA's alert and ticket state out.

The walk of one :class:`~mspflow.alerts.events.AlertEvent` (from the inbound journal, the poller, or
:func:`ingest` directly):

``triggered``
    1. upsert the alert on (tenant, provider, external alert id): an alert already decided is a no-op
       (a replayed event);
    2. maintenance windows first: inside an active matching window the alert is stored ``suppressed``
       with the window, and that is all (no ticket, no notification, no trigger event);
    3. rules, first match by priority (the matched rule is stored);
    4. with a rule that creates tickets, holding the dedup key's claim (so two firings of one condition
       decided at once open one ticket; see :meth:`AlertPipeline._claim`): an open ticket of an alert
       with the same dedup key (device + condition) is joined (linked, occurrence count + 1, an internal
       "re-triggered — Nth occurrence" comment); otherwise a new ticket (source reference, asset link,
       initial internal comment, client from the asset's or the alert's organization mapping);
    5. the ``RMM_ALERT_TRIGGERED`` outbox event and the rule's notifications, with the decision.
``reset``
    resolves the alert (a suppressed one quietly); with a linked ticket and the rule's auto-resolve: a
    comment always, and ``tickets.close`` only while the ticket is untouched and no other alert on it is
    still active; then ``RMM_ALERT_RESOLVED``.
``acknowledged``
    stamps the alert (``acknowledged_at``, ``acknowledged_by``).

Steps 1-3 commit before any ticket call (``pipeline_state = 'pending'``) and step 5 commits the
decision with ``pipeline_state = 'done'``; every ticket call's idempotency key derives from the event, so a
worker killed anywhere in between is taken over without a second ticket or comment.

Examples::

    from mspflow.alerts.pipeline import ingest
    ingest(app, AlertEvent(kind="triggered", tenant="acme-corp", provider="tacticalrmm", ...))
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from mspflow import outbox
from mspflow.alerts.events import AlertEvent
from mspflow.alerts.rules import Rule, active_rules, first_match, render
from mspflow.alerts.tickets import Tickets
from mspflow.alerts.windows import matching_window
from mspflow.clock import aware
from mspflow.db.models import AlertDedupClaim, Asset, RmmAlert, TenantExternalEntityMapping
from mspflow.errors import ActionError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.app import App

log = logging.getLogger("mspflow.alerts")

ACTIVE = ("active", "acknowledged")
CLAIM_TTL_S = 60.0
"""How long an alert may hold its dedup key's claim before another alert takes it over (its worker died)."""
CLAIM_WAIT_S = 15.0
"""The longest an alert waiting for another alert's claim waits before it looks again."""
IN_APP, TEAMS_NOTIFY = "notifications.send_in_app", "teams.notify_user"
LIVE = (*ACTIVE, "suppressed")


@dataclass(frozen=True)
class Decision:
    """What the pipeline did with one event (for logs, tests and benchmarks)."""

    alert_id: str | None
    outcome: str  # ticket_created | joined | no_ticket | suppressed | duplicate | resolved | acknowledged | ...
    ticket_id: str | None = None


def ingest(app: App, event: AlertEvent, *, clock: Callable[[], datetime] | None = None) -> Decision:
    """Run one normalized alert event through the pipeline (see the module docstring)."""
    return AlertPipeline(app, clock=clock).handle(event)


class AlertPipeline:
    def __init__(self, app: App, *, clock: Callable[[], datetime] | None = None) -> None:
        self.app = app
        self.clock = clock or (lambda: datetime.now(UTC))

    def handle_all(self, events: Iterable[AlertEvent]) -> list[Decision]:
        return [self.handle(e) for e in events]

    def handle(self, event: AlertEvent) -> Decision:
        if event.kind == "triggered":
            return self.triggered(event)
        if event.kind == "reset":
            return self.reset(event)
        return self.acknowledged(event)

    # -- triggered ------------------------------------------------------------------------------------

    def triggered(self, event: AlertEvent) -> Decision:
        for _ in range(3):  # two workers inserting the same alert: the loser reads the winner's row
            try:
                with self.app.db.session(write=True) as s:
                    row, fresh = self._upsert(s, event)
                    if not fresh and row.pipeline_state == "done":
                        return Decision(row.alert_id, "duplicate", row.ticket_id)
                    if fresh:
                        early = self._screen(s, row, event)
                        if early is not None:
                            return early
                    alert_id = row.alert_id
                break
            except IntegrityError:
                continue
        else:
            raise ActionError("CONFLICT", f"alert {event.external_alert_id} kept changing", retryable=True)
        return self._decide(alert_id, event)

    def _upsert(self, s: Session, event: AlertEvent) -> tuple[RmmAlert, bool]:
        row = self._find(s, event.tenant, event.provider, event.external_alert_id, lock=True)
        if row is not None:
            return row, False
        now = self.clock()
        occurred = event.occurred_at or now
        asset = self._asset(s, event)
        row = RmmAlert(
            tenant=event.tenant, provider=event.provider, external_alert_id=event.external_alert_id,
            external_device_id=event.device_id, asset_id=asset.asset_id if asset else None, status="active",
            severity=_fit(event.severity, 32), title=_fit(event.title or event.message, 1024), message=event.message,
            source_type=_fit(event.source_type, 128), activity_type=_fit(event.activity_type, 128),
            alert_class=_fit(event.alert_class, 128), organization=_fit(event.organization, 255),
            dedup_key=event.dedup_key, occurrence_count=1, occurred_at=occurred, last_occurrence_at=occurred,
            pipeline_state="pending",
            raw={**event.raw, **({"_device_name": event.device_name} if event.device_name else {})} or None)
        s.add(row)
        s.flush()
        return row, True

    def _screen(self, s: Session, row: RmmAlert, event: AlertEvent) -> Decision | None:
        """Maintenance windows, then rules: store what they say; a suppressed alert is done here."""
        window = matching_window(s, event.tenant, provider=event.provider, client_id=self._client(s, row),
                                 asset_id=row.asset_id, at=self.clock())
        if window is not None:
            row.status, row.suppressed_by_window_id, row.pipeline_state = "suppressed", window.window_id, "done"
            log.info("alert %s (%s) suppressed by maintenance window %s", row.alert_id, event.external_alert_id,
                     window.name)
            return Decision(row.alert_id, "suppressed")
        self._apply_rules(s, row, event)
        return None

    def _apply_rules(self, s: Session, row: RmmAlert, event: AlertEvent) -> Rule | None:
        rule = first_match(active_rules(s, row.tenant), event)
        row.matched_rule_id = rule.rule_id if rule else None
        actions = rule.actions if rule else None
        row.auto_ticket = bool(actions and actions.create_ticket)
        row.auto_resolve_ticket = bool(actions and actions.auto_resolve_ticket)
        row.reset_on_ticket_close = actions.reset_alert_on_ticket_close if actions else True
        return rule

    def _decide(self, alert_id: str, event: AlertEvent, *, rule_override: Rule | None = None) -> Decision:
        """Ticket (join or create) for a pending alert, then record the decision and its events once.

        While it decides the ticket, the alert holds its dedup key's claim (:meth:`_claim`), so two
        alerts with one key never both find no open ticket and open one each.
        """
        with self.app.db.sessions() as s:
            row = self._by_id(s, event.tenant, alert_id)
            rule = rule_override or self._rule(s, row)
            snapshot = _Snapshot.of(row, self._client(s, row))
        ticketing = row.auto_ticket and rule is not None and rule.actions.create_ticket is not None
        if ticketing:
            self._claim(row)
        primary = None
        if ticketing and row.dedup_key is not None:
            with self.app.db.sessions() as s:  # read while holding the claim: a ticket opened just now counts
                primary = self._open_ticket_alert(s, row)
        outcome, ticket_id, joined_count = "no_ticket", None, None
        if ticketing and rule is not None:
            tickets = Tickets(self.app, event.tenant)
            base = f"alert:{event.tenant}:{event.provider}:{event.external_alert_id}:triggered"
            if primary is not None and primary.ticket_id is not None and not tickets.is_open(primary.ticket_id):
                self._ticket_gone(event.tenant, primary.ticket_id)  # closed without mspflow hearing of it
                primary = None
            if primary is not None:
                ticket_id, joined_count = primary.ticket_id, primary.occurrence_count + 1
                assert ticket_id is not None
                tickets.comment(ticket_id, f"Alert re-triggered — {_ordinal(joined_count)} occurrence: "
                                f"{snapshot.message or snapshot.title or ''} (device {snapshot.device}).",
                                key=f"{base}:occurrence")
                tickets.link(ticket_id, [("rmm_alert", alert_id)], key=f"{base}:link")
                outcome = "joined"
            else:
                ticket_id = self._create_ticket(tickets, rule, snapshot, event, base)
                outcome = "ticket_created"
        with self.app.db.session(write=True) as s:
            if row.dedup_key is not None:  # a claim goes with the decision: whoever waits then sees the ticket
                s.execute(delete(AlertDedupClaim).where(
                    AlertDedupClaim.tenant == row.tenant, AlertDedupClaim.provider == row.provider,
                    AlertDedupClaim.dedup_key == row.dedup_key, AlertDedupClaim.alert_id == alert_id))
            won = s.execute(update(RmmAlert).where(
                RmmAlert.tenant == event.tenant, RmmAlert.alert_id == alert_id, RmmAlert.pipeline_state == "pending"
            ).values(pipeline_state="done", ticket_id=ticket_id, ticket_open=ticket_id is not None,
                     occurrence_count=joined_count or 1)).rowcount  # type: ignore[attr-defined]
            if won != 1:  # another worker recorded it first
                row = self._by_id(s, event.tenant, alert_id)
                return Decision(alert_id, "duplicate", row.ticket_id)
            if primary is not None and joined_count is not None:  # every alert on the ticket counts the same
                s.execute(update(RmmAlert).where(RmmAlert.tenant == event.tenant,
                                                 RmmAlert.ticket_id == primary.ticket_id)
                          .values(occurrence_count=joined_count, last_occurrence_at=event.occurred_at or self.clock()))
            row = self._by_id(s, event.tenant, alert_id)
            outbox.emit(s, event.tenant, outbox.RMM_ALERT_TRIGGERED, payload(row, outcome=outcome))
            if rule is not None:
                self._notify(s, row, rule)
        if rule is not None and rule.actions.notify_users:
            self._notify_users(row, rule)
        log.info("alert %s (%s %s): %s%s", alert_id, event.provider, event.external_alert_id, outcome,
                 f" ticket {ticket_id}" if ticket_id else "")
        return Decision(alert_id, outcome, ticket_id)

    def _claim(self, row: RmmAlert) -> None:
        """Hold ``row``'s dedup key while its ticket is decided (an alert without one has nothing to join).

        Another alert holding the key means: wait, then join its ticket (retryable ``CONFLICT``, reason
        ``ALERT_BEING_TICKETED``). The claim is not let go when deciding fails: whether the ticket was
        opened may be unknown, and the alert's own retry finishes the same decision under the same
        idempotency keys. A claim older than :data:`CLAIM_TTL_S` was left by a worker that died: its
        alert's decision is finished first, here, under that alert's own keys (so a ticket it had opened
        is the one both alerts end up on), and then this alert decides.
        """
        if row.dedup_key is None:
            return
        for _ in range(3):  # each round finishes one abandoned decision at most
            now = self.clock()
            holder, abandoned = self._take(row, now)
            if abandoned is not None:
                with self.app.db.sessions() as s:
                    left_behind = self._by_id(s, row.tenant, abandoned)
                self._decide(abandoned, event_of(left_behind))
                continue
            if holder is None:
                return
            wait = CLAIM_TTL_S - (now - holder[1]).total_seconds()
            raise ActionError.conflict(
                f"alert {holder[0]} with the same dedup key is deciding its ticket; alert {row.alert_id} joins it "
                "when that is done", retryable=True, reason="ALERT_BEING_TICKETED", alert_id=row.alert_id,
            ).with_retry_after(min(max(wait, 1.0), CLAIM_WAIT_S))
        raise ActionError.conflict(f"the dedup key of alert {row.alert_id} kept changing hands", retryable=True,
                                   reason="ALERT_BEING_TICKETED", alert_id=row.alert_id)

    def _take(self, row: RmmAlert, now: datetime) -> tuple[tuple[str, datetime] | None, str | None]:
        """One try at the claim: (the live holder, if another alert holds it; an abandoned alert to finish)."""
        assert row.dedup_key is not None
        try:
            with self.app.db.session(write=True) as s:
                held = s.execute(select(AlertDedupClaim).where(
                    AlertDedupClaim.tenant == row.tenant, AlertDedupClaim.provider == row.provider,
                    AlertDedupClaim.dedup_key == row.dedup_key).with_for_update()).scalar_one_or_none()
                if held is None:
                    s.add(AlertDedupClaim(tenant=row.tenant, provider=row.provider, dedup_key=row.dedup_key,
                                          alert_id=row.alert_id, claimed_at=now))
                    return None, None
                if held.alert_id != row.alert_id and (now - aware(held.claimed_at)).total_seconds() < CLAIM_TTL_S:
                    return (held.alert_id, aware(held.claimed_at)), None
                if held.alert_id != row.alert_id and s.execute(select(RmmAlert.pipeline_state).where(
                        RmmAlert.tenant == row.tenant, RmmAlert.alert_id == held.alert_id)).scalar() == "pending":
                    held.claimed_at = now  # its worker died mid-decision: finish that decision, as its alert
                    return None, held.alert_id
                held.alert_id, held.claimed_at = row.alert_id, now
                return None, None
        except IntegrityError:  # another alert inserted the claim first
            return ("another alert", now), None

    def _ticket_gone(self, tenant: str, ticket_id: str) -> None:
        with self.app.db.session(write=True) as s:
            s.execute(update(RmmAlert).where(RmmAlert.tenant == tenant, RmmAlert.ticket_id == ticket_id)
                      .values(ticket_open=False))

    def _create_ticket(self, tickets: Tickets, rule: Rule, snap: _Snapshot, event: AlertEvent, base: str) -> str:
        spec = rule.actions.create_ticket
        assert spec is not None
        values = {"device": snap.device, "message": snap.message or snap.title, "severity": snap.severity,
                  "organization": snap.organization}
        severity = (snap.severity or "").casefold()
        mapped = {k.casefold(): v for k, v in spec.severity_priority.items()}.get(severity)
        ticket_id = tickets.create({
            "title": render(spec.title_template, values)[:255] or f"{event.provider} alert",
            "description": render(spec.description_template, values),
            "board": spec.board, "priority": spec.priority or mapped, "assigned_user_id": spec.assignee,
            "client_id": snap.client_id, "source": "rmm_alert", "source_ref": snap.alert_id,
        }, key=f"{base}:create")
        tickets.link(ticket_id, [*([("asset", snap.asset_id)] if snap.asset_id is not None else []),
                                 ("rmm_alert", snap.alert_id)], key=f"{base}:link")
        tickets.comment(ticket_id, f"Created from {event.provider} alert {event.external_alert_id} by rule "
                        f"{rule.name!r}: {snap.message or snap.title or ''} (device {snap.device}, severity "
                        f"{snap.severity or 'unknown'}).", key=f"{base}:comment")
        return ticket_id

    def release(self, tenant: str, alert_id: str) -> Decision:
        """A suppressed alert still firing after its window ended: through the rules as if it had just fired
        (``still_suppressed`` while a matching window is active)."""
        with self.app.db.session(write=True) as s:
            row = self._by_id(s, tenant, alert_id)
            if row.status != "suppressed":
                return Decision(alert_id, "duplicate", row.ticket_id)
            if matching_window(s, tenant, provider=row.provider, client_id=self._client(s, row), asset_id=row.asset_id,
                               at=self.clock()) is not None:
                return Decision(alert_id, "still_suppressed")
            event = event_of(row)
            row.status, row.suppressed_by_window_id, row.pipeline_state = "active", None, "pending"
            self._apply_rules(s, row, event)
        return self._decide(alert_id, event)

    # -- reset ------------------------------------------------------------------------------------------

    def reset(self, event: AlertEvent) -> Decision:
        now = self.clock()
        with self.app.db.session(write=True) as s:
            row = self._find(s, event.tenant, event.provider, event.external_alert_id, lock=True)
            if row is None:  # a reset of an alert the PSA never saw: kept, resolved, nothing else
                try:
                    row, _ = self._upsert(s, event)
                except IntegrityError:
                    raise ActionError("CONFLICT", "the alert was being stored concurrently", retryable=True) from None
                row.status, row.resolved_at, row.pipeline_state = "resolved", now, "done"
                return Decision(row.alert_id, "resolved")
            if row.status == "resolved" and row.pipeline_state == "done":
                return Decision(row.alert_id, "duplicate", row.ticket_id)
            if row.status == "suppressed":
                row.status, row.resolved_at, row.pipeline_state = "resolved", now, "done"
                return Decision(row.alert_id, "resolved_quietly")
            if row.status != "resolved":
                if row.pipeline_state == "pending":  # its trigger is still being decided: try again soon
                    raise ActionError("CONFLICT", f"alert {row.alert_id} is still being ticketed", retryable=True)
                row.status, row.resolved_at, row.pipeline_state = "resolved", now, "resetting"
            alert_id, ticket_id = row.alert_id, row.ticket_id
            ticket_work = bool(ticket_id and row.ticket_open and row.auto_resolve_ticket)
        outcome, closed = "resolved", False
        if ticket_work and ticket_id is not None:
            tickets = Tickets(self.app, event.tenant)
            base = f"alert:{event.tenant}:{event.provider}:{event.external_alert_id}:reset"
            tickets.comment(ticket_id, f"The {event.provider} alert {event.external_alert_id} reset"
                            f"{' (no longer active at the RMM)' if event.raw.get('synthesized') else ''}.",
                            key=f"{base}:comment")
            with self.app.db.sessions() as s:
                others = s.execute(select(RmmAlert.alert_id).where(
                    RmmAlert.tenant == event.tenant, RmmAlert.ticket_id == ticket_id,
                    RmmAlert.alert_id != alert_id, RmmAlert.status.in_(ACTIVE)).limit(1)).first()
            if others is None and tickets.untouched(ticket_id):
                tickets.close(ticket_id, f"Closed by mspflow: the {event.provider} alert reset and nobody had "
                              "worked on the ticket.", key=f"{base}:close")
                closed = True
                outcome = "resolved_ticket_closed"
            else:
                outcome = "resolved_ticket_kept"
        with self.app.db.session(write=True) as s:
            won = s.execute(update(RmmAlert).where(
                RmmAlert.tenant == event.tenant, RmmAlert.alert_id == alert_id,
                RmmAlert.pipeline_state == "resetting").values(pipeline_state="done")
            ).rowcount  # type: ignore[attr-defined]
            if won != 1:
                return Decision(alert_id, "duplicate", ticket_id)
            if closed:
                s.execute(update(RmmAlert).where(RmmAlert.tenant == event.tenant, RmmAlert.ticket_id == ticket_id)
                          .values(ticket_open=False))
            row = self._by_id(s, event.tenant, alert_id)
            outbox.emit(s, event.tenant, outbox.RMM_ALERT_RESOLVED, payload(row, outcome=outcome))
        log.info("alert %s (%s %s): %s", alert_id, event.provider, event.external_alert_id, outcome)
        return Decision(alert_id, outcome, ticket_id)

    # -- acknowledged -----------------------------------------------------------------------------------

    def acknowledged(self, event: AlertEvent) -> Decision:
        with self.app.db.session(write=True) as s:
            row = self._find(s, event.tenant, event.provider, event.external_alert_id, lock=True)
            if row is None:
                return Decision(None, "unknown_alert")
            if row.acknowledged_at is None:
                row.acknowledged_at = event.occurred_at or self.clock()
                row.acknowledged_by = _fit(event.acknowledged_by, 255)
            return Decision(row.alert_id, "acknowledged", row.ticket_id)

    # -- helpers ----------------------------------------------------------------------------------------

    @staticmethod
    def _find(s: Session, tenant: str, provider: str, external_id: str, *, lock: bool = False) -> RmmAlert | None:
        q = select(RmmAlert).where(RmmAlert.tenant == tenant, RmmAlert.provider == provider,
                                   RmmAlert.external_alert_id == external_id)
        return s.execute(q.with_for_update() if lock else q).scalar_one_or_none()

    @staticmethod
    def _by_id(s: Session, tenant: str, alert_id: str) -> RmmAlert:
        return s.execute(select(RmmAlert).where(RmmAlert.tenant == tenant, RmmAlert.alert_id == alert_id)).scalar_one()

    @staticmethod
    def _asset(s: Session, event: AlertEvent) -> Asset | None:
        if event.device_id is None:
            return None
        return s.execute(select(Asset).where(Asset.tenant == event.tenant, Asset.rmm_provider == event.provider,
                                             Asset.rmm_device_id == event.device_id).limit(1)).scalar()

    @staticmethod
    def _client(s: Session, row: RmmAlert) -> str | None:
        """The client: from the asset's organization, else the alert's, through the organization mapping."""
        orgs: list[str] = []
        if row.asset_id is not None:
            org = s.execute(select(Asset.rmm_organization_id).where(
                Asset.tenant == row.tenant, Asset.asset_id == row.asset_id)).scalar()
            if org:
                orgs.append(org)
        if row.organization:
            orgs.append(row.organization)
        for org in orgs:
            found = s.execute(select(TenantExternalEntityMapping.entity_id).where(
                TenantExternalEntityMapping.tenant == row.tenant,
                TenantExternalEntityMapping.integration_type == row.provider,
                TenantExternalEntityMapping.entity_type == "client",
                TenantExternalEntityMapping.external_entity_id == org).limit(1)).scalar()
            if found:
                return str(found)
        return None

    @staticmethod
    def _rule(s: Session, row: RmmAlert) -> Rule | None:
        if row.matched_rule_id is None:
            return None
        from mspflow.db.models import AlertRule

        found = s.get(AlertRule, row.matched_rule_id)
        if found is None or found.tenant != row.tenant:
            return None
        try:
            return Rule.of(found)
        except Exception:
            log.warning("alert rule %s no longer validates; alert %s gets no ticket", found.rule_id, row.alert_id)
            return None

    @staticmethod
    def _open_ticket_alert(s: Session, row: RmmAlert) -> RmmAlert | None:
        """The first alert with the same dedup key whose linked ticket is still open (the ticket's primary)."""
        return s.execute(select(RmmAlert).where(
            RmmAlert.tenant == row.tenant, RmmAlert.provider == row.provider, RmmAlert.dedup_key == row.dedup_key,
            RmmAlert.alert_id != row.alert_id, RmmAlert.ticket_open.is_(True), RmmAlert.ticket_id.is_not(None)
        ).order_by(RmmAlert.occurrence_count.desc(), RmmAlert.created_at).limit(1)).scalar()

    def _notify(self, s: Session, row: RmmAlert, rule: Rule) -> None:
        """Without an in-app notification action installed: a ``USER_NOTIFICATION`` outbox event per user, in
        the decision's transaction, for the host to show."""
        if self.app.registry.action(IN_APP) is not None:
            return
        for user_id in rule.actions.notify_users:
            outbox.emit(s, row.tenant, outbox.USER_NOTIFICATION, {
                "user_id": user_id, "kind": "rmm_alert", "title": row.title, "alert_id": row.alert_id,
                "ticket_id": row.ticket_id, "severity": row.severity, "provider": row.provider})

    def _notify_users(self, row: RmmAlert, rule: Rule) -> None:
        """In-app notifications (``notifications.send_in_app``) and Teams ``notify_user`` where the tenant has
        Teams; keyed by the alert, so a retried decision notifies once. A failure is logged, never raised."""
        title = (row.title or f"{row.provider} alert")[:200]
        text = (row.message or row.title or "RMM alert")[:1000]
        for user_id in rule.actions.notify_users:
            calls = [(IN_APP, {"user_id": user_id, "title": title, "body": text,
                               "dedupe_key": f"rmm_alert:{row.alert_id}"}),
                     (TEAMS_NOTIFY, {"user_id": user_id, "title": title, "message": text})]
            for action_id, data in calls:
                if self.app.registry.action(action_id) is None:
                    continue
                result = self.app.execute(action_id, tenant=row.tenant, input=data,
                                          idempotency_key=f"alert:{row.tenant}:{row.alert_id}:{action_id}:{user_id}")
                if not result.ok and result.error is not None and result.error.code != "INTEGRATION_INACTIVE":
                    log.warning("alert %s: %s to %s failed: %s %s", row.alert_id, action_id, user_id,
                                result.error.code, result.error.message)


@dataclass(frozen=True)
class _Snapshot:
    alert_id: str
    device: str | None
    message: str | None
    title: str | None
    severity: str | None
    organization: str | None
    asset_id: str | None
    client_id: str | None

    @classmethod
    def of(cls, row: RmmAlert, client_id: str | None) -> _Snapshot:
        raw = row.raw or {}
        device = raw.get("_device_name") if isinstance(raw, dict) else None
        return cls(row.alert_id, str(device or row.external_device_id or "unknown device"), row.message, row.title,
                   row.severity, row.organization, row.asset_id, client_id)


def event_of(row: RmmAlert) -> AlertEvent:
    """The stored alert as a ``triggered`` event (rules see what they would have seen)."""
    return AlertEvent(kind="triggered", tenant=row.tenant, provider=row.provider,
                      external_alert_id=row.external_alert_id, device_id=row.external_device_id,
                      severity=row.severity, activity_type=row.activity_type, alert_class=row.alert_class,
                      source_type=row.source_type, organization=row.organization, title=row.title,
                      message=row.message, occurred_at=row.occurred_at, raw=dict(row.raw or {}))


def payload(row: RmmAlert, *, outcome: str) -> dict[str, Any]:
    """The provider-generic payload of ``RMM_ALERT_TRIGGERED`` / ``RMM_ALERT_RESOLVED``."""
    return {
        "alert_id": row.alert_id, "provider": row.provider, "external_alert_id": row.external_alert_id,
        "status": row.status, "outcome": outcome, "severity": row.severity, "activity_type": row.activity_type,
        "alert_class": row.alert_class, "source_type": row.source_type, "organization": row.organization,
        "device_id": row.external_device_id, "asset_id": row.asset_id, "title": row.title, "message": row.message,
        "dedup_key": row.dedup_key, "occurrence_count": row.occurrence_count, "ticket_id": row.ticket_id,
        "matched_rule_id": row.matched_rule_id, "occurred_at": _iso(row.occurred_at),
        "resolved_at": _iso(row.resolved_at),
    }


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _fit(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def ticket_closed(app: App, tenant: str, ticket_id: str) -> list[dict[str, Any]]:
    """The host closed ``ticket_id``: its alerts no longer hold it open, and each still-active linked alert
    is reset in the RMM through its provider's outbound reset action, unless its rule opted out.

    A failed reset is recorded on the alert (``reset_error``) and returned, never raised: the close stands.
    Returns one entry per linked alert: ``{"alert_id", "reset": "done" | "failed" | "skipped", "reason"}``.
    """
    with app.db.session(write=True) as s:
        rows = list(s.execute(select(RmmAlert).where(RmmAlert.tenant == tenant, RmmAlert.ticket_id == ticket_id)
                              .order_by(RmmAlert.created_at, RmmAlert.alert_id)).scalars())
        for row in rows:
            row.ticket_open = False
        todo = [(r.alert_id, r.provider, r.external_alert_id, r.status, r.reset_on_ticket_close) for r in rows]
    report: list[dict[str, Any]] = []
    for alert_id, provider, external_id, status, reset_on_close in todo:
        source = app.registry.alert_sources.get(provider)
        if status not in ACTIVE:
            report.append({"alert_id": alert_id, "reset": "skipped", "reason": f"alert is {status}"})
            continue
        if not reset_on_close:
            report.append({"alert_id": alert_id, "reset": "skipped", "reason": "the rule opted out"})
            continue
        if source is None or source.reset_action is None:
            report.append({"alert_id": alert_id, "reset": "skipped", "reason": f"{provider} offers no reset"})
            continue
        try:
            result = app.execute(source.reset_action, tenant=tenant, input={source.reset_field: external_id},
                                 idempotency_key=f"ticket-closed:{tenant}:{ticket_id}:{alert_id}:reset")
            error = None if result.ok else result.error
        except Exception as exc:  # never block the close
            error = ActionError.internal(f"{type(exc).__name__}")
        with app.db.session(write=True) as s:
            row = s.execute(select(RmmAlert).where(RmmAlert.tenant == tenant, RmmAlert.alert_id == alert_id)
                            ).scalar_one()
            row.reset_error = None if error is None else f"{error.code}: {error.message}"[:4000]
        if error is None:
            report.append({"alert_id": alert_id, "reset": "done", "reason": None})
        else:
            log.warning("alert %s: resetting it in %s after ticket %s closed failed: %s %s", alert_id, provider,
                        ticket_id, error.code, error.message)
            report.append({"alert_id": alert_id, "reset": "failed", "reason": f"{error.code}: {error.message}"})
    return report


def after_action(app: App, action_id: str, tenant: str, output: dict[str, Any] | None) -> None:
    """Called after every successful action call: a ``tickets.close`` (whoever provides it) means its
    alerts are reset in their RMM (:func:`ticket_closed`). Never raises."""
    if action_id != "tickets.close" or not output:
        return
    ticket = output.get("ticket")
    ticket_id = ticket.get("ticket_id") if isinstance(ticket, dict) else output.get("ticket_id")
    if not ticket_id:
        return
    try:
        ticket_closed(app, tenant, str(ticket_id))
    except Exception:
        log.exception("ticket %s closed, but its alerts could not be looked at", ticket_id)


def ingest_payload(app: App, tenant: str, provider: str, body: str | bytes | Any) -> list[Decision]:
    """Run one webhook body (as the vendor posts it) through ``provider``'s normalizer and the pipeline, now.

    For demos and tests (``mspflow alerts ingest``); deliveries to ``mspflow serve`` take the journaled path.
    A body that is not JSON is given to the normalizer as text (Tactical RMM's broken templates).
    """
    import json as _json

    from mspflow.inbound.receivers import Delivery

    source = app.registry.alert_sources.get(provider)
    if source is None:
        known = ", ".join(sorted(app.registry.alert_sources)) or "none"
        raise ActionError.not_found(f"no installed plugin is an alert source for {provider!r}; known: {known}")
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    if isinstance(body, str):
        with contextlib.suppress(ValueError):
            body = _json.loads(body)
    delivery = Delivery(event_id="direct", tenant=tenant, provider=provider, delivery_id="direct",
                        received_at=datetime.now(UTC), payload=body)
    events = [e.model_copy(update={"tenant": tenant, "provider": provider}) for e in source.normalize(delivery)]
    return AlertPipeline(app).handle_all(events)
