"""mspflow-levelio: Level RMM devices, alerts, updates and automations as workflow actions.

Reads top to bottom: every vendor assumption (``VENDOR FACTS``), the vendor and the tile, the client
(paths, shapes, the error advice), the actions. Paging, percent-encoded ids, retries, 429/5xx and
scrubbing of secrets live in the core (:mod:`mspflow.vendor`), not here.

Credentials: the tenant secret ``levelio_api_key`` (Level → Settings → API Keys), sent as the whole
``Authorization`` value. Writes (``alerts.resolve``, ``automations.trigger``) need a key whose access level
is "Read and write". The base URL is ``https://api.level.io/v2`` unless the tenant's
``rmm_integrations.instance_url`` names another (a bare host gets ``/v2``).

Level has no reboot or run-script call: device work is done by a Level automation with a Webhook trigger,
which ``levelio.automations.trigger`` fires (optionally for chosen devices) and
``levelio.automations.run_status`` follows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from mspflow import (
    ActionContext,
    ActionError,
    AlertEvent,
    AlertSource,
    CursorPaging,
    Delivery,
    Ignore,
    Module,
    Receiver,
    StoredAlert,
    SyncedAsset,
    Vendor,
    auth,
    exactly_one_of,
    hookimpl,
    rmm_integration,
    vendor_text,
    vendor_time,
    webhook,
)

PROVIDER = "levelio"

# -- VENDOR FACTS: every assumption this plugin makes about Level's API, in one place --------------------
# Evidence tags as in shared/vendor-apis.md §3: [V] verified from a primary source (Level's own n8n nodes,
# its OpenAPI excerpt, docs.level.io), [S] secondary (Alga PSA's client, MindCloud's table), [I] inferred,
# [U] unknown. sim.py imports nothing from here but follows the same list; README.md records what the plugin
# decided for each [S]/[U] fact.
#
#  F1  [V] Base https://api.level.io, routes under /v2; one SaaS host, no regions.
#  F2  [V] Auth: "Authorization: <raw API key>", no "Bearer". Keys are "Read and write" or "Read-only".
#  F3  [V] 401 body {"error": "Access denied"}. [U] every other error body (assumed {"error": str}).
#  F4  [U] What a Read-only key gets on a write: 401 or 403. Both → PERMISSION_DENIED, "Read and write".
#  F5  [V] Lists: {"data": [...], "has_more": bool}; limit 1..100 ([S] default 20); starting_after=<last id>.
#      [I] stop when has_more is false or a page is empty.
#  F6  [V] Ids are opaque strings (base64 GIDs): always one percent-encoded path segment.
#  F7  [V] GET /devices, GET /devices/{id}: group_id (direct children), ancestor_group_id (recursive),
#      include_operating_system|cpus|memory|disks|network_interfaces; [S] include_security.
#  F8  [V] GET /alerts: device_id, status=active|resolved. [S] POST /alerts/{id}/resolve, body none,
#      reply not relied on.
#  F9  [S] GET /updates: device_id, status=available|installed (Alga PSA only).
#  F10 [S] GET /automations, GET /automations/webhooks (items: url ending in the token, automation_id,
#      automation_name, requires_authorization_header, parameters) (Alga PSA only). [I] A token starts its
#      automation without the API key, so the plugin treats it as a secret: used, scrubbed, never returned.
#  F11 [V] POST /automations/webhooks/{token} with {"device_ids": [...], <custom keys>} or {}; Level maps
#      custom keys onto automation variables ("Parameter mapping"); device_ids still apply trigger conditions.
#      The token exists only while the automation has a saved Webhook trigger.
#  F12 [U] The trigger's reply body. Read as carrying a run id under one of RUN_ID_KEYS, else no run id.
#  F13 [S] GET /automation-runs/{id}?include_steps=true: id, automation_id, automation_name, device_id,
#      device_hostname, status, started_at, ended_at, steps (Alga PSA only). [U] the status values: a run is
#      finished once ended_at is set or its status is one of FINAL_STATUSES.
#  F14 [U] Rate limits: none published, so none declared; a 429 is handled by the core.
#  F15 [S] Field names of devices, alerts and updates (Alga PSA's typed client). [I] Every record (device,
#      alert, update, automation, run) is a JSON object with an "id"; any other 2xx body is malformed.

BASE_URL = "https://api.level.io/v2"  # F1
INCLUDE_FLAGS = ("include_operating_system", "include_cpus", "include_memory", "include_disks",
                 "include_network_interfaces", "include_security")  # F7
INCLUDED_FIELDS = ("operating_system", "cpus", "memory", "disk_partitions", "network_interfaces",
                   "security")  # F7/F15: what the include flags add to a device record
RUN_ID_KEYS = ("automation_run_id", "run_id")  # F12: top-level, or under "data"
FINAL_STATUSES = frozenset({"succeeded", "success", "successful", "completed", "complete", "failed", "failure",
                            "error", "errored", "canceled", "cancelled", "timed_out", "timeout",
                            "skipped"})  # F13
KEY_HELP = "Level → Settings → API Keys"


def normalize_instance_url(url: str) -> str:
    """F1: ``https://api.level.io`` (a bare host, as an operator may type it) → ``https://api.level.io/v2``."""
    url = url.strip().rstrip("/")
    host_only = url.split("://", 1)[-1]
    return url + "/v2" if "/" not in host_only else url


