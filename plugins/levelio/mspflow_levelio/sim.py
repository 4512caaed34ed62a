"""Level sandbox: the API v2 paths mspflow-levelio uses, answered from in-memory state.

It imports nothing from the plugin and follows the same facts (``shared/vendor-apis.md`` §3; the plugin's
``VENDOR FACTS`` block, numbered F1-F15): routes under ``/v2`` (F1); the raw API key as the whole
``Authorization`` value, ``Bearer`` refused (F2); 401 ``{"error": "Access denied"}`` and ``{"error": str}``
for every other error (F3); Read-only keys refused on writes with :attr:`LevelSimulator.read_only_status`
(F4: 401 or 403 is unknown, so tests try both); ``{"data", "has_more"}`` lists with ``limit`` 1-100 (default
20) and ``starting_after``/``ending_before`` cursors (F5); base64 GIDs as ids, which may hold ``/``, ``+`` and
``=`` (F6); group filters and include flags on devices (F7); active and resolved alerts and
``POST /alerts/{id}/resolve`` (F8); updates (F9); automations, their Webhook triggers and the trigger call
(F10, F11); runs that move through statuses over successive polls (F13). Where the real API is unknown the
simulator picks one answer and says so: the trigger replies ``{"automation_run_id": …}`` (F12; set
``trigger_reply_has_run_id = False`` for a reply without one) and a run polled for the first time says
``running``, then its automation's outcome once :attr:`LevelSimulator.polls_to_finish` polls have seen it.

Examples::

    sim = LevelSimulator()                             # seeded: 6 devices in 3 groups, alerts, automations
    mspflow.testing.mount(sim.base_url, sim.transport())
    sim.keys[sim.read_only_key]                        # "read-only"
    sim.add_devices(150)                               # more than one page
    assert sim.count("POST", "/resolve") == 1
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mspflow.testing.sim import Faults, Simulator

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # seeded times are fixed, so runs compare
MAX_LIMIT, DEFAULT_LIMIT = 100, 20
INCLUDES = {"include_operating_system": "operating_system", "include_cpus": "cpus", "include_memory": "memory",
            "include_disks": "disk_partitions", "include_network_interfaces": "network_interfaces",
            "include_security": "security"}


def gid(kind: str, n: int | str) -> str:
    """A Level-style id: base64 of ``gid://level/<Kind>/<n>`` (standard alphabet: ``/``, ``+``, ``=`` occur)."""
    return base64.b64encode(f"gid://level/{kind}/{n}".encode()).decode()


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# Seeded ids, for tests and the demo
CONTOSO, CONTOSO_HQ, FABRIKAM = gid("Group", 1), gid("Group", 2), gid("Group", 3)
FRONTDESK, FILESERVER, DESIGN_MAC = gid("Device", 101), gid("Device", 102), gid("Device", 103)
WEB, LAPTOP, DC = gid("Device", 104), gid("Device", 105), gid("Device", 106)
CLEAR_TEMP, RESTART_SPOOLER, PATCH_NOW, NIGHTLY_REPORT = (gid("Automation", n) for n in (11, 12, 13, 14))


