"""Huntress sandbox: the v1 paths mspflow-huntress uses, answered from in-memory state.

It behaves as the fact sheet says Huntress does (``shared/vendor-apis.md`` §4): routes under ``/v1``,
HTTP Basic with an API key and secret, single resources wrapped (``{"incident_report": {...}}``), lists
as ``{"<plural>": [...], "pagination": {...}}`` paged by ``page_token`` / ``limit`` (default 10, at most
500; ``next_page_token`` and ``next_page_url`` only while another page exists), sorted by ``id``
descending, and the resolution rules: ``POST /v1/incident_reports/{id}/resolution`` answers 201 with the
report, 403 for the account's default key (read-only), 409 while a remediation is not approved, 422 when
the status is not ``sent``.

**The rate limit** is an exact sliding window per account: a request that would be the ``limit + 1``-th
within ``window_s`` seconds gets 429 (``Retry-After`` only with ``send_retry_after``: whether Huntress
sends it is unknown). Requests the simulator refuses (401, 429) do not take a slot. ``other_tool(n)`` or
``POST /_sim/other_tool?count=n`` spends ``n`` slots as another tool on the same account would;
``GET /_sim/limiter`` reports the window, the requests accepted and the 429s answered. The window
defaults to Huntress's 60 per 60 s; ``MSPFLOW_HUNTRESS_SIM_LIMIT=10/2`` (or the constructor) shortens
it for ``mspflow sim serve huntress``.

Examples::

    sim = HuntressSimulator(rate_limit=10, window_s=2.0)    # seeded: an account, 3 orgs, 4 agents, reports
    mspflow.testing.mount(sim.base_url, sim.transport())
    sim.other_tool(10)                                      # the account's window is now full
    assert sim.resolutions[SENT_ID] == 1 and sim.refused == 1
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mspflow.testing.sim import Faults, Simulator

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # seeded times are fixed, so runs compare
ACCOUNT_ID = 7310
CONTOSO, FABRIKAM, NORTHWIND = 101, 102, 103
FRONTDESK, FILESERVER, MACBOOK, WEB = 5551, 5552, 5553, 5554
SENT_ID = 90001  # sent, every remediation approved: resolvable
PENDING_ID = 90002  # sent, one remediation still pending: 409
CLOSED_ID = 90003  # closed already: 422
STATUSES = ("sent", "closed", "dismissed", "auto_remediating", "deleting", "partner_dismissed")
MAX_PAGE = 500
DEFAULT_PAGE = 10
LIMIT_ENV = "MSPFLOW_HUNTRESS_SIM_LIMIT"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when is not None else None


def _env_limit() -> tuple[int, float]:
    raw = os.environ.get(LIMIT_ENV, "")
    if not raw:
        return 60, 60.0
    count, _, window = raw.partition("/")
    return int(count), float(window)


class HuntressSimulator(Simulator):
    """In-memory Huntress. State is public so tests can arrange and assert on it.

    :ivar account: the account; ``organizations``, ``agents``, ``reports`` by id.
    :ivar keys: API key → (secret, can resolve); the account's default key is read-only.
    :ivar resolutions: report id → resolutions carried out.
    :ivar resolved_status: the status a report shows after resolution (the vendor spec is inconsistent).
    :ivar accepted_log: ``(monotonic time, "api" | "other_tool")`` of every slot taken; ``refused``: 429s
        answered.
    """

    vendor = "Huntress"
    base_url = "https://api.huntress.io/v1"
    api_key = "hk_user_0123456789abcdef"  # a user-based key: may resolve
    api_secret = "hs_user_SIMULATED_SECRET_fedcba9876543210"
    readonly_key = "hk_account_0123456789abcdef"  # the account's default key: read-only
    readonly_secret = "hs_account_SIMULATED_SECRET_0123456789"

    def __init__(self, *, faults: Faults | None = None, seed: bool = True, rate_limit: int | None = None,
                 window_s: float | None = None, send_retry_after: bool = False) -> None:
        super().__init__(faults=faults)
        env_limit, env_window = _env_limit()
        self.rate_limit = rate_limit if rate_limit is not None else env_limit
        self.window_s = window_s if window_s is not None else env_window
        self.send_retry_after = send_retry_after
        self.keys: dict[str, tuple[str, bool]] = {self.api_key: (self.api_secret, True),
                                                  self.readonly_key: (self.readonly_secret, False)}
        self.account: dict[str, Any] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.agents: dict[int, dict[str, Any]] = {}
        self.reports: dict[int, dict[str, Any]] = {}
        self.approvals: dict[int, list[str]] = {}  # report id -> statuses of its remediations
        self.resolutions: Counter[int] = Counter()
        self.resolved_status = "closed"
        self.accepted: deque[float] = deque()  # the window: receipt times of requests let through
        self.accepted_log: list[tuple[float, str]] = []  # (time, "api" or "other_tool") of every slot taken
        self.other_tool_requests = 0
        self.refused = 0
        self._window_lock = threading.Lock()
        self.add_routes([
            ("GET", "/v1/account", self.get_account),
            ("GET", "/v1/organizations", self.list_organizations),
            ("GET", "/v1/organizations/{org_id}", self.get_organization),
            ("GET", "/v1/agents", self.list_agents),
            ("GET", "/v1/agents/{agent_id}", self.get_agent),
            ("GET", "/v1/incident_reports", self.list_reports),
            ("GET", "/v1/incident_reports/{report_id}", self.get_report),
            ("POST", "/v1/incident_reports/{report_id}/resolution", self.resolve),
        ])
        if seed:
            self.seed()

    # -- state helpers for tests and the demo ---------------------------------------------------------

    def seed(self) -> None:
        """One account, three organizations, four agents, a report in every status (plus a pending one)."""
        self.account = {"id": ACCOUNT_ID, "name": "Contoso MSP", "subdomain": "contosomsp", "status": "enabled",
                        "support_type": "partner", "neighborhood_watch": True,
                        "billing_address": None, "shipping_address": None}
        for org_id, name, key in ((CONTOSO, "Contoso", "contoso"), (FABRIKAM, "Fabrikam", "fabrikam"),
                                  (NORTHWIND, "Northwind Traders", "northwind")):
            self.add_organization(org_id, name, key)
        self.add_agent(FRONTDESK, CONTOSO, hostname="FRONTDESK-01")
        self.add_agent(FILESERVER, CONTOSO, hostname="FS-01", os="Windows Server 2022 Standard")
        self.add_agent(MACBOOK, FABRIKAM, hostname="design-mbp", platform="darwin", os="macOS 15.1",
                       defender_status=None)
        self.add_agent(WEB, NORTHWIND, hostname="web-01", platform="linux", os="Ubuntu 24.04 LTS",
                       defender_status=None)
        self.add_report(SENT_ID, FRONTDESK, subject="Foothold on FRONTDESK-01", severity="high",
                        indicator_types=["footholds"], remediations=["approved", "approved"])
        self.add_report(PENDING_ID, FILESERVER, subject="Ransomware canary tripped on FS-01", severity="critical",
                        indicator_types=["ransomware_canaries"], remediations=["approved", "pending"])
        self.add_report(CLOSED_ID, FRONTDESK, status="closed", subject="Old foothold", severity="low")
        for offset, status in enumerate(STATUSES[2:], start=4):
            self.add_report(90000 + offset, MACBOOK if offset % 2 else WEB, status=status,
                            subject=f"Report that is {status}", severity="low",
                            indicator_types=["process_detections"])

    def add_organization(self, org_id: int, name: str, key: str, **fields: Any) -> dict[str, Any]:
        org = {"id": org_id, "account_id": ACCOUNT_ID, "name": name, "key": key,
               "created_at": _iso(EPOCH - timedelta(days=300)), "updated_at": _iso(EPOCH),
               "agents_count": 0, "incident_reports_count": 0, "logs_sources_count": 0,
               "billable_identity_count": 0, "sat_learner_count": 0, "report_recipients": [],
               "identity_provider_tenant_id": None, "microsoft_365_tenant_id": None,
               "microsoft_365_users_count": 0, "notify_emails": []} | fields
        self.organizations[org_id] = org
        return org

    def add_agent(self, agent_id: int, org_id: int, **fields: Any) -> dict[str, Any]:
        agent = {"id": agent_id, "account_id": ACCOUNT_ID, "organization_id": org_id, "hostname": f"HOST-{agent_id}",
                 "domain_name": "corp.example", "platform": "windows", "arch": "x86_64",
                 "serial_number": f"SN-{agent_id}", "tags": [], "os": "Windows 11 Pro", "os_build_version": "22631",
                 "os_major": 10, "os_minor": 0, "os_patch": 22631, "win_build_number": 22631,
                 "service_pack_major": 0, "service_pack_minor": 0, "external_ip": "203.0.113.20",
                 "ipv4_address": "10.0.0.20", "mac_addresses": ["00:11:22:33:44:55"], "version": "0.14.12",
                 "version_number": 1412, "edr_version": "2.8.1", "defender_status": "Healthy",
                 "defender_substatus": "Up to date", "defender_policy_status": "Compliant",
                 "firewall_status": "Enabled", "tamper_protection_configured": True, "tamper_protection_actual": True,
                 "last_callback_at": _iso(EPOCH), "last_survey_at": _iso(EPOCH),
                 "created_at": _iso(EPOCH - timedelta(days=90)), "updated_at": _iso(EPOCH)} | fields
        self.agents[agent_id] = agent
        self.organizations[org_id]["agents_count"] += 1
        return agent

    def add_report(self, report_id: int, agent_id: int, *, status: str = "sent",
                   remediations: list[str] | None = None, **fields: Any) -> dict[str, Any]:
        agent = self.agents[agent_id]
        sent = EPOCH + timedelta(hours=report_id % 1000)
        report = {"id": report_id, "account_id": ACCOUNT_ID, "organization_id": agent["organization_id"],
                  "agent_id": agent_id, "status": status, "severity": "high", "platform": agent["platform"],
                  "subject": f"Incident {report_id}", "summary": "Huntress SOC analysts found a persistent threat.",
                  "body": "<p>Remediation steps were prepared for approval.</p>", "indicator_types": ["footholds"],
                  "indicator_counts": {}, "remediations": {}, "sent_at": _iso(sent),
                  "closed_at": _iso(sent + timedelta(days=1)) if status == "closed" else None,
                  "status_updated_at": _iso(sent), "updated_at": _iso(sent)} | fields
        report["indicator_counts"] = fields.get("indicator_counts") or {t: 1 for t in report["indicator_types"]}
        self.approvals[report_id] = list(remediations or [])
        report["remediations"] = dict(Counter(self.approvals[report_id]))
        self.reports[report_id] = report
        self.organizations[agent["organization_id"]]["incident_reports_count"] += 1
        return report

    def demo_secrets(self) -> dict[str, str]:
        return {"huntress_api_key": self.api_key, "huntress_api_secret": self.api_secret}

    def demo_calls(self) -> list[tuple[str, dict[str, Any]]]:
        """The enrichment story: the incident, its agent, then resolve (a ticket note goes between, once
        ``tickets.*`` actions exist)."""
        return [("huntress.incidents.get", {"incident_report_id": SENT_ID}),
                ("huntress.agents.get", {"agent_id": FRONTDESK}),
                ("huntress.incidents.resolve", {"incident_report_id": SENT_ID})]

    # -- the account's sliding window ---------------------------------------------------------------------

    def _admit(self, now: float, who: str = "api") -> float | None:
        """None when the request fits the window (and takes a slot), else seconds until a slot frees."""
        with self._window_lock:
            while self.accepted and self.accepted[0] <= now - self.window_s:
                self.accepted.popleft()
            if len(self.accepted) >= self.rate_limit:
                return self.accepted[0] + self.window_s - now
            self.accepted.append(now)
            self.accepted_log.append((now, who))
            return None

    def other_tool(self, count: int = 1) -> int:
        """``count`` requests by another tool on the same account (refused ones take no slot); how many fit."""
        fitted = sum(1 for _ in range(count) if self._admit(time.monotonic(), "other_tool") is None)
        self.other_tool_requests += fitted
        return fitted

    def api_times(self) -> list[float]:
        """Receipt times of the API requests let through (not the other tool's)."""
        with self._window_lock:
            return [t for t, who in self.accepted_log if who == "api"]

    def limiter_state(self) -> dict[str, Any]:
        with self._window_lock:
            times = [t for t, _ in self.accepted_log]
        return {"limit": self.rate_limit, "window_s": self.window_s, "accepted": len(times) - self.other_tool_requests,
                "other_tool": self.other_tool_requests, "refused": self.refused, "times": times}

    # -- vendor shapes ----------------------------------------------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> httpx.Response:
        """Huntress's error body is not documented; a Grape-style ``{"error": …}`` is assumed."""
        return self.json({"error": message, **extra}, status)

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        """Basic auth, then the account's window (refused requests take no slot)."""
        import base64

        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        try:
            key, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            key, secret = "", ""
        if scheme.lower() != "basic" or key not in self.keys or self.keys[key][0] != secret:
            return self.error(401, "Not authenticated: invalid API key or secret")
        wait = self._admit(time.monotonic())
        if wait is not None:
            self.refused += 1
            headers = {"Retry-After": str(max(1, int(wait + 0.999)))} if self.send_retry_after else None
            return self.json({"error": "Rate limit exceeded"}, 429, headers=headers)
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/_sim/limiter":
            return self.json({k: v for k, v in self.limiter_state().items() if k != "times"})
        if request.url.path == "/_sim/other_tool" and request.method == "POST":
            count = int(request.url.params.get("count", "1"))
            return self.json({"fitted": self.other_tool(count)})
        return super().handle(request)

    def _can_resolve(self, request: httpx.Request) -> bool:
        import base64

        key = base64.b64decode(request.headers["Authorization"].partition(" ")[2]).decode().partition(":")[0]
        return self.keys[key][1]

    def _page(self, request: httpx.Request, plural: str, items: list[dict[str, Any]]) -> httpx.Response:
        q = request.url.params
        try:
            limit = int(q.get("limit", DEFAULT_PAGE))
            start = int(q.get("page_token") or 0)
        except ValueError:
            return self.error(400, "limit and page_token must be valid")
        if not 1 <= limit <= MAX_PAGE:
            return self.error(400, f"limit does not have a valid value (1..{MAX_PAGE})")
        field, direction = q.get("sort_field", "id"), q.get("sort_direction", "desc")
        items = sorted(items, key=lambda i: (i.get(field) is None, i.get(field)), reverse=direction == "desc")
        page = items[start:start + limit]
        pagination: dict[str, str] = {}
        if start + limit < len(items):
            token = str(start + limit)
            pagination = {"next_page_token": token,
                          "next_page_url": str(request.url.copy_merge_params({"page_token": token}))}
        return self.json({plural: page, "pagination": pagination})

    @staticmethod
    def _int(value: str) -> int | None:
        return int(value) if value.isdigit() else None

    def _missing(self, what: str) -> httpx.Response:
        return self.error(404, f"{what} not found")

    # -- routes -------------------------------------------------------------------------------------------

    def get_account(self, request: httpx.Request) -> httpx.Response:
        return self.json({"account": self.account})

    def list_organizations(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        items = [o for o in self.organizations.values()
                 if q.get("name") in (None, o["name"]) and q.get("key") in (None, o["key"])]
        return self._page(request, "organizations", items)

    def get_organization(self, request: httpx.Request, org_id: str) -> httpx.Response:
        org = self.organizations.get(self._int(org_id) or -1)
        return self.json({"organization": org}) if org else self._missing("Organization")

    def list_agents(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        items = [a for a in self.agents.values()
                 if all(q.get(p) in (None, str(a[p])) for p in ("organization_id", "platform", "hostname"))]
        return self._page(request, "agents", items)

    def get_agent(self, request: httpx.Request, agent_id: str) -> httpx.Response:
        agent = self.agents.get(self._int(agent_id) or -1)
        return self.json({"agent": agent}) if agent else self._missing("Agent")

    def _summary(self, report: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in report.items() if k != "body"}  # the list leaves the long body out [I]

    def list_reports(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        for name, allowed in (("status", STATUSES), ("severity", ("low", "high", "critical")),
                              ("platform", ("windows", "darwin", "microsoft_365", "google", "linux",
                                            "email_security", "other"))):
            if q.get(name) is not None and q[name] not in allowed:
                return self.error(400, f"{name} does not have a valid value")
        items = [r for r in self.reports.values()
                 if all(q.get(p) in (None, str(r[p])) for p in ("status", "severity", "platform", "organization_id",
                                                               "agent_id"))
                 and q.get("indicator_type") in (None, *r["indicator_types"])]
        return self._page(request, "incident_reports", [self._summary(r) for r in items])

    def get_report(self, request: httpx.Request, report_id: str) -> httpx.Response:
        report = self.reports.get(self._int(report_id) or -1)
        return self.json({"incident_report": report}) if report else self._missing("Incident Report")

    def resolve(self, request: httpx.Request, report_id: str) -> httpx.Response:
        report = self.reports.get(self._int(report_id) or -1)
        if report is None:
            return self._missing("Incident Report")
        if not self._can_resolve(request):
            return self.error(403, "There was an issue with your API credential or permissions.")
        if report["status"] != "sent":
            return self.error(422, "Incident Report cannot be resolved unless report status is 'sent'.")
        if any(s != "approved" for s in self.approvals[report["id"]]):
            return self.error(409, "Incident Report cannot be resolved. Confirm that all remediations are "
                                   "approved and report status is 'sent'.")
        now = _iso(datetime.now(UTC))
        report.update(status=self.resolved_status, closed_at=now, status_updated_at=now, updated_at=now)
        self.resolutions[report["id"]] += 1
        return self.json({"incident_report": report}, 201)
