"""Catalog benchmark: build time for 5 and 50 modules, statements per catalog, CLI cold start.

Prints figures; asserts nothing. Run with ``./dev bench`` or ``python benchmarks/catalog.py``.
Cold start is reported as a ratio to ``python -c "import pydantic, sqlalchemy, typer, httpx"``
measured in the same run, because absolute timings on shared machines move 10-50% between runs.
Set ``MSPFLOW_BENCH_POSTGRESQL_URL`` to also measure on a migrated PostgreSQL database.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, create_model
from sqlalchemy import event

from mspflow.availability import rmm_integration
from mspflow.catalog import build_catalog
from mspflow.db.engine import Database
from mspflow.db.migrate import upgrade
from mspflow.modules import Module
from mspflow.plugins import Plugins
from mspflow.registry import Registry
from mspflow.tenants import connect

MSPFLOW = str(Path(sys.executable).with_name("mspflow"))


class DeviceInput(BaseModel):
    device_id: str
    reason: str | None = None


def make_registry(n_modules: int, actions_per_module: int = 8) -> Registry:
    registry = Plugins(entry_points=[], strict=True).registry
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


def main() -> None:
    targets: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        targets.append(("sqlite", f"sqlite:///{tmp}/bench.sqlite3"))
        if url := os.environ.get("MSPFLOW_BENCH_POSTGRESQL_URL"):
            targets.append(("postgresql", url))
        print("catalog build (median / best of 50, ms; statements per catalog incl. none for savepoints)")
        for name, url in targets:
            db = Database(url)
            upgrade(db)
            for n in (5, 50):
                median, best, stmts = measure_build(db, n)
                print(f"  {name:10s} {n:3d} modules x 8 actions: {median:7.2f} ms median, "
                      f"{best:7.2f} ms best, {stmts} statement(s)")
            db.dispose()

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
