"""NinjaOne sandbox: the Public API v2 paths mspflow-ninjaone uses, answered from in-memory state.

It behaves as the fact sheet says NinjaOne does (``shared/vendor-apis.md`` §2): OAuth2 tokens from
``POST /ws/oauth/token`` (``client_credentials``, ``authorization_code``, ``refresh_token``; access tokens
live 3600 s; refresh tokens rotate, so a used one is ``invalid_grant``), bearer checks
(``not_authenticated``, error_code 10), ``user_context_required`` (error_code 5, HTTP 403 here: the
real status is unknown) for a client-credentials token on ``/script/run``, keyset paging of
``/v2/devices`` (bare arrays, ``after=<last id>``, ``pageSize``), ``/reboot/{NORMAL|FORCED}`` and no
``/control/reboot`` (404). Errors have NinjaOne's OAuth-style shape ``{error, error_description,
error_code}``; where the real ``error_code`` is unknown the HTTP status stands in.

Examples::

    sim = NinjaOneSimulator()                      # seeded: devices 1041-1045, three alerts
    mspflow.testing.mount(sim.base_url, sim.transport())
    creds = sim.issue_user_token()                 # the ninjaone_credentials JSON fields
    ...
    assert sim.reboots[1041] == 1
    sim.faults.rate_limit_next = 1                 # faults come from the Simulator base
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from mspflow.testing.sim import Faults, Simulator

SCOPES = frozenset({"monitoring", "management", "control", "offline_access"})
USER_SCOPE = "monitoring management control offline_access"
EPOCH = 1767225600.0  # 2026-01-01T00:00:00Z: seeded times are fixed, so runs compare
_IDS = re.compile(r"[0-9]{1,10}")
_ERRORS = {400: ("invalid_request", 400), 401: ("not_authenticated", 10), 403: ("forbidden", 403),
           404: ("not_found", 404), 405: ("method_not_allowed", 405), 429: ("too_many_requests", 429),
           503: ("service_unavailable", 503)}


def _uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://app.ninjarmm.com/sim/{name}"))


@dataclass
class Token:
    """An access token the simulator issued."""

    value: str
    expires_at: float
    user_context: bool
    scope: str


class NinjaOneSimulator(Simulator):
    """In-memory NinjaOne. State is public so tests can arrange and assert on it.

    :ivar devices: device id → ``Device``, with the spec's fields only (neither device schema has ``os``;
        the list endpoint omits the detail-only ``ipAddresses``, ``publicIP``, …).
    :ivar max_page_size: the server's own cap on ``pageSize`` (None: it honours any size asked for).
    :ivar alerts: alert uid → ``Alert``; a reset removes it.
    :ivar scripting: device id → ``{categories, scripts, credentials}``.
    :ivar reboots: device id → reboots requested; ``reboot_log``, ``script_runs`` and ``alert_resets``
        keep what was asked.
    """

    vendor = "NinjaOne"
    base_url = "https://app.ninjarmm.com"
    client_id = "ninjaone-sim-client"
    client_secret = "ninjaone-sim-client-secret"

    def __init__(self, *, faults: Faults | None = None, seed: bool = True) -> None:
        super().__init__(faults=faults)
        self.devices: dict[int, dict[str, Any]] = {}
        self.max_page_size: int | None = None
        self.alerts: dict[str, dict[str, Any]] = {}
        self.scripting: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, tuple[bool, str]] = {}  # live refresh token → (user context, scope)
        self.codes: dict[str, tuple[str, str | None]] = {}  # authorization code → (scope, redirect_uri)
        self.reboots: Counter[int] = Counter()
        self.reboot_log: list[dict[str, Any]] = []
        self.script_runs: list[dict[str, Any]] = []
        self.alert_resets: list[str] = []
        self.add_routes([
            ("GET", "/ws/oauth/authorize", self.authorize),
            ("POST", "/ws/oauth/token", self.token),
            ("GET", "/v2/devices", self.list_devices),
            ("GET", "/v2/device/{device_id}", self.get_device),
            ("GET", "/v2/device/{device_id}/alerts", self.device_alerts),
            ("POST", "/v2/device/{device_id}/reboot/{mode}", self.reboot),
            ("GET", "/v2/device/{device_id}/scripting/options", self.scripting_options),
            ("POST", "/v2/device/{device_id}/script/run", self.run_script),
            ("GET", "/v2/alerts", self.list_alerts),
            ("DELETE", "/v2/alert/{uid}", self.reset_alert),
            ("POST", "/v2/alert/{uid}/reset", self.reset_alert),
        ])
        if seed:
            self.seed()

    # -- state helpers for tests and the demo ---------------------------------------------------------

    def seed(self) -> None:
        """Five devices in two organizations, three active alerts, scripting options for each device."""
        rows = [
            (1041, 3, 7, "WINDOWS_WORKSTATION", False, "Front desk PC", "FRONTDESK-01"),
            (1042, 3, 7, "WINDOWS_SERVER", False, "File server", "FS-01"),
            (1043, 3, 8, "MAC", True, "Design MacBook", "DESIGN-MBP"),
            (1044, 4, 9, "LINUX_SERVER", False, "Web server", "WEB-01"),
            (1045, 4, 9, "WINDOWS_WORKSTATION", False, "Warehouse laptop", "WH-LT-02"),
        ]
        for device_id, org, location, node_class, offline, display, system in rows:
            self.add_device(device_id, organizationId=org, locationId=location, nodeClass=node_class,
                            offline=offline, displayName=display, systemName=system,
                            dnsName=f"{system.lower()}.contoso.local")
        self.add_alert(device_id=1041, source_type="CONDITION_AGENT_CPU", severity="MAJOR", priority="HIGH",
                       subject="CPU above 90% for 15 minutes", message="CPU utilization is 97% on FRONTDESK-01",
                       uid=_uid("alert-1"), at=EPOCH + 3600)
        self.add_alert(device_id=1042, source_type="CONDITION_AGENT_DISK_FREE_SPACE", severity="CRITICAL",
                       priority="HIGH", subject="Disk C: below 5% free", message="C: has 3.1 GB free on FS-01",
                       uid=_uid("alert-2"), at=EPOCH + 7200)
        self.add_alert(device_id=1043, source_type="AGENT_OFFLINE", severity="MINOR", priority="LOW",
                       subject="Agent offline", message="DESIGN-MBP has not checked in for 2 hours",
                       uid=_uid("alert-3"), at=EPOCH + 10800)

    def add_device(self, device_id: int, **fields: Any) -> dict[str, Any]:
        """A device with realistic defaults; ``fields`` override them (NinjaOne's camelCase names)."""
        system = fields.get("systemName", f"DEVICE-{device_id}")
        device = {
            "id": device_id, "uid": _uid(f"device-{device_id}"), "parentDeviceId": None, "organizationId": 1,
            "locationId": 1, "nodeClass": "WINDOWS_WORKSTATION", "nodeRoleId": 1, "rolePolicyId": 1,
            "policyId": 1, "approvalStatus": "APPROVED", "offline": False, "displayName": system,
            "systemName": system, "dnsName": f"{system.lower()}.example.local", "netbiosName": system[:15],
            "created": EPOCH - 86400 * 90 + device_id, "lastContact": EPOCH + device_id,
            "lastUpdate": EPOCH + device_id, "userData": {}, "tags": [], "maintenance": None,
        } | fields
        self.devices[device_id] = device
        windows = str(device["nodeClass"]).startswith("WINDOWS")
        language = "powershell" if windows else "sh"
        self.scripting[device_id] = {
            "categories": [{"id": 1, "name": "Maintenance", "internal": False},
                           {"id": 2, "name": "Built-in", "internal": True}],
            "scripts": [
                {"type": "SCRIPT", "id": 55, "uid": _uid("script-55"), "name": "Clear temp files",
                 "language": language, "description": "Deletes files older than 7 days from temp folders",
                 "architecture": ["64"], "categoryId": 1},
                {"type": "SCRIPT", "id": 56, "uid": _uid("script-56"), "name": "Collect event logs",
                 "language": language, "description": "Zips recent logs to the agent folder",
                 "architecture": ["64"], "categoryId": 1},
                {"type": "ACTION", "id": None, "uid": _uid("action-restart-service"), "name": "Restart service",
                 "language": "native", "description": "Built-in action", "architecture": ["32", "64"],
                 "categoryId": 2},
            ],
            "credentials": {"roles": ["system", "loggedonuser"] if windows else ["system"], "credentials": []},
        }
        return device

    def add_alert(self, *, device_id: int, source_type: str, severity: str = "MINOR", priority: str = "MEDIUM",
                  subject: str = "", message: str = "", uid: str | None = None, at: float | None = None
                  ) -> dict[str, Any]:
        uid = uid or str(uuid.uuid4())
        at = time.time() if at is None else at
        device = self.devices.get(device_id, {})
        alert = {
            "uid": uid, "deviceId": device_id, "message": message, "subject": subject, "sourceType": source_type,
            "sourceConfigUid": _uid(f"condition-{source_type}"), "sourceName": source_type.replace("_", " ").title(),
            "conditionName": subject, "createTime": at, "updateTime": at, "severity": severity,
            "priority": priority, "conditionHealthStatus": "UNHEALTHY", "useGlobalHealthStatus": False,
            "userId": None, "psaTicketId": None, "data": {},
            "device": {"id": device_id, "displayName": device.get("displayName")},
        }
        self.alerts[uid] = alert
        return alert

    def webhook(self, alert: dict[str, Any], status: str = "TRIGGERED", *, at: float | None = None) -> dict[str, Any]:
        """The webhook activity NinjaOne posts for ``alert`` (a condition ``TRIGGERED`` or ``RESET``).

        ``seriesUid`` is the alert's uid (it links the events of one firing), ``sourceConfigUid`` the
        condition, ``statusCode`` the lifecycle; each activity has an ``id`` of its own.
        """
        self._activity = getattr(self, "_activity", 900000) + 1
        at = time.time() if at is None else at
        device = self.devices.get(int(alert["deviceId"]), {})
        return {
            "id": self._activity, "activityTime": at, "deviceId": alert["deviceId"], "severity": alert["severity"],
            "priority": alert["priority"], "seriesUid": alert["uid"], "activityType": "CONDITION",
            "statusCode": status, "status": status, "activityResult": "SUCCESS",
            "sourceConfigUid": alert["sourceConfigUid"], "sourceName": alert["sourceName"],
            "sourceType": alert["sourceType"], "subject": alert["subject"], "message": alert["message"],
            "type": "CONDITION", "userId": None,
            "data": {"message": {"code": alert["sourceType"], "params": {}}},
            "device": {"id": alert["deviceId"], "organizationId": device.get("organizationId"),
                       "systemName": device.get("systemName"), "displayName": device.get("displayName")},
        }

    def fire(self, *, device_id: int, source_type: str, **fields: Any) -> dict[str, Any]:
        """A new firing of a condition: the alert becomes active and its TRIGGERED webhook is returned."""
        return self.webhook(self.add_alert(device_id=device_id, source_type=source_type, **fields))

    def clear(self, uid: str) -> dict[str, Any]:
        """The condition clears: the alert is no longer active and its RESET webhook is returned."""
        return self.webhook(self.alerts.pop(uid), "RESET")

    def demo_secrets(self) -> dict[str, str]:
        return {"ninjaone_client_id": self.client_id, "ninjaone_client_secret": self.client_secret,
                "ninjaone_credentials": json.dumps(self.issue_user_token())}

    def demo_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [("ninjaone.devices.find", {"live": True, "limit": 3}),
                ("ninjaone.devices.reboot", {"device_id": 1041, "reason": "mspflow demo"})]

    def issue_user_token(self, expires_in: float = 3600, scope: str = USER_SCOPE) -> dict[str, Any]:
        """A user-context (authorization-code) grant as the ``ninjaone_credentials`` JSON fields."""
        grant = self._grant(scope, user_context=True, refresh=True, expires_in=expires_in)
        return {"access_token": grant["access_token"], "refresh_token": grant["refresh_token"],
                "expires_at": time.time() + expires_in, "instance_url": self.base_url}

    def issue_client_token(self, expires_in: float = 3600, scope: str = "monitoring management control"
                           ) -> dict[str, Any]:
        """A client-credentials grant (no user context, no refresh token) in the same JSON fields."""
        grant = self._grant(scope, user_context=False, refresh=False, expires_in=expires_in)
        return {"access_token": grant["access_token"], "refresh_token": None,
                "expires_at": time.time() + expires_in, "instance_url": self.base_url}

    def authorization_code(self, scope: str = USER_SCOPE, redirect_uri: str | None = None) -> str:
        """A code as if a user had consented on ``/ws/oauth/authorize``."""
        code = secrets.token_urlsafe(16)
        self.codes[code] = (scope, redirect_uri)
        return code

    def revoke(self, access_token: str) -> None:
        """NinjaOne forgets the access token: the next call with it gets 401."""
        self.tokens.pop(access_token, None)

    def revoke_refresh(self, refresh_token: str) -> None:
        self.refresh_tokens.pop(refresh_token, None)

    # -- auth -----------------------------------------------------------------------------------------

    def error(self, status: int, message: str, *, error: str | None = None, error_code: int | None = None,
              **extra: Any) -> httpx.Response:
        default, code = _ERRORS.get(status, ("error", status))
        body = {"error": error or default, "error_description": message,
                "error_code": code if error_code is None else error_code}
        return self.json(body | extra, status)

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith("/ws/oauth/"):
            return None
        if self._bearer(request) is None:
            return self.error(401, "Invalid credentials", error="not_authenticated", error_code=10)
        return None

    def _bearer(self, request: httpx.Request) -> Token | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = self.tokens.get(value) if scheme.lower() == "bearer" else None
        return token if token is not None and token.expires_at > time.time() else None

    def _grant(self, scope: str, *, user_context: bool, refresh: bool, expires_in: float = 3600) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        self.tokens[access] = Token(access, time.time() + expires_in, user_context, scope)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": int(expires_in),
                                "scope": scope}
        if refresh:
            body["refresh_token"] = secrets.token_urlsafe(32)
            self.refresh_tokens[body["refresh_token"]] = (user_context, scope)
        return body

    def authorize(self, request: httpx.Request) -> httpx.Response:
        """The consent page, consenting at once: 302 to ``redirect_uri`` with ``code`` and ``state``."""
        q = request.url.params
        if q.get("client_id") != self.client_id or q.get("response_type") != "code" or not q.get("redirect_uri"):
            return self.error(400, "Unknown client, response_type or redirect_uri", error="invalid_request")
        code = self.authorization_code(q.get("scope") or USER_SCOPE, q["redirect_uri"])
        query = {"code": code} | ({"state": q["state"]} if q.get("state") else {})
        return httpx.Response(302, headers={"Location": f"{q['redirect_uri']}?{urlencode(query)}"})

    def token(self, request: httpx.Request) -> httpx.Response:
        form = self.body(request)
        form = form if isinstance(form, dict) else {}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):  # client_secret_basic works too
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                client_id = client_secret = None
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return self.error(401, "Client authentication failed", error="invalid_client", error_code=401)
        grant = form.get("grant_type")
        if grant == "client_credentials":
            scope = form.get("scope") or "monitoring"
            if not set(scope.split()) <= SCOPES - {"offline_access"}:
                return self.error(400, f"Scope not granted to this client: {scope}", error="invalid_scope")
            return self.json(self._grant(scope, user_context=False, refresh=False))
        if grant == "authorization_code":
            scope, redirect_uri = self.codes.pop(form.get("code", ""), (None, None))
            if scope is None or (redirect_uri and form.get("redirect_uri") != redirect_uri):
                return self.error(400, "Invalid authorization code", error="invalid_grant")
            return self.json(self._grant(scope, user_context=True, refresh="offline_access" in scope.split()))
        if grant == "refresh_token":
            found = self.refresh_tokens.pop(form.get("refresh_token", ""), None)  # rotation: single use
            if found is None:
                return self.error(400, "Invalid refresh token", error="invalid_grant")
            return self.json(self._grant(found[1], user_context=found[0], refresh=True))
        return self.error(400, f"Unsupported grant_type {grant!r}", error="unsupported_grant_type")

    # -- devices --------------------------------------------------------------------------------------

    def _device(self, raw: str) -> dict[str, Any] | None:
        return self.devices.get(int(raw)) if _IDS.fullmatch(raw) else None

    def _missing_device(self, raw: str) -> httpx.Response:
        return self.error(404, f"Device {raw} not found")

    @staticmethod
    def _summary(device: dict[str, Any]) -> dict[str, Any]:
        detail_only = ("ipAddresses", "macAddresses", "publicIP", "notes", "deviceType")
        return {k: v for k, v in device.items() if k not in detail_only}

    def list_devices(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        try:
            size = int(q.get("pageSize") or 1000)
            after = int(q["after"]) if q.get("after") else None
        except ValueError:
            return self.error(400, "pageSize and after must be integers")
        if size < 1:
            return self.error(400, "pageSize must be positive")
        if self.max_page_size is not None:
            size = min(size, self.max_page_size)  # the server's own cap, below what was asked for
        page = self.keyset_page(list(self.devices.values()), after=after, page_size=size)
        return self.json([self._summary(d) for d in page])

    def get_device(self, request: httpx.Request, device_id: str) -> httpx.Response:
        device = self._device(device_id)
        return self.json(device) if device is not None else self._missing_device(device_id)

    def device_alerts(self, request: httpx.Request, device_id: str) -> httpx.Response:
        device = self._device(device_id)
        if device is None:
            return self._missing_device(device_id)
        return self.json([a for a in self.alerts.values() if a["deviceId"] == device["id"]])

    def reboot(self, request: httpx.Request, device_id: str, mode: str) -> httpx.Response:
        device = self._device(device_id)
        if device is None:
            return self._missing_device(device_id)
        if mode not in ("NORMAL", "FORCED"):
            return self.error(400, f"Invalid reboot mode {mode!r}: use NORMAL or FORCED")
        body = self.body(request)
        if body is not None and not (isinstance(body, dict) and isinstance(body.get("reason", ""), str)):
            return self.error(400, "Body must be {\"reason\": string}")
        self.reboots[device["id"]] += 1
        self.reboot_log.append({"device_id": device["id"], "mode": mode, "reason": (body or {}).get("reason")})
        return self.empty(204)

    def scripting_options(self, request: httpx.Request, device_id: str) -> httpx.Response:
        device = self._device(device_id)
        return self.json(self.scripting[device["id"]]) if device is not None else self._missing_device(device_id)

    def run_script(self, request: httpx.Request, device_id: str) -> httpx.Response:
        token = self._bearer(request)
        if token is None or not token.user_context:
            return self.error(403, "Access key does not have user context which is required for this request",
                              error="user_context_required", error_code=5)
        device = self._device(device_id)
        if device is None:
            return self._missing_device(device_id)
        body = self.body(request)
        if not isinstance(body, dict) or body.get("type") not in ("SCRIPT", "ACTION"):
            return self.error(400, "type must be SCRIPT or ACTION")
        if not isinstance(body.get("parameters", ""), str):
            return self.error(400, "parameters must be a string")
        if not isinstance(body.get("runAs", ""), (str, int)):
            return self.error(400, "runAs must be a string or a credential id")
        options = self.scripting[device["id"]]["scripts"]
        if body["type"] == "SCRIPT":
            key, wanted = "id", body.get("id")
            if not isinstance(wanted, int) or isinstance(wanted, bool):
                return self.error(400, "id (int) is required for SCRIPT")
        else:
            key, wanted = "uid", body.get("uid")
            if not isinstance(wanted, str):
                return self.error(400, "uid is required for ACTION")
        if not any(s["type"] == body["type"] and s[key] == wanted for s in options):
            return self.error(404, f"{body['type'].title()} {wanted} is not available on device {device['id']}")
        self.script_runs.append({"device_id": device["id"], **body})
        return self.empty(204)

    # -- alerts ---------------------------------------------------------------------------------------

    def list_alerts(self, request: httpx.Request) -> httpx.Response:
        source_type = request.url.params.get("sourceType")
        return self.json([a for a in self.alerts.values() if source_type in (None, a["sourceType"])])

    def reset_alert(self, request: httpx.Request, uid: str) -> httpx.Response:
        if self.alerts.pop(uid, None) is None:
            return self.error(404, f"Alert {uid} not found")
        self.alert_resets.append(uid)
        return self.empty(204)
