"""A test world: every installed plugin mounted on its simulator, two tenants connected to everything."""

from __future__ import annotations

import importlib
from typing import Any

import httpx

from mspflow import tenants
from mspflow.app import App
from mspflow.microsoft import bind_profile
from mspflow.testing import mount, unmount
from mspflow.testing.sim import Simulator

TENANTS = ("rel-a", "rel-b")


class Faulty(httpx.BaseTransport):
    """A simulator's transport with one fault injected the world over: set :attr:`fault`, clear it to heal.

    Faults: ``"503"``, ``"429"`` (``retry_after`` header value or None), ``"garbage"`` (2xx, unreadable
    body: after the simulator handled the request), ``"gzip"`` (2xx, invalid gzip), ``"html"`` (2xx login
    page), ``"timeout"`` (read timeout after the simulator handled it), ``"echo"`` (the simulator's answer
    is replaced by ``echo`` — status, body — e.g. to echo secrets).
    """

    def __init__(self, sim: Simulator, world: World) -> None:
        self.sim, self.world = sim, world
        self.inner = sim.transport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.world.fault
        if fault == "503":
            self.sim.requests.append(request)
            return httpx.Response(503, json={"error": "service unavailable"})
        if fault == "429":
            self.sim.requests.append(request)
            headers = {} if self.world.retry_after is None else {"Retry-After": self.world.retry_after}
            return httpx.Response(429, json={"error": "slow down"}, headers=headers)
        response = self.inner.handle_request(request)
        if fault == "garbage" and response.status_code < 300:
            return httpx.Response(200, content=b'{"id": 10', headers={"Content-Type": "application/json"})
        if fault == "gzip" and response.status_code < 300:
            return httpx.Response(200, stream=httpx.ByteStream(b"\x1f\x8b\x08garbage"), headers={
                "Content-Type": "application/json", "Content-Encoding": "gzip"})
        if fault == "html" and response.status_code < 300:
            return httpx.Response(200, text="<html><title>Sign in</title><body>login</body></html>",
                                  headers={"Content-Type": "text/html"})
        if fault == "timeout":
            raise httpx.ReadTimeout("read timed out", request=request)
        if fault == "echo" and self.world.echo is not None:
            status, body = self.world.echo
            return httpx.Response(status, content=body.encode(), headers={"Content-Type": "application/json"})
        return response


class World:
    def __init__(self, app: App) -> None:
        self.app = app
        self.sims: dict[str, Simulator] = {}
        self.fault: str | None = None
        self.retry_after: str | None = None
        self.echo: tuple[int, str] | None = None
        providers = list(tenants.known_providers(app.registry))
        with app.db.session() as s:
            for module in app.registry.modules.values():
                if not module.simulator or not module.provider:
                    continue
                mod_name, _, cls_name = module.simulator.partition(":")
                sim: Simulator = getattr(importlib.import_module(mod_name), cls_name)()
                hosts = sim.hosts()
                for url in hosts:
                    mount(url, Faulty(sim, self))
                self.sims[module.provider] = sim
            for tenant in TENANTS:
                for provider in providers:
                    sim_url = self.sims[provider].base_url if provider in self.sims else None
                    tenants.connect(s, app.registry, tenant, provider, sim_url)
                for sim in self.sims.values():
                    if callable(getattr(sim, "demo_profile", None)):  # Teams: a bound profile and linked users
                        bind_profile(s, tenant, sim.demo_profile())
        with app.db.session() as s:
            for tenant in TENANTS:
                for sim in self.sims.values():
                    for name, value in sim.demo_secrets().items():
                        app.secrets.set(s, tenant, name, value)

    def requests(self) -> int:
        """Requests every simulator has answered so far."""
        return sum(len(sim.requests) for sim in self.sims.values())

    def seeds(self) -> dict[str, list[dict[str, Any]]]:
        """Known-good inputs per action id (the simulators' demo calls), to mutate from."""
        out: dict[str, list[dict[str, Any]]] = {}
        for sim in self.sims.values():
            for action_id, data in sim.demo_calls():
                out.setdefault(action_id, []).append(data)
        return out

    def close(self) -> None:
        unmount()
        self.app.close()
