"""mspflow-tacticalrmm: Tactical RMM agents, scripts, commands and reboots as workflow actions.

Reads top to bottom: the tile, its availability, the client (paths, shapes, the auth choice), the
actions. Percent-encoded ids, vendor errors, the 401 → log in again → once-more rule, reply-shape checks
and scrubbing of secrets live in the core (:mod:`mspflow.vendor`), not here: this package only declares
Tactical's answers that mean "the agent did not answer" (``NO_ANSWER``) and the shapes it reads.

Tactical RMM is self-hosted: the base URL is the tenant's ``rmm_integrations.instance_url`` (the API host,
e.g. ``https://api.example.com``); there is no default. Every route ends in ``/``.

Auth is chosen by the integration's ``settings.auth_mode``:

* ``api_key`` (default): tenant secret ``tacticalrmm_api_key`` sent as ``X-API-KEY``;
* ``knox``: tenant secrets ``tacticalrmm_username`` and ``tacticalrmm_password``; the knox token is kept in
  ``tacticalrmm_knox_token`` and sent as ``Authorization: Token …``. A 401 logs in again once
  (``KNOX_LOGIN``, a core login-token strategy). An account with TOTP cannot log in unattended: use an API key instead.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mspflow import (
    ActionContext,
    ActionError,
    AlertEvent,
    AlertSource,
    Delivery,
    EnvVar,
    Ignore,
    LocalDateTime,
    Module,
    NoAnswer,
    Receiver,
    SyncedAsset,
    Vendor,
    auth,
    hookimpl,
    required_if,
    rmm_integration,
    vendor_json,
    vendor_text,
    vendor_time,
    webhook,
)

PROVIDER = "tacticalrmm"

# -- the tile and its availability -------------------------------------------------------------------

VENDOR = "Tactical RMM"
MAX_TIMEOUT_S = 900  # longest script/command wait accepted; the server itself waits timeout + 3 s
CLIENT_TIMEOUT_S = MAX_TIMEOUT_S + 15.0


def normalize_instance_url(url: str) -> str:
    """``api.example.com/api/`` → ``https://api.example.com``: scheme added, trailing ``/`` and a bare
    ``/api`` dropped (Tactical's routes hang off the API host's root)."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    if url.lower().endswith("/api"):
        url = url[:-4].rstrip("/")
    return url


# What Tactical answers when it could not reach an agent (observed on a real server). A run, command or
# reboot it relayed may or may not have reached the agent, so each is an unknown outcome, never repeated
# by the engine: runscript (wait) answers 200 "timeout" (connected agent silent) or "natsdown" (message
# bus down); cmd and reboot answer 400 "Unable to contact the agent"; a scheduled reboot answers 400 with
# the bare NATS result; an agent that is not connected at all makes the server fail with a 500 HTML page
# (NATS "no responders", uncaught), of which only the status and title are ever shown.
NO_ANSWER = (
    NoAnswer("timeout", "AGENT_TIMEOUT",
             "the agent did not answer in time (busy, or the run outlived its timeout)"),
    NoAnswer("natsdown", "AGENT_NATSDOWN", "the Tactical RMM server's message bus (NATS) is down"),
    NoAnswer("Unable to contact the agent", "AGENT_UNREACHABLE", "the agent is offline or did not answer"),
    NoAnswer(None, "AGENT_NOT_CONNECTED", "the agent is probably not connected (Tactical RMM fails this way "
             "when its message bus finds no agent to deliver to), or the server itself failed", status=500),
)

# Self-hosted: the base URL is the tenant's instance URL, never a default. No paging (full JSON arrays)
# and no API rate limits; every route ends in "/".
TACTICAL_API = Vendor(VENDOR, self_hosted=True, trailing_slash=True, timeout_s=CLIENT_TIMEOUT_S,
                      normalize=normalize_instance_url, no_answer=NO_ANSWER)

