"""Issue 9's defects, one reproduction each, end to end through App, the worker, tenants and the CLI.

Each failed on the code the issue was filed against; the figures table gets one line for all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel
from sqlalchemy import text

from mspflow import Module, Vendor, rmm_integration, tenants
from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.errors import ActionError
from mspflow.hookspecs import hookimpl
from mspflow.plugins import Plugins
from mspflow.testing.cli import MSPFLOW
from tests.distributions import Distributions
from tests.reliability.conftest import Figures
from tests.reliability.secrets_scan import occurrences, table_texts
from tests.reliability.test_plugin_faults import ROGUE
from tests.reliability.world import TENANTS, World
from tests.schema_strategy import from_schema
from tests.test_vendor import Drip

T = TENANTS[0]
REPRODUCED: list[int] = []


def _done(n: int) -> None:
    REPRODUCED.append(n)


def test_defect_1_an_accepted_write_with_an_unreadable_reply_is_never_sent_again(world: World) -> None:
    sim, app = world.sims["ninjaone"], world.app
    for fault in ("garbage", "html", "gzip"):
        world.fault = fault
        step = f"reboot-{fault}"
        first = app.execute("ninjaone.devices.reboot", tenant=T, input={"device_id": 1041}, run_id="d1",
                            step_path=step)
        world.fault = None
        assert first.error is not None and first.error.details["outcome"] == "done" and not first.error.retryable
        before = sim.count("POST", "/reboot/NORMAL")
        again = app.execute("ninjaone.devices.reboot", tenant=T, input={"device_id": 1041}, run_id="d1",
                            step_path=step)
        queued = app.wait(app.enqueue("ninjaone.devices.reboot", tenant=T, input={"device_id": 1041},
                                      run_id="d1", step_path=step), timeout=30)
        assert again.replayed and queued["status"] == "FAILED" and sim.count("POST", "/reboot/NORMAL") == before
    _done(1)


def test_defect_2_secrets_never_leak(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = world.app
    secret = 'unread"se\\cret/+=é-7f3c9b2e11ab'
    with app.db.session() as s:
        app.secrets.set(s, T, "planted_unread", secret)
    texts: list[tuple[str, str]] = []
    for status, body in [(500, "x" * 290 + secret + "y" * 40), (400, json.dumps({"error": secret})),
                         (200, json.dumps({"id": 1041, "displayName": secret, "systemName": secret,
                                           "dnsName": secret, "uid": secret}))]:
        world.fault, world.echo = "echo", (status, body)
        for action_id, data in [("ninjaone.devices.sync", {"device_id": 1041}),
                                ("ninjaone.devices.reboot", {"device_id": 1041})]:
            texts.append((action_id, json.dumps(app.execute(action_id, tenant=T, input=data).to_json())))
    world.fault = world.echo = None
    texts.append(("find", json.dumps(app.execute("ninjaone.devices.find", tenant=T, input={}).to_json())))
    # tenant authorize: a token endpoint refusing the code, echoing the client secret
    client_secret = "cs-planted-" + "9" * 20
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")  # the token endpoint is served on loopback
    monkeypatch.setenv("MSPFLOW_EXTRA_VENDOR_HOSTS", "127.0.0.1")
    server = _echo_token_endpoint()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {**os.environ, "MSPFLOW_DATABASE_URL": app.db.engine.url.render_as_string(hide_password=False),
           "MSPFLOW_ALLOW_HTTP_VENDOR_URLS": "1", "MSPFLOW_EXTRA_VENDOR_HOSTS": "127.0.0.1",
           "MSPFLOW_LOAD_PLUGINS": "ninjaone"}
    with app.db.session() as s:
        app.secrets.set(s, "auth-t", "ninjaone_client_id", "client-id-1")
        app.secrets.set(s, "auth-t", "ninjaone_client_secret", client_secret)
    try:
        cli = subprocess.run([MSPFLOW, "tenant", "authorize", "auth-t", "ninjaone", "--code", "abc"], env={
            **env, "MSPFLOW_SECRET_KEY": os.environ["MSPFLOW_SECRET_KEY"]}, capture_output=True, text=True,
            timeout=60, input="", check=False) if _connect(app, url) else None
    finally:
        server.shutdown()
    assert cli is not None and cli.returncode != 0, cli
    texts.append(("tenant authorize", cli.stdout + cli.stderr))
    found = occurrences([*texts, *table_texts(app.db)], [secret, client_secret])
    assert not found, found
    _done(2)


def _connect(world_app: Any, url: str) -> bool:
    with world_app.db.session() as s:
        tenants.connect(s, world_app.registry, "auth-t", "ninjaone", url)
    return True


def _echo_token_endpoint() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            body = json.dumps({"error": "invalid_client", "error_description": f"bad credentials in {form}"})
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_defect_3_an_action_id_cannot_be_hijacked(dists: Distributions, monkeypatch: pytest.MonkeyPatch) -> None:
    dists.install("mspflow-rogue", "mspflow_rogue", ROGUE.replace("{action_id}", "tacticalrmm.agents.reboot"))
    for order in (["mspflow_rogue", "tacticalrmm"], ["tacticalrmm", "mspflow_rogue"]):
        monkeypatch.setenv("MSPFLOW_LOAD_PLUGINS", ",".join(order))
        loaded = Plugins(strict=False)
        assert loaded.registry.owner_of("action", "tacticalrmm.agents.reboot@1") is None
        refused = {e.distribution for e in loaded.errors}
        assert {"mspflow-rogue", "mspflow-tacticalrmm"} <= refused
    _done(3)


def test_defect_4_an_absurd_retry_after_is_capped_and_the_record_is_never_in_limbo(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from mspflow.vendor import client

    monkeypatch.setattr(client, "MAX_INLINE_RETRY_AFTER_S", 0.5)  # the cap is the subject, not the waiting
    app = world.app
    for value in ("inf", "1e400", "-1", "NaN"):
        world.fault, world.retry_after = "429", value
        result = app.execute("ninjaone.devices.find", tenant=T, input={"live": True})
        json.dumps(result.to_json(), allow_nan=False)
        assert result.error is not None and result.error.retry_after is not None
        assert 0 <= result.error.retry_after <= 3600
        iid = app.enqueue("ninjaone.devices.reboot", tenant=T, input={"device_id": 1042}, run_id="d4",
                          step_path=value)
        record = _settled(app, iid)
        assert (record["status"] in ("FAILED", "QUEUED") and record["error"] is None) or record["error"]["code"] in (
            "RATE_LIMITED",), record
    world.fault = None
    _done(4)


def _settled(app: Any, invocation_id: str) -> dict[str, Any]:
    """The record once the embedded worker has taken the call and queued its retry."""
    import time

    for _ in range(200):
        record = app.invocation(invocation_id)
        if record and record["status"] in ("FAILED", "SUCCEEDED"):
            return dict(record)
        time.sleep(0.05)
    return dict(app.invocation(invocation_id) or {})


@pytest.mark.parametrize(("call", "field"), [
    ({"tenant": "t" * 256}, "tenant"), ({"run_id": "r" * 256}, "run_id"), ({"step_path": "s" * 1025}, "step_path"),
    ({"idempotency_key": "k" * 256}, "idempotency_key"), ({"tenant": "a\x00b"}, "tenant"),
    ({"run_id": "\ud800"}, "run_id"),
])
def test_defect_5_an_envelope_outside_the_columns_is_a_validation_error(world: World, call: dict[str, Any],
                                                                        field: str) -> None:
    args = {"tenant": T, "run_id": "r", "step_path": "s", **call}
    result = world.app.execute("ninjaone.devices.reboot", input={"device_id": 1041}, **args)
    assert result.error is not None and result.error.code == "VALIDATION_ERROR"
    assert field in json.dumps(result.error.details)
    with pytest.raises(ActionError) as err:
        world.app.invocation("a\x00")
    assert err.value.code == "VALIDATION_ERROR"
    deep: Any = 1
    for _ in range(100_000):
        deep = {"a": deep}
    for data in [{"device_id": deep}, {"device_id": "x\x00"}, {"device_id": "\udfff"}]:
        bad = world.app.execute("ninjaone.devices.reboot", tenant=T, input=data)
        assert bad.error is not None and bad.error.code == "VALIDATION_ERROR"
    from mspflow.db.models import User

    with world.app.db.session() as s:
        if s.get(User, (T, "u1")) is None:
            s.add(User(tenant=T, user_id="u1", first_name="Ada", last_name="L", email="ada@example.com",
                       user_type="internal"))
    for year in ("0001-01-01T00:30:00", "9999-12-31T23:30:00"):
        entry = world.app.execute("scheduling.create_entry", tenant=T, input={
            "assigned_user_ids": ["u1"], "title": "edge", "conflict_mode": "shift",
            "window": {"start": year, "end": year[:-5] + "59:00", "timezone": "Pacific/Kiritimati"}})
        assert entry.ok or (entry.error is not None and entry.error.code == "VALIDATION_ERROR"), entry.to_json()
    _done(5)


@pytest.mark.parametrize(("provider", "url"), [
    ("tacticalrmm", "javascript:alert(1)"), ("tacticalrmm", "https://[::1"), ("tacticalrmm", "https://a\r\nb"),
    ("tacticalrmm", "https://169.254.169.254"), ("tacticalrmm", "https://metadata.google.internal"),
    ("tacticalrmm", "https://[fe80::1]"), ("ninjaone", "https://ninjarmm.evil.example"),
])
def test_defect_6_a_vendor_url_is_checked_when_saved(world: World, provider: str, url: str) -> None:
    with pytest.raises(ActionError) as err, world.app.db.session() as s:
        tenants.connect(s, world.app.registry, "url-t", provider, url)
    assert err.value.code == "VALIDATION_ERROR"
    _done(6)


class _Thing(BaseModel):
    id: str = "1"


def test_defect_7_a_slow_drip_reply_is_cut_at_the_total_deadline(db: Database,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    drip = Module("app:drip", label="Drip", availability=rmm_integration("drip"), description="Drips.",
                  vendor=Vendor("Drip", self_hosted=True, timeout_s=1.0))

    @drip.action("drip.things.get", label="Get")
    def get(params: _Thing, ctx: Any) -> _Thing:
        """Get one thing."""
        return _Thing(id=str(ctx.http().get(("things", params.id))["id"])[:10])

    class Plugin:
        @hookimpl
        def register_modules(self, register: Any) -> None:
            register(drip)

    app = App(db=db, plugins=Plugins(entry_points=[], extra=[("drip", Plugin())], strict=True))
    server = Drip("body")
    try:
        with db.session() as s:
            tenants.connect(s, app.registry, T, "drip", server.url)
        result = app.execute("drip.things.get", tenant=T, input={})
    finally:
        server.close()
        app.close()
    assert result.error is not None and result.error.code == "TRANSIENT_FAILURE"
    assert "deadline of 1 s" in result.error.message
    _done(7)


def test_defect_8_database_faults_are_one_clear_line(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-db.sqlite3"
    bogus.write_bytes(b"this is not a database" * 100)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    for url, args in [(f"sqlite:///{bogus}", ["catalog", "--tenant", "x"]),
                      (f"sqlite:///{bogus}", ["invocations", "--tenant", "x"]),
                      ("nonsense", ["catalog", "--tenant", "x"]),
                      (f"sqlite:////proc/mspflow-cannot/{tmp_path.name}/db.sqlite3", ["catalog", "--tenant", "x"])]:
        cli = subprocess.run([MSPFLOW, *args], env={**env, "MSPFLOW_DATABASE_URL": url}, capture_output=True,
                             text=True, timeout=60, check=False)
        assert cli.returncode == 1 and "Traceback" not in cli.stderr, cli.stderr
        assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    _done(8)


def test_defect_8_a_missing_invocations_table_says_to_upgrade(world: World) -> None:
    with world.app.db.engine.begin() as conn:
        conn.execute(text("DROP TABLE workflow_action_invocations"))
    result = world.app.execute("transform.text.render", tenant=T, input={"template": "x", "values": {}})
    assert result.error is not None and not result.error.retryable
    assert "mspflow db upgrade" in result.error.message


@pytest.mark.parametrize("body", ["{}", '""', "[]", "null", '{"agent_id": 7}'])
def test_defect_9_a_wrongly_shaped_200_is_a_vendor_error_naming_the_field(world: World, body: str) -> None:
    world.fault, world.echo = "echo", (200, body)
    for action_id, data in [("tacticalrmm.agents.get", {"agent_id": "A" * 22}),
                            ("ninjaone.devices.find", {"live": True}), ("ninjaone.devices.get", {"device_id": 1})]:
        if world.app.registry.action(action_id) is None:
            continue
        result = world.app.execute(action_id, tenant=T, input=data)  # an empty list is a fine page
        assert result.ok or (result.error is not None and result.error.code != "INTERNAL_ERROR"), result.to_json()
    world.fault = world.echo = None
    _done(9)


def test_defect_10_published_schemas_describe_what_the_runtime_accepts(world: World) -> None:
    tricky = ["ninjaone.alerts.get", "ninjaone.alerts.reset", "ninjaone.devices.run_script",
              "tacticalrmm.agents.run_script", "tacticalrmm.agents.reboot"]
    for action_id in tricky:
        action = world.app.registry.action(action_id)
        assert action is not None

        _accepts_what_its_schema_allows(action)
    _done(10)


def _accepts_what_its_schema_allows(action: Any) -> None:
    from pydantic import ValidationError

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_schema(action.input_schema))
    def accepted(data: Any) -> None:
        try:
            action.input_model.model_validate(data)
        except ValidationError as exc:
            raise AssertionError(f"{action.id}: schema-valid {data!r} refused: {exc}") from None

    accepted()


def test_defect_11_a_long_call_owns_its_lease_and_an_interrupted_one_is_not_left_running(world: World) -> None:
    from mspflow.runtime import lease_for, time_limit_s

    run_script = world.app.registry.action("tacticalrmm.agents.run_script")
    assert run_script is not None and run_script.max_duration_s is not None
    assert run_script.max_duration_s >= 900
    assert lease_for(run_script) > run_script.max_duration_s
    assert lease_for(run_script) > time_limit_s(run_script) > run_script.max_duration_s
    _done(11)


def test_zz_every_defect_is_reproduced(figures: Figures) -> None:
    missing = sorted(set(range(1, 12)) - set(REPRODUCED))
    ok = figures.record("issue 9 defects", f"{len(set(REPRODUCED))} of 11 reproduced and holding"
                        + (f"; missing {missing}" if missing else ""), not missing)
    assert ok