class LevelSimulator(Simulator):
    """In-memory Level. State is public so tests can arrange and assert on it.

    :ivar keys: API key → ``"read-write"`` or ``"read-only"``.
    :ivar groups, devices, alerts, updates, automations: id → record (Level's field names); an automation
        also carries the simulator's own ``outcome`` (its runs' final status) and ``steps`` (step names).
    :ivar webhooks: token → ``{automation_id, requires_authorization_header, parameters}``.
    :ivar runs: run id → run record; ``polls`` counts how often Level was asked about it.
    :ivar triggers: every accepted trigger call: ``{token, automation_id, body, run_id}``.
    :ivar resolved: alert ids resolved through the API, in order.
    """

    vendor = "Level"
    base_url = "https://api.level.io/v2"
    api_key = "lvl_sim_rw_6f1d0c9e2b7a4d3f8e5c1a0b9d8c7e6f"
    read_only_key = "lvl_sim_ro_0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
    read_only_status = 403  # F4 [U]: what a Read-only key gets on a write; tests also try 401
    polls_to_finish = 2  # a run says "running" this many polls, then its automation's outcome
    trigger_reply_has_run_id = True  # F12 [U]

    def __init__(self, *, faults: Faults | None = None, seed: bool = True) -> None:
        super().__init__(faults=faults)
        self.keys: dict[str, str] = {self.api_key: "read-write", self.read_only_key: "read-only"}
        self.groups: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}
        self.updates: dict[str, dict[str, Any]] = {}
        self.automations: dict[str, dict[str, Any]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.triggers: list[dict[str, Any]] = []
        self.resolved: list[str] = []
        self.add_routes([
            ("GET", "/v2/groups", self.list_groups),
            ("GET", "/v2/devices", self.list_devices),
            ("GET", "/v2/devices/{device_id}", self.get_device),
            ("GET", "/v2/alerts", self.list_alerts),
            ("GET", "/v2/alerts/{alert_id}", self.get_alert),
            ("POST", "/v2/alerts/{alert_id}/resolve", self.resolve_alert),
            ("GET", "/v2/updates", self.list_updates),
            ("GET", "/v2/automations", self.list_automations),
            ("GET", "/v2/automations/webhooks", self.list_webhooks),
            ("POST", "/v2/automations/webhooks/{token}", self.trigger),
            ("GET", "/v2/automation-runs/{run_id}", self.get_run),
        ])
        if seed:
            self.seed()

    # -- state helpers for tests and the demo ---------------------------------------------------------

    def seed(self) -> None:
        """Three groups (Contoso > Contoso HQ, Fabrikam), six devices, alerts (active and resolved), updates,
        and four automations: three with a Webhook trigger, one without."""
        self.add_group(CONTOSO, "Contoso")
        self.add_group(CONTOSO_HQ, "Contoso HQ", parent_id=CONTOSO)
        self.add_group(FABRIKAM, "Fabrikam")
        self.add_device(FRONTDESK, hostname="FRONTDESK-01", nickname="Front desk PC", group_id=CONTOSO_HQ)
        self.add_device(FILESERVER, hostname="FS-01", nickname="File server", group_id=CONTOSO_HQ, role="server")
        self.add_device(DESIGN_MAC, hostname="DESIGN-MBP", nickname="Design MacBook", group_id=CONTOSO,
                        platform="Mac", online=False)
        self.add_device(WEB, hostname="web-01", nickname="Web server", group_id=FABRIKAM, role="server",
                        platform="Linux")
        self.add_device(LAPTOP, hostname="WH-LT-02", nickname="Warehouse laptop", group_id=FABRIKAM)
        self.add_device(DC, hostname="DC-01", nickname="Domain controller", group_id=CONTOSO,
                        role="domain_controller", maintenance_mode=True)
        self.add_alert(FRONTDESK, "CPU above 90%", "CPU has been above 90% for 15 minutes", severity="warning",
                       n=1)
        self.add_alert(FILESERVER, "Disk C: below 5% free", "C: has 3.1 GB free", severity="critical", n=2)
        self.add_alert(DESIGN_MAC, "Device offline", "Not seen for 2 hours", severity="information", n=3)
        self.add_alert(FRONTDESK, "Service stopped", "Print Spooler stopped", severity="warning", n=4,
                       resolved=True)
        for n, (device, name, category, available) in enumerate([
                (FRONTDESK, "2026-01 Cumulative Update for Windows 11", "Security Updates", True),
                (FRONTDESK, "Microsoft Defender definitions 1.421.10.0", "Definition Updates", False),
                (FILESERVER, "2026-01 Cumulative Update for Windows Server 2022", "Security Updates", True),
                (WEB, "openssl 3.0.13-0ubuntu3.5", "security", True)], start=1):
            self.add_update(device, name, category, available=available, n=n)
        self.add_automation(CLEAR_TEMP, "Clear temp files", steps=["Delete temp files", "Report freed space"],
                            webhook=True, parameters=["days"])
        self.add_automation(RESTART_SPOOLER, "Restart print spooler", steps=["Restart service"], webhook=True)
        self.add_automation(PATCH_NOW, "Install updates now", steps=["Install updates", "Reboot if needed"])
        self.add_automation(NIGHTLY_REPORT, "Nightly report (fails)", steps=["Collect", "Upload"], webhook=True,
                            outcome="failed", requires_authorization_header=True)

    def add_group(self, group_id: str, name: str, parent_id: str | None = None) -> dict[str, Any]:
        group: dict[str, Any] = {"id": group_id, "parent_id": parent_id, "name": name, "child_ids": []}
        self.groups[group_id] = group
        if parent_id is not None:
            self.groups[parent_id]["child_ids"].append(group_id)
        return group

    def add_device(self, device_id: str, **fields: Any) -> dict[str, Any]:
        """A device with realistic defaults; ``fields`` override Level's field names."""
        n = len(self.devices) + 1
        hostname = fields.get("hostname", f"DEVICE-{n:04d}")
        platform = fields.get("platform", "Windows")
        device = {
            "id": device_id, "hostname": hostname, "nickname": None, "group_id": CONTOSO, "tags": [],
            "flag": None, "role": "workstation", "maintenance_mode": False, "online": True,
            "last_seen_at": _iso(EPOCH + timedelta(minutes=n)), "last_reboot_time": _iso(EPOCH - timedelta(days=2)),
            "last_logged_in_user": "jdoe", "platform": platform, "security_score": 87, "manufacturer": "Dell Inc.",
            "model": "OptiPlex 7090", "architecture": "x64", "serial_number": f"SN{n:06d}",
            "total_memory": 17179869184, "memory_slots": 2, "cpu_cores": 8, "city": "London", "country": "GB",
        } | fields
        device["_detail"] = {  # what the include flags add (not sent unless asked for)
            "operating_system": {"full_operating_system": {"Windows": "Windows 11 Pro 23H2", "Mac": "macOS 15.2",
                                                           "Linux": "Ubuntu 24.04 LTS"}.get(platform, platform),
                                 "major_version": 11, "minor_version": 0, "architecture": "x64",
                                 "install_date": "2025-06-01", "end_of_life": None},
            "cpus": [{"model": "Intel(R) Core(TM) i5-10500", "cores": 6, "speed_mhz": 3100}],
            "memory": [{"size": 8589934592, "speed_mhz": 2666}] * 2,
            "disk_partitions": [{"name": "C:", "size": 511101108224, "free": 120034123776}],
            "network_interfaces": [{"name": "Ethernet", "mac_address": "00:11:22:33:44:55",
                                    "ip_addresses": ["10.0.0.10"]}],
            "security": {"score": 87, "risk": "low", "patch_compliance": 93, "antivirus_status": "enabled",
                         "firewall_enabled": True},
        }
        self.devices[device_id] = device
        return device

    def add_devices(self, count: int, *, group_id: str = FABRIKAM) -> list[str]:
        """``count`` more plain devices (for paging), in ``group_id``; returns their ids."""
        start = len(self.devices) + 1000
        ids = [gid("Device", start + i) for i in range(count)]
        for i, device_id in enumerate(ids):
            self.add_device(device_id, hostname=f"BULK-{start + i}", group_id=group_id)
        return ids

    def add_alert(self, device_id: str, name: str, description: str = "", *, severity: str = "warning",
                  n: int | None = None, resolved: bool = False) -> dict[str, Any]:
        n = len(self.alerts) + 1 if n is None else n
        started = EPOCH + timedelta(hours=n)
        alert: dict[str, Any] = {
            "id": gid("Alert", n), "device_id": device_id,
            "device_hostname": self.devices.get(device_id, {}).get("hostname"), "name": name,
            "description": description, "payload": {}, "severity": severity, "is_resolved": resolved,
            "started_at": _iso(started), "resolved_at": _iso(started + timedelta(minutes=30)) if resolved else None}
        self.alerts[alert["id"]] = alert
        return alert

    def add_update(self, device_id: str, name: str, category: str, *, available: bool = True,
                   n: int | None = None) -> dict[str, Any]:
        n = len(self.updates) + 1 if n is None else n
        update: dict[str, Any] = {
            "id": gid("Update", n), "device_id": device_id,
            "device_hostname": self.devices.get(device_id, {}).get("hostname"), "name": name,
            "category": category, "is_available": available,
            "installed_on": None if available else _iso(EPOCH - timedelta(days=1))}
        self.updates[update["id"]] = update
        return update

    def add_automation(self, automation_id: str, name: str, *, steps: list[str] | None = None, webhook: bool = False,
                       outcome: str = "succeeded", parameters: list[str] | None = None,
                       requires_authorization_header: bool = False) -> dict[str, Any]:
        automation = {"id": automation_id, "name": name, "outcome": outcome, "steps": steps or ["Run"]}
        self.automations[automation_id] = automation
        if webhook:
            self.add_webhook(automation_id, parameters=parameters,
                             requires_authorization_header=requires_authorization_header)
        return automation

    def add_webhook(self, automation_id: str, *, parameters: list[str] | None = None,
                    requires_authorization_header: bool = False) -> str:
        """A saved Webhook trigger on the automation; returns its token (F11: made when the trigger is saved)."""
        n = sum(1 for w in self.webhooks.values() if w["automation_id"] == automation_id)
        token = hashlib.sha256(f"{automation_id}/{n}".encode()).hexdigest()[:32]
        self.webhooks[token] = {"automation_id": automation_id, "parameters": parameters or [],
                                "requires_authorization_header": requires_authorization_header}
        return token

    def token_of(self, automation_id: str) -> str:
        return next(t for t, w in self.webhooks.items() if w["automation_id"] == automation_id)

    def webhook(self, alert: dict[str, Any], event_type: str = "alert_active") -> dict[str, Any]:
        """The signed webhook body Level posts for ``alert`` (``alert_active`` or ``alert_resolved``); sign it
        with ``mspflow.testing`` / ``webhook.sign(secret, body, prefix="sha256=")``."""
        if event_type == "alert_resolved":
            alert["is_resolved"], alert["resolved_at"] = True, _iso(datetime.now(UTC))
        return {"event_type": event_type, "event_id": str(uuid.uuid4()), "occurred_at": _iso(datetime.now(UTC)),
                "data": dict(alert)}

    def demo_secrets(self) -> dict[str, str]:
        return {"levelio_api_key": self.api_key}

    def demo_calls(self) -> list[tuple[str, dict[str, Any]]]:
        """Find devices, restart the print spooler on the front desk PC, then read that run: the first run of a
        fresh simulator, so its id is known in advance (and each call also works on its own). The trigger names
        its Webhook trigger's token, so the call is the one POST (by automation id, a lookup comes first)."""
        return [("levelio.devices.find", {"live": True, "limit": 3}),
                ("levelio.automations.trigger", {"webhook_token": self.token_of(RESTART_SPOOLER),
                                                 "device_ids": [FRONTDESK]}),
                ("levelio.automations.run_status", {"run_id": self.run_id(1, RESTART_SPOOLER, FRONTDESK),
                                                    "include_steps": True})]

    @staticmethod
    def run_id(n: int, automation_id: str, device_id: str | None) -> str:
        """The id of the ``n``-th run this simulator starts (numbered from 1), for that automation and device."""
        return gid("AutomationRun", f"{n}|{automation_id}|{device_id or ''}")

    # -- auth and errors ------------------------------------------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> httpx.Response:
        """F3: ``{"error": str}``; a 401 always says "Access denied"."""
        return self.json({"error": "Access denied" if status == 401 else message, **extra}, status)

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        access = self.keys.get(request.headers.get("Authorization", ""))  # F2: the raw key, no "Bearer"
        if access is None:
            return self.error(401, "Access denied")
        if access == "read-only" and request.method != "GET":
            return self.error(self.read_only_status, "Access denied")
        return None

    def _missing(self, kind: str) -> httpx.Response:
        return self.error(404, f"{kind} not found")

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        """F5: ``{"data", "has_more"}``; ``limit`` 1-100 (default 20), ``starting_after``/``ending_before``."""
        q = request.url.params
        try:
            limit = int(q.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            return self.error(400, "limit must be an integer")
        if not 1 <= limit <= MAX_LIMIT:
            return self.error(400, f"limit must be between 1 and {MAX_LIMIT}")
        ids = [item["id"] for item in items]
        if q.get("starting_after"):
            if q["starting_after"] not in ids:
                return self.error(400, "starting_after is not an id in this list")
            start = ids.index(q["starting_after"]) + 1
            page = items[start:start + limit]
            more = start + limit < len(items)
        elif q.get("ending_before"):
            if q["ending_before"] not in ids:
                return self.error(400, "ending_before is not an id in this list")
            end = ids.index(q["ending_before"])
            page = items[max(0, end - limit):end]
            more = end - limit > 0
        else:
            page, more = items[:limit], limit < len(items)
        return self.json({"data": page, "has_more": more})

    @staticmethod
    def _flag(request: httpx.Request, name: str) -> bool:
        return str(request.url.params.get(name, "")).lower() == "true"

    # -- groups and devices ---------------------------------------------------------------------------

    def list_groups(self, request: httpx.Request) -> httpx.Response:
        return self._page(request, list(self.groups.values()))

    def _below(self, group_id: str) -> set[str]:
        found, todo = set(), [group_id]
        while todo:
            current = todo.pop()
            found.add(current)
            todo += self.groups.get(current, {}).get("child_ids", [])
        return found

    def _device_view(self, request: httpx.Request, device: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in device.items() if k != "_detail"}
        for flag, key in INCLUDES.items():
            if self._flag(request, flag):
                view[key] = device["_detail"][key]
        return view

    def list_devices(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        items = list(self.devices.values())
        if q.get("group_id"):
            items = [d for d in items if d["group_id"] == q["group_id"]]
        if q.get("ancestor_group_id"):
            below = self._below(q["ancestor_group_id"])
            items = [d for d in items if d["group_id"] in below]
        return self._page(request, [self._device_view(request, d) for d in items])

    def get_device(self, request: httpx.Request, device_id: str) -> httpx.Response:
        device = self.devices.get(device_id)
        return self.json(self._device_view(request, device)) if device else self._missing("Device")

    # -- alerts and updates ---------------------------------------------------------------------------

    def list_alerts(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        status = q.get("status")
        if status not in (None, "active", "resolved"):
            return self.error(400, "status must be active or resolved")
        items = [a for a in self.alerts.values() if q.get("device_id") in (None, a["device_id"])
                 and status in (None, "resolved" if a["is_resolved"] else "active")]
        return self._page(request, items)

    def get_alert(self, request: httpx.Request, alert_id: str) -> httpx.Response:
        alert = self.alerts.get(alert_id)
        return self.json(alert) if alert else self._missing("Alert")

    def resolve_alert(self, request: httpx.Request, alert_id: str) -> httpx.Response:
        """F8 [U] reply: 204; resolving a resolved alert is accepted again (unknown, chosen)."""
        alert = self.alerts.get(alert_id)
        if alert is None:
            return self._missing("Alert")
        if not alert["is_resolved"]:
            alert["is_resolved"], alert["resolved_at"] = True, _iso(datetime.now(UTC))
        self.resolved.append(alert_id)
        return self.empty(204)

    def list_updates(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        status = q.get("status")
        if status not in (None, "available", "installed"):
            return self.error(400, "status must be available or installed")
        items = [u for u in self.updates.values() if q.get("device_id") in (None, u["device_id"])
                 and status in (None, "available" if u["is_available"] else "installed")]
        return self._page(request, items)

    # -- automations, webhook triggers and runs -------------------------------------------------------

    def list_automations(self, request: httpx.Request) -> httpx.Response:
        return self._page(request, [{"id": a["id"], "name": a["name"]} for a in self.automations.values()])

    def list_webhooks(self, request: httpx.Request) -> httpx.Response:
        items = [{"id": gid("AutomationWebhook", token), "url": f"{self.base_url}/automations/webhooks/{token}",
                  "automation_id": w["automation_id"],
                  "automation_name": self.automations[w["automation_id"]]["name"],
                  "requires_authorization_header": w["requires_authorization_header"],
                  "parameters": w["parameters"]} for token, w in self.webhooks.items()]
        return self._page(request, items)

    def trigger(self, request: httpx.Request, token: str) -> httpx.Response:
        """F11: one run per call (F13 has one device per run: the first of ``device_ids``); F12 reply [U]."""
        webhook = self.webhooks.get(token)
        if webhook is None:
            return self._missing("Webhook")
        body = self.body(request)
        body = {} if body is None else body
        if not isinstance(body, dict):
            return self.error(400, "The body must be a JSON object")
        devices = body.get("device_ids")
        if devices is not None and not (isinstance(devices, list) and all(isinstance(d, str) for d in devices)):
            return self.error(400, "device_ids must be a list of device ids")
        automation = self.automations[webhook["automation_id"]]
        device_id = devices[0] if devices else None
        run_id = self.run_id(len(self.triggers) + 1, automation["id"], device_id)
        self.runs[run_id] = self._new_run(run_id, automation, device_id, datetime.now(UTC))
        self.triggers.append({"token": token, "automation_id": automation["id"], "body": body, "run_id": run_id})
        return self.json({"automation_run_id": run_id} if self.trigger_reply_has_run_id else {"success": True})

    def _new_run(self, run_id: str, automation: dict[str, Any], device_id: str | None,
                 started: datetime) -> dict[str, Any]:
        return {"id": run_id, "automation_id": automation["id"], "automation_name": automation["name"],
                "device_id": device_id, "device_hostname": self.devices.get(device_id or "", {}).get("hostname"),
                "status": "running", "started_at": _iso(started), "ended_at": None, "polls": 0}

    def _earlier_run(self, run_id: str) -> dict[str, Any] | None:
        """A run this simulator minted before a restart (the demo replays its trigger against a fresh one):
        its id names its automation and device, and it has long finished."""
        try:
            path = base64.b64decode(run_id, validate=True).decode()
        except ValueError:
            return None
        prefix = "gid://level/AutomationRun/"
        parts = path[len(prefix):].split("|") if path.startswith(prefix) else []
        if len(parts) != 3 or parts[1] not in self.automations:
            return None
        run = self._new_run(run_id, self.automations[parts[1]], parts[2] or None, EPOCH)
        run["polls"] = self.polls_to_finish
        return run

    def get_run(self, request: httpx.Request, run_id: str) -> httpx.Response:
        """F13: ``running`` for :attr:`polls_to_finish` polls, then the automation's outcome with ``ended_at``."""
        run = self.runs.get(run_id) or self._earlier_run(run_id)
        if run is None:
            return self._missing("Automation run")
        self.runs[run_id] = run
        automation = self.automations[run["automation_id"]]
        if run["polls"] >= self.polls_to_finish and run["ended_at"] is None:
            run["status"] = automation["outcome"]
            run["ended_at"] = _iso(max(datetime.now(UTC), datetime.fromisoformat(run["started_at"])))
        run["polls"] += 1
        view = {k: v for k, v in run.items() if k != "polls"}
        if self._flag(request, "include_steps"):
            done = run["ended_at"] is not None
            view["steps"] = [{"name": name, "status": automation["outcome"] if done else
                              ("running" if i == 0 else "pending")} for i, name in enumerate(automation["steps"])]
        return self.json(view)