tacticalrmm = Module(
    "app:tacticalrmm", label="Tactical RMM", icon="tacticalrmm",
    description="Find Tactical RMM agents, run their scripts and commands, and reboot them.",
    availability=rmm_integration(PROVIDER),
    default_action_id="tacticalrmm.agents.find",
    vendor=TACTICAL_API,
    simulator="mspflow_tacticalrmm.sim:TacticalRMMSimulator",
)

# -- the client: paths, shapes and the auth choice ----------------------------------------------------

def _knox_reply(body: Any) -> None:
    """Checkcreds answers an account with TOTP ``{"totp": true}`` (older servers: ``"ok"``) and no token:
    the second step, ``POST /v2/login/`` with a ``twofactor`` code, cannot be done unattended."""
    if body == "ok" or (isinstance(body, dict) and body.get("totp") is True and not body.get("token")):
        raise ActionError.permission_denied(
            f"the {VENDOR} account has two-factor (TOTP) login, which a workflow cannot complete unattended; "
            "create an API key in Tactical RMM (Settings > Global Settings > API Keys), store it as tenant secret "
            "tacticalrmm_api_key and set the integration's auth_mode to api_key", reason="TOTP_REQUIRED")


# Knox mode: Tactical's first login step, ``POST /v2/checkcreds/`` with ``{username, password}``, answers an
# account without TOTP ``{token, expiry, totp: false}``; the token is sent as ``Authorization: Token …``.
KNOX_LOGIN = auth.login_token(
    ("v2", "checkcreds"), fields={"username": "tacticalrmm_username", "password": "tacticalrmm_password"},
    store_as="tacticalrmm_knox_token", token_field="token", prefix="Token ", check=_knox_reply,
    refused="fix the secrets tacticalrmm_username / tacticalrmm_password, or switch to an API key")
API_KEY = auth.api_key_header("X-API-KEY", "tacticalrmm_api_key")


class AgentRecord(BaseModel):
    """What mspflow reads of an agent, in the list (table) shape or the detail shape."""

    model_config = ConfigDict(extra="ignore")
    agent_id: str = Field(min_length=1)
    hostname: str | None = None
    description: str | None = None
    client_name: str | None = None
    client: str | int | None = None  # detail: the client's *name*; list(detail=false): also a name
    site_name: str | None = None
    status: str | None = None
    plat: str | None = None
    monitoring_type: str | None = None
    operating_system: str | None = None
    last_seen: str | float | None = None
    needs_reboot: bool | None = None
    version: str | None = None
    public_ip: str | None = None
    local_ips: str | list[str] | None = None
    logged_in_username: str | None = None
    make_model: str | list[str] | None = None
    time_zone: str | None = None
    timezone: str | None = None
    maintenance_mode: bool | None = None
    total_ram: int | None = None


class ScriptRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    name: str | None = None
    description: str | None = None
    category: str | None = None
    shell: str | None = None
    script_type: str | None = None
    args: list[str] | None = None
    env_vars: list[str] | None = None
    default_timeout: int | None = None
    run_as_user: bool | None = None
    supported_platforms: list[str] | None = None


class ScheduledReboot(BaseModel):
    model_config = ConfigDict(extra="ignore")
    time: str | None = None
    task_name: str | None = None


