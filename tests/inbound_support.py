"""Shared set-up for the inbound tests: the test receivers, a real Uvicorn server on loopback, signing."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from sqlalchemy import text

from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.inbound.journal import ensure_webhook
from mspflow.inbound.verify import sign
from mspflow.plugins import Plugins
from mspflow.testing.live import LiveServer

SOURCE = Path(__file__).parent / "plugin_sources" / "mspflow_hooks.py"
TENANT = "acme-corp"
FINAL = ("PROCESSED", "IGNORED")


def hooks_plugin() -> ModuleType:
    if "mspflow_hooks" not in sys.modules:
        spec = importlib.util.spec_from_file_location("mspflow_hooks", SOURCE)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["mspflow_hooks"] = module
        spec.loader.exec_module(module)
    return sys.modules["mspflow_hooks"]


def make_app(db: Database, **kwargs: Any) -> App:
    """The App with the test receivers, on ``db`` with the handler's table (when the database is up)."""
    try:
        with db.engine.begin() as conn:
            conn.execute(text(hooks_plugin().SCHEMA))
    except Exception:  # a database that is down, on purpose
        pass
    plugins = Plugins(entry_points=[], extra=[("mspflow-hooks", hooks_plugin())], strict=True)
    return App(db=db, plugins=plugins, **kwargs)


class Hooks:
    """A tenant's webhook for one receiver, and a client that posts to it."""

    def __init__(self, app: App, server: LiveServer, provider: str = "acme", tenant: str = TENANT) -> None:
        self.app = app
        self.server = server
        with app.db.session(write=True) as session:
            hook = ensure_webhook(session, app.secrets, app.registry, tenant, provider)
        assert hook.secret is not None
        self.token, self.secret, self.provider = hook.token, hook.secret, provider
        self.client = httpx.Client(base_url=server.url, timeout=60)

    @property
    def path(self) -> str:
        return f"/hooks/{self.provider}/{self.token}"

    def post(self, body: bytes | dict[str, Any], *, signature: str | bytes | None = None,
             headers: dict[str, Any] | None = None,
             content_type: str | None = "application/json", path: str | None = None) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent: dict[str, Any] = dict(headers or {})
        if content_type is not None:
            sent["Content-Type"] = content_type
        if signature is None and self.provider == "acme":
            signature = sign(self.secret, raw, prefix="sha256=")
        if signature is not None:
            sent["X-Acme-Signature"] = signature
        return self.client.post(path or self.path, content=raw, headers=sent)


def delivery(event_id: str, *alert_ids: str, org: str = "org-1", **extra: Any) -> dict[str, Any]:
    alerts = [{"alert_id": a} for a in alert_ids] if alert_ids else [{"alert_id": f"{event_id}-a"}]
    return {"event_id": event_id, "org": org, "alerts": alerts, **extra}


def journal(db: Database) -> list[dict[str, Any]]:
    """The journal's rows, oldest first; ``payload`` and ``headers`` decoded by their JSON column type on every
    dialect (a payload that is a JSON string stays that string)."""
    from sqlalchemy import select

    from mspflow.db.models import InboundEvent as E

    columns = (E.event_id, E.delivery_id, E.status, E.attempt, E.event_count, E.error_code, E.error_message,
               E.error_retryable, E.payload, E.headers)
    with db.engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(E.received_at)).mappings().all()
    return [dict(r) for r in rows]


def wait_final(db: Database, event_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll the journal until the delivery is PROCESSED, IGNORED or FAILED for good."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in journal(db) if r["event_id"] == event_id]
        if rows and (rows[0]["status"] in FINAL or (rows[0]["status"] == "FAILED" and not rows[0]["error_retryable"])):
            return rows[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"event {event_id} not final: {rows}")
        time.sleep(0.02)


def handled(db: Database, alert_id: str | None = None) -> int:
    """Rows the acme handler wrote (0 before its table exists)."""
    with db.engine.connect() as conn:
        try:
            if alert_id is None:
                return int(conn.execute(text("SELECT count(*) FROM acme_alerts")).scalar_one())
            return int(conn.execute(text("SELECT count(*) FROM acme_alerts WHERE alert_id = :a"),
                                    {"a": alert_id}).scalar_one())
        except Exception:  # no table yet: nothing handled
            return 0
