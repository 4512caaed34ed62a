"""Shared set-up for the alert pipeline tests: NinjaOne and Tactical RMM simulators, the reference PSA's
``tickets.*``, a real ``mspflow serve`` app on loopback, and the tenant's webhooks."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from mspflow_ninjaone.sim import NinjaOneSimulator
from mspflow_tacticalrmm.sim import FILESERVER_ID, TacticalRMMSimulator
from sqlalchemy import select, text

from mspflow import outbox
from mspflow.alerts.rules import add_rule
from mspflow.alerts.windows import add_window
from mspflow.app import App
from mspflow.db import models
from mspflow.inbound.journal import ensure_webhook
from mspflow.tenants import connect
from tests.inbound_support import LiveServer

TENANT = "acme"
PLUGINS = "psa,ninjaone,tacticalrmm,levelio"
DISK = "CONDITION_AGENT_DISK_FREE_SPACE"
__all__ = ["DISK", "FILESERVER_ID", "PLUGINS", "TENANT", "Desk", "wait_final"]


class Desk:
    """The app with NinjaOne and Tactical RMM connected for tenant ``acme``, their webhooks, and what the PSA
    holds (tickets, comments, alerts, outbox events)."""

    def __init__(self, app: App, server: LiveServer, ninja: NinjaOneSimulator, tactical: TacticalRMMSimulator,
                 *, webhooks: bool = True) -> None:
        self.app, self.server, self.ninja, self.tactical = app, server, ninja, tactical
        self.client = httpx.Client(base_url=server.url, timeout=60)
        with app.db.session(write=True) as s:
            connect(s, app.registry, TENANT, "ninjaone")
            connect(s, app.registry, TENANT, "tacticalrmm", instance_url=tactical.base_url)
            for name, value in ninja.demo_secrets().items():
                app.secrets.set(s, TENANT, name, value)
            app.secrets.set(s, TENANT, "tacticalrmm_api_key", tactical.api_key)
            self.hooks = {p: ensure_webhook(s, app.secrets, app.registry, TENANT, p) for p in ("ninjaone",
                                                                                              "tacticalrmm")}
            s.add(models.Client(tenant=TENANT, client_id="c-contoso", name="Contoso"))
            s.add(models.Client(tenant=TENANT, client_id="c-fabrikam", name="Fabrikam"))
            s.add(models.TenantExternalEntityMapping(tenant=TENANT, integration_type="ninjaone", entity_type="client",
                                                     entity_id="c-contoso", external_entity_id="3"))
            s.add(models.TenantExternalEntityMapping(tenant=TENANT, integration_type="tacticalrmm",
                                                     entity_type="client", entity_id="c-fabrikam",
                                                     external_entity_id="Contoso"))
            for device_id, name in ((1041, "FRONTDESK-01"), (1042, "FS-01")):
                s.add(models.Asset(tenant=TENANT, asset_id=f"asset-{device_id}", name=name, rmm_provider="ninjaone",
                                   rmm_device_id=str(device_id), rmm_organization_id="3"))
            s.add(models.User(tenant=TENANT, user_id="u-tech", first_name="Tess", last_name="Tech"))

    # -- arranging --------------------------------------------------------------------------------------

    def rule(self, name: str = "Alerts to tickets", priority: int = 10, conditions: dict[str, Any] | None = None,
             **actions: Any) -> dict[str, Any]:
        actions = {"create_ticket": {"board": "Alerts", "severity_priority": {"CRITICAL": "P1", "MAJOR": "P2"}},
                   "auto_resolve_ticket": True, **actions}
        with self.app.db.session(write=True) as s:
            return add_rule(s, TENANT, name=name, priority=priority, conditions=conditions or {}, actions=actions)

    def window(self, **spec: Any) -> dict[str, Any]:
        with self.app.db.session(write=True) as s:
            return add_window(s, TENANT, **spec)

    # -- deliveries -------------------------------------------------------------------------------------

    def post(self, provider: str, body: dict[str, Any] | bytes, *, content_type: str | None = "application/json",
             wait: bool = True) -> dict[str, Any]:
        hook = self.hooks[provider]
        secret = hook.secret
        assert secret is not None
        header = {"ninjaone": "X-NinjaOne-Secret", "tacticalrmm": "X-Tactical-Secret"}[provider]
        headers = {header: secret}
        if content_type is not None:
            headers["Content-Type"] = content_type
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = self.client.post(hook.path, content=raw, headers=headers)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        if wait and data["status"] == "accepted":
            row = wait_final(self.app, data["event_id"])
            assert row["status"] == "PROCESSED", row
        return data

    # -- what the PSA holds -----------------------------------------------------------------------------

    def tickets(self) -> list[dict[str, Any]]:
        out = self.app.execute("tickets.find", tenant=TENANT, input={"limit": 500})
        assert out.ok and out.output is not None, out.error
        return sorted(out.output["tickets"], key=lambda t: int(t["ticket_number"]))

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        return next(t for t in self.tickets() if t["ticket_id"] == ticket_id)

    def comments(self, ticket_id: str) -> list[str]:
        with self.app.db.engine.connect() as conn:
            return list(conn.execute(text("SELECT body FROM ticket_comments WHERE tenant = :t AND ticket_id = :i "
                                          "ORDER BY created_at, comment_id"), {"t": TENANT, "i": ticket_id}).scalars())

    def links(self, ticket_id: str) -> set[tuple[str, str]]:
        with self.app.db.engine.connect() as conn:
            rows = conn.execute(text("SELECT entity_type, entity_id FROM entity_links WHERE tenant = :t AND "
                                     "ticket_id = :i"), {"t": TENANT, "i": ticket_id}).all()
        return {(r[0], r[1]) for r in rows}

    def alerts(self, provider: str | None = None) -> list[models.RmmAlert]:
        with self.app.db.sessions() as s:
            q = select(models.RmmAlert).where(models.RmmAlert.tenant == TENANT)
            if provider:
                q = q.where(models.RmmAlert.provider == provider)
            return list(s.execute(q.order_by(models.RmmAlert.occurred_at, models.RmmAlert.created_at,
                                              models.RmmAlert.alert_id)).scalars())

    def alert(self, external_id: str) -> models.RmmAlert:
        return next(a for a in self.alerts() if a.external_alert_id == external_id)

    def events(self, event_type: str) -> list[dict[str, Any]]:
        with self.app.db.sessions() as s:
            return outbox.pending(s, tenant=TENANT, event_type=event_type, limit=1000, include_delivered=True)

    def notifications(self) -> list[dict[str, Any]]:
        """The in-app notifications (``notifications.send_in_app``) the tenant's users got."""
        with self.app.db.engine.connect() as conn:
            rows = conn.execute(text("SELECT user_id, title, dedupe_key FROM notifications WHERE tenant = :t "
                                     "ORDER BY created_at"), {"t": TENANT}).mappings().all()
        return [dict(r) for r in rows]

    def close_ticket(self, ticket_id: str) -> None:
        result = self.app.execute("tickets.close", tenant=TENANT, input={"ticket_id": ticket_id,
                                                                         "resolution": "fixed by hand"})
        assert result.ok, result.error

    def human_comment(self, ticket_id: str) -> None:
        result = self.app.execute("tickets.add_comment", tenant=TENANT, input={
            "ticket_id": ticket_id, "body": "Looking into it", "author_kind": "human"})
        assert result.ok, result.error


def wait_final(app: App, event_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll the journal until the delivery is PROCESSED, IGNORED or FAILED for good."""
    from mspflow.inbound.journal import get

    deadline = time.monotonic() + timeout
    while True:
        with app.db.sessions() as s:
            row = get(s, event_id)
        if row is not None and (row["status"] in ("PROCESSED", "IGNORED") or (
                row["status"] == "FAILED" and not (row["error"] or {}).get("retryable"))):
            return row
        if time.monotonic() > deadline:
            raise TimeoutError(f"event {event_id} not final: {row}")
        time.sleep(0.02)