class TacticalRMM:
    """Tactical RMM's classic API for one tenant: full JSON arrays (no paging), no rate limits,
    application errors as a 400 whose body is a bare JSON string."""

    def __init__(self, ctx: ActionContext) -> None:
        mode = ctx.settings.get("auth_mode") or "api_key"
        if mode not in ("api_key", "knox"):
            raise ActionError.inactive(f"{VENDOR} auth_mode {mode!r} is unknown; set the integration setting "
                                       "auth_mode to api_key or knox", reason="BAD_AUTH_MODE")
        self.http = ctx.http(auth=API_KEY if mode == "api_key" else KNOX_LOGIN)

    def agents(self, monitoring_type: str | None = None) -> list[AgentRecord]:
        """``GET /agents/`` (``detail=true``: the table shape with ``client_name``/``site_name``)."""
        return list(self.http.get(("agents",), params={"monitoring_type": monitoring_type},
                                  expect=list[AgentRecord]))

    def agent(self, agent_id: str) -> AgentRecord:
        """``GET /agents/{agent_id}/``: the detail shape (``client`` is a name, ``site`` a pk)."""
        return self.http.get(("agents", agent_id), expect=AgentRecord)  # type: ignore[no-any-return]

    def scripts(self, *, community: bool) -> list[ScriptRecord]:
        params = {"showCommunityScripts": "true" if community else "false"}
        return list(self.http.get(("scripts",), params=params, expect=list[ScriptRecord]))

    def run_script(self, agent_id: str, body: dict[str, Any]) -> str:
        """200 with a JSON string: the output (wait), or a confirmation (forget); see ``NO_ANSWER``."""
        return str(self.http.post(("agents", agent_id, "runscript"), json=body, expect=str))

    def run_command(self, agent_id: str, body: dict[str, Any]) -> str:
        return str(self.http.post(("agents", agent_id, "cmd"), json=body, expect=str))

    def active_alerts(self) -> list[dict[str, Any]]:
        """``PATCH /alerts/`` with filters: the unresolved, unsnoozed alerts (the list is a PATCH)."""
        found = self.http.patch(("alerts",), json={"resolvedFilter": False, "snoozedFilter": False})
        return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []

    def resolve_alert(self, pk: str) -> None:
        """``PUT /alerts/{pk}/`` ``{"type": "resolve"}``."""
        self.http.put(("alerts", pk), json={"type": "resolve"})

    def reboot_now(self, agent_id: str) -> None:
        self.http.post(("agents", agent_id, "reboot"))

    def schedule_reboot(self, agent_id: str, when: str) -> ScheduledReboot:
        return self.http.patch(("agents", agent_id, "reboot"), json={"datetime": when},  # type: ignore[no-any-return]
                               expect=ScheduledReboot)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


AgentId = Annotated[str, Field(min_length=1, max_length=255,
                               description="The Tactical RMM agent_id (a long random string, not the int pk)")]


class Agent(BaseModel):
    agent_id: str
    asset_id: str | None
    hostname: str | None
    description: str | None
    client_name: str | None
    site_name: str | None
    status: str | None = Field(description="online, offline or overdue")
    plat: str | None = Field(description="windows, linux or darwin")
    monitoring_type: str | None
    operating_system: str | None
    last_seen_at: str | None
    needs_reboot: bool | None
    source: Literal["local", "tacticalrmm"]

    @classmethod
    def from_tactical(cls, d: AgentRecord, asset_id: str | None) -> Agent:
        client = d.client_name if d.client_name is not None else d.client  # list: client_name; detail: client
        return cls(agent_id=d.agent_id, asset_id=asset_id, hostname=d.hostname, description=d.description,
                   client_name=_text(client), site_name=d.site_name, status=d.status, plat=d.plat,
                   monitoring_type=d.monitoring_type, operating_system=d.operating_system,
                   last_seen_at=_iso(d.last_seen), needs_reboot=d.needs_reboot, source="tacticalrmm")

    @classmethod
    def from_asset(cls, a: SyncedAsset) -> Agent:
        status = None if a.agent_online is None else ("online" if a.agent_online else "offline")
        return cls(agent_id=a.device_id, asset_id=a.asset_id, hostname=a.hostname, description=a.name,
                   client_name=None, site_name=None, status=status, plat=None, monitoring_type=None,
                   operating_system=a.os_name, last_seen_at=_iso(a.last_seen_at), needs_reboot=None,
                   source="local")


class AgentDetail(Agent):
    version: str | None
    public_ip: str | None
    local_ips: str | None
    logged_in_username: str | None
    make_model: str | None
    time_zone: str | None
    maintenance_mode: bool | None
    total_ram: int | None

    @classmethod
    def from_detail(cls, d: AgentRecord, asset_id: str | None) -> AgentDetail:
        base = Agent.from_tactical(d, asset_id).model_dump()
        return cls(**base, version=d.version, public_ip=d.public_ip, local_ips=_text(d.local_ips),
                   logged_in_username=d.logged_in_username, make_model=_text(d.make_model),
                   time_zone=d.time_zone or d.timezone, maintenance_mode=d.maintenance_mode, total_ram=d.total_ram)


