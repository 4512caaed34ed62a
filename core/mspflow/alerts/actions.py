"""``rmm.alerts.create_ticket``: make (or join) the ticket of a stored alert, by its id, as a workflow step.

The same ticket decision as the pipeline's (dedup key, rule's ticket settings, idempotency keys from the
alert event), so a step that asks for the ticket of an alert the pipeline already ticketed gets that
ticket, never a second one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from mspflow.errors import ActionError
from mspflow.modules import action

if TYPE_CHECKING:
    from mspflow.runtime import Runtime


class CreateTicketInput(BaseModel):
    alert_id: str = Field(min_length=1, max_length=36, description="The PSA's alert id (rmm_alerts.alert_id).")
    rule_id: str | None = Field(None, min_length=1, max_length=36,
                                description="Use this rule's ticket settings; default: the alert's matched rule's "
                                            "when it creates tickets, else no board and the default templates.")


class CreateTicketOutput(BaseModel):
    alert_id: str
    ticket_id: str
    outcome: str = Field(description="ticket_created, joined (an open ticket of the same condition), or "
                                     "existing (the alert already had its ticket)")


class _Host:
    """What the pipeline needs of an App, from the runtime running this action."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime, self.registry, self.db = runtime, runtime.registry, runtime.db

    def execute(self, action_id: str, *, tenant: str, input: dict[str, Any], idempotency_key: str | None = None,
                run_id: str | None = None, **_: Any) -> Any:
        from mspflow.runtime import ActionCall

        return self.runtime.execute(ActionCall(action_id, tenant, dict(input), None, run_id, None, idempotency_key))


def create_ticket(params: CreateTicketInput, ctx: Any) -> CreateTicketOutput:
    from sqlalchemy import select

    from mspflow.alerts.pipeline import AlertPipeline, event_of
    from mspflow.alerts.rules import Actions, Conditions, CreateTicket, Rule
    from mspflow.db.models import AlertRule, RmmAlert
    from mspflow.runtime import CURRENT_RUNTIME

    runtime = CURRENT_RUNTIME.get()
    if runtime is None:
        raise ActionError.internal("rmm.alerts.create_ticket runs only inside the mspflow runtime")
    host: Any = _Host(runtime)
    with runtime.db.session(write=True) as s:
        row = s.execute(select(RmmAlert).where(RmmAlert.tenant == ctx.tenant_id,
                                               RmmAlert.alert_id == params.alert_id)).scalar_one_or_none()
        if row is None:
            raise ActionError.not_found(f"no stored alert {params.alert_id!r}", alert_id=params.alert_id)
        if row.ticket_id is not None:
            return CreateTicketOutput(alert_id=row.alert_id, ticket_id=row.ticket_id, outcome="existing")
        rule = None
        if params.rule_id is not None:
            found = s.get(AlertRule, params.rule_id)
            if found is None or found.tenant != ctx.tenant_id:
                raise ActionError.not_found(f"no alert rule {params.rule_id!r}", rule_id=params.rule_id)
            rule = Rule.of(found)
            if rule.actions.create_ticket is None:
                raise ActionError.validation(f"alert rule {found.name!r} does not create tickets", fields=["rule_id"])
        elif row.matched_rule_id is not None and (found := s.get(AlertRule, row.matched_rule_id)) is not None:
            rule = Rule.of(found)
        if rule is None or rule.actions.create_ticket is None:  # the default ticket settings
            rule = Rule("", "rmm.alerts.create_ticket", 0, Conditions(), Actions(create_ticket=CreateTicket()))
        row.auto_ticket, row.pipeline_state = True, "pending"
        event = event_of(row)
        alert_id = row.alert_id
    decision = AlertPipeline(host)._decide(alert_id, event, rule_override=rule)
    if decision.ticket_id is None:
        raise ActionError.conflict("the alert's ticket could not be decided; try again", retryable=True)
    return CreateTicketOutput(alert_id=alert_id, ticket_id=decision.ticket_id,
                              outcome=decision.outcome if decision.outcome != "duplicate" else "existing")


create_ticket_action = action("rmm.alerts.create_ticket", label="Create ticket for alert", handler=create_ticket,
                              side_effectful=True, category="RMM alerts", input_model=CreateTicketInput,
                              output_model=CreateTicketOutput,
                              description="Open (or join) the ticket of a stored RMM alert, by its alert id.")
