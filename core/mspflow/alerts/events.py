"""The normalized alert event and the alert source a provider plugin declares.

A provider plugin turns its receiver's payloads into :class:`AlertEvent` objects (its normalizer) and
registers an :class:`AlertSource` through the ``register_alert_sources`` hook; the core's pipeline
(:mod:`mspflow.alerts.pipeline`) does the rest, the same way for every provider.

Examples::

    from mspflow import AlertEvent, AlertSource, Receiver, hookimpl, webhook

    def normalize(delivery):                   # the receiver's parse: a delivery → alert events
        body = delivery.payload
        return [AlertEvent(kind="triggered" if body["state"] == "firing" else "reset",
                           tenant=delivery.tenant, provider="acme", external_alert_id=body["id"],
                           device_id=body["device"], condition_id=body["check"],
                           severity=body["severity"], message=body["text"], raw=body)]

    def poll(ctx):                             # optional: the provider's currently active alerts
        return [AlertEvent(...) for a in ctx.http().get("alerts").json()]

    acme_alerts = AlertSource("acme", normalize=normalize, poll=poll, reset_action="acme.alerts.reset")

    @hookimpl
    def register_alert_sources(register):
        register(acme_alerts)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from mspflow.modules import DefinitionError

if TYPE_CHECKING:
    from mspflow.context import ActionContext
    from mspflow.inbound.receivers import Delivery

AlertKind = Literal["triggered", "reset", "acknowledged"]


class AlertEvent(BaseModel):
    """One alert event, provider-generic.

    :ivar kind: ``triggered``, ``reset`` or ``acknowledged``.
    :ivar external_alert_id: the vendor's id of this alert (one firing); with the tenant and provider it is
        the alert's identity (a replayed event is a no-op).
    :ivar device_id: the vendor's device id (the asset is found from it).
    :ivar condition_id: what fired (NinjaOne ``sourceConfigUid``, Tactical's check or task); with the device it
        is the dedup key that joins a new firing to the open ticket of an earlier one.
    :ivar occurred_at: when it happened at the vendor (default: when it was received).
    """

    kind: AlertKind
    tenant: str
    provider: str
    integration: str | None = None
    external_alert_id: str = Field(min_length=1, max_length=255)
    device_id: str | None = None
    device_name: str | None = None
    severity: str | None = None
    activity_type: str | None = None
    alert_class: str | None = None
    source_type: str | None = None
    organization: str | None = None
    title: str | None = None
    message: str | None = None
    condition_id: str | None = None
    occurred_at: datetime | None = None
    acknowledged_by: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        """``device + condition identity`` (the alert id when the vendor names no condition)."""
        condition = self.condition_id or f"alert:{self.external_alert_id}"
        return f"{self.device_id or '-'}|{condition}"[:512]

    @property
    def event_key(self) -> str:
        """What identifies this event for idempotency: the alert and what happened to it."""
        return f"{self.provider}:{self.external_alert_id}:{self.kind}"


Normalizer = Callable[["Delivery"], "Iterable[AlertEvent]"]
Poller = Callable[["ActionContext"], "Iterable[AlertEvent]"]


@dataclass(frozen=True)
class AlertSource:
    """How a provider's alerts enter the pipeline.

    :param provider: the provider (its receiver's and its integration's name, e.g. ``ninjaone``).
    :param normalize: ``(delivery) -> iterable of AlertEvent``; use it as the provider's receiver ``parse``.
    :param poll: ``(ctx) -> the provider's currently active alerts`` as ``triggered`` events (optional).
    :param reset_action: the id of one of the plugin's own actions that resets an alert in the RMM
        (input ``{reset_field: <the vendor's alert id>}``), run through the runtime when an alert-linked
        ticket closes (optional).
    :param reset_field: the reset action's input field for the vendor's alert id (default
        ``external_alert_id``).
    """

    provider: str
    normalize: Normalizer
    poll: Poller | None = None
    reset_action: str | None = None
    label: str | None = None
    reset_field: str = "external_alert_id"

    def check(self) -> None:
        if not isinstance(self.provider, str) or not re.match(r"^[a-z][a-z0-9_]*$", self.provider):
            raise DefinitionError(f"alert source provider {self.provider!r} must be lower-case letters, digits, _")
        if not callable(self.normalize):
            raise DefinitionError(f"alert source {self.provider!r}: normalize must be callable")
        if self.poll is not None and not callable(self.poll):
            raise DefinitionError(f"alert source {self.provider!r}: poll must be callable")
        if self.reset_action is not None and not self.reset_action.startswith(f"{self.provider}."):
            raise DefinitionError(f"alert source {self.provider!r}: reset_action {self.reset_action!r} must be "
                                  f"one of the plugin's own actions ({self.provider}.…)")


_NONE = {"", "none", "null", "nil", "n/a"}


def vendor_text(value: Any) -> str | None:
    """A vendor string with templated falsy values (``"None"``, ``""``, ``"null"``) read as None."""
    if value is None or (isinstance(value, bool) and not value):
        return None
    text = str(value).strip()
    return None if text.lower() in _NONE else text


def vendor_time(value: Any) -> datetime | None:
    """A vendor timestamp: epoch seconds, ISO-8601, or ``2026-11-29 09:42:17.503914+00:00``; naive = UTC."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    text = vendor_text(value)
    if text is None:
        return None
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def vendor_json(text: Any) -> Any:
    """``text`` decoded as JSON, or None when it is not JSON (a vendor template that broke it)."""
    import json

    if not isinstance(text, str | bytes):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