class Script(BaseModel):
    id: int
    name: str
    description: str | None
    category: str | None
    shell: str | None
    script_type: str | None = Field(description="userdefined or builtin (community)")
    args: list[str]
    env_vars: list[str]
    default_timeout: int | None
    run_as_user: bool
    supported_platforms: list[str]

    @classmethod
    def from_tactical(cls, s: ScriptRecord) -> Script:
        return cls(id=s.id, name=s.name or "", description=s.description, category=s.category, shell=s.shell,
                   script_type=s.script_type, args=s.args or [], env_vars=s.env_vars or [],
                   default_timeout=s.default_timeout, run_as_user=bool(s.run_as_user),
                   supported_platforms=s.supported_platforms or [])


# -- the actions ----------------------------------------------------------------------------------------


class FindAgentsInput(BaseModel):
    agent_id: AgentId | None = None
    asset_id: str | None = Field(None, max_length=36, description="The PSA asset synced from the agent")
    query: str | None = Field(None, min_length=1, max_length=255,
                              description="Part of the host name or description (live: also client or site)")
    monitoring_type: Literal["server", "workstation"] | None = Field(None, description="Live only")
    live: bool = Field(False, description="Ask Tactical RMM instead of the agents already synced into the PSA")
    limit: int = Field(50, ge=1, le=500)


class Agents(BaseModel):
    agents: list[Agent]
    count: int


@tacticalrmm.action("tacticalrmm.agents.find", label="Find agents")
def find_agents(params: FindAgentsInput, ctx: ActionContext) -> Agents:
    """Find Tactical RMM agents among those synced into the PSA, or live in Tactical RMM (with live).

    Filters combine: an agent id, a PSA asset id, and a query matched against names.
    """
    if not params.live:
        rows = ctx.assets.find(device_id=params.agent_id, asset_id=params.asset_id, query=params.query,
                               limit=params.limit)
        found = [Agent.from_asset(a) for a in rows]
        return Agents(agents=found, count=len(found))
    agent_id = params.agent_id
    if agent_id is None and params.asset_id is not None:
        agent_id = ctx.assets.device_of(params.asset_id)
        if agent_id is None:
            return Agents(agents=[], count=0)
    api = TacticalRMM(ctx)
    items = [api.agent(agent_id)] if agent_id is not None else api.agents(params.monitoring_type)
    if params.monitoring_type is not None:
        items = [d for d in items if d.monitoring_type == params.monitoring_type]
    if params.query is not None:
        needle = params.query.casefold()
        items = [d for d in items if any(needle in (v or "").casefold()
                                         for v in (d.hostname, d.description, d.client_name, d.site_name))]
    items = items[:params.limit]
    assets = ctx.assets.by_device([d.agent_id for d in items])
    found = [Agent.from_tactical(d, assets.get(d.agent_id)) for d in items]
    return Agents(agents=found, count=len(found))


class AgentInput(BaseModel):
    agent_id: AgentId


class AgentOutput(BaseModel):
    agent: AgentDetail


@tacticalrmm.action("tacticalrmm.agents.get", label="Get agent")
def get_agent(params: AgentInput, ctx: ActionContext) -> AgentOutput:
    """One agent's details, live from Tactical RMM."""
    d = TacticalRMM(ctx).agent(params.agent_id)
    assets = ctx.assets.by_device([d.agent_id])
    return AgentOutput(agent=AgentDetail.from_detail(d, assets.get(d.agent_id)))


class ListScriptsInput(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=255, description="Part of the script name")
    include_community: bool = Field(True, description="Include Tactical's built-in community scripts")
    limit: int = Field(100, ge=1, le=1000)


class Scripts(BaseModel):
    scripts: list[Script]
    count: int