# -- the vendor, the tile and its availability ----------------------------------------------------------

LEVEL_API = Vendor(
    "Level", base_url=BASE_URL, normalize=normalize_instance_url,
    auth=auth.raw_authorization("levelio_api_key"),  # F2
    paging=CursorPaging(cursor="starting_after", size="limit", page_size=100, items_key="data",
                        has_more="has_more"),  # F5
)

levelio = Module(
    "app:levelio", label="Level", icon="levelio",
    description="Find Level devices, work their alerts and updates, and trigger Level automations "
                "(optionally on chosen devices) and follow their runs.",
    availability=rmm_integration(PROVIDER),
    default_action_id="levelio.devices.find",
    vendor=LEVEL_API,
    simulator="mspflow_levelio.sim:LevelSimulator",
)

# -- the client: paths, shapes and the advice on refusals --------------------------------------------------


@contextmanager
def _refusal_advice(*, write: bool) -> Iterator[None]:
    """F2-F4: Level's refusals, with what to do about them. A 401 on a read is a bad key; a 401 or 403 on a
    write may also be a Read-only key (which status it gets is unknown)."""
    try:
        yield
    except ActionError as err:
        status = err.details.get("status")
        if err.code != "PERMISSION_DENIED" or status not in (401, 403):
            raise
        said = err.details.get("vendor_error")  # Level's own words ("Access denied"), already scrubbed
        if write:
            advice = (f'the Level API key needs access level "Read and write" ({KEY_HELP}): a Read-only key '
                      "can't create, update or delete. If it already is, regenerate it and store the new key as "
                      "tenant secret levelio_api_key")
            reason = "READ_WRITE_KEY_REQUIRED"
        elif status == 401:
            advice = (f"Level does not accept the API key: regenerate it ({KEY_HELP}) and store the new key as "
                      "tenant secret levelio_api_key")
            reason = "KEY_REFUSED"
        else:
            advice = f"the Level API key may not read this; check its access level ({KEY_HELP})"
            reason = "KEY_FORBIDDEN"
        raise ActionError.permission_denied(f"Level API {status}{f': {said}' if said else ''}; {advice}",
                                            reason=reason, status=status, vendor_error=said) from None


def _record(body: Any, what: str) -> dict[str, Any]:
    """F15: a record is a JSON object with an ``id``; any other 2xx body is a malformed reply, not a crash."""
    if isinstance(body, dict) and body.get("id") not in (None, ""):
        return body
    raise ActionError("TRANSIENT_FAILURE", f"Level API returned a {what} that is not an object with an id",
                      details={"reason": "VENDOR_REPLY_SHAPE", "field": what})


def _records(items: list[Any], what: str) -> list[dict[str, Any]]:
    return [_record(item, what) for item in items]


