"""The receiver declaration: how one provider's deliveries are verified, identified, read and handled.

A plugin declares one :class:`Receiver` per provider and registers it through ``register_receivers``.
The core does the rest: finds the tenant by the URL's connection token, verifies, journals once, answers,
and has a worker call ``parse`` (and ``on_event`` for each event) on the journaled delivery.

Example (Level signs the raw body: ``X-Level-Signature: sha256=<hex>``)::

    from pydantic import BaseModel
    from mspflow import ActionContext, Delivery, Ignore, Receiver, hookimpl, webhook

    class LevelAlert(BaseModel):
        event_type: str
        alert_id: str

    def parse(delivery: Delivery) -> list[LevelAlert]:
        body = delivery.payload
        if not body.get("event_type", "").startswith("alert_"):
            raise Ignore(f"event type {body.get('event_type')!r} is not handled")
        return [LevelAlert(event_type=body["event_type"], alert_id=body["data"]["id"])]

    def on_event(event: LevelAlert, ctx: ActionContext) -> None:
        ...                                   # ctx.session, ctx.alerts, ctx.http(): as in an action

    level = Receiver("level", label="Level",
                     verify=webhook.hmac_signature("X-Level-Signature", prefix="sha256="),
                     delivery_id=webhook.json_field("event_id"), parse=parse, on_event=on_event)

    @hookimpl
    def register_receivers(register):
        register(level)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mspflow.inbound.verify import DeliveryIdFn, Verifier
from mspflow.modules import DefinitionError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mspflow.context import ActionContext

PROVIDER = re.compile(r"^[a-z][a-z0-9_]*$")


class Ignore(Exception):
    """Raised by ``parse`` or ``on_event``: the delivery is valid but there is nothing to do for it.

    The journal records it IGNORED with ``reason``; the vendor got its 200 long ago.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """A journaled delivery as ``parse`` gets it.

    ``payload`` is the decoded body as journaled: secret values of the tenant scrubbed and secret-named
    keys (``token``, ``password``, ...) masked. ``headers`` are lower-case, without the signature or
    secret header.
    """

    event_id: str
    tenant: str
    provider: str
    delivery_id: str
    received_at: datetime
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1


Parser = Callable[[Delivery], "Iterable[BaseModel]"]
EventHandler = Callable[["BaseModel", "ActionContext"], None]


@dataclass(frozen=True)
class Receiver:
    """How one provider's deliveries are received.

    :param provider: the ``{provider}`` of ``/hooks/{provider}/{token}`` (lower-case, e.g. ``level``).
    :param verify: a strategy from :class:`mspflow.webhook` (HMAC of the body, shared secret, custom).
    :param parse: ``(delivery) -> iterable of pydantic models``, run by a worker; raise :class:`Ignore`
        for a valid delivery with nothing to do (e.g. an unmapped organization).
    :param on_event: ``(event, ctx) -> None`` for each parsed event, in the worker, with an
        :class:`mspflow.ActionContext` for the tenant; omitted: events are parsed and counted only (a
        later consumer, such as the alert pipeline, takes them).
    :param delivery_id: where the vendor's delivery id is (``webhook.json_field("event_id")``,
        ``webhook.header("X-Request-Id")`` or any ``(headers, payload) -> str | None``); without one,
        or when it yields nothing, the SHA-256 of the raw body is the id.
    :param content_types: media types accepted (others: 415).
    :param allow_missing_content_type: accept a body sent without ``Content-Type`` (Tactical RMM's
        templated webhooks do that) and read it as the first of ``content_types``.
    :param secret_name: the tenant secret holding the key; default ``<provider>_webhook_secret``.
    """

    provider: str
    verify: Verifier
    parse: Parser
    on_event: EventHandler | None = None
    delivery_id: DeliveryIdFn | None = None
    label: str | None = None
    content_types: tuple[str, ...] = ("application/json",)
    allow_missing_content_type: bool = False
    secret_name: str | None = None

    @property
    def secret(self) -> str:
        return self.secret_name or f"{self.provider}_webhook_secret"

    @property
    def display_name(self) -> str:
        return self.label or self.provider

    def check(self) -> None:
        if not isinstance(self.provider, str) or not PROVIDER.match(self.provider):
            raise DefinitionError(f"receiver provider {self.provider!r} must match {PROVIDER.pattern}")
        if not callable(getattr(self.verify, "verify", None)):
            raise DefinitionError(f"receiver {self.provider!r}: verify must be a strategy from mspflow.webhook "
                                  "(hmac_signature, shared_secret or custom)")
        if not callable(self.parse):
            raise DefinitionError(f"receiver {self.provider!r}: parse must be callable")
        if self.on_event is not None and not callable(self.on_event):
            raise DefinitionError(f"receiver {self.provider!r}: on_event must be callable")
        if not self.content_types:
            raise DefinitionError(f"receiver {self.provider!r}: content_types must name at least one type")
        unknown = [t for t in self.content_types if media_kind(t) is None]
        if unknown:
            raise DefinitionError(f"receiver {self.provider!r}: cannot read {', '.join(unknown)}; "
                                  "supported: application/json (and */*+json), "
                                  "application/x-www-form-urlencoded, text/plain")


def media_kind(media_type: str) -> str | None:
    """How the core decodes a media type: ``json``, ``form``, ``text``, or None (unsupported)."""
    media_type = media_type.lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return "json"
    if media_type == "application/x-www-form-urlencoded":
        return "form"
    if media_type == "text/plain":
        return "text"
    return None
