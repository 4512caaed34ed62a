"""What must never happen: ids steering requests, repeated writes, and vendor plumbing (retries, throttles,
token caches, scrubbing) creeping into the plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from mspflow_tacticalrmm.sim import FRONTDESK_ID

from mspflow.testing import check_imports

PAD = "A" * 24  # long enough for Tactical's router, so the id itself is what gets tested
HOSTILE = ["../scripts", f"{FRONTDESK_ID}/reboot", "..", ".", f"{FRONTDESK_ID}?x=1", "%2e%2e", f"{FRONTDESK_ID}#",
           f" {FRONTDESK_ID}", f"{PAD}/../{FRONTDESK_ID}", f"../agents/{FRONTDESK_ID}", "short"]
PACKAGE = Path(__file__).parent.parent / "mspflow_tacticalrmm"
# ``retryable=False`` (declaring an unknown outcome not worth repeating) is allowed; any retrying is not.


def only_segment(path: str, prefix: str, suffix: str = "") -> str:
    """The single segment between ``prefix`` and ``suffix``, decoded; fails if the id added segments."""
    assert path.startswith(prefix) and path.endswith(suffix), path
    segment = path[len(prefix):len(path) - len(suffix)]
    assert segment and "/" not in segment and "?" not in segment and "#" not in segment, path
    assert segment not in (".", ".."), path
    return unquote(segment)


def test_the_plugin_leaves_vendor_plumbing_to_the_core() -> None:
    check_imports(PACKAGE)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_agent_ids_stay_one_path_segment(trmm: Any, hostile: str) -> None:
    calls = [
        ("agents.get", {"agent_id": hostile}, "GET", "/"),
        ("agents.find", {"agent_id": hostile, "live": True}, "GET", "/"),
        ("agents.run_script", {"agent_id": hostile, "script_id": 1}, "POST", "/runscript/"),
        ("agents.run_command", {"agent_id": hostile, "shell": "cmd", "cmd": "hostname"}, "POST", "/cmd/"),
        ("agents.reboot", {"agent_id": hostile}, "POST", "/reboot/"),
        ("agents.reboot", {"agent_id": hostile, "at": "2099-01-01T10:00"}, "PATCH", "/reboot/"),
    ]
    for action, params, method, suffix in calls:
        trmm.sim.requests.clear()
        err = trmm.fail(action, params)
        assert err.code == "NOT_FOUND", (action, err.to_dict())
        sent = [(r.method, r.url.raw_path.decode()) for r in trmm.sim.requests]
        assert len(sent) == 1 and sent[0][0] == method, sent
        assert only_segment(sent[0][1], "/agents/", suffix) == hostile
        assert not trmm.sim.requests[0].url.query
    assert trmm.sim.script_runs == [] and trmm.sim.commands == [] and trmm.sim.reboot_log == []


def test_the_package_holds_no_transport_calls_error_mapping_or_relogin_code() -> None:
    """Issue 10.2: knox login, re-login, transport and the mapping of Tactical's failures are declarations."""
    import ast

    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    handlers = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)]
    assert handlers == [], f"try/except (error mapping) at lines {handlers}"
    http_calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call)
                  and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Attribute)
                  and n.func.value.attr == "http"}
    assert http_calls <= {"get", "post", "put", "patch", "delete", "pages"}, http_calls
    names = {n.attr if isinstance(n, ast.Attribute) else n.id for n in ast.walk(tree)
             if isinstance(n, ast.Attribute | ast.Name)}
    for plumbing in ("status_code", "request", "send", "login_request", "refresh", "store_secret", "sleep",
                     "retry", "Retrying", "httpx", "socket"):
        assert plumbing not in names, plumbing
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
                for a in n.names} | {(n.module or "").split(".")[0] for n in ast.walk(tree)
                                     if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "datetime", "typing", "pydantic", "mspflow", "annotations", "Annotated",
                        "Any", "Literal", "BaseModel", "ConfigDict", "Field", "field_validator", "ActionContext",
                        "ActionError", "EnvVar", "LocalDateTime", "Module", "NoAnswer", "SyncedAsset", "Vendor",
                        "auth", "hookimpl", "required_if", "rmm_integration",
                        # the alert source (issue 18): names of the public API, and `re` for the template reader
                        "re", "AlertEvent", "AlertSource", "Delivery", "Ignore", "Receiver", "vendor_json",
                        "vendor_text", "vendor_time", "webhook"}, imported