class Level:
    """Level's API v2 for one tenant; every list is cursor-paged by the core (F5)."""

    def __init__(self, ctx: ActionContext) -> None:
        self.http = ctx.http()

    @_refusal_advice(write=False)
    def devices(self, params: dict[str, Any], *, limit: int | None) -> list[dict[str, Any]]:
        return _records(self.http.pages(("devices",), params=params, limit=limit), "device")

    @_refusal_advice(write=False)
    def device(self, device_id: str, params: dict[str, Any]) -> dict[str, Any]:
        return _record(self.http.get(("devices", device_id), params=params), "device")

    @_refusal_advice(write=False)
    def alerts(self, *, device_id: str | None, status: str, limit: int | None) -> list[dict[str, Any]]:
        return _records(self.http.pages(("alerts",), params={"device_id": device_id, "status": status}, limit=limit),
                        "alert")

    @_refusal_advice(write=True)
    def resolve_alert(self, alert_id: str) -> None:
        self.http.post(("alerts", alert_id, "resolve"))  # F8: no body, reply not relied on

    @_refusal_advice(write=False)
    def updates(self, *, device_id: str | None, status: str | None, limit: int | None) -> list[dict[str, Any]]:
        return _records(self.http.pages(("updates",), params={"device_id": device_id, "status": status},
                                        limit=limit), "update")

    @_refusal_advice(write=False)
    def automations(self) -> list[dict[str, Any]]:
        return _records(self.http.pages(("automations",)), "automation")

    @_refusal_advice(write=False)
    def webhooks(self) -> list[dict[str, Any]]:
        return [w for w in self.http.pages(("automations", "webhooks")) if isinstance(w, dict)]

    @_refusal_advice(write=True)
    def trigger(self, token: str, body: dict[str, Any]) -> Any:
        return self.http.post(("automations", "webhooks", token), json=body)

    @_refusal_advice(write=False)
    def run(self, run_id: str, *, include_steps: bool) -> dict[str, Any]:
        params = {"include_steps": "true" if include_steps else None}
        return _record(self.http.get(("automation-runs", run_id), params=params), "automation run")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _iso(value: Any) -> str | None:
    return None if value is None else (value.isoformat() if hasattr(value, "isoformat") else str(value))


LevelId = Annotated[str, Field(min_length=1, max_length=255)]


class Device(BaseModel):
    external_device_id: str = Field(description="Level's device id")
    asset_id: str | None = Field(description="The PSA asset synced from the device, if any")
    hostname: str | None
    nickname: str | None
    group_id: str | None
    role: str | None = Field(description="workstation, server or domain_controller")
    platform: str | None = Field(description="Windows, Mac or Linux")
    online: bool | None
    maintenance_mode: bool | None
    last_seen_at: str | None
    last_logged_in_user: str | None
    serial_number: str | None
    tags: list[str]
    included: dict[str, Any] = Field(description="What the include_* flags added (operating_system, cpus, ...)")
    source: Literal["local", "levelio"]

    @classmethod
    def from_level(cls, d: dict[str, Any], asset_id: str | None) -> Device:
        return cls(external_device_id=str(d["id"]), asset_id=asset_id, hostname=d.get("hostname"),
                   nickname=d.get("nickname"), group_id=_text(d.get("group_id")), role=d.get("role"),
                   platform=d.get("platform"), online=d.get("online"), maintenance_mode=d.get("maintenance_mode"),
                   last_seen_at=_text(d.get("last_seen_at")), last_logged_in_user=d.get("last_logged_in_user"),
                   serial_number=_text(d.get("serial_number")), tags=[str(t) for t in d.get("tags") or []],
                   included={k: d[k] for k in INCLUDED_FIELDS if k in d}, source="levelio")

    @classmethod
    def from_asset(cls, a: SyncedAsset) -> Device:
        return cls(external_device_id=a.device_id, asset_id=a.asset_id, hostname=a.hostname, nickname=a.name,
                   group_id=a.organization_id, role=a.node_class, platform=None, online=a.agent_online,
                   maintenance_mode=None, last_seen_at=_iso(a.last_seen_at), last_logged_in_user=None,
                   serial_number=None, tags=[],
                   included={"operating_system": {"full_operating_system": a.os_name}} if a.os_name else {},
                   source="local")


