"""mspflow-ninjaone: NinjaOne RMM devices, scripts and alerts as workflow actions.

Reads top to bottom: the tile, its availability, the client (paths, shapes, the auth choice), the
actions. Token refresh, the 401 → refresh → once-more rule, percent-encoded ids, paging, vendor errors
and scrubbing of secrets all live in the core (:mod:`mspflow.vendor`), not here.

Credentials are the tenant secret ``ninjaone_credentials`` (JSON ``{"access_token", "refresh_token",
"expires_at", "instance_url"}``, written by ``mspflow tenant authorize TENANT ninjaone``) plus
``ninjaone_client_id`` and ``ninjaone_client_secret``. The base URL is the tenant's
``rmm_integrations.instance_url`` (``https://eu.ninjarmm.com``, ...), else ``https://app.ninjarmm.com``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from mspflow import (
    ActionContext,
    ActionError,
    AlertEvent,
    AlertSource,
    Delivery,
    Ignore,
    KeysetPaging,
    Module,
    OAuthApp,
    Receiver,
    StoredAlert,
    SyncedAsset,
    Vendor,
    auth,
    exactly_one_of,
    hookimpl,
    required_if,
    rmm_integration,
    vendor_text,
    vendor_time,
    webhook,
)

PROVIDER = "ninjaone"

# -- the vendor, the tile and its availability -----------------------------------------------------

BASE_URL = "https://app.ninjarmm.com"

# One auth choice for every call: the user-context token of the authorization-code flow, because
# ``/script/run`` refuses client-credentials tokens (``user_context_required``). NinjaOne publishes no
# request quota, so no rate limit is declared; its 429 answers are honoured by the core.
NINJAONE_API = Vendor(
    "NinjaOne", base_url=BASE_URL,
    regions=(("us", "https://app.ninjarmm.com"), ("us2", "https://us2.ninjarmm.com"),
             ("eu", "https://eu.ninjarmm.com"), ("oc", "https://oc.ninjarmm.com"),
             ("ca", "https://ca.ninjarmm.com"), ("fed", "https://fed.ninjarmm.com")),
    auth=auth.oauth2_authorization_code("/ws/oauth/token", credentials="ninjaone_credentials",
                                        client_id="ninjaone_client_id", client_secret="ninjaone_client_secret"),
    paging=KeysetPaging(after="after", size="pageSize", id_key="id", page_size=100),
)

ninjaone = Module(
    "app:ninjaone", label="NinjaOne", icon="ninjaone",
    description="Find, sync and reboot NinjaOne devices, run their scripts, and acknowledge NinjaOne alerts.",
    availability=rmm_integration(PROVIDER),
    default_action_id="ninjaone.devices.find",
    vendor=NINJAONE_API,
    simulator="mspflow_ninjaone.sim:NinjaOneSimulator",
    oauth=OAuthApp(
        authorize_path="/ws/oauth/authorize", token_path="/ws/oauth/token",
        scopes="monitoring management control offline_access", credentials="ninjaone_credentials",
        client_id="ninjaone_client_id", client_secret="ninjaone_client_secret",
    ),
)

# -- the client: paths and shapes ---------------------------------------------------------------------


EpochSeconds = Annotated[float, Field(ge=0, le=253402300799)]  # NinjaOne times: epoch seconds, up to year 9999


class DeviceRecord(BaseModel):
    """What mspflow reads of a ``Device`` / ``NodeWithDetailedReferences`` (the spec's names; no ``os``)."""

    model_config = ConfigDict(extra="ignore")
    id: int
    uid: str | None = None
    organizationId: int | None = None
    locationId: int | None = None
    nodeClass: str | None = None
    approvalStatus: str | None = None
    offline: bool | None = None
    displayName: str | None = None
    systemName: str | None = None
    dnsName: str | None = None
    lastContact: EpochSeconds | None = None


class AlertRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")
    uid: str = Field(min_length=1)
    deviceId: int | None = None
    message: str | None = None
    subject: str | None = None
    sourceName: str | None = None
    sourceType: str | None = None
    sourceConfigUid: str | None = None
    severity: str | None = None
    priority: str | None = None
    createTime: EpochSeconds | None = None
    updateTime: EpochSeconds | None = None


class ScriptRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int | None = None
    uid: str | None = None
    name: str | None = None
    type: str | None = None
    language: str | None = None


class ScriptingOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    scripts: list[ScriptRecord] | None = None


class NinjaOne:
    """The NinjaOne Public API v2 for one tenant."""

    def __init__(self, ctx: ActionContext) -> None:
        self.http = ctx.http()

    def devices(self, *, limit: int | None) -> list[DeviceRecord]:
        """``GET /v2/devices``: bare arrays, keyset-paged by ``after=<last id>``."""
        return self.http.pages(("v2", "devices"), limit=limit, expect=DeviceRecord)

    def device(self, device_id: str) -> DeviceRecord:
        return self.http.get(("v2", "device", device_id), expect=DeviceRecord)  # type: ignore[no-any-return]

    def reboot(self, device_id: str, mode: str, reason: str | None) -> None:
        """``POST /v2/device/{id}/reboot/{mode}`` (there is no ``/control/reboot``)."""
        self.http.post(("v2", "device", device_id, "reboot", mode), json={"reason": reason} if reason else None)

    def scripting_options(self, device_id: str) -> list[ScriptRecord]:
        """``{categories, scripts, credentials}``; the scripts."""
        options = self.http.get(("v2", "device", device_id, "scripting", "options"), expect=ScriptingOptions | None)
        return (options.scripts if options is not None else None) or []

    def run_script(self, device_id: str, request: dict[str, Any]) -> None:
        """``RunScriptRequest``: ``{type, id | uid, parameters (one string), runAs}``."""
        self.http.post(("v2", "device", device_id, "script", "run"), json=request)

    def alerts(self) -> list[AlertRecord]:
        """``GET /v2/alerts``: every active alert, one bare array (no paging)."""
        return self.http.get(("v2", "alerts"), expect=list[AlertRecord] | None) or []

    def reset_alert(self, uid: str) -> None:
        """``DELETE /v2/alert/{uid}``: NinjaOne's "reset alert/condition"."""
        self.http.delete(("v2", "alert", uid))


def _id_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _iso(value: Any) -> str | None:
    """NinjaOne times are epoch seconds (floats); the PSA's are datetimes (naive ones are UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return datetime.fromtimestamp(float(value), UTC).isoformat()


def _epoch(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


DeviceId = Annotated[str, BeforeValidator(_id_text, json_schema_input_type=int | str),
                     Field(min_length=1, max_length=64, description="The NinjaOne device id, e.g. 1041")]


class Device(BaseModel):
    external_device_id: str
    asset_id: str | None
    organization_id: str | None
    hostname: str | None
    display_name: str | None
    dns_name: str | None
    agent_online: bool | None
    last_seen_at: str | None
    os_name: str | None
    node_class: str | None
    source: Literal["local", "ninjaone"]

    @classmethod
    def from_ninjaone(cls, d: DeviceRecord, asset_id: str | None) -> Device:
        """From a ``Device`` / ``NodeWithDetailedReferences``. Neither schema defines OS fields, so ``os_name``
        is null: an undocumented ``os`` the live API might add is not relied on."""
        return cls(external_device_id=str(d.id), asset_id=asset_id, organization_id=_text(d.organizationId),
                   hostname=d.systemName, display_name=d.displayName, dns_name=d.dnsName,
                   agent_online=None if d.offline is None else not d.offline, last_seen_at=_iso(d.lastContact),
                   os_name=None, node_class=d.nodeClass, source="ninjaone")

    @classmethod
    def from_asset(cls, a: SyncedAsset) -> Device:
        return cls(external_device_id=a.device_id, asset_id=a.asset_id, organization_id=a.organization_id,
                   hostname=a.hostname, display_name=a.name, dns_name=a.dns_name, agent_online=a.agent_online,
                   last_seen_at=_iso(a.last_seen_at), os_name=a.os_name, node_class=a.node_class, source="local")


class Alert(BaseModel):
    alert_id: str = Field(description="The PSA's alert id when the alert is stored locally, else NinjaOne's uid")
    external_alert_id: str = Field(description="NinjaOne's alert uid")
    status: str | None
    severity: str | None
    priority: str | None
    title: str | None
    message: str | None
    device_id: str | None
    asset_id: str | None
    source_type: str | None
    created_at: str | None
    updated_at: str | None
    acknowledged: bool
    source: Literal["local", "ninjaone"]

    @classmethod
    def from_ninjaone(cls, a: AlertRecord, local: StoredAlert | None, asset_id: str | None) -> Alert:
        return cls(alert_id=local.alert_id if local else a.uid, external_alert_id=a.uid, status="active",
                   severity=a.severity, priority=a.priority, title=a.subject or a.sourceName, message=a.message,
                   device_id=_text(a.deviceId), asset_id=(local.asset_id if local else None) or asset_id,
                   source_type=a.sourceType, created_at=_iso(a.createTime), updated_at=_iso(a.updateTime),
                   acknowledged=False, source="ninjaone")

    @classmethod
    def from_row(cls, r: StoredAlert) -> Alert:
        return cls(alert_id=r.alert_id, external_alert_id=r.external_alert_id, status=r.status, severity=r.severity,
                   priority=r.priority, title=r.title, message=r.message, device_id=r.device_id,
                   asset_id=r.asset_id, source_type=r.source_type, created_at=_iso(r.created_at),
                   updated_at=_iso(r.updated_at),
                   acknowledged=r.acknowledged, source="local")


class Script(BaseModel):
    id: str | None
    uid: str | None
    name: str | None
    type: str | None
    language: str | None

    @classmethod
    def from_ninjaone(cls, s: ScriptRecord) -> Script:
        return cls(id=_text(s.id), uid=s.uid, name=s.name, type=s.type, language=s.language)


def _node_asset_type(node_class: str | None) -> str:
    cls = node_class or ""
    if "SERVER" in cls or cls.endswith("_HOST"):
        return "server"
    return "network_device" if cls.startswith("NMS") else "workstation"


def _local_alert(ctx: ActionContext, ref: AlertRef) -> StoredAlert | None:
    """The PSA's copy: by NinjaOne's uid, or (for ``alert_uid``) also by the PSA's own alert id."""
    return ctx.alerts.find(ref.uid, or_alert_id=ref.alert_uid is not None)


# -- the actions ----------------------------------------------------------------------------------------


class FindDevicesInput(BaseModel):
    device_id: DeviceId | None = None
    asset_id: str | None = Field(None, max_length=36, description="The PSA asset synced from the device")
    query: str | None = Field(None, min_length=1, max_length=255,
                              description="Part of the display name, host name or DNS name")
    live: bool = Field(False, description="Ask NinjaOne instead of the devices already synced into the PSA")
    limit: int = Field(50, ge=1, le=200)


class Devices(BaseModel):
    devices: list[Device]
    count: int


@ninjaone.action("ninjaone.devices.find", label="Find devices")
def find_devices(params: FindDevicesInput, ctx: ActionContext) -> Devices:
    """Find NinjaOne devices among those synced into the PSA, or live in NinjaOne (with live).

    Filters combine: a device id, a PSA asset id, and a query matched against display, host and DNS names.
    """
    if not params.live:
        rows = ctx.assets.find(device_id=params.device_id, asset_id=params.asset_id, query=params.query,
                               limit=params.limit)
        found = [Device.from_asset(a) for a in rows]
        return Devices(devices=found, count=len(found))
    device_id = params.device_id
    if device_id is None and params.asset_id is not None:
        device_id = ctx.assets.device_of(params.asset_id)
        if device_id is None:
            return Devices(devices=[], count=0)
    api = NinjaOne(ctx)
    if device_id is not None:
        items = [api.device(device_id)]
    else:
        items = api.devices(limit=None if params.query else params.limit)
    if params.query is not None:
        needle = params.query.casefold()
        items = [d for d in items if any(needle in (v or "").casefold()
                                         for v in (d.displayName, d.systemName, d.dnsName))]
    items = items[:params.limit]
    assets = ctx.assets.by_device([str(d.id) for d in items])
    found = [Device.from_ninjaone(d, assets.get(str(d.id))) for d in items]
    return Devices(devices=found, count=len(found))


class DeviceInput(BaseModel):
    device_id: DeviceId


class SyncOutput(BaseModel):
    synced: bool
    external_device_id: str
    asset_id: str


@ninjaone.action("ninjaone.devices.sync", label="Sync device", side_effectful=True)
def sync_device(params: DeviceInput, ctx: ActionContext) -> SyncOutput:
    """Create or update the PSA asset of one NinjaOne device, linked through its external-entity mapping."""
    d = NinjaOne(ctx).device(params.device_id)
    external_id = str(d.id)
    asset = ctx.assets.upsert(
        external_id, name=d.displayName or d.systemName or f"NinjaOne device {external_id}",
        asset_type=_node_asset_type(d.nodeClass), hostname=d.systemName, dns_name=d.dnsName,
        os_name=None, organization_id=_text(d.organizationId),  # the spec defines no OS fields
        node_class=d.nodeClass, agent_online=None if d.offline is None else not d.offline,
        last_seen_at=_epoch(d.lastContact),
        metadata={"uid": d.uid, "organization_id": _text(d.organizationId),
                  "location_id": _text(d.locationId), "approval_status": d.approvalStatus})
    return SyncOutput(synced=True, external_device_id=external_id, asset_id=asset.asset_id)


class RebootInput(BaseModel):
    device_id: DeviceId
    mode: Literal["NORMAL", "FORCED"] = Field("NORMAL", description="FORCED does not wait for open programs")
    reason: str | None = Field(None, max_length=1000, description="Shown in the NinjaOne activity log")


class RebootOutput(BaseModel):
    reboot_requested: bool
    external_device_id: str


@ninjaone.action("ninjaone.devices.reboot", label="Reboot device", side_effectful=True)
def reboot_device(params: RebootInput, ctx: ActionContext) -> RebootOutput:
    """Ask NinjaOne to reboot one device, normally or forced."""
    NinjaOne(ctx).reboot(params.device_id, params.mode, params.reason)
    return RebootOutput(reboot_requested=True, external_device_id=params.device_id)


class Scripts(BaseModel):
    scripts: list[Script]
    count: int


@ninjaone.action("ninjaone.devices.scripting_options", label="List runnable scripts")
def scripting_options(params: DeviceInput, ctx: ActionContext) -> Scripts:
    """The scripts and built-in actions NinjaOne can run on one device (ids for Run script)."""
    found = [Script.from_ninjaone(s) for s in NinjaOne(ctx).scripting_options(params.device_id)]
    return Scripts(scripts=found, count=len(found))


ScriptIdInput = Annotated[int, Field(ge=0, le=9_999_999_999)] | Annotated[str, Field(pattern=r"^[0-9]{1,10}$",
                                                                                     max_length=10)]


class RunScriptInput(BaseModel):
    device_id: DeviceId
    type: Literal["SCRIPT", "ACTION"] = Field(description="SCRIPT: a library script; ACTION: a built-in action")
    script_id: Annotated[str, BeforeValidator(_id_text, json_schema_input_type=ScriptIdInput),
                         Field(pattern=r"^[0-9]{1,10}$")] | None = Field(None, description="Required for SCRIPT")
    action_uid: str | None = Field(None, min_length=1, max_length=64, description="Required for ACTION")
    parameters: str | None = Field(None, max_length=8191,  # cmd.exe's command-line limit
                                   description="The script's parameters, as one string")
    run_as: str | None = Field(None, max_length=64,
                               description="system, loggedonuser, SR_LOCAL_ADMINISTRATOR, ... or a credential id")

    _script = required_if("type", "SCRIPT", "script_id")  # rules the published schema states too
    _action = required_if("type", "ACTION", "action_uid")


class RunScriptOutput(BaseModel):
    run_requested: bool
    external_device_id: str


@ninjaone.action("ninjaone.devices.run_script", label="Run script", side_effectful=True)
def run_script(params: RunScriptInput, ctx: ActionContext) -> RunScriptOutput:
    """Run a script or built-in action on one device (needs a user-context NinjaOne connection)."""
    target = {"id": int(params.script_id)} if params.type == "SCRIPT" and params.script_id \
        else {"uid": params.action_uid}
    request = {"type": params.type, **target, "parameters": params.parameters, "runAs": params.run_as}
    NinjaOne(ctx).run_script(params.device_id, {k: v for k, v in request.items() if v is not None})
    return RunScriptOutput(run_requested=True, external_device_id=params.device_id)


class ListAlertsInput(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    live: bool = Field(False, description="Ask NinjaOne instead of the alerts stored in the PSA")


class Alerts(BaseModel):
    alerts: list[Alert]
    count: int


@ninjaone.action("ninjaone.alerts.list_active", label="List active alerts")
def list_active_alerts(params: ListAlertsInput, ctx: ActionContext) -> Alerts:
    """Active NinjaOne alerts, newest first, as the PSA stores them or live from NinjaOne (with live)."""
    if not params.live:
        found = [Alert.from_row(r) for r in ctx.alerts.active(limit=params.limit)]
        return Alerts(alerts=found, count=len(found))
    items = sorted(NinjaOne(ctx).alerts(), key=lambda a: a.createTime or 0, reverse=True)[:params.limit]
    local = ctx.alerts.by_external_ids([a.uid for a in items])
    assets = ctx.assets.by_device([str(a.deviceId) for a in items if a.deviceId is not None])
    found = [Alert.from_ninjaone(a, local.get(a.uid), assets.get(str(a.deviceId))) for a in items]
    return Alerts(alerts=found, count=len(found))


class AlertRef(BaseModel):
    alert_uid: str | None = Field(None, min_length=1, max_length=255,
                                  description="NinjaOne's alert uid, or the alert_id of an alert stored in the PSA")
    external_alert_id: str | None = Field(None, min_length=1, max_length=255,
                                          description="NinjaOne's alert uid as the PSA stores it")

    _exactly_one = exactly_one_of("alert_uid", "external_alert_id")

    @property
    def uid(self) -> str:
        return str(self.alert_uid if self.alert_uid is not None else self.external_alert_id)


class AlertOutput(BaseModel):
    alert: Alert


@ninjaone.action("ninjaone.alerts.get", label="Get alert")
def get_alert(params: AlertRef, ctx: ActionContext) -> AlertOutput:
    """One alert: the PSA's copy if it has one, else NinjaOne's active alert with that uid."""
    row = _local_alert(ctx, params)
    if row is not None:
        return AlertOutput(alert=Alert.from_row(row))
    found = next((a for a in NinjaOne(ctx).alerts() if a.uid == params.uid), None)
    if found is None:
        raise ActionError.not_found(f"NinjaOne has no active alert {params.uid!r} and the PSA stores none",
                                    alert_uid=params.uid)
    assets = ctx.assets.by_device([str(found.deviceId)] if found.deviceId is not None else [])
    return AlertOutput(alert=Alert.from_ninjaone(found, None, assets.get(str(found.deviceId))))


class ResetOutput(BaseModel):
    acknowledged: bool
    alert_id: str = Field(description="The PSA's alert id when it stores the alert, else NinjaOne's uid")


@ninjaone.action("ninjaone.alerts.reset", label="Acknowledge alert", side_effectful=True)
def reset_alert(params: AlertRef, ctx: ActionContext) -> ResetOutput:
    """Acknowledge an alert with NinjaOne's reset operation; the PSA's copy becomes acknowledged."""
    row = _local_alert(ctx, params)
    NinjaOne(ctx).reset_alert(row.external_alert_id if row is not None else params.uid)
    if row is None:
        return ResetOutput(acknowledged=True, alert_id=params.uid)
    return ResetOutput(acknowledged=True, alert_id=ctx.alerts.acknowledge(row.alert_id).alert_id)


# -- alerts: the webhook normalizer, the poller and the outbound reset ----------------------------------
#
# A NinjaOne webhook (Administration > Apps > Notification channels > Webhook, header
# ``X-NinjaOne-Secret: <tenant secret ninjaone_webhook_secret>``) posts one activity. A condition's
# ``statusCode`` is its lifecycle (TRIGGERED, RESET), not an identity; ``seriesUid`` links the events of
# one firing and is the alert's uid (``GET /v2/alerts``); ``sourceConfigUid`` is the condition, so a
# device + condition is the dedup key.

_KINDS = {"TRIGGERED": "triggered", "RESET": "reset", "ACKNOWLEDGED": "acknowledged"}


def normalize_alerts(delivery: Delivery) -> list[AlertEvent]:
    body = delivery.payload
    if not isinstance(body, dict):
        raise Ignore("a NinjaOne webhook body is a JSON object")
    status = str(body.get("statusCode") or body.get("status") or "").upper()
    activity = vendor_text(body.get("activityType"))
    if status not in _KINDS or (activity is not None and activity.upper() != "CONDITION"):
        raise Ignore(f"NinjaOne activity {activity or '?'} {status or '?'} is not an alert event")
    series = vendor_text(body.get("seriesUid")) or vendor_text(body.get("uid"))
    if series is None:
        raise Ignore("the NinjaOne activity has no seriesUid")
    device = body.get("device") if isinstance(body.get("device"), dict) else {}
    org = body.get("organizationId", device.get("organizationId"))
    return [AlertEvent(
        kind=_KINDS[status], tenant=delivery.tenant, provider=PROVIDER, external_alert_id=series,
        device_id=_text(body.get("deviceId")), device_name=vendor_text(device.get("systemName"))
        or vendor_text(device.get("displayName")), severity=vendor_text(body.get("severity")),
        activity_type=activity, alert_class=vendor_text(body.get("type")),
        source_type=vendor_text(body.get("sourceType")) or vendor_text(body.get("sourceName")),
        organization=_text(org), title=vendor_text(body.get("subject")), message=vendor_text(body.get("message")),
        condition_id=vendor_text(body.get("sourceConfigUid")), occurred_at=vendor_time(body.get("activityTime")),
        acknowledged_by=_text(body.get("userId")), raw=body)]


def poll_alerts(ctx: ActionContext) -> list[AlertEvent]:
    """NinjaOne's active alerts (``GET /v2/alerts``) as triggered events."""
    return [AlertEvent(
        kind="triggered", tenant=ctx.tenant_id, provider=PROVIDER, external_alert_id=a.uid,
        device_id=_text(a.deviceId), severity=a.severity, activity_type="CONDITION", source_type=a.sourceType,
        title=a.subject, message=a.message, condition_id=a.sourceConfigUid,
        occurred_at=a.createTime, raw=a.model_dump(mode="json")) for a in NinjaOne(ctx).alerts()]


ninjaone_receiver = Receiver(PROVIDER, label="NinjaOne", verify=webhook.shared_secret("X-NinjaOne-Secret"),
                             delivery_id=webhook.json_field("id"), parse=normalize_alerts)
ninjaone_alerts = AlertSource(PROVIDER, normalize=normalize_alerts, poll=poll_alerts,
                              reset_action="ninjaone.alerts.reset", label="NinjaOne")


@hookimpl
def register_modules(register: Any) -> None:
    register(ninjaone)


@hookimpl
def register_receivers(register: Any) -> None:
    register(ninjaone_receiver)


@hookimpl
def register_alert_sources(register: Any) -> None:
    register(ninjaone_alerts)
