"""Test-only receivers: how a plugin declares the inbound side of its vendor.

``acme``: HMAC-signed JSON (``X-Acme-Signature: sha256=<hex>``), delivery id in ``event_id``, parsed into
typed alerts, each handled by writing a row (table ``acme_alerts``) through ``ctx.session``.
``tacky``: a shared-secret header, JSON that may come without a ``Content-Type`` (as Tactical RMM's
templated webhooks send it), no delivery id (the body hash is the id), no handler.
``boom``: a receiver whose delivery-id lookup raises (the server answers 500 without a traceback).
``jwty``: a custom verifier (as the Bot Framework's JWT check will be): no stored secret, its own check.
Installed as a throwaway distribution for subprocess tests, registered directly for in-process ones.
"""

import threading
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text

from mspflow import ActionContext, ActionError, Delivery, Ignore, Receiver, hookimpl, webhook

SCHEMA = ("CREATE TABLE IF NOT EXISTS acme_alerts (event_id VARCHAR(64) NOT NULL, alert_id VARCHAR(64) NOT NULL, "
          "attempt INTEGER NOT NULL)")
MAPPED_ORGS = {"org-1", "org-2"}
CALLS: dict[str, int] = {}
_lock = threading.Lock()


class AcmeAlert(BaseModel):
    alert_id: str
    org: str
    severity: str = "warning"


def parse(delivery: Delivery) -> list[AcmeAlert]:
    body = delivery.payload
    if body.get("org") not in MAPPED_ORGS:
        raise Ignore(f"organization {body.get('org')!r} is not mapped to a tenant")
    return [AcmeAlert(org=body["org"], **alert) for alert in body.get("alerts", [])]


def on_event(event: AcmeAlert, ctx: ActionContext) -> None:
    with _lock:
        CALLS[event.alert_id] = CALLS.get(event.alert_id, 0) + 1
    if event.severity == "flaky" and ctx.attempt < 2:
        raise ActionError("TRANSIENT_FAILURE", "vendor answered 503")
    if event.severity == "broken":
        raise RuntimeError("handler bug")
    if event.severity == "refused":
        raise ActionError.validation("the alert names no device")
    ctx.session.execute(text("INSERT INTO acme_alerts (event_id, alert_id, attempt) VALUES (:e, :a, :n)"),
                        {"e": ctx.run_id or "", "a": event.alert_id, "n": ctx.attempt})


acme = Receiver("acme", label="Acme RMM", verify=webhook.hmac_signature("X-Acme-Signature", prefix="sha256="),
                delivery_id=webhook.json_field("event_id"), parse=parse, on_event=on_event)


class TackyAlert(BaseModel):
    agent_id: str
    message: str


def parse_tacky(delivery: Delivery) -> list[TackyAlert]:
    return [TackyAlert.model_validate(delivery.payload)]


tacky = Receiver("tacky", label="Tacky RMM", verify=webhook.shared_secret("X-Tacky-Secret"), parse=parse_tacky,
                 allow_missing_content_type=True)


def explode(headers: Any, payload: Any) -> str:
    raise KeyError(f"no id in {payload!r}")


boom = Receiver("boom", verify=webhook.shared_secret("X-Boom-Secret"), parse=parse_tacky, delivery_id=explode)


def check_token(request: Any, secret: str | None) -> bool:
    token = request.header("Authorization") or ""
    if token == "Bearer raise":
        raise ValueError("malformed token")
    return webhook.constant_time_equals(token, "Bearer good-token")


jwty = Receiver("jwty", verify=webhook.custom(check_token), parse=parse_tacky)


@hookimpl
def register_receivers(register: Any) -> None:
    register(acme)
    register(tacky)
    register(boom)
    register(jwty)