class Alert(BaseModel):
    alert_id: str = Field(description="The PSA's alert id when the alert is stored locally, else Level's id")
    external_alert_id: str = Field(description="Level's alert id")
    device_id: str | None
    device_hostname: str | None
    asset_id: str | None
    name: str | None
    description: str | None
    severity: str | None = Field(description="information, warning, critical or emergency")
    status: str = Field(description="active or resolved (local copies may also be acknowledged)")
    started_at: str | None
    resolved_at: str | None
    source: Literal["local", "levelio"]

    @classmethod
    def from_level(cls, a: dict[str, Any], local: StoredAlert | None, asset_id: str | None) -> Alert:
        return cls(alert_id=local.alert_id if local else str(a["id"]), external_alert_id=str(a["id"]),
                   device_id=_text(a.get("device_id")), device_hostname=a.get("device_hostname"),
                   asset_id=(local.asset_id if local else None) or asset_id, name=a.get("name"),
                   description=a.get("description"), severity=a.get("severity"),
                   status="resolved" if a.get("is_resolved") else "active", started_at=_text(a.get("started_at")),
                   resolved_at=_text(a.get("resolved_at")), source="levelio")

    @classmethod
    def from_row(cls, r: StoredAlert) -> Alert:
        return cls(alert_id=r.alert_id, external_alert_id=r.external_alert_id, device_id=r.device_id,
                   device_hostname=None, asset_id=r.asset_id, name=r.title, description=r.message,
                   severity=r.severity, status=r.status, started_at=_iso(r.created_at), resolved_at=None,
                   source="local")


class IncludeFlags(BaseModel):
    """F7: what Level adds to each device record on request."""

    include_operating_system: bool = False
    include_cpus: bool = False
    include_memory: bool = False
    include_disks: bool = False
    include_network_interfaces: bool = False
    include_security: bool = Field(False, description="Known only from a secondary source; Level may ignore it")

    def include_query(self) -> dict[str, Any]:
        return {flag: "true" for flag in INCLUDE_FLAGS if getattr(self, flag)}


# -- the actions ----------------------------------------------------------------------------------------


class FindDevicesInput(IncludeFlags):
    device_id: LevelId | None = Field(None, description="Level's device id")
    asset_id: str | None = Field(None, max_length=36, description="The PSA asset synced from the device")
    query: str | None = Field(None, min_length=1, max_length=255, description="Part of the host name or nickname")
    group_id: LevelId | None = Field(None, description="Devices directly in this Level group (asks Level)")
    ancestor_group_id: LevelId | None = Field(None, description="Devices in this group or below it (asks Level)")
    live: bool = Field(False, description="Ask Level instead of the devices already synced into the PSA (a group "
                                          "filter or an include flag asks Level too)")
    limit: int = Field(50, ge=1, le=1000)

    @property
    def asks_level(self) -> bool:
        """Synced assets carry no Level group or detail records, so those filters and flags always ask Level."""
        return self.live or bool(self.group_id or self.ancestor_group_id or self.include_query())


class Devices(BaseModel):
    devices: list[Device]
    count: int