@tacticalrmm.action("tacticalrmm.scripts.list", label="List scripts")
def list_scripts(params: ListScriptsInput, ctx: ActionContext) -> Scripts:
    """Scripts in the Tactical RMM library (ids for Run script), optionally filtered by name."""
    items = TacticalRMM(ctx).scripts(community=params.include_community)
    if params.name is not None:
        needle = params.name.casefold()
        items = [s for s in items if needle in (s.name or "").casefold()]
    found = [Script.from_tactical(s) for s in items[:params.limit]]
    return Scripts(scripts=found, count=len(found))


Timeout = Annotated[int, Field(ge=1, le=MAX_TIMEOUT_S, description="Seconds the agent may take")]


class RunScriptInput(BaseModel):
    agent_id: AgentId
    script_id: int = Field(ge=1, description="The script's id from List scripts")
    args: list[Annotated[str, Field(max_length=8191)]] = Field(  # cmd.exe's command-line limit
        default_factory=list, description="Arguments, one string each")
    env_vars: list[EnvVar] = Field(default_factory=list, description='Environment variables, each "KEY=value"')
    timeout: Timeout = 90
    run_as_user: bool = Field(False, description="Run as the logged-in user (forced when the script says so)")
    wait_for_output: bool = Field(True, description=(
        "Wait and return the output; false only starts the run, and Tactical RMM then confirms it even when "
        "the agent is not connected (delivered: unknown)"))


class RunScriptOutput(BaseModel):
    agent_id: str
    script_id: int
    waited: bool
    delivered: Literal["yes", "unknown"] = Field(description=(
        "yes: the agent ran it and answered (waited); unknown: Tactical RMM confirms a run it did not wait "
        "for even when no agent received it"))
    output: str = Field(description="stdout followed directly by stderr (waited), or Tactical's confirmation")


@tacticalrmm.action("tacticalrmm.agents.run_script", label="Run script", side_effectful=True,
                    max_duration_s=CLIENT_TIMEOUT_S + 30)
def run_script(params: RunScriptInput, ctx: ActionContext) -> RunScriptOutput:
    """Run a library script on one agent, by default waiting for its output (stdout then stderr). Without
    waiting, Tactical RMM confirms the run even when the agent is not connected: delivered is then unknown.
    """
    body = {"script": params.script_id, "output": "wait" if params.wait_for_output else "forget",
            "args": params.args, "env_vars": params.env_vars, "timeout": params.timeout,
            "run_as_user": params.run_as_user}
    answer = TacticalRMM(ctx).run_script(params.agent_id, body)
    return RunScriptOutput(agent_id=params.agent_id, script_id=params.script_id, waited=params.wait_for_output,
                           delivered="yes" if params.wait_for_output else "unknown", output=answer)


class RunCommandInput(BaseModel):
    agent_id: AgentId
    shell: str = Field(min_length=1, max_length=255, description=(
        "Windows: cmd or powershell; Linux/macOS: the shell's path, e.g. /bin/bash; custom with custom_shell"))
    cmd: str = Field(min_length=1, max_length=65535, description="The command line")
    timeout: Timeout = 30
    run_as_user: bool = False
    custom_shell: str | None = Field(None, min_length=1, max_length=255, description="Only with shell=custom")
    _custom = required_if("shell", "custom", "custom_shell")


class RunCommandOutput(BaseModel):
    agent_id: str
    output: str = Field(description="Windows: stderr if any, else stdout; POSIX: stdout, then stderr")


@tacticalrmm.action("tacticalrmm.agents.run_command", label="Run command", side_effectful=True,
                    permission="rmm:execute_command", max_duration_s=CLIENT_TIMEOUT_S + 30)
