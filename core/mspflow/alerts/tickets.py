"""The alert pipeline's only door to tickets: the ``tickets.*`` actions, whoever provides them.

mspflow does not own a PSA's tickets; it names them by action ids (``tickets.create``,
``tickets.add_comment``, ``tickets.find``, ``tickets.close``, ``tickets.link_entities``) and runs them
through the runtime, so each call is validated, recorded and idempotent. Every key derives from the alert
event that caused the call, so a redelivered event (or a worker killed mid-way and taken over) never
opens a second ticket nor writes a second comment.

Examples::

    tickets = Tickets(app, "acme-corp")
    ticket_id = tickets.create({"title": "Disk full on FS-01", ...}, key="alert:acme-corp:ninjaone:…:create")
    tickets.comment(ticket_id, "re-triggered — 2nd occurrence", key="…:comment")
    tickets.untouched(ticket_id)       # True while nobody but mspflow worked on it
    tickets.close(ticket_id, "The alert reset in NinjaOne.", key="…:close")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mspflow.errors import ActionError

if TYPE_CHECKING:
    from mspflow.app import App

#: How long a ticket call waits for the same call (same idempotency key) running elsewhere to finish.
IN_PROGRESS_WAIT_S = 60.0

CREATE, COMMENT, FIND, CLOSE, LINK = ("tickets.create", "tickets.add_comment", "tickets.find", "tickets.close",
                                      "tickets.link_entities")


class Tickets:
    """One tenant's tickets through the ``tickets.*`` actions; a failed call raises its ActionError."""

    def __init__(self, app: App, tenant: str) -> None:
        self.app, self.tenant = app, tenant

    def available(self) -> bool:
        return self.app.registry.action(CREATE) is not None

    def _run(self, action_id: str, data: dict[str, Any], key: str | None) -> dict[str, Any]:
        if self.app.registry.action(action_id) is None:
            raise ActionError.not_found(f"no {action_id} action is installed: install mspflow-psa or the host's "
                                        "ticket plugin", action_id=action_id)
        # The same alert reached by two paths at once (its webhook and the reconciliation poll, or a
        # redelivery beside a slow worker) derives the same key: wait for the call already running and
        # take its recorded result, instead of failing this path.
        result = self.app.execute(action_id, tenant=self.tenant, input=data, idempotency_key=key,
                                  run_id=f"alerts-{self.tenant}", wait_if_running=IN_PROGRESS_WAIT_S)
        if not result.ok:
            assert result.error is not None
            raise result.error
        return result.output or {}

    def create(self, data: dict[str, Any], *, key: str) -> str:
        """A new ticket (``data``: title, description, board, priority, assigned_user_id, client_id, source,
        source_ref); returns its id."""
        out = self._run(CREATE, {k: v for k, v in data.items() if v is not None}, key)
        nested = out.get("ticket")
        ticket: dict[str, Any] = nested if isinstance(nested, dict) else out
        if not ticket.get("ticket_id"):
            raise ActionError.internal("tickets.create answered without a ticket_id")
        return str(ticket["ticket_id"])

    def comment(self, ticket_id: str, text: str, *, key: str, internal: bool = True) -> None:
        self._run(COMMENT, {"ticket_id": ticket_id, "body": text, "is_internal": internal,
                            "author_kind": "automation"}, key)

    def link(self, ticket_id: str, entities: list[tuple[str, str]], *, key: str) -> None:
        """Link the ticket to ``(entity_type, entity_id)`` pairs (an asset, the alert) in one call."""
        if self.app.registry.action(LINK) is None or not entities:
            return
        self._run(LINK, {"ticket_id": ticket_id, "links": [{"entity_type": t, "entity_id": i} for t, i in entities]},
                  key)

    def find(self, ticket_id: str) -> dict[str, Any] | None:
        """The ticket as ``tickets.find`` shows it (``untouched``, ``is_closed``, ...), or None."""
        out = self._run(FIND, {"ticket_id": ticket_id}, None)
        found = out.get("tickets")
        if isinstance(found, list):
            return found[0] if found and isinstance(found[0], dict) else None
        return None

    def untouched(self, ticket_id: str) -> bool:
        """Whether nobody but automation has worked on the ticket (``tickets.find``'s ``untouched``)."""
        ticket = self.find(ticket_id)
        return bool(ticket and ticket.get("untouched") is True and not ticket.get("is_closed"))

    def is_open(self, ticket_id: str) -> bool:
        ticket = self.find(ticket_id)
        return bool(ticket and not ticket.get("is_closed"))

    def close(self, ticket_id: str, note: str, *, key: str) -> None:
        """Close the ticket; one already closed (by someone else meanwhile) counts as done."""
        try:
            self._run(CLOSE, {"ticket_id": ticket_id, "resolution": note}, key)
        except ActionError as exc:
            if exc.code != "CONFLICT" or (exc.details or {}).get("reason") != "ALREADY_CLOSED":
                raise