@levelio.action("levelio.devices.find", label="Find devices")
def find_devices(params: FindDevicesInput, ctx: ActionContext) -> Devices:
    """Find Level devices among those synced into the PSA, or live in Level (with live).

    Filters combine: a device id, a PSA asset id, a query matched against host name and nickname, and a Level
    group, directly or anywhere below it. A group filter or an include flag (Level's detail records) asks Level.
    """
    if not params.asks_level:
        rows = ctx.assets.find(device_id=params.device_id, asset_id=params.asset_id, query=params.query,
                               limit=params.limit)
        return Devices(devices=[Device.from_asset(a) for a in rows], count=len(rows))
    device_id = params.device_id
    if device_id is None and params.asset_id is not None:
        device_id = ctx.assets.device_of(params.asset_id)
        if device_id is None:
            return Devices(devices=[], count=0)
    api = Level(ctx)
    flags = params.include_query()
    if device_id is not None:
        items = [api.device(device_id, flags)]
        items = [d for d in items if _in_group(d, params)]
    else:
        groups = {"group_id": params.group_id, "ancestor_group_id": params.ancestor_group_id}
        items = api.devices(groups | flags, limit=None if params.query else params.limit)
    if params.query is not None:
        needle = params.query.casefold()
        items = [d for d in items if any(needle in str(d.get(k) or "").casefold() for k in ("hostname", "nickname"))]
    items = items[:params.limit]
    assets = ctx.assets.by_device([str(d["id"]) for d in items])
    found = [Device.from_level(d, assets.get(str(d["id"]))) for d in items]
    return Devices(devices=found, count=len(found))


def _in_group(device: dict[str, Any], params: FindDevicesInput) -> bool:
    """A device fetched by id still honours a direct group filter (the ancestor one needs the group tree)."""
    return params.group_id is None or str(device.get("group_id")) == params.group_id


class GetDeviceInput(IncludeFlags):
    device_id: LevelId = Field(description="Level's device id")


class DeviceOutput(BaseModel):
    device: Device


@levelio.action("levelio.devices.get", label="Get device")
def get_device(params: GetDeviceInput, ctx: ActionContext) -> DeviceOutput:
    """One Level device, live, with the detail records the include flags ask for."""
    d = Level(ctx).device(params.device_id, params.include_query())
    return DeviceOutput(device=Device.from_level(d, ctx.assets.by_device([str(d["id"])]).get(str(d["id"]))))


class ListAlertsInput(BaseModel):
    device_id: LevelId | None = Field(None, description="Only this Level device's alerts")
    live: bool = Field(False, description="Ask Level instead of the alerts stored in the PSA")
    limit: int = Field(50, ge=1, le=1000)


class Alerts(BaseModel):
    alerts: list[Alert]
    count: int


@levelio.action("levelio.alerts.list_active", label="List active alerts")
def list_active_alerts(params: ListAlertsInput, ctx: ActionContext) -> Alerts:
    """Active Level alerts, as the PSA stores them (newest first) or live from Level (with live)."""
    if not params.live:
        rows = ctx.alerts.active(limit=params.limit, device_id=params.device_id)
        return Alerts(alerts=[Alert.from_row(r) for r in rows], count=len(rows))
    items = Level(ctx).alerts(device_id=params.device_id, status="active", limit=params.limit)
    local = ctx.alerts.by_external_ids([str(a["id"]) for a in items])
    assets = ctx.assets.by_device([str(a["device_id"]) for a in items if a.get("device_id") is not None])
    found = [Alert.from_level(a, local.get(str(a["id"])), assets.get(str(a.get("device_id")))) for a in items]
    return Alerts(alerts=found, count=len(found))


class ResolveInput(BaseModel):
    alert_id: LevelId = Field(description="Level's alert id, or the alert_id of an alert stored in the PSA")


class ResolveOutput(BaseModel):
    resolved: bool
    alert_id: str = Field(description="The PSA's alert id when it stores the alert, else Level's id")
    external_alert_id: str


@levelio.action("levelio.alerts.resolve", label="Resolve alert", side_effectful=True)
def resolve_alert(params: ResolveInput, ctx: ActionContext) -> ResolveOutput:
    """Resolve a Level alert (needs a "Read and write" key); the PSA's copy becomes resolved too."""
    row = ctx.alerts.find(params.alert_id, or_alert_id=True)
    external = row.external_alert_id if row is not None else params.alert_id
    Level(ctx).resolve_alert(external)
    if row is None:
        return ResolveOutput(resolved=True, alert_id=external, external_alert_id=external)
    ctx.alerts.record(external, device_id=row.device_id, status="resolved", severity=row.severity,
                      priority=row.priority, title=row.title, message=row.message, source_type=row.source_type)
    return ResolveOutput(resolved=True, alert_id=row.alert_id, external_alert_id=external)


