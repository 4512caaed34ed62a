"""Broken's sandbox: two devices, an API key, its paths."""

from typing import Any

import httpx

from mspflow.testing.sim import Simulator


class BrokenSimulator(Simulator):
    vendor = "Broken"
    base_url = "https://api.broken.example"
    api_key = "broken-api-key-0123456789"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.devices = {"1041": "FRONTDESK-01", "1042": "FS-01"}
        self.reboots: list[str] = []
        self.add_routes([("GET", "/devices/{device_id}", self.get),
                         ("POST", "/devices/{device_id}/reboot", self.reboot)])

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        return None if request.headers.get("X-API-KEY") == self.api_key else self.error(401, "bad API key")

    def get(self, request: httpx.Request, device_id: str) -> httpx.Response:
        if device_id not in self.devices:
            return self.error(404, "no such device")
        return self.json({"id": device_id, "hostname": self.devices[device_id]})

    def reboot(self, request: httpx.Request, device_id: str) -> httpx.Response:
        if device_id not in self.devices:
            return self.error(404, "no such device")
        self.reboots.append(device_id)
        return self.empty(204)

    def demo_secrets(self) -> dict[str, str]:
        return {"broken_api_key": self.api_key}

    def demo_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [("broken.devices.get", {"device_id": "1041"}), ("broken.devices.reboot", {"device_id": "1041"})]
