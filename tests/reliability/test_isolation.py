"""Tenant isolation: what one tenant's calls wrote, another tenant can reach through no action, no record
lookup and no CLI listing."""

from __future__ import annotations

import json
from typing import Any

from mspflow.db.models import Asset, RmmAlert
from tests.reliability.conftest import Figures
from tests.reliability.world import TENANTS, World


def test_tenant_isolation(world: World, figures: Figures) -> None:
    app = world.app
    a, b = TENANTS
    # tenant a's own records: synced assets, stored alerts, invocations
    invocations = []
    for action in app.registry.actions.values():
        if action.id.endswith("devices.sync"):
            r = app.execute(action.id, tenant=a, input={"device_id": 1041}, run_id="iso", step_path=action.id)
            assert r.ok, r.error
            invocations.append(r.invocation_id)
    for sim in world.sims.values():
        for action_id, data in sim.demo_calls():
            invocations.append(app.execute(action_id, tenant=a, input=data, run_id="iso", step_path=action_id)
                               .invocation_id)
    with app.db.session() as s:
        assets = [(x.rmm_provider, x.asset_id, x.rmm_device_id) for x in s.query(Asset).filter_by(tenant=a)]
        for provider in world.sims:
            s.add(RmmAlert(tenant=a, provider=provider, external_alert_id=f"iso-{provider}", status="active",
                           title="tenant a's alert"))
    with app.db.session() as s:
        alerts = [(x.provider, x.alert_id, x.external_alert_id) for x in s.query(RmmAlert).filter_by(tenant=a)]
    attempts, leaks = 0, []

    def data_ids(data: dict[str, Any]) -> str:
        return next(iter(data.values()), "") if data else "\x00"

    def read(action_id: str, data: dict[str, Any], secret_bits: list[str]) -> None:
        nonlocal attempts
        attempts += 1
        result = app.execute(action_id, tenant=b, input=data)
        # the output, not an error echoing the id the caller itself supplied
        text = json.dumps(result.output) if result.ok else json.dumps(result.to_json()).replace(data_ids(data), "")
        if any(bit in text for bit in secret_bits):
            leaks.append(f"{action_id} {data}: {text[:200]}")

    for provider, asset_id, _device in assets:
        for action in app.registry.actions.values():
            if action.id.startswith(provider + ".") and not action.side_effectful:
                fields = action.input_model.model_fields
                if "asset_id" in fields:
                    read(action.id, {"asset_id": asset_id}, [asset_id])
    for provider, alert_id, external in alerts:
        for action in app.registry.actions.values():
            if action.id.startswith(provider + ".") and "alert" in action.id and not action.side_effectful:
                fields = action.input_model.model_fields
                for field in ("alert_uid", "alert_id"):
                    if field in fields:
                        read(action.id, {field: alert_id}, [alert_id, "tenant a's alert"])
                        read(action.id, {field: external}, [alert_id, "tenant a's alert"])
                if "live" in fields:
                    read(action.id, {}, [alert_id, "tenant a's alert"])
    for invocation_id in invocations:
        attempts += 1
        if invocation_id and app.invocation(invocation_id, tenant=b) is not None:
            leaks.append(f"invocation {invocation_id} visible to {b}")
    ok = figures.record(f"tenant isolation ({app.db.dialect})",
                        f"{attempts} cross-tenant reads: {len(leaks)} returned another tenant's data",
                        not leaks and attempts >= len(invocations))
    assert ok, "\n".join(leaks)