class ListUpdatesInput(BaseModel):
    device_id: LevelId | None = Field(None, description="Only this Level device's updates")
    status: Literal["available", "installed"] | None = Field(
        "available", description="available (pending) or installed; null for both")
    limit: int = Field(100, ge=1, le=5000)


class Update(BaseModel):
    update_id: str
    device_id: str | None
    device_hostname: str | None
    name: str | None
    category: str | None
    is_available: bool | None
    installed_on: str | None

    @classmethod
    def from_level(cls, u: dict[str, Any]) -> Update:
        return cls(update_id=str(u["id"]), device_id=_text(u.get("device_id")),
                   device_hostname=u.get("device_hostname"), name=u.get("name"), category=u.get("category"),
                   is_available=u.get("is_available"), installed_on=_text(u.get("installed_on")))


class Updates(BaseModel):
    updates: list[Update]
    count: int


@levelio.action("levelio.updates.list", label="List updates")
def list_updates(params: ListUpdatesInput, ctx: ActionContext) -> Updates:
    """OS updates Level knows of: available (pending) or installed, for every device or one."""
    items = Level(ctx).updates(device_id=params.device_id, status=params.status, limit=params.limit)
    found = [Update.from_level(u) for u in items]
    return Updates(updates=found, count=len(found))


class Webhook(BaseModel):
    """A Webhook trigger, without its token: the token starts the automation without the API key (unless the
    trigger requires an authorization header), so it is treated as a secret and never returned."""

    webhook_id: str | None
    requires_auth_header: bool | None = Field(description="Level's \"Require an authorization header\" option")
    parameters: list[str] = Field(description="Keys Level maps onto automation variables")


class Automation(BaseModel):
    automation_id: str
    name: str | None
    has_webhook_trigger: bool = Field(description="False: add a Webhook trigger in Level before triggering it")
    webhooks: list[Webhook]


def _token(w: dict[str, Any]) -> str | None:
    """F10: the token is the last segment of the trigger's URL."""
    url = _text(w.get("url"))
    return _text(w.get("token")) or (url.rstrip("/").rsplit("/", 1)[-1] if url else None)


def _webhook(w: dict[str, Any]) -> Webhook:
    return Webhook(webhook_id=_text(w.get("id")), requires_auth_header=w.get("requires_authorization_header"),
                   parameters=[str(p) for p in w.get("parameters") or []])


def _automations(api: Level) -> list[Automation]:
    """Automations with their webhook triggers (F10: two lists joined on automation_id)."""
    found: dict[str, Automation] = {}
    for a in api.automations():
        found[str(a["id"])] = Automation(automation_id=str(a["id"]), name=a.get("name"), has_webhook_trigger=False,
                                         webhooks=[])
    for w in api.webhooks():
        key = _text(w.get("automation_id"))
        if key is None or _token(w) is None:
            continue
        entry = found.setdefault(key, Automation(automation_id=key, name=w.get("automation_name"),
                                                 has_webhook_trigger=False, webhooks=[]))
        entry.webhooks.append(_webhook(w))
        entry.has_webhook_trigger = True
    return list(found.values())


class ListAutomationsInput(BaseModel):
    query: str | None = Field(None, min_length=1, max_length=255, description="Part of the automation's name")
    webhook_only: bool = Field(False, description="Only automations that have a Webhook trigger")


class Automations(BaseModel):
    automations: list[Automation]
    count: int


@levelio.action("levelio.automations.list", label="List automations")
def list_automations(params: ListAutomationsInput, ctx: ActionContext) -> Automations:
    """Level automations and their Webhook triggers (Trigger automation needs one; it takes the automation id)."""
    found = _automations(Level(ctx))
    if params.query is not None:
        needle = params.query.casefold()
        found = [a for a in found if needle in (a.name or "").casefold()]
    if params.webhook_only:
        found = [a for a in found if a.webhooks]
    return Automations(automations=found, count=len(found))


