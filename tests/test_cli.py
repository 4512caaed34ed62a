"""The ``mspflow`` command as an operator runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mspflow.db.migrate import HEAD
from tests.distributions import Distributions
from tests.test_plugins import ACME, BROKEN_IMPORT

MSPFLOW = str(Path(sys.executable).with_name("mspflow"))


class Cli:
    def __init__(self, home: Path, database_url: str | None = None) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
        self.env["MSPFLOW_HOME"] = str(home)
        self.env["COLUMNS"] = "200"
        if database_url:
            self.env["MSPFLOW_DATABASE_URL"] = database_url

    def __call__(self, *args: str, stdin: str = "", env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
        full_env = {**self.env, "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                    "MSPFLOW_LOAD_PLUGINS": os.environ.get("MSPFLOW_LOAD_PLUGINS", ""), **(env or {})}
        return subprocess.run([MSPFLOW, *args], input=stdin, capture_output=True, text=True, env=full_env,
                              timeout=60, check=False)

    def json(self, *args: str) -> object:
        result = self(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def counter_cli(home: Path, dists: Distributions) -> Cli:
    """The command with the counter plugin (tests/plugin_sources) installed, ``acme`` connected to it, and the
    plugin's own table created in the embedded database at ``home``."""
    from tests.runtime_support import SOURCE, counter_plugin

    dists.install("mspflow-counter", "mspflow_counter", SOURCE.read_text())
    c = Cli(home)
    assert c("tenant", "connect", "acme", "counter").returncode == 0
    with create_engine(f"sqlite:///{home / 'mspflow.sqlite3'}").begin() as conn:
        conn.execute(text(counter_plugin().SCHEMA))
    return c


@pytest.fixture
def cli(tmp_path: Path, dists: Distributions) -> Cli:
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    return Cli(tmp_path / "home")


def test_catalog_on_a_fresh_machine_creates_the_schema_and_prints_the_contract(cli: Cli) -> None:
    assert cli("tenant", "connect", "acme", "acme", "--instance-url", "https://acme.example").returncode == 0
    connected = cli.json("catalog", "--tenant", "acme")
    other = cli.json("catalog", "--tenant", "globex")
    assert isinstance(connected, dict) and isinstance(other, dict)
    assert [r["group_key"] for r in connected["records"]] == ["transform", "scheduling", "app:acme"]
    acme = connected["records"][-1]
    assert (acme["available"], acme["unavailable_reason"]) == (True, None)
    assert acme["actions"][0]["id"] == "acme.devices.reboot"
    assert acme["actions"][0]["input_schema"]["required"] == ["device_id"]
    assert (other["records"][-1]["available"], other["records"][-1]["unavailable_reason"]) == \
        (False, "not_connected")
    palette = cli.json("catalog", "--tenant", "globex", "--palette")
    assert [r["group_key"] for r in palette["records"]] == ["transform", "scheduling"]  # type: ignore[index]


def test_catalog_json_schemas_come_from_a_cache_that_follows_the_plugin_code(cli: Cli, dists: Distributions) -> None:
    first = cli("catalog", "--tenant", "acme", "--json")
    cache = Path(cli.env["MSPFLOW_HOME"]) / "cache" / "action-schemas.json"
    assert first.returncode == 0 and cache.exists()
    again = cli("catalog", "--tenant", "acme", "--json")
    assert again.stdout == first.stdout  # served from the cache, byte for byte
    source = dists.site / "mspflow_acme.py"
    source.write_text(source.read_text().replace("device_id: str", "device_id: int"))
    mtime = source.stat().st_mtime_ns + 1_000_000_000
    os.utime(source, ns=(mtime, mtime))
    changed = json.loads(cli("catalog", "--tenant", "acme", "--json").stdout)
    schema = changed["records"][-1]["actions"][0]["input_schema"]
    assert schema["properties"]["device_id"]["type"] == "integer"


