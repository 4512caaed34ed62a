"""Publish-time validation of a workflow's steps."""

from __future__ import annotations

from typing import Any

from mspflow.db.engine import Database
from tests.runtime_support import make_app, prepare


def test_validate_workflow(db: Database) -> None:
    prepare(db)
    app = make_app(db)
    steps: list[dict[str, Any]] = [
        {"path": "fetch", "action_id": "counter.effects.read", "input": {"label": "a"}},
        {"path": "apply", "action_id": "counter.effects.apply", "version": 1,
         "input": {"label": {"$ref": "steps.fetch.output.count"}, "window": {"start": 1, "end": "{{ later }}"}}},
        {"path": "typo", "action_id": "counter.effects.aply"},
        {"path": "old", "action_id": "counter.effects.apply", "version": 9},
        {"path": "static", "action_id": "counter.effects.apply", "input": {"label": 5, "sleep": -1}},
    ]
    report = app.validate_workflow(steps)
    assert report["ok"] is False
    assert [(e["step"], e["code"]) for e in report["errors"]] == [
        ("typo", "NOT_FOUND"), ("old", "NOT_FOUND"), ("static", "VALIDATION_ERROR")]
    assert {f["path"] for f in report["errors"][2]["fields"]} == {"label", "sleep"}
    assert report["warnings"] == []
    ok_steps = steps[:2]
    assert app.validate_workflow(ok_steps, tenant="acme") == {"ok": True, "errors": [], "warnings": []}
    disconnected = app.validate_workflow(ok_steps, tenant="globex")
    assert disconnected["ok"] is True
    assert [(w["step"], w["code"]) for w in disconnected["warnings"]] == [
        ("fetch", "INTEGRATION_INACTIVE"), ("apply", "INTEGRATION_INACTIVE")]
