"""mspflow-huntress: Huntress incident reports, agents and organizations as workflow actions.

Reads top to bottom: the tile, its availability, the vendor declaration (base URL, Basic auth, the
account's rate limit, token paging), the client (paths and shapes), the actions. Throttling, 429s,
retries, percent-encoding and scrubbing of the key pair live in the core (:mod:`mspflow.vendor`).

Huntress allows **60 requests per minute per account**, on a sliding window. It is declared once, below,
with ``scope="credential"``: the core keys the budget on the tenant's key pair (two tenants sharing one
key share one budget) and holds it across every worker through Redis. Other tools on the same account
draw on it too, so a 429 can still come; the core waits it out without spending the retry budget.
Operators can lower the declared limit (or shorten it for tests) with ``MSPFLOW_RATE_LIMITS``, e.g.
``huntress=40/60``.

Tenant secrets ``huntress_api_key`` and ``huntress_api_secret``; the account's default key is read-only,
so resolving an incident needs a user-based key. The base URL is ``https://api.huntress.io/v1``, or the
tenant's ``rmm_integrations.instance_url``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from mspflow import (
    ActionContext,
    ActionError,
    Module,
    RateLimit,
    TokenPaging,
    Vendor,
    auth,
    hookimpl,
    rmm_integration,
)

PROVIDER = "huntress"

HUNTRESS_API = Vendor(
    "Huntress", base_url="https://api.huntress.io/v1",
    auth=auth.basic("huntress_api_key", "huntress_api_secret"),
    rate_limit=RateLimit(60, window_s=60, scope="credential"),  # per account, sliding window
    paging=TokenPaging(token="page_token", size="limit", page_size=500),
)

huntress = Module(
    "app:huntress", label="Huntress", icon="huntress",
    description="Read Huntress incident reports, agents and organizations, and resolve incidents.",
    availability=rmm_integration(PROVIDER),
    default_action_id="huntress.incidents.find",
    vendor=HUNTRESS_API,
    simulator="mspflow_huntress.sim:HuntressSimulator",
)

# -- the client: paths and shapes -------------------------------------------------------------------------


class Huntress:
    """Huntress API v1 for one tenant: single resources wrapped in their name, lists paged by token."""

    def __init__(self, ctx: ActionContext) -> None:
        self.http = ctx.http()

    def _one(self, path: tuple[str | int, ...], name: str) -> dict[str, Any]:
        body = self.http.get(path)
        item = body.get(name) if isinstance(body, dict) else None
        if not isinstance(item, dict):
            raise ActionError("TRANSIENT_FAILURE", f"Huntress API answered without {name!r}",
                              details={"reason": "VENDOR_REPLY_SHAPE", "field": name})
        return item

    def account(self) -> dict[str, Any]:
        return self._one(("account",), "account")

    def agent(self, agent_id: int) -> dict[str, Any]:
        return self._one(("agents", agent_id), "agent")

    def report(self, report_id: int) -> dict[str, Any]:
        return self._one(("incident_reports", report_id), "incident_report")

    def reports(self, filters: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        return self.http.pages(("incident_reports",), params=filters, items="incident_reports", limit=limit)

    def organizations(self, filters: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        return self.http.pages(("organizations",), params=filters, items="organizations", limit=limit)

    def resolve(self, report_id: int) -> Any:
        """``POST /incident_reports/{id}/resolution`` (no body): 201 with the report."""
        return self.http.post(("incident_reports", report_id, "resolution"))


# -- shapes ---------------------------------------------------------------------------------------------

Status = Literal["sent", "closed", "dismissed", "auto_remediating", "deleting", "partner_dismissed"]
Severity = Literal["low", "high", "critical"]
Platform = Literal["windows", "darwin", "microsoft_365", "google", "linux", "email_security", "other"]
IndicatorType = Literal[
    "footholds", "monitored_files", "ransomware_canaries", "antivirus_detections", "process_detections",
    "managed_identity", "mde_detections", "siem_detections", "favicon_detections", "behavioral_detections",
    "email_security_detections", "app_control", "ai_misuse"]
HuntressId = Annotated[int, Field(ge=1, description="The Huntress id (an integer)")]


class IncidentReport(BaseModel):
    id: int
    organization_id: int | None = None
    agent_id: int | None = None
    status: str | None = Field(None, description="As Huntress reports it (after resolution too): not limited "
                                                  "to the filter's values")
    severity: str | None = None
    platform: str | None = None
    subject: str | None = None
    summary: str | None = None
    indicator_types: list[str] = []
    indicator_counts: dict[str, Any] = {}
    remediations: dict[str, Any] | list[Any] = {}
    sent_at: str | None = None
    closed_at: str | None = None
    status_updated_at: str | None = None
    updated_at: str | None = None


class IncidentReportDetail(IncidentReport):
    body: str | None = Field(None, description="The report body (HTML) written by Huntress's SOC")


class Agent(BaseModel):
    id: int
    organization_id: int | None = None
    hostname: str | None = None
    domain_name: str | None = None
    platform: str | None = None
    os: str | None = None
    os_build_version: str | None = None
    arch: str | None = None
    serial_number: str | None = None
    external_ip: str | None = None
    ipv4_address: str | None = None
    mac_addresses: list[str] = []
    tags: list[str] = []
    version: str | None = None
    edr_version: str | None = None
    defender_status: str | None = None
    firewall_status: str | None = None
    tamper_protection_actual: bool | None = None
    last_callback_at: str | None = None
    last_survey_at: str | None = None
    created_at: str | None = None


class Organization(BaseModel):
    id: int
    name: str | None = None
    key: str | None = None
    agents_count: int | None = None
    incident_reports_count: int | None = None
    created_at: str | None = None
    updated_at: str | None = None


class Account(BaseModel):
    id: int
    name: str | None = None
    subdomain: str | None = None
    status: str | None = Field(None, description="enabled or disabled")
    support_type: str | None = None


# -- the actions ----------------------------------------------------------------------------------------


class FindIncidentsInput(BaseModel):
    status: Status | None = None
    severity: Severity | None = None
    platform: Platform | None = None
    organization_id: int | None = Field(None, ge=1)
    agent_id: int | None = Field(None, ge=1)
    indicator_type: IndicatorType | None = None
    limit: int = Field(50, ge=1, le=2000, description="At most this many, newest first")


class IncidentReports(BaseModel):
    incident_reports: list[IncidentReport]
    count: int


@huntress.action("huntress.incidents.find", label="Find incidents")
def find_incidents(params: FindIncidentsInput, ctx: ActionContext) -> IncidentReports:
    """Incident reports matching every filter given, newest first (without their bodies)."""
    filters = params.model_dump(exclude={"limit"}, exclude_none=True)
    found = [IncidentReport.model_validate(r) for r in Huntress(ctx).reports(filters, params.limit)]
    return IncidentReports(incident_reports=found, count=len(found))


class IncidentInput(BaseModel):
    incident_report_id: HuntressId


class IncidentOutput(BaseModel):
    incident_report: IncidentReportDetail


@huntress.action("huntress.incidents.get", label="Get incident")
def get_incident(params: IncidentInput, ctx: ActionContext) -> IncidentOutput:
    """One incident report with its body."""
    report = Huntress(ctx).report(params.incident_report_id)
    return IncidentOutput(incident_report=IncidentReportDetail.model_validate(report))


class ResolveOutput(BaseModel):
    resolved: bool
    incident_report_id: int
    status: str | None = Field(description="The status Huntress gives the report after resolving, as it comes")
    incident_report: IncidentReportDetail | None


RESOLVE_REFUSALS = {  # status: (error, reason, what to do)
    403: (ActionError.permission_denied, "READ_ONLY_KEY", "the account's default API key is read-only: create a "
          "user-based API key with permission to resolve (<subdomain>.huntress.io > API Credentials) and store it "
          "as the tenant secrets huntress_api_key / huntress_api_secret"),
    409: (ActionError.conflict, "REMEDIATIONS_NOT_APPROVED", "every remediation of the report must be approved first: "
          "approve them in Huntress, then resolve again"),
    422: (ActionError.conflict, "NOT_SENT", "only a report whose status is 'sent' can be resolved; it may already be "
          "closed or dismissed"),
}


@huntress.action("huntress.incidents.resolve", label="Resolve incident", side_effectful=True)
def resolve_incident(params: IncidentInput, ctx: ActionContext) -> ResolveOutput:
    """Resolve an incident report (status 'sent', every remediation approved) with a user-based API key."""
    try:
        body = Huntress(ctx).resolve(params.incident_report_id)
    except ActionError as err:
        refusal = RESOLVE_REFUSALS.get(err.details.get("status", 0))
        if refusal is None:
            raise
        error, reason, advice = refusal
        raise error(f"{err.message}; {advice}", **{**err.details, "reason": reason,
                                                  "incident_report_id": params.incident_report_id}) from None
    report = body.get("incident_report") if isinstance(body, dict) else None
    detail = IncidentReportDetail.model_validate(report) if isinstance(report, dict) else None
    return ResolveOutput(resolved=True, incident_report_id=params.incident_report_id,
                         status=detail.status if detail else None, incident_report=detail)


class ListOrganizationsInput(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=255, description="Exact organization name")
    key: str | None = Field(None, min_length=1, max_length=255, description="Exact organization key")
    limit: int = Field(100, ge=1, le=2000)


class Organizations(BaseModel):
    organizations: list[Organization]
    count: int


@huntress.action("huntress.organizations.list", label="List organizations")
def list_organizations(params: ListOrganizationsInput, ctx: ActionContext) -> Organizations:
    """The account's organizations (Huntress's clients), optionally one by name or key."""
    filters = params.model_dump(exclude={"limit"}, exclude_none=True)
    found = [Organization.model_validate(o) for o in Huntress(ctx).organizations(filters, params.limit)]
    return Organizations(organizations=found, count=len(found))


class AgentInput(BaseModel):
    agent_id: HuntressId


class AgentOutput(BaseModel):
    agent: Agent


@huntress.action("huntress.agents.get", label="Get agent")
def get_agent(params: AgentInput, ctx: ActionContext) -> AgentOutput:
    """One Huntress agent: host, OS, network, versions and Defender/firewall state."""
    return AgentOutput(agent=Agent.model_validate(Huntress(ctx).agent(params.agent_id)))


class AccountInput(BaseModel):
    pass


class AccountOutput(BaseModel):
    account: Account


@huntress.action("huntress.account.get", label="Get account")
def get_account(params: AccountInput, ctx: ActionContext) -> AccountOutput:
    """The Huntress account behind the tenant's API key."""
    return AccountOutput(account=Account.model_validate(Huntress(ctx).account()))


@hookimpl
def register_modules(register: Any) -> None:
    register(huntress)
