"""CLI cold start: ``mspflow plugins --json`` and ``mspflow catalog --tenant x --json``.

Prints figures; asserts nothing. Run with ``./dev bench`` or ``python benchmarks/cli.py [runs]``.
Each command runs as a fresh process with every installed plugin selected (in the dev venv: every
plugins/* folder), on a scratch embedded database created beforehand. The warm-up runs also write the
catalog's caches in that scratch home, as any earlier ``mspflow catalog`` would: the JSON Schema cache
and the registry snapshot (``mspflow.snapshot``), so the timed catalog answers from the snapshot without
importing a plugin. For comparison, the same catalog also runs on a second home whose snapshot cannot be
written (``cache/registry.json`` is a directory there): the full plugin load, JSON Schemas still cached.
The figure that matters is the ratio to ``python -c "import pydantic, sqlalchemy, typer, httpx, pluggy"``
(the libraries the CLI cannot avoid) measured in the same run, interleaved, because absolute timings on
shared machines move 10-50% between runs. Goal: at most 1.5x.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MSPFLOW = str(Path(sys.executable).with_name("mspflow"))
BASELINE = [sys.executable, "-c", "import pydantic, sqlalchemy, typer, httpx, pluggy"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
        # An installed package has its bytecode compiled; let the warm-up runs write it (as they warm the OS caches)
        # even where PYTHONDONTWRITEBYTECODE is set, or every run would compile the sources the baseline never has.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["MSPFLOW_HOME"] = str(Path(tmp) / "home")
        no_snapshot = env | {"MSPFLOW_HOME": str(Path(tmp) / "no-snapshot")}
        (Path(tmp) / "no-snapshot" / "cache" / "registry.json").mkdir(parents=True)  # never written nor read
        for home in (env, no_snapshot):
            subprocess.run([MSPFLOW, "db", "upgrade"], env=home, capture_output=True, check=True)
        catalog = [MSPFLOW, "catalog", "--tenant", "x", "--json"]
        commands = {
            "baseline": (BASELINE, env),
            "mspflow plugins --json": ([MSPFLOW, "plugins", "--json"], env),
            "mspflow catalog --tenant x --json": (catalog, env),
            "  the same, full plugin load (no snapshot)": (catalog, no_snapshot),
        }
        plugins = subprocess.run(commands["mspflow plugins --json"][0], env=env, capture_output=True, text=True)
        for cmd, cmd_env in commands.values():  # warm the OS caches, write the caches
            subprocess.run(cmd, env=cmd_env, capture_output=True, check=False)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):  # interleaved, so a busy moment on the machine hits every command alike
            for name, (cmd, cmd_env) in commands.items():
                times[name].append(timed(cmd, cmd_env))
    base = statistics.median(times["baseline"])
    loaded = plugins.stdout.count('"distribution"') - plugins.stdout.count('"entry_point"')
    print(f"CLI cold start, median of {runs} ({loaded} plugin distribution(s) loaded incl. the core's built-ins)")
    label = 'python -c "import pydantic, sqlalchemy, typer, httpx, pluggy"'
    print(f"  {label:58s} {base * 1000:6.0f} ms  1.00x")
    for name in list(commands)[1:]:
        median = statistics.median(times[name])
        goal = "" if name.startswith(" ") else "  (goal <= 1.50x)"  # the comparison has none
        print(f"  {name:58s} {median * 1000:6.0f} ms  {median / base:.2f}x{goal}")


if __name__ == "__main__":
    main()