def test_disconnect_hides_the_tile_and_show_reports_the_row(cli: Cli) -> None:
    cli("tenant", "connect", "acme", "acme")
    result = cli("tenant", "disconnect", "acme", "acme")
    assert result.returncode == 0 and "disconnected" in result.stdout
    record = cli.json("catalog", "--tenant", "acme")["records"][-1]  # type: ignore[index]
    assert (record["available"], record["unavailable_reason"]) == (False, "inactive")
    shown = cli.json("tenant", "show", "acme")
    assert shown["rmm_integrations"][0]["provider"] == "acme"  # type: ignore[index]
    assert shown["rmm_integrations"][0]["is_active"] is False  # type: ignore[index]


def test_unknown_provider_fails_with_what_to_do(cli: Cli) -> None:
    result = cli("tenant", "connect", "acme", "kaseya")
    assert result.returncode == 1
    assert "kaseya" in result.stderr and "known providers: acme" in result.stderr


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli("catalog").returncode == 2
    assert cli("no-such-command").returncode == 2


def test_set_secret_reads_stdin_never_echoes_and_encrypts_at_rest(cli: Cli, tmp_path: Path) -> None:
    secret = "ninja-SECRET-value-4711"
    result = cli("tenant", "set-secret", "acme", "acme_api_key", stdin=secret + "\n")
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    shown = cli("tenant", "show", "acme", "--json")
    assert "acme_api_key" in shown.stdout and secret not in shown.stdout
    home = tmp_path / "home"
    key_file = home / "mspflow.sqlite3.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert secret.encode() not in (home / "mspflow.sqlite3").read_bytes()
    with create_engine(f"sqlite:///{home / 'mspflow.sqlite3'}").connect() as conn:
        stored = conn.execute(text("SELECT value FROM tenant_secrets")).scalar_one()
    from cryptography.fernet import Fernet

    assert Fernet(key_file.read_bytes()).decrypt(stored).decode() == secret


def test_set_secret_refuses_an_empty_value(cli: Cli) -> None:
    result = cli("tenant", "set-secret", "acme", "acme_api_key", stdin="")
    assert result.returncode == 1 and "empty secret" in result.stderr


