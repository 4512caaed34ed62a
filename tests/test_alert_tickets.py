"""The alert pipeline's ticket calls: one alert reached by two paths at once opens one ticket."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from mspflow.alerts.tickets import Tickets
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.hookspecs import hookimpl
from mspflow.modules import action
from mspflow.plugins import Plugins


class _Create(BaseModel):
    title: str


class _Created(BaseModel):
    ticket_id: str


def test_the_same_ticket_call_running_elsewhere_is_waited_for_and_its_ticket_returned(db: Database) -> None:
    """The webhook path and the reconciliation poll derive the same key from one alert; the path that finds
    the call already running waits for it and gets its ticket, instead of failing (CONFLICT IN_PROGRESS)."""
    created: list[str] = []
    lock = threading.Lock()

    def create(params: _Create, ctx: Any) -> _Created:
        time.sleep(0.6)  # long enough for the other path to find the call running
        with lock:
            created.append(params.title)
            return _Created(ticket_id=f"t-{len(created)}")

    class Desk:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register(action("tickets.create", label="Create ticket", handler=create, side_effectful=True))

    app = App(db=db, plugins=Plugins(entry_points=[], extra=[("desk", Desk())], strict=True))
    try:
        tickets = Tickets(app, "acme")
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(tickets.create, {"title": "Disk full"}, key="alert:acme:x:create")
            time.sleep(0.2)
            second = pool.submit(tickets.create, {"title": "Disk full"}, key="alert:acme:x:create")
            ids = {first.result(timeout=30), second.result(timeout=30)}
    finally:
        app.close()
    assert ids == {"t-1"} and created == ["Disk full"]