class TriggerInput(BaseModel):
    automation_id: LevelId | None = Field(None, description="The automation to run (it needs a Webhook trigger)")
    webhook_token: LevelId | None = Field(
        None, description="Or the token of its Webhook trigger (the last part of the trigger's URL in Level)")
    device_ids: list[LevelId] | None = Field(
        None, min_length=1, max_length=1000,
        description="Run it for these Level devices (the trigger's conditions still apply); omit for none")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Extra keys Level maps onto automation variables (not device_ids)",
        json_schema_extra={"propertyNames": {"not": {"const": "device_ids"}}})
    _one = exactly_one_of("automation_id", "webhook_token")  # a rule the published schema states too

    @field_validator("parameters")
    @classmethod
    def _not_device_ids(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "device_ids" in value:
            raise ValueError("pass device_ids as its own field, not inside parameters")
        return value


class TriggerOutput(BaseModel):
    triggered: bool
    automation_id: str | None
    device_ids: list[str] | None
    run_id: str | None = Field(description="Level's run id, when its reply carries one (for Run status)")
    run_id_reported: bool
    note: str | None
    reply: Any = Field(description="Level's reply as it came")


def _run_id(reply: Any) -> str | None:
    """F12: a run id in the trigger's reply, if Level sent one."""
    for node in (reply, reply.get("data") if isinstance(reply, dict) else None):
        if isinstance(node, dict):
            for key in RUN_ID_KEYS:
                if isinstance(node.get(key), (str, int)) and str(node[key]):
                    return str(node[key])
    return None


def _token_of(api: Level, automation_id: str) -> str:
    hooks = [w for w in api.webhooks() if _text(w.get("automation_id")) == automation_id]
    tokens = [t for t in map(_token, hooks) if t]
    if len(tokens) == 1:
        return tokens[0]
    if tokens:
        raise ActionError.conflict(f"Level automation {automation_id!r} has {len(tokens)} Webhook triggers; pass "
                                   "webhook_token (from the trigger's URL in Level) to choose one",
                                   reason="SEVERAL_WEBHOOK_TRIGGERS", automation_id=automation_id)
    known = next((a for a in api.automations() if str(a.get("id")) == automation_id), None)
    if known is None:
        raise ActionError.not_found(f"Level has no automation {automation_id!r}", automation_id=automation_id)
    raise ActionError.conflict(
        f"Level automation {known.get('name') or automation_id!r} has no Webhook trigger, so it cannot be started "
        "from a workflow: add a Webhook trigger to that automation in Level, then retry",
        reason="NO_WEBHOOK_TRIGGER", automation_id=automation_id)


@levelio.action("levelio.automations.trigger", label="Trigger automation", side_effectful=True)
def trigger_automation(params: TriggerInput, ctx: ActionContext) -> TriggerOutput:
    """Start a Level automation through its Webhook trigger, optionally for chosen devices and with values
    for its variables (needs a "Read and write" key). Returns Level's run id when its reply carries one."""
    api = Level(ctx)
    token = params.webhook_token or _token_of(api, str(params.automation_id))
    ctx.redactor.add(token)  # a capability: it starts the automation, so it is scrubbed like a secret
    body = {**params.parameters, **({"device_ids": params.device_ids} if params.device_ids else {})}
    reply = api.trigger(token, body)
    run_id = _run_id(reply)
    note = None if run_id else ("Level's reply carried no run id; find the run in Level (the automation's run "
                                "history) and pass its id to Run status")
    return TriggerOutput(triggered=True, automation_id=params.automation_id, device_ids=params.device_ids,
                         run_id=run_id, run_id_reported=run_id is not None, note=note, reply=reply)


class RunStatusInput(BaseModel):
    run_id: LevelId = Field(description="From Trigger automation's output, or from Level's UI")
    include_steps: bool = Field(False, description="Also return the run's steps")


class RunStatus(BaseModel):
    run_id: str
    automation_id: str | None
    automation_name: str | None
    device_id: str | None
    device_hostname: str | None
    status: str | None = Field(description="Level's run status, as it says it")
    finished: bool = Field(description="The run has ended (ended_at is set, or its status is a final one)")
    started_at: str | None
    ended_at: str | None
    steps: list[Any] | None


@levelio.action("levelio.automations.run_status", label="Automation run status")
def run_status(params: RunStatusInput, ctx: ActionContext) -> RunStatus:
    """The status of one Level automation run (and its steps, on request); poll until finished."""
    r = Level(ctx).run(params.run_id, include_steps=params.include_steps)
    status = _text(r.get("status"))
    ended = _text(r.get("ended_at"))
    return RunStatus(run_id=str(r.get("id") or params.run_id), automation_id=_text(r.get("automation_id")),
                     automation_name=r.get("automation_name"), device_id=_text(r.get("device_id")),
                     device_hostname=r.get("device_hostname"), status=status,
                     finished=ended is not None or (status or "").lower() in FINAL_STATUSES,
                     started_at=_text(r.get("started_at")), ended_at=ended,
                     steps=list(r.get("steps") or []) if params.include_steps else None)


# -- alerts: the signed webhook's normalizer and the poller -------------------------------------------------
#
# Level signs its webhooks (``X-Level-Signature: sha256=<hex HMAC of the body>``); the envelope is
# ``{event_type, event_id, occurred_at, data}``. ``alert_active`` / ``alert_resolved`` carry an alert in
# ``data`` (at least its ``id``; the alert's fields when Level sends them): the device and the alert's
# ``name`` are its condition (dedup key). Device and group events are recorded IGNORED.

_LEVEL_KINDS = {"alert_active": "triggered", "alert_resolved": "reset"}


def _level_event(kind: str, tenant: str, alert: dict[str, Any], occurred: Any, raw: dict[str, Any]) -> AlertEvent:
    name = vendor_text(alert.get("name"))
    return AlertEvent(
        kind=kind, tenant=tenant, provider=PROVIDER, external_alert_id=str(alert["id"]),  # type: ignore[arg-type]
        device_id=vendor_text(alert.get("device_id")), device_name=vendor_text(alert.get("device_hostname")),
        severity=vendor_text(alert.get("severity")), activity_type="alert", source_type=name, title=name,
        message=vendor_text(alert.get("description")) or name, condition_id=name,
        occurred_at=vendor_time(occurred) or vendor_time(alert.get("started_at")), raw=raw)


def normalize_alerts(delivery: Delivery) -> list[AlertEvent]:
    body = delivery.payload
    kind = _LEVEL_KINDS.get(str(body.get("event_type"))) if isinstance(body, dict) else None
    data = body.get("data") if isinstance(body, dict) else None
    if kind is None or not isinstance(data, dict):
        raise Ignore(f"Level event {body.get('event_type') if isinstance(body, dict) else '?'!r} is not an alert")
    if vendor_text(data.get("id")) is None:
        raise Ignore("the Level alert event has no alert id")
    return [_level_event(kind, delivery.tenant, data, body.get("occurred_at"), body)]


def poll_alerts(ctx: ActionContext) -> list[AlertEvent]:
    """Level's active alerts (``GET /v2/alerts?status=active``, every page) as triggered events."""
    return [_level_event("triggered", ctx.tenant_id, a, a.get("started_at"), a)
            for a in Level(ctx).alerts(device_id=None, status="active", limit=None)]


levelio_receiver = Receiver(PROVIDER, label="Level", verify=webhook.hmac_signature("X-Level-Signature",
                                                                                   prefix="sha256="),
                            delivery_id=webhook.json_field("event_id"), parse=normalize_alerts)
levelio_alerts = AlertSource(PROVIDER, normalize=normalize_alerts, poll=poll_alerts,
                             reset_action="levelio.alerts.resolve", reset_field="alert_id", label="Level")


@hookimpl
def register_modules(register: Any) -> None:
    register(levelio)


@hookimpl
def register_receivers(register: Any) -> None:
    register(levelio_receiver)


@hookimpl
def register_alert_sources(register: Any) -> None:
    register(levelio_alerts)