def run_command(params: RunCommandInput, ctx: ActionContext) -> RunCommandOutput:
    """Run a raw command on one agent and return its output."""
    body: dict[str, Any] = {"shell": params.shell, "cmd": params.cmd, "timeout": params.timeout,
                            "run_as_user": params.run_as_user}
    if params.shell == "custom":
        if params.custom_shell is None:
            raise ActionError.validation("custom_shell is required when shell is custom", fields=["custom_shell"])
        body["custom_shell"] = params.custom_shell
    return RunCommandOutput(agent_id=params.agent_id, output=TacticalRMM(ctx).run_command(params.agent_id, body))


class RebootInput(BaseModel):
    agent_id: AgentId
    at: LocalDateTime | None = Field(None, description=(
        "Schedule for this wall-clock time in the agent's own time zone (no offset; minutes precision; "
        "Windows agents only). Empty: reboot now."))


class RebootOutput(BaseModel):
    reboot_requested: bool
    agent_id: str
    scheduled: bool
    scheduled_for: str | None = Field(description="Tactical's wording of the scheduled time")
    task_name: str | None


@tacticalrmm.action("tacticalrmm.agents.reboot", label="Reboot agent", side_effectful=True)
def reboot_agent(params: RebootInput, ctx: ActionContext) -> RebootOutput:
    """Reboot one agent now, or schedule the reboot for a local time (Windows agents)."""
    api = TacticalRMM(ctx)
    if params.at is None:
        api.reboot_now(params.agent_id)
        return RebootOutput(reboot_requested=True, agent_id=params.agent_id, scheduled=False, scheduled_for=None,
                            task_name=None)
    answer = api.schedule_reboot(params.agent_id, params.at.strftime("%Y-%m-%dT%H:%M"))
    return RebootOutput(reboot_requested=True, agent_id=params.agent_id, scheduled=True,
                        scheduled_for=answer.time, task_name=answer.task_name)


class ResolveAlertInput(BaseModel):
    external_alert_id: str = Field(min_length=1, max_length=32, pattern=r"^[0-9]+$",
                                   description="Tactical RMM's alert id (its pk)")


class ResolveAlertOutput(BaseModel):
    resolved: bool
    external_alert_id: str


@tacticalrmm.action("tacticalrmm.alerts.resolve", label="Resolve alert", side_effectful=True)
def resolve_alert(params: ResolveAlertInput, ctx: ActionContext) -> ResolveAlertOutput:
    """Resolve an alert in Tactical RMM (the alert pipeline's outbound reset when its ticket closes)."""
    TacticalRMM(ctx).resolve_alert(params.external_alert_id)
    return ResolveAlertOutput(resolved=True, external_alert_id=params.external_alert_id)


# -- alerts: the alert-template webhook normalizer and the poller -----------------------------------------
#
# Tactical's alert webhooks are the operator's own templates (README: "Alert webhooks"): falsy values
# arrive as the string "None", times as ``2026-11-29 09:42:17.503914+00:00``, there is no delivery id, a
# template that breaks JSON (a message with a quote in it) arrives as one JSON string, and Content-Type
# may be missing. The alert's identity is its pk; its condition is the check or task it belongs to.

_FIELDS = ("event", "alert_id", "alert_type", "severity", "message", "alert_time", "agent_id", "hostname",
           "client", "site", "check_id", "check_name", "task_id", "task_name")
_TRIGGER = {"trigger": "triggered", "triggered": "triggered", "failure": "triggered",
            "resolve": "reset", "resolved": "reset", "reset": "reset"}


def _lenient(text: str) -> dict[str, Any]:
    """The template's fields out of a body that is not valid JSON: each ``"key": "value"`` up to the next
    known key (so quotes inside a message survive)."""
    keys = "|".join(_FIELDS)
    found: dict[str, Any] = {}
    pattern = re.compile(r'"(' + keys + r')"\s*:\s*(?:"(.*?)"|([^,}\s]*))\s*(?=,\s*"(?:' + keys + r')"\s*:|}\s*$)',
                         re.DOTALL)
    for match in pattern.finditer(text.strip()):
        found[match.group(1)] = match.group(2) if match.group(2) is not None else match.group(3)
    return found


