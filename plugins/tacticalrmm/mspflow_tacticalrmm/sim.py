"""Tactical RMM sandbox: the classic API paths mspflow-tacticalrmm uses, answered from in-memory state.

It behaves as the fact sheet says Tactical RMM does (``shared/vendor-apis.md`` §1): routes off the API
host's root with trailing slashes (a missing one is a 301, as Django's APPEND_SLASH answers), agent ids of
at least 21 characters (shorter: the router's HTML 404), ``X-API-KEY`` or ``Authorization: Token <knox>``
(knox first), DRF ``{"detail": …}`` bodies for auth failures and unknown objects, application errors as a
400 whose body is a bare JSON string, and a 500 (an uncaught KeyError) when a required body key is missing.

Agents the server cannot reach, as observed on a real server: an agent that is **not connected** at all
(``set_online(id, False)``; the seeded laptop) makes ``runscript`` (waiting), ``cmd`` and both reboots fail
with Django's **500 HTML page** (the message bus answers "no responders", which the views do not catch);
a **connected agent that does not answer** (``set_silent(id)``) gives ``runscript`` 200 ``"timeout"``,
``cmd`` and reboot-now 400 ``"Unable to contact the agent"``, a scheduled reboot 400 ``"timeout"``; with
the **message bus down** (``nats_down``) ``runscript`` and ``cmd`` answer 200 ``"natsdown"``, reboot-now 400
``"Unable to contact the agent"``, a scheduled reboot 400 ``"natsdown"``. A run that is not waited for
(``output: "forget"``) is answered 200 "will now be run" whatever the agent's state: nothing checks it
was delivered. Logins: ``POST /v2/checkcreds/`` (token with ``totp: false``, or ``{"totp": true}`` for a
TOTP account), then ``POST /v2/login/`` with ``twofactor``; tokens from checkcreds live 180 s; an expired
knox token is refused 401 ``"Invalid token."`` (knox says nothing about expiry).

Examples::

    sim = TacticalRMMSimulator()                       # seeded: four agents, four scripts
    mspflow.testing.mount(sim.base_url, sim.transport())
    sim.set_online(SERVER_ID, False)                   # not connected: 500 pages
    sim.set_silent(SERVER_ID)                          # connected, does not answer: "timeout"
    sim.nats_down = True
    assert sim.reboots[SERVER_ID] == 1
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mspflow.testing.sim import Faults, Simulator

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # seeded times are fixed, so runs compare
FRONTDESK_ID = "qXvWbNmCzLkJhGfDsApOiUyTrEwQ1234frontdesk"
FILESERVER_ID = "ZaYxWvUtSrQpOnMlKjIhGfEdCbA9876fileserver"
WEB_ID = "PlOkMiJnUhBgYvTfCrDxEsZwAq5555webserver01"
LAPTOP_ID = "MnBvCxZlKjHgFdSaPoIuYtReWq0000laptop0002"
REQUIRED_RUNSCRIPT = ("script", "output", "args", "run_as_user", "env_vars", "timeout")
REQUIRED_CMD = ("shell", "cmd", "timeout", "run_as_user")
CHECKCREDS_TTL_S = 180


class TacticalRMMSimulator(Simulator):
    """In-memory Tactical RMM. State is public so tests can arrange and assert on it.

    :ivar agents: agent_id → model fields (``client_name``, ``site_name``, ``online``, …).
    :ivar scripts: script pk → script fields; ``outputs`` script pk → ``(stdout, stderr)``.
    :ivar api_keys: key → username; ``users`` username → ``{"password", "totp_key"}``; ``tokens`` knox
        token → ``(username, expires_at)``.
    :ivar script_runs, commands, reboot_log: what was asked; ``reboots`` agent_id → reboots now.
    :ivar nats_down: the server's message bus is down.
    """

    vendor = "Tactical RMM"
    base_url = "https://api.rmm.example.com"
    api_key = "TACTICALSIMKEY0123456789ABCDEFGH"
    username = "mspflow"
    password = "correct horse battery staple"
    totp_username = "alice"
    totp_code = "123456"

    def __init__(self, *, faults: Faults | None = None, seed: bool = True) -> None:
        super().__init__(faults=faults)
        self.agents: dict[str, dict[str, Any]] = {}
        self.scripts: dict[int, dict[str, Any]] = {}
        self.outputs: dict[int, tuple[str, str]] = {}
        self.command_outputs: dict[str, str] = {}
        self.api_keys: dict[str, str] = {self.api_key: self.username}
        self.users: dict[str, dict[str, Any]] = {
            self.username: {"password": self.password, "totp_key": ""},
            self.totp_username: {"password": self.password, "totp_key": "JBSWY3DPEHPK3PXP"},
        }
        self.tokens: dict[str, tuple[str, float]] = {}
        self.logins: list[str] = []
        self.nats_down = False
        self.reboots: Counter[str] = Counter()
        self.reboot_log: list[dict[str, Any]] = []
        self.script_runs: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []
        self.alerts: dict[int, dict[str, Any]] = {}
        self.alert_resolves: list[int] = []
        self.add_routes([
            ("POST", "/v2/checkcreds/", self.checkcreds),
            ("POST", "/v2/login/", self.login),
            ("GET", "/agents/", self.list_agents),
            ("GET", "/agents/{agent_id}/", self.get_agent),
            ("POST", "/agents/{agent_id}/runscript/", self.runscript),
            ("POST", "/agents/{agent_id}/cmd/", self.cmd),
            ("POST", "/agents/{agent_id}/reboot/", self.reboot),
            ("PATCH", "/agents/{agent_id}/reboot/", self.schedule_reboot),
            ("GET", "/scripts/", self.list_scripts),
            ("PATCH", "/alerts/", self.list_alerts),
            ("PUT", "/alerts/{pk}/", self.update_alert),
        ])
        if seed:
            self.seed()

    # -- state helpers for tests and the demo ---------------------------------------------------------

    def seed(self) -> None:
        """Four agents in two clients (one offline), four scripts with canned outputs."""
        self.add_agent(FRONTDESK_ID, hostname="FRONTDESK-01", client_name="Contoso", site_name="HQ",
                       monitoring_type="workstation", description="Front desk PC")
        self.add_agent(FILESERVER_ID, hostname="FS-01", client_name="Contoso", site_name="HQ",
                       monitoring_type="server", description="File server",
                       operating_system="Windows Server 2022 Standard, 64 bit v21H2 (build 20348)")
        self.add_agent(WEB_ID, hostname="web-01", client_name="Fabrikam", site_name="DC1", plat="linux",
                       monitoring_type="server", description="Web server", operating_system="Ubuntu 24.04 LTS",
                       effective_default_shell="/bin/bash")
        self.add_agent(LAPTOP_ID, hostname="WH-LT-02", client_name="Fabrikam", site_name="Warehouse",
                       monitoring_type="workstation", description="Warehouse laptop", online=False)
        self.add_script(1, "Clear temp files", "powershell", category="Maintenance",
                        output=("Removed 42 files (118 MB)\n", ""))
        self.add_script(2, "Disk usage", "shell", category="Diagnostics", supported_platforms=["linux", "darwin"],
                        output=("/dev/sda1  40G  31G  9G  78% /\n", ""))
        self.add_script(3, "Windows Update status", "powershell", category="Community", script_type="builtin",
                        output=("3 updates pending\n", "WARNING: reboot required\n"))
        self.add_script(4, "Old hidden script", "cmd", category="Maintenance", hidden=True, output=("hidden\n", ""))

    def add_agent(self, agent_id: str, *, online: bool = True, **fields: Any) -> dict[str, Any]:
        """An agent with realistic defaults; ``fields`` override Tactical's field names."""
        pk = len(self.agents) + 1
        hostname = fields.get("hostname", f"AGENT-{pk}")
        agent = {
            "id": pk, "agent_id": agent_id, "hostname": hostname, "client_name": "Contoso", "site_name": "HQ",
            "client_id": 1, "site_id": 1, "description": "", "plat": "windows", "goarch": "amd64",
            "monitoring_type": "workstation", "version": "2.9.1", "public_ip": "203.0.113.10",
            "operating_system": "Windows 11 Pro, 64 bit v23H2 (build 22631)", "logged_in_username": "jdoe",
            "last_logged_in_user": "jdoe", "total_ram": 16, "time_zone": "Europe/London", "needs_reboot": False,
            "maintenance_mode": False, "boot_time": (EPOCH - timedelta(days=3)).timestamp(),
            "last_seen": EPOCH.isoformat(), "local_ips": "10.0.0.10", "make_model": "Dell Inc. OptiPlex 7090",
            "cpu_model": ["Intel(R) Core(TM) i5-10500"], "graphics": "Intel(R) UHD Graphics 630",
            "physical_disks": ["Samsung SSD 512GB"], "serial_number": f"SN{pk:06d}", "custom_fields": [],
            "effective_default_shell": "powershell", "online": online, "answers": True,
        } | fields
        self.agents[agent_id] = agent
        return agent

    def add_script(self, pk: int, name: str, shell: str, *, output: tuple[str, str] = ("", ""),
                   **fields: Any) -> dict[str, Any]:
        script = {
            "id": pk, "name": name, "description": f"{name} (simulated)", "category": None,
            "script_type": "userdefined", "shell": shell, "args": [], "env_vars": [], "default_timeout": 90,
            "favorite": False, "syntax": None, "filename": None, "hidden": False,
            "supported_platforms": ["windows"], "run_as_user": False,
        } | fields
        self.scripts[pk] = script
        self.outputs[pk] = output
        return script

    def set_online(self, agent_id: str, online: bool) -> None:
        """Connected to the server's message bus (and answering), or not connected at all."""
        self.agents[agent_id]["online"] = online
        self.agents[agent_id]["answers"] = True

    def set_silent(self, agent_id: str) -> None:
        """Connected (shown online), but it does not answer the server's requests in time."""
        self.agents[agent_id]["online"] = True
        self.agents[agent_id]["answers"] = False

    def _reach(self, agent: dict[str, Any]) -> str:
        """What the server's NATS request to the agent yields: "ok", "timeout", "natsdown" or "no responders"."""
        if self.nats_down:
            return "natsdown"
        if not agent["online"]:
            return "no responders"
        return "ok" if agent["answers"] else "timeout"

    def expire_tokens(self) -> None:
        """Every knox token has expired: the next call with one gets 401."""
        self.tokens = {t: (user, 0.0) for t, (user, _) in self.tokens.items()}

    def demo_secrets(self) -> dict[str, str]:
        return {"tacticalrmm_api_key": self.api_key}

    def demo_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [("tacticalrmm.agents.find", {"live": True, "limit": 3}),
                ("tacticalrmm.agents.run_script", {"agent_id": FRONTDESK_ID, "script_id": 1})]

    # -- vendor shapes ----------------------------------------------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> httpx.Response:
        """DRF's ``{"detail": …}`` for auth failures and 404s; everything else is notify_error's bare string."""
        if status in (401, 403, 404, 405, 429, 503):
            return self.json({"detail": message, **extra}, status)
        return self.json(message, status)

    @staticmethod
    def html(status: int, text: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """Django's own pages (router 404, uncaught exception 500, APPEND_SLASH redirects)."""
        return httpx.Response(status, text=text, headers={"Content-Type": "text/html", **(headers or {})})

    def server_error(self) -> httpx.Response:
        """Django's page for an uncaught exception (DEBUG off)."""
        return self.html(500, '<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n'
                              "</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n")

    # -- auth ---------------------------------------------------------------------------------------------

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path in ("/v2/checkcreds/", "/v2/login/"):
            return None
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "token":  # knox is tried first
            held = self.tokens.get(value.strip())
            if held is None:
                return self.error(401, "Invalid token.")
            if held[1] < time.time():
                return self.error(401, "Invalid token.")  # knox deletes an expired token: "Invalid token."
            return None
        key = request.headers.get("X-API-KEY")
        if key is not None:
            return None if key in self.api_keys else self.error(401, "Invalid token.")
        return self.error(401, "Authentication credentials were not provided.")

    def _issue(self, username: str, ttl_s: float) -> dict[str, Any]:
        token = secrets.token_hex(32)
        expires = time.time() + ttl_s
        self.tokens[token] = (username, expires)
        self.logins.append(username)
        return {"expiry": datetime.fromtimestamp(expires, UTC).isoformat(), "token": token}

    def _credentials(self, request: httpx.Request) -> tuple[dict[str, Any], dict[str, Any] | None]:
        body = self.body(request)
        body = body if isinstance(body, dict) else {}
        user = self.users.get(str(body.get("username")))
        if user is None or user["password"] != body.get("password"):
            return body, None
        return body, user

    def checkcreds(self, request: httpx.Request) -> httpx.Response:
        body, user = self._credentials(request)
        if "username" not in body:
            return self.server_error()  # the failed-login audit reads request.data["username"]
        if user is None:
            return self.error(400, "Bad credentials")
        if not user["totp_key"]:
            return self.json(self._issue(str(body["username"]), CHECKCREDS_TTL_S) | {"totp": False})
        return self.json({"totp": True})

    def login(self, request: httpx.Request) -> httpx.Response:
        body, user = self._credentials(request)
        if user is None:
            return self.json({"non_field_errors": ["Unable to log in with provided credentials."]}, 400)
        if "twofactor" not in body:
            return self.server_error()
        if not user["totp_key"] or body["twofactor"] != self.totp_code:
            return self.error(400, "Bad credentials")
        issued = self._issue(str(body["username"]), 10 * 3600)
        return self.json(issued | {"username": body["username"], "name": None})

    # -- agents -------------------------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> tuple[dict[str, Any] | None, httpx.Response | None]:
        """The router's ``[^/]{20}[^/]+`` first (HTML 404), then get_object_or_404 (DRF 404)."""
        if len(agent_id) < 21 or "/" in agent_id:
            return None, self.html(404, "<h1>Not Found</h1><p>The requested resource was not found on this "
                                        "server.</p>")
        agent = self.agents.get(agent_id)
        if agent is None:
            return None, self.error(404, "No Agent matches the given query.")
        return agent, None

    @staticmethod
    def _status(agent: dict[str, Any]) -> str:
        return "online" if agent["online"] else "offline"

    def _table(self, a: dict[str, Any]) -> dict[str, Any]:
        keys = ("agent_id", "hostname", "site_name", "client_name", "description", "monitoring_type", "plat",
                "goarch", "version", "operating_system", "public_ip", "cpu_model", "graphics", "local_ips",
                "make_model", "physical_disks", "serial_number", "custom_fields", "needs_reboot", "boot_time",
                "last_seen", "maintenance_mode")
        return {k: a[k] for k in keys} | {
            "status": self._status(a), "logged_username": a["logged_in_username"], "italic": False,
            "alert_template": None, "policy": None, "block_policy_inheritance": False, "pending_actions_count": 0,
            "has_patches_pending": False, "overdue_text_alert": False, "overdue_email_alert": False,
            "overdue_dashboard_alert": False,
            "checks": {"total": 0, "passing": 0, "failing": 0, "warning": 0, "info": 0, "has_failing_checks": False}}

    def _detail(self, a: dict[str, Any]) -> dict[str, Any]:
        hidden = {"id", "online", "client_name", "client_id", "site_id"}
        return {k: v for k, v in a.items() if k not in hidden} | {
            "site": a["site_id"], "client": a["client_name"], "status": self._status(a), "timezone": a["time_zone"],
            "patches_last_installed": None, "applied_policies": {}, "effective_patch_policy": {},
            "alert_template": None}

    def list_agents(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        agents = list(self.agents.values())
        mt = q.get("monitoring_type")
        if mt is not None:
            if mt not in ("server", "workstation"):
                return self.error(400, "monitoring type does not exist")
            agents = [a for a in agents if a["monitoring_type"] == mt]
        for param, key in (("client", "client_id"), ("site", "site_id")):
            if q.get(param) is not None:
                agents = [a for a in agents if str(a[key]) == q[param]]
        if q.get("detail", "true").lower() == "false":
            return self.json([{"id": a["id"], "hostname": a["hostname"], "agent_id": a["agent_id"],
                               "client": a["client_name"], "site": a["site_name"]} for a in agents])
        return self.json([self._table(a) for a in agents])

    def get_agent(self, request: httpx.Request, agent_id: str) -> httpx.Response:
        agent, missing = self._agent(agent_id)
        return missing if agent is None else self.json(self._detail(agent))

    # -- alerts and the alert-template webhook -------------------------------------------------------

    def add_alert(self, agent_id: str, *, alert_type: str = "check", severity: str = "error", message: str = "",
                  check_id: int | None = None, check_name: str | None = None, task_id: int | None = None,
                  task_name: str | None = None) -> dict[str, Any]:
        """An unresolved alert on the agent (``alert_type`` check | task | availability | custom)."""
        agent = self.agents[agent_id]
        pk = max(self.alerts, default=400) + 1
        alert = {"id": pk, "agent": agent["id"], "agent_id": agent_id, "hostname": agent["hostname"],
                 "client": agent["client_name"], "site": agent["site_name"], "alert_type": alert_type,
                 "severity": severity, "message": message, "alert_time": "2026-11-29T09:42:17.503914Z",
                 "assigned_check": check_id, "assigned_task": task_id, "snoozed": False, "resolved": False,
                 "resolved_on": None, "hidden": False, "_check_name": check_name, "_task_name": task_name}
        self.alerts[pk] = alert
        return alert

    def webhook(self, alert: dict[str, Any], event: str = "trigger", *, broken: bool = False) -> bytes:
        """The body Tactical posts for ``alert`` from the template in the plugin's README: falsy values are
        the string ``"None"``, times ``2026-11-29 09:42:17.503914+00:00``. ``broken``: the message broke the
        template's JSON, and the whole text arrives as one JSON string."""
        def v(value: Any) -> str:
            return "None" if value in (None, "", False) else str(value)

        fields = [("event", event), ("alert_id", v(alert["id"])), ("alert_type", v(alert["alert_type"])),
                  ("severity", v(alert["severity"])), ("message", v(alert["message"])),
                  ("alert_time", "2026-11-29 09:42:17.503914+00:00"), ("agent_id", v(alert["agent_id"])),
                  ("hostname", v(alert["hostname"])), ("client", v(alert["client"])), ("site", v(alert["site"])),
                  ("check_id", v(alert["assigned_check"])), ("check_name", v(alert["_check_name"])),
                  ("task_id", v(alert["assigned_task"])), ("task_name", v(alert["_task_name"]))]
        if broken:  # the operator's template pasted the message inside quotes, unescaped
            text = "{" + ", ".join(f'"{k}": "{val}"' for k, val in fields) + "}"
            return json.dumps(text).encode()
        return json.dumps(dict(fields)).encode()

    def public_alert(self, alert: dict[str, Any]) -> dict[str, Any]:
        return {k: val for k, val in alert.items() if not k.startswith("_")}

    def list_alerts(self, request: httpx.Request) -> httpx.Response:
        body = self.body(request)
        if not isinstance(body, dict):
            return self.server_error()
        alerts = [a for a in self.alerts.values() if not a["hidden"]]
        if "top" in body:
            live = [self.public_alert(a) for a in alerts if not a["resolved"] and not a["snoozed"]]
            return self.json({"alerts_count": len(live), "alerts": live[: int(body["top"])]})
        if body.get("resolvedFilter") is False:
            alerts = [a for a in alerts if not a["resolved"]]
        if body.get("snoozedFilter") is False:
            alerts = [a for a in alerts if not a["snoozed"]]
        return self.json([self.public_alert(a) for a in alerts])

    def update_alert(self, request: httpx.Request, pk: str) -> httpx.Response:
        alert = self.alerts.get(int(pk)) if pk.isdigit() else None
        if alert is None:
            return self.error(404, "Not found.")
        body = self.body(request)
        if not isinstance(body, dict) or body.get("type") != "resolve":
            return self.error(400, "There was an error in the request data")
        alert["resolved"], alert["resolved_on"], alert["snoozed"] = True, "2026-11-29T10:00:00Z", False
        self.alert_resolves.append(int(pk))
        return self.json("ok")

    def runscript(self, request: httpx.Request, agent_id: str) -> httpx.Response:
        agent, missing = self._agent(agent_id)
        if agent is None:
            return missing  # type: ignore[return-value]
        body = self.body(request)
        if not isinstance(body, dict) or any(k not in body for k in REQUIRED_RUNSCRIPT):
            return self.server_error()  # request.data["…"] raises KeyError
        script = self.scripts.get(body["script"]) if isinstance(body["script"], int) else None
        if script is None:
            return self.error(404, "No Script matches the given query.")
        if body.get("run_on_server"):
            return self.error(400, "This feature is disabled.")
        self.script_runs.append({"agent_id": agent_id, **body})
        if body["output"] not in ("wait", "collector", "note"):
            return self.json(f"{script['name']} will now be run on {agent['hostname']}")
        reach = self._reach(agent)
        if reach == "no responders":
            return self.server_error()
        if reach != "ok":
            return self.json(reach)
        stdout, stderr = self.outputs.get(script["id"], ("", ""))
        return self.json(stdout + stderr)

    def cmd(self, request: httpx.Request, agent_id: str) -> httpx.Response:
        agent, missing = self._agent(agent_id)
        if agent is None:
            return missing  # type: ignore[return-value]
        body = self.body(request)
        if not isinstance(body, dict) or any(k not in body for k in REQUIRED_CMD):
            return self.server_error()
        reach = self._reach(agent)
        if reach == "no responders":
            return self.server_error()
        if reach == "natsdown":
            return self.json("natsdown")  # not checked by the view
        if reach == "timeout":
            return self.error(400, "Unable to contact the agent")
        self.commands.append({"agent_id": agent_id, **body})
        default = f"{agent['hostname']}\n" if "hostname" in str(body["cmd"]) else f"ran: {body['cmd']}\n"
        return self.json(self.command_outputs.get(str(body["cmd"]), default))

    def reboot(self, request: httpx.Request, agent_id: str) -> httpx.Response:
        agent, missing = self._agent(agent_id)
        if agent is None:
            return missing  # type: ignore[return-value]
        reach = self._reach(agent)
        if reach == "no responders":
            return self.server_error()
        if reach != "ok":
            return self.error(400, "Unable to contact the agent")
        self.reboots[agent_id] += 1
        self.reboot_log.append({"agent_id": agent_id, "scheduled": None})
        return self.json("ok")

    def schedule_reboot(self, request: httpx.Request, agent_id: str) -> httpx.Response:
        agent, missing = self._agent(agent_id)
        if agent is None:
            return missing  # type: ignore[return-value]
        if agent["plat"] != "windows":
            return self.error(400, f"Not currently implemented for {agent['plat']}")
        body = self.body(request)
        try:
            when = datetime.strptime(body["datetime"], "%Y-%m-%dT%H:%M")  # type: ignore[index]
        except Exception:
            return self.error(400, "Invalid date")
        if when < datetime.now():
            return self.error(400, "Date cannot be set in the past")
        reach = self._reach(agent)
        if reach == "no responders":
            return self.server_error()
        if reach != "ok":
            return self.error(400, reach)  # the raw NATS result, passed on
        task = "TacticalRMM_SchedReboot_" + "".join(secrets.choice(string.ascii_letters) for _ in range(10))
        self.reboot_log.append({"agent_id": agent_id, "scheduled": body["datetime"], "task_name": task})
        return self.json({"time": when.strftime("%B %d, %Y at %I:%M %p"), "agent": agent["hostname"],
                          "task_name": task})

    def list_scripts(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        items = list(self.scripts.values())
        if q.get("showCommunityScripts", "true").lower() == "false":
            items = [s for s in items if s["script_type"] == "userdefined"]
        if q.get("showHiddenScripts", "false").lower() != "true":
            items = [s for s in items if not s["hidden"]]
        return self.json(sorted(items, key=lambda s: (s["category"] or "", s["id"])))

    # -- Django's APPEND_SLASH --------------------------------------------------------------------------

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().split("?", 1)[0]
        if not path.endswith("/") and any(r.pattern.match(path + "/") for r in self._routes):
            return self.html(301, "", {"Location": path + "/"})
        return super()._dispatch(request)
