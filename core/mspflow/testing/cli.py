"""Black-box helpers: the installed ``mspflow`` command and a served simulator, as an operator runs them.

Examples::

    env = cli_env(tmp_path / "home", plugin="ninjaone")
    with served_simulator("ninjaone", env) as url:
        run_cli(env, "tenant", "connect", "acme", "ninjaone", "--instance-url", url)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MSPFLOW = str(Path(sys.executable).with_name("mspflow"))


def cli_env(home: Path, *, plugin: str) -> dict[str, str]:
    """This process's environment without ``MSPFLOW_*``, on a private home, loading only ``plugin``;
    http vendor URLs are allowed so a tenant can point at a loopback simulator."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    return clean | {"MSPFLOW_HOME": str(home), "MSPFLOW_LOAD_PLUGINS": plugin,
                    "MSPFLOW_ALLOW_HTTP_VENDOR_URLS": "1", "COLUMNS": "200"}


def run_cli(env: dict[str, str], *args: str, stdin: str = "", ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``mspflow ARGS``; with ``ok`` (default) a non-zero exit fails the test with its output."""
    result = subprocess.run([MSPFLOW, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@contextmanager
def served_simulator(vendor: str, env: dict[str, str]) -> Iterator[str]:
    """``mspflow sim serve VENDOR`` in a subprocess for the block; yields its base URL."""
    proc = subprocess.Popen([MSPFLOW, "sim", "serve", vendor], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "listening on http://" in line, line
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