def _template_body(payload: Any) -> dict[str, Any]:
    if isinstance(payload, dict):
        return payload
    if isinstance(payload, str):
        decoded = vendor_json(payload)
        if isinstance(decoded, dict):
            return decoded
        found = _lenient(payload)
        if found:
            return found
    raise Ignore("the Tactical RMM webhook body is not the alert template (see the plugin README)")


def _condition(body: dict[str, Any]) -> str | None:
    check, task = vendor_text(body.get("check_id")), vendor_text(body.get("task_id"))
    if check is not None:
        return f"check:{check}"
    if task is not None:
        return f"task:{task}"
    kind = vendor_text(body.get("alert_type"))
    return None if kind is None or kind == "custom" else kind


def normalize_alerts(delivery: Delivery) -> list[AlertEvent]:
    body = _template_body(delivery.payload)
    kind = _TRIGGER.get((vendor_text(body.get("event")) or "trigger").lower())
    alert_id = vendor_text(body.get("alert_id"))
    if kind is None:
        raise Ignore(f"Tactical RMM webhook event {body.get('event')!r} is not trigger or resolve")
    if alert_id is None:
        raise Ignore("the Tactical RMM webhook has no alert_id (see the template in the plugin README)")
    title = vendor_text(body.get("check_name")) or vendor_text(body.get("task_name"))
    return [AlertEvent(
        kind=kind, tenant=delivery.tenant, provider=PROVIDER, external_alert_id=alert_id,  # type: ignore[arg-type]
        device_id=vendor_text(body.get("agent_id")), device_name=vendor_text(body.get("hostname")),
        severity=vendor_text(body.get("severity")), activity_type=vendor_text(body.get("alert_type")),
        alert_class=vendor_text(body.get("alert_type")), source_type=vendor_text(body.get("alert_type")),
        organization=vendor_text(body.get("client")), title=title, message=vendor_text(body.get("message")),
        condition_id=_condition(body), occurred_at=vendor_time(body.get("alert_time")), raw=body)]


def poll_alerts(ctx: ActionContext) -> list[AlertEvent]:
    """Tactical's unresolved, unsnoozed alerts as triggered events."""
    events = []
    for a in TacticalRMM(ctx).active_alerts():
        body = {"alert_id": a.get("id"), "alert_type": a.get("alert_type"), "severity": a.get("severity"),
                "message": a.get("message"), "alert_time": a.get("alert_time"), "agent_id": a.get("agent_id"),
                "hostname": a.get("hostname"), "client": a.get("client"), "check_id": a.get("assigned_check"),
                "task_id": a.get("assigned_task")}
        if vendor_text(body["alert_id"]) is None:
            continue
        events.append(AlertEvent(
            kind="triggered", tenant=ctx.tenant_id, provider=PROVIDER, external_alert_id=str(body["alert_id"]),
            device_id=vendor_text(body["agent_id"]), device_name=vendor_text(body["hostname"]),
            severity=vendor_text(body["severity"]), activity_type=vendor_text(body["alert_type"]),
            alert_class=vendor_text(body["alert_type"]), source_type=vendor_text(body["alert_type"]),
            organization=vendor_text(body["client"]), message=vendor_text(body["message"]),
            condition_id=_condition(body), occurred_at=vendor_time(body["alert_time"]), raw=body))
    return events


tacticalrmm_receiver = Receiver(PROVIDER, label="Tactical RMM", verify=webhook.shared_secret("X-Tactical-Secret"),
                                parse=normalize_alerts, content_types=("application/json", "text/plain"),
                                allow_missing_content_type=True)
tacticalrmm_alerts = AlertSource(PROVIDER, normalize=normalize_alerts, poll=poll_alerts,
                                 reset_action="tacticalrmm.alerts.resolve", label="Tactical RMM")


@hookimpl
def register_modules(register: Any) -> None:
    register(tacticalrmm)


@hookimpl
def register_receivers(register: Any) -> None:
    register(tacticalrmm_receiver)


@hookimpl
def register_alert_sources(register: Any) -> None:
    register(tacticalrmm_alerts)
