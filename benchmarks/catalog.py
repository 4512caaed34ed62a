"""Catalog benchmark: one catalog (5 and 50 modules), every tenant's catalog, CLI cold start.

Prints figures; asserts nothing. Run with ``./dev bench`` or ``python benchmarks/catalog.py``.
Absolute timings on shared machines move 10-50% between runs, so each figure comes with a ratio to
a baseline measured in the same run:

- one catalog: build time for 5 and 50 modules x 8 actions, on SQLite and PostgreSQL;
- all tenants: ``App.catalogs`` over 10,000 tenants x 50 modules (the installed plugins and core
  groups, one Teams-gated module, the rest synthetic RMM-style modules) on PostgreSQL, against
  10,000 calls of ``App.catalog`` in the same run: statements per resolver family and time, for the
  catalog objects and for one JSON line per tenant (``json_lines``, what ``--all-tenants --json``
  prints), plus a check that both produce the same bytes;
- cold start of ``mspflow catalog --json`` as a ratio to ``python -c "import pydantic, sqlalchemy,
  typer, httpx"``.

PostgreSQL is a throwaway server (``_servers.postgresql``), or ``MSPFLOW_BENCH_POSTGRESQL_URL``
(rows the benchmark writes there are left behind). ``MSPFLOW_BENCH_TENANTS`` changes the 10,000.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _servers
from pydantic import BaseModel, create_model
from sqlalchemy import event, insert

from mspflow.app import App
from mspflow.availability import rmm_integration, teams_integration
from mspflow.catalog import build_catalog, json_lines
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.db.models import RmmIntegration, TeamsIntegration, TenantAddon
from mspflow.modules import Module
from mspflow.plugins import Plugins
from mspflow.registry import Registry
from mspflow.tenants import connect, known_tenants

MSPFLOW = str(Path(sys.executable).with_name("mspflow"))


class DeviceInput(BaseModel):
    device_id: str
    reason: str | None = None


def make_registry(n_modules: int, actions_per_module: int = 8, registry: Registry | None = None) -> Registry:
    registry = registry or Plugins(entry_points=[], strict=True).registry
    for i in range(n_modules):
        vendor = f"vendor{i:02d}"
        module = Module(f"app:{vendor}", label=vendor, availability=rmm_integration(vendor))
        for j in range(actions_per_module):
            out = create_model(f"Out{i}_{j}", ok=(bool, ...), count=(int, 0))

            def handler(params: DeviceInput, ctx: Any) -> Any:
                return None

            module.action(f"{vendor}.devices.op{j}", label=f"Op {j}", description="Benchmark op.",
                          side_effectful=j % 2 == 1, input_model=DeviceInput, output_model=out)(handler)
        registry.add_module(module, f"mspflow-{vendor}")
    return registry


def measure_build(db: Database, n_modules: int, rounds: int = 50) -> tuple[float, float, int]:
    registry = make_registry(n_modules)
    with db.session() as s:
        for i in range(0, n_modules, 2):
            connect(s, registry, "bench", f"vendor{i:02d}")
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    with db.sessions() as s:
        build_catalog(registry, s, "bench").to_json()  # warm: JSON Schemas are cached per action
    times = []
    for _ in range(rounds):
        with db.sessions() as s:
            start = time.perf_counter()
            build_catalog(registry, s, "bench").to_json()
            times.append(time.perf_counter() - start)
    event.listen(db.engine, "before_cursor_execute", listener)
    with db.sessions() as s:
        build_catalog(registry, s, "bench")
    event.remove(db.engine, "before_cursor_execute", listener)
    data_statements = [q for q in statements if not q.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))]
    return statistics.median(times) * 1000, min(times) * 1000, len(data_statements)


def median_run(cmd: list[str], env: dict[str, str], runs: int) -> float:
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # warm the OS caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def family(statement: str) -> str:
    q = statement.lstrip().upper()
    if q.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
        return "savepoint, release"
    if "UNION" in q:
        return "tenant list"
    if "RMM_INTEGRATIONS" in q:
        return "rmm_integrations"
    if "TEAMS_INTEGRATIONS" in q:
        return "teams"
    return "other"


@contextmanager
def counting(db: Database) -> Iterator[Counter[str]]:
    seen: Counter[str] = Counter()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen[family(statement)] += 1

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def seed_tenants(db: Database, tenants: list[str], vendors: list[str]) -> None:
    """A mix per tenant: NinjaOne, Tactical RMM (some inactive), two synthetic vendors (one not yet
    connected), and the Teams add-on in its states for a quarter of them."""
    now = datetime.now(UTC)
    rmm: list[dict[str, Any]] = []
    addons: list[dict[str, Any]] = []
    teams: list[dict[str, Any]] = []
    for i, tenant in enumerate(tenants):
        row = {"tenant": tenant, "settings": {}, "is_active": True, "connected_at": now}
        if i % 2 == 0:
            rmm.append({**row, "provider": "ninjaone"})
        if i % 3 == 0:
            rmm.append({**row, "provider": "tacticalrmm", "is_active": i % 6 == 0})
        rmm.append({**row, "provider": vendors[i % len(vendors)]})
        rmm.append({**row, "provider": vendors[(i + 7) % len(vendors)], "connected_at": None})
        if i % 4 == 0:
            addons.append({"tenant": tenant, "addon_key": "teams", "expires_at": None if i % 8 else now - timedelta(1)})
            teams.append({"tenant": tenant, "install_status": ("active", "install_pending", "error")[i % 3]})
    with db.engine.begin() as conn:
        conn.execute(insert(RmmIntegration), rmm)
        conn.execute(insert(TenantAddon), addons)
        conn.execute(insert(TeamsIntegration), teams)


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def all_tenants(url: str, n_tenants: int) -> None:
    db = Database(url)
    upgrade(db)
    plugins = Plugins(strict=True)
    installed = sorted(plugins.registry.modules)
    registry = plugins.registry
    if "app:teams" not in registry.modules:  # the Teams-gated module: the real plugin's when it is installed
        teams = Module("app:teams", label="Microsoft Teams", availability=teams_integration(),
                       allowed_action_ids=("transform.text.render",))
        registry.add_module(teams, "bench-teams")
    n_synthetic = 50 - len(registry.modules)
    make_registry(n_synthetic, actions_per_module=4, registry=registry)
    vendors = [f"vendor{i:02d}" for i in range(n_synthetic)]
    tenants = [f"bench-{i:05d}" for i in range(n_tenants)]
    seed_tenants(db, tenants, vendors)
    app = App(db=db, plugins=plugins)
    for _ in app.catalogs(tenants[:10]):  # warm: the schema check, JSON Schemas cached per action
        pass
    json.dumps(app.catalog(tenants[0]).to_json())

    def one_by_one() -> int:
        return sum(1 for t in tenants if app.catalog(t))

    def streamed() -> int:
        return sum(1 for _ in app.catalogs(tenants))

    with db.sessions() as session:
        known = known_tenants(session)  # what App.catalogs() answers: here also the single-catalog runs' tenant

    def one_by_one_json() -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        for t in known:
            line = json.dumps(app.catalog(t).to_json(), separators=(",", ":"), default=str) + "\n"
            digest.update(line.encode())
            size += len(line)
        return size, digest.hexdigest()

    def streamed_json() -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        for line in json_lines(app.catalogs()):  # tenants=None: every tenant the database knows
            digest.update((line + "\n").encode())
            size += len(line) + 1
        return size, digest.hexdigest()

    print(f"all tenants on PostgreSQL: {n_tenants:,} tenants x {len(registry.modules)} modules "
          f"({len(installed)} installed: {', '.join(installed)}; 1 Teams-gated; {n_synthetic} synthetic RMM), "
          f"{len(registry.actions)} actions")
    with counting(db) as per_stmts:
        per_s, _ = timed(one_by_one)
    with counting(db) as all_stmts:
        all_s, _ = timed(streamed)
    families = sorted(set(per_stmts) | set(all_stmts))
    print(f"  {'statements':22s} {'App.catalog x N':>16s} {'App.catalogs':>14s}")
    for name in families:
        print(f"  {name:22s} {per_stmts[name]:16,d} {all_stmts[name]:14,d}")
    print(f"  {'total':22s} {sum(per_stmts.values()):16,d} {sum(all_stmts.values()):14,d}  "
          f"(App.catalogs: chunks of 1,000 tenants, one statement per family per chunk)")
    print(f"  catalog objects: App.catalog x {n_tenants:,} {per_s:6.2f} s ({per_s / n_tenants * 1e6:.0f} us each); "
          f"App.catalogs {all_s:6.2f} s; ratio {per_s / all_s:.1f}x")
    with counting(db) as json_stmts:
        all_json_s, (size_all, digest_all) = timed(streamed_json)
    per_json_s, (size_per, digest_per) = timed(one_by_one_json)
    print(f"  JSON lines:      App.catalog x {len(known):,} {per_json_s:6.2f} s; json_lines(App.catalogs()) "
          f"{all_json_s:6.2f} s; ratio {per_json_s / all_json_s:.1f}x; {size_all / 1e6:,.0f} MB, "
          f"identical: {'yes' if (size_all, digest_all) == (size_per, digest_per) else 'NO'}; "
          f"statements {dict(sorted(json_stmts.items()))}")
    with counting(db) as one_stmts:
        list(app.catalogs(tenants, chunk_size=n_tenants))
    print(f"  one chunk of all {n_tenants:,} tenants (chunk_size={n_tenants:,}): statements "
          f"{dict(sorted(one_stmts.items()))}")
    db.dispose()


def main() -> None:
    n_tenants = int(os.environ.get("MSPFLOW_BENCH_TENANTS", "10000"))
    with tempfile.TemporaryDirectory() as tmp, _servers.postgresql() as pg:
        print(f"PostgreSQL: {pg.note}")
        targets = [("sqlite", f"sqlite:///{tmp}/bench.sqlite3"), ("postgresql", pg.url)]
        print("catalog build (median / best of 50, ms; statements per catalog incl. none for savepoints)")
        for name, url in targets:
            db = Database(url)
            upgrade(db)
            for n in (5, 50):
                median, best, stmts = measure_build(db, n)
                print(f"  {name:10s} {n:3d} modules x 8 actions: {median:7.2f} ms median, "
                      f"{best:7.2f} ms best, {stmts} statement(s)")
            db.dispose()

        all_tenants(pg.url, n_tenants)

        env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
        env["MSPFLOW_HOME"] = str(Path(tmp) / "home")
        subprocess.run([MSPFLOW, "db", "upgrade"], env=env, capture_output=True, check=True)
        runs = 9
        cli = median_run([MSPFLOW, "catalog", "--tenant", "acme", "--json"], env, runs)
        base = median_run([sys.executable, "-c", "import pydantic, sqlalchemy, typer, httpx"], env, runs)
        print(f"cold start, median of {runs}: `mspflow catalog --json` {cli * 1000:.0f} ms; "
              f"`import pydantic, sqlalchemy, typer, httpx` {base * 1000:.0f} ms; ratio {cli / base:.2f}")


if __name__ == "__main__":
    main()
