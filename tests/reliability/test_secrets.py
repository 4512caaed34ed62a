"""Planted secrets: every secret of a tenant, echoed by its vendors in every way a vendor can, appears in no
output, error, row of any table, log line or CLI output — in no encoding."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
from urllib.parse import quote

import pytest

from mspflow.testing.cli import MSPFLOW
from tests.reliability.conftest import Figures
from tests.reliability.secrets_scan import PLANTED, occurrences, table_texts
from tests.reliability.world import TENANTS, World


def _echo_bodies(secret: str) -> list[tuple[int, str]]:
    device = {"id": 1041, "uid": secret, "agent_id": "A" * 22 + "x", "displayName": secret, "systemName": secret,
              "dnsName": quote(secret), "hostname": secret, "description": base64.b64encode(secret.encode()).decode(),
              "name": secret, "message": secret, "organizationId": secret, "status": "online"}
    return [
        (400, json.dumps({"error": f"invalid key {secret}"})),
        (400, json.dumps(f"bad credentials {secret}")),
        (500, "x" * 290 + secret + "y" * 60),
        (401, json.dumps({"detail": quote(secret)})),
        (503, "<html><title>down</title>" + secret + "</html>"),
        (200, json.dumps([device])),
        (200, json.dumps(device)),
    ]


def test_planted_secrets_never_surface(world: World, figures: Figures, profile: dict[str, int],
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = world.app
    with app.db.session() as s:
        for tenant in TENANTS:
            for i, value in enumerate(PLANTED):
                app.secrets.set(s, tenant, f"planted_{i}", value)
    with app.db.session() as s:  # what the tenant really holds (a simulator issues new tokens on every ask)
        vendor_secrets = set(app.secrets.all(s, TENANTS[0]).values()) - set(PLANTED)
    secrets = set(PLANTED) | vendor_secrets
    calls = [(a, d) for sim in world.sims.values() for a, d in sim.demo_calls()]
    calls += [(a.id, {"device_id": 1041}) for a in app.registry.actions.values() if a.id.endswith("devices.sync")]
    outputs: list[tuple[str, str]] = []
    n = 0
    for _ in range(profile["secret_rounds"]):
        for secret in sorted(secrets):
            for status, body in _echo_bodies(secret):
                world.fault, world.echo = "echo", (status, body)
                for action_id, data in calls:
                    n += 1
                    result = app.execute(action_id, tenant=TENANTS[0], input=data, run_id=f"sec-{n}",
                                         step_path="s")
                    shown = result.to_json()
                    outputs.append((f"{action_id} result", json.dumps(shown, default=str)))
                    outputs.append((f"{action_id} result", json.dumps(shown, default=str, ensure_ascii=False)))
    world.fault = world.echo = None
    # what the local reads return afterwards (assets and alerts written from vendor echoes)
    for action in app.registry.actions.values():
        if action.id.endswith(".find") and "live" in action.input_model.model_fields:
            result = app.execute(action.id, tenant=TENANTS[0], input={})
            outputs.append((f"{action.id} local", json.dumps(result.to_json(), ensure_ascii=False)))
    env = {**os.environ, "MSPFLOW_DATABASE_URL": app.db.engine.url.render_as_string(hide_password=False)}
    for args in (["invocations", "--tenant", TENANTS[0], "--json", "--limit", "500"],
                 ["tenant", "show", TENANTS[0], "--json"], ["invocations", "--tenant", TENANTS[0]]):
        cli = subprocess.run([MSPFLOW, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
        outputs.append((f"mspflow {' '.join(args)}", cli.stdout + cli.stderr))
    found = occurrences([*outputs, *table_texts(app.db), ("logs", caplog.text)], secrets)
    ok = figures.record(f"planted secrets ({app.db.dialect})",
                        f"{len(secrets)} secrets x {n} echoing calls: {len(found)} occurrences in outputs, errors, "
                        "rows of every table, logs and CLI", not found)
    assert ok, "\n".join(found[:40])