def test_plugins_reports_load_errors_and_exits_1(cli: Cli, dists: Distributions) -> None:
    dists.install("mspflow-broken", "mspflow_broken", BROKEN_IMPORT, version="0.0.1")
    result = cli("plugins", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert [p["distribution"] for p in data["plugins"]] == ["mspflow", "mspflow-acme"]
    assert data["plugins"][1]["modules"] == ["app:acme"] and data["plugins"][1]["action_count"] == 1
    assert data["load_errors"] == [{"distribution": "mspflow-broken", "version": "0.0.1",
                                    "entry_point": "mspflow_broken = mspflow_broken",
                                    "error": "ImportError: vendor SDK missing"}]
    # Other commands keep working and warn; strict mode refuses.
    catalog = cli("catalog", "--tenant", "acme")
    assert catalog.returncode == 0 and "1 plugin(s) failed to load" in catalog.stderr
    strict = cli("catalog", "--tenant", "acme", env={"MSPFLOW_STRICT_PLUGINS": "1"})
    assert strict.returncode == 1 and "mspflow-broken" in strict.stderr


def test_actions_and_describe(cli: Cli) -> None:
    actions = cli.json("actions", "--module", "app:acme")
    assert [a["id"] for a in actions["actions"]] == ["acme.devices.reboot"]  # type: ignore[index]
    described = cli.json("describe", "acme.devices.reboot")
    assert described["side_effectful"] is True and described["idempotency"] == "engine_provided"  # type: ignore[index]
    assert described["output_schema"]["properties"]["reboot_requested"]["type"] == "boolean"  # type: ignore[index]
    missing = cli("describe", "acme.devices.explode")
    assert missing.returncode == 1 and "acme.devices.reboot" in missing.stderr
    assert cli("actions", "--module", "app:nope").returncode == 1


def test_demo_with_one_plugin_shows_both_tenants_and_says_which_plugins_the_other_stories_need(cli: Cli) -> None:
    result = cli("demo", "--json")  # only mspflow-acme is installed here (tests/test_demo.py runs them all)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    connected, disconnected = data["catalogs"]
    assert (connected["tenant"], disconnected["tenant"]) == ("demo-connected", "demo-disconnected")
    assert [r["available"] for r in connected["records"]] == [True, True, True]
    assert [r["available"] for r in disconnected["records"]] == [True, True, False]
    assert data["providers"] == ["acme"]
    palettes, *others = data["stories"]
    assert (palettes["name"], palettes["ok"]) == ("palettes", True)
    assert [(s["name"], s["ok"]) for s in others] == [
        ("disk-full-cleanup", False), ("huntress-enrichment", False), ("dispatcher-escalation", False),
        ("outage-retry", False)]
    assert "pip install mspflow-tacticalrmm" in others[0]["skipped"] and data["ok"] is True
    human = cli("demo")
    assert human.returncode == 0 and "demo-disconnected" in human.stdout and "not_connected" in human.stdout
    assert "skipped" in human.stdout and "mspflow-huntress" in human.stdout


@pytest.mark.postgres
def test_postgresql_path_needs_an_explicit_upgrade_and_a_secret_key(tmp_path: Path, dists: Distributions,
                                                                     postgresql_url: str) -> None:
    dists.install("mspflow-acme", "mspflow_acme", ACME)
    cli = Cli(tmp_path / "home", database_url=postgresql_url)
    before = cli("catalog", "--tenant", "acme")
    assert before.returncode == 1 and "mspflow db upgrade" in before.stderr
    upgraded = cli("db", "upgrade")
    assert upgraded.returncode == 0 and HEAD in upgraded.stdout
    assert "password" not in upgraded.stdout
    assert cli("tenant", "connect", "acme", "acme").returncode == 0
    record = cli.json("catalog", "--tenant", "acme")["records"][-1]  # type: ignore[index]
    assert record["available"] is True
    no_key = cli("tenant", "set-secret", "acme", "acme_api_key", stdin="s3cret")
    assert no_key.returncode == 1 and "MSPFLOW_SECRET_KEY" in no_key.stderr
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    ok = cli("tenant", "set-secret", "acme", "acme_api_key", stdin="s3cret", env={"MSPFLOW_SECRET_KEY": key})
    assert ok.returncode == 0 and "s3cret" not in ok.stdout + ok.stderr
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").glob("*.key"))


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = cli("catalog", "--tenant", "acme")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the database") and "Traceback" not in result.stderr


# -- issue 10 item 7 (newcomer errors), issue 9 defects 5 and 8 (database faults), issue 11 item 3 ------


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's stderr, asserted to be exactly one line and no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("url", ["nonsense", "postgres://", "mysql://user:pw@host/db"])
def test_malformed_or_unsupported_database_url_is_one_line_saying_what_is_accepted(cli: Cli, url: str) -> None:
    result = cli("catalog", "--tenant", "x", env={"MSPFLOW_DATABASE_URL": url})
    line = one_line_error(result)
    assert "sqlite:///" in line and "postgresql+psycopg://" in line and "pw" not in line
    as_json = cli("catalog", "--tenant", "x", "--json", env={"MSPFLOW_DATABASE_URL": url})
    assert json.loads(as_json.stdout)["error"]["code"] == "INVALID_DATABASE_URL"


def test_tenant_connect_checks_the_instance_url_scheme_when_saved(cli: Cli) -> None:
    line = one_line_error(cli("tenant", "connect", "acme", "acme", "--instance-url", "http://acme.example"))
    assert "https" in line and "MSPFLOW_ALLOW_HTTP_VENDOR_URLS" in line
    assert cli.json("tenant", "show", "acme")["rmm_integrations"] == []  # type: ignore[index]
    allowed = cli("tenant", "connect", "acme", "acme", "--instance-url", "http://acme.example",
                  env={"MSPFLOW_ALLOW_HTTP_VENDOR_URLS": "1"})
    assert allowed.returncode == 0, allowed.stderr


def test_an_action_error_is_one_stderr_line_and_json_only_with_json(cli: Cli) -> None:
    args = ("run", "transform.text.render", "--tenant", "acme", "--input", '{"values": 3}')
    human = cli(*args)
    assert one_line_error(human).startswith("error: VALIDATION_ERROR: ") and human.stdout == ""
    as_json = cli(*args, "--json")
    assert as_json.returncode == 1 and len(as_json.stderr.splitlines()) == 1
    assert json.loads(as_json.stdout)["error"]["details"]["fields"][0]["path"] == "template"


def test_catalog_of_a_tenant_with_no_records_says_so(cli: Cli) -> None:
    result = cli("catalog", "--tenant", "nobody", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["tenant"] == "nobody"
    assert len(result.stderr.splitlines()) == 1 and "no records" in result.stderr
    assert "mspflow tenant connect nobody" in result.stderr
    cli("tenant", "connect", "acme", "acme")
    assert cli("catalog", "--tenant", "acme").stderr == ""


def test_tables_never_cut_ids_when_piped(cli: Cli) -> None:
    result = cli("actions", env={"COLUMNS": "30"})
    for action_id in ("acme.devices.reboot", "scheduling.create_entry", "transform.text.render"):
        assert action_id in result.stdout
    ran = json.loads(cli("run", "transform.text.render", "--tenant", "acme", "--input",
                         '{"template": "hi"}', "--json").stdout)
    listed = cli("invocations", "--tenant", "acme", env={"COLUMNS": "30"})
    assert ran["invocation_id"] in listed.stdout


def test_readme_cli_examples_run_as_written_after_the_demo(cli: Cli) -> None:
    import shlex

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("After the demo", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.startswith("mspflow ")]
    assert len(commands) >= 5
    every_plugin = {"MSPFLOW_LOAD_PLUGINS": "huntress,levelio,ninjaone,psa,tacticalrmm,teams"}
    assert cli("demo", env=every_plugin).returncode == 0
    for command in commands:
        result = cli(*shlex.split(command)[1:], env=every_plugin)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (command, result.stderr)


def test_a_sqlite_file_that_is_not_a_database_is_one_line(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "mspflow.sqlite3").write_bytes(b"this is not a database, just text " * 100)
    for args in (("catalog", "--tenant", "x"), ("db", "upgrade"), ("invocations", "--tenant", "x")):
        assert "not a database" in one_line_error(cli(*args))


def test_a_database_directory_that_cannot_be_created_is_one_line(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = one_line_error(cli("catalog", "--tenant", "x", env={"MSPFLOW_HOME": str(tmp_path / "file" / "home")}))
    assert "cannot create the directory" in line and "MSPFLOW_HOME" in line


def drop(tmp_path: Path, *tables: str) -> None:
    with create_engine(f"sqlite:///{tmp_path / 'home' / 'mspflow.sqlite3'}").begin() as conn:
        for table in tables:
            conn.execute(text(f"DROP TABLE {table}"))


def test_missing_invocations_table_says_schema_missing_not_busy(cli: Cli, tmp_path: Path) -> None:
    assert cli("db", "upgrade").returncode == 0
    drop(tmp_path, "workflow_action_invocations")
    run = cli("run", "transform.text.render", "--tenant", "acme", "--input", '{"template": "hi"}', "--json")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    error = json.loads(run.stdout)["error"]
    assert "mspflow db upgrade" in error["message"] and "try again" not in error["message"]
    assert error["retryable"] is False
    listed = one_line_error(cli("invocations", "--tenant", "acme"))
    assert "workflow_action_invocations" in listed and "mspflow db upgrade" in listed


def test_expected_availability_warnings_are_one_line_each(cli: Cli, tmp_path: Path) -> None:
    assert cli("db", "upgrade").returncode == 0
    drop(tmp_path, "rmm_integrations")
    result = cli("catalog", "--tenant", "acme", "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "rmm:acme" in warnings[0] and "no such table" in warnings[0]
    assert json.loads(result.stdout)["records"][-1]["unavailable_reason"] == "resolver_error"


@pytest.mark.parametrize("option", ["--tenant", "--run-id", "--step-path"])
def test_arguments_that_are_not_utf8_are_refused_in_one_line(cli: Cli, option: str) -> None:
    args = {"--tenant": "acme", "--run-id": "r1", "--step-path": "s1"} | {option: "bad-\udcff"}
    flat = [part for pair in args.items() for part in pair]
    human = cli("run", "transform.text.render", "--input", '{"template": "hi"}', *flat)
    assert option in one_line_error(human) and "UTF-8" in human.stderr
    as_json = cli("run", "transform.text.render", "--input", '{"template": "hi"}', *flat, "--json")
    assert as_json.returncode == 1 and "Traceback" not in as_json.stderr
    assert json.loads(as_json.stdout)["error"]["code"] == "VALIDATION_ERROR"


def test_a_100k_deep_input_is_a_validation_error(cli: Cli, tmp_path: Path) -> None:
    for deep in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        (tmp_path / "deep.json").write_text(deep)
        result = cli("run", "transform.text.render", "--tenant", "acme", "--input", f"@{tmp_path / 'deep.json'}",
                     "--json")
        assert result.returncode == 1 and "Traceback" not in result.stderr and "RecursionError" not in result.stderr
        assert json.loads(result.stdout)["error"]["code"] == "VALIDATION_ERROR"


def test_catalog_all_tenants_streams_one_json_object_per_tenant_per_line(cli: Cli) -> None:
    cli("tenant", "connect", "globex", "acme")
    cli("tenant", "connect", "acme", "acme")
    cli("tenant", "disconnect", "acme", "acme")
    result = cli("catalog", "--all-tenants", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [c["tenant"] for c in lines] == ["acme", "globex"]
    assert [c["records"][-1]["available"] for c in lines] == [False, True]
    human = cli("catalog", "--all-tenants")
    assert human.returncode == 0 and "globex" in human.stdout and "acme (inactive)" in human.stdout
    assert cli("catalog").returncode == 2 and cli("catalog", "--tenant", "a", "--all-tenants").returncode == 2


def test_tenant_show_lists_secret_names_through_the_secret_store(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mspflow.app import App
    from mspflow.cli import app
    from mspflow.db.engine import Database

    class Vault:  # a host's own secret store: nothing in tenant_secrets
        def names(self, session: object, tenant: str) -> list[str]:
            return ["vault_api_key"] if tenant == "acme" else []

    db = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    monkeypatch.setattr(App, "from_env", classmethod(lambda cls: cls(db=db, secrets=Vault())))  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["tenant", "show", "acme", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["secrets"] == ["vault_api_key"]


def test_loading_plugins_imports_neither_sqlalchemy_nor_httpx(tmp_path: Path) -> None:
    """The cold-start guard (issue 11): `mspflow plugins --json` with every installed plugin loaded (their
    clients subclass VendorClient, which imports httpx only when a client is made)."""
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print('HEAVY', sorted(m for m in ('sqlalchemy', 'sqlalchemy.orm', 'httpx', "
             "'httpcore', 'dramatiq', 'mspflow.db.models') if m in sys.modules), file=sys.stderr))\n"
             "sys.argv = ['mspflow', 'plugins', '--json']\n"
             "from mspflow.cli import main\n"
             "main()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    env |= {"MSPFLOW_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    names = {p["name"] for p in json.loads(result.stdout)["plugins"]}
    assert {"huntress", "levelio", "ninjaone", "tacticalrmm", "teams"} <= names
    assert "HEAVY []" in result.stderr, result.stderr
