"""Developer and CI sessions; usually run through ./dev (./dev test, ./dev lint, ./dev demo, ./dev bench)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nox
import nox.command

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint"]

ROOT = Path(__file__).resolve().parent


def plugin_dirs() -> list[Path]:
    return sorted(p.parent.relative_to(ROOT) for p in ROOT.glob("plugins/*/pyproject.toml"))


def install(session: nox.Session, core: str) -> None:
    """pip install -e CORE plus every plugin, unless this venv already got exactly that.

    The installs are editable, so code changes need no reinstall; only a change to a pyproject.toml
    (dependencies, entry points) or to the set of plugins does.
    """
    session.env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    args = ["-e", core]
    for plugin in plugin_dirs():
        args += ["-e", str(plugin)]
    digest = hashlib.sha256(repr(args).encode())
    for pyproject in [Path("pyproject.toml"), *(p / "pyproject.toml" for p in plugin_dirs())]:
        digest.update((ROOT / pyproject).read_bytes())
    stamp = Path(str(session.virtualenv.location)) / ".mspflow-install-stamp"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        session.log("pyproject.toml files unchanged since this venv's last install: skipping pip")
        return
    session.install(*args)
    stamp.write_text(digest.hexdigest())


def names_a_path(arg: str) -> bool:
    return not arg.startswith("-") and (ROOT / arg.split("::")[0]).exists()


def parallel(session: nox.Session, workers: str, dist: str) -> list[str]:
    """pytest-xdist arguments, unless the caller chose (``-n``/``-p no:xdist`` in the arguments) or runs a few tests.

    ``MSPFLOW_TEST_WORKERS`` sets the number of processes (``0``: none). Every process starts its own
    throwaway PostgreSQL and Redis servers, so tests never share a database.
    """
    if any(a == "-n" or a.startswith(("-n", "--numprocesses", "-p")) for a in session.posargs):
        return []
    if any(map(names_a_path, session.posargs)) or "-k" in session.posargs:
        return []
    workers = os.environ.get("MSPFLOW_TEST_WORKERS", workers)
    return [] if workers == "0" else ["-n", workers, "--dist", dist]


@nox.session
def tests(session: nox.Session) -> None:
    session.run(str(ROOT / "scripts" / "ensure-system-deps"), external=True)
    install(session, ".[test]")
    # Default to the core and every plugin test-suite, unless the arguments name what to run.
    # tests/reliability is its own session (`nox -s reliability`): it prints its figures table.
    paths = ["tests", "--ignore=tests/reliability",
             *(str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("plugins/*/tests")))]
    if any(map(names_a_path, session.posargs)):
        paths = []
    session.run(
        "python",  # `python -m pytest` puts the repo root on sys.path, so tests.servers always imports
        "-m",
        "pytest",
        *paths,
        *parallel(session, "4", "load"),
        *session.posargs,
        env={
            "MSPFLOW_STRICT_PLUGINS": "1",
            # An empty value turns it off: pytest can then cache its assertion rewrites between runs.
            "PYTHONDONTWRITEBYTECODE": "",
        },
    )


@nox.session
def reliability(session: nox.Session) -> None:
    """The reliability suite (tests/reliability): one figure per area, printed as a table; fails on a miss.

    ``MSPFLOW_RELIABILITY_PROFILE=full`` runs the long profile; CI runs the short default (``ci``).
    """
    session.run(str(ROOT / "scripts" / "ensure-system-deps"), external=True)
    install(session, ".[test]")
    # One process per test file (the defects area counts its reproduced defects within its own file); the
    # areas mostly wait on servers, workers and vendors, so three processes share two cores well.
    session.run("python", "-m", "pytest", "tests/reliability", *parallel(session, "3", "loadfile"),
                *session.posargs,
                env={"MSPFLOW_STRICT_PLUGINS": "1", "PYTHONDONTWRITEBYTECODE": ""})


@nox.session
def lint(session: nox.Session) -> None:
    install(session, ".[lint,test]")  # mypy needs pytest for mspflow.testing
    failed = []
    # Both always run, so one pass reports everything. mypy: [tool.mypy] names the package (core/).
    for command in (["ruff", "check", ".", *session.posargs], ["mypy"]):
        try:
            session.run(*command)
        except nox.command.CommandFailed:
            failed.append(command[0])
    if failed:
        session.error(f"failed: {', '.join(failed)}")


@nox.session
def docs(session: nox.Session) -> None:
    """The MkDocs site in strict mode; docs/gen_reference.py writes the CLI and hooks reference from the code."""
    install(session, ".[docs]")
    site = Path(str(session.virtualenv.location)) / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site), *session.posargs)
    session.log(f"built {site}")


@nox.session
def demo(session: nox.Session) -> None:
    install(session, ".")
    session.run("mspflow", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    scripts = sorted(p for p in Path("benchmarks").glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        session.skip("no benchmarks/*.py")
    session.run(str(ROOT / "scripts" / "ensure-system-deps"), external=True)
    install(session, ".[test]")
    for script in scripts:
        session.run("python", str(script), *session.posargs)
