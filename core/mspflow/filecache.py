"""What the CLI's file caches share: where they live, a fingerprint of code on disk, and safe reads and writes.

Two caches use it: :mod:`mspflow.schema_cache` (the actions' JSON Schemas) and :mod:`mspflow.snapshot`
(what ``mspflow catalog`` needs from the loaded plugins). Each is one JSON file under
``$MSPFLOW_HOME/cache/`` holding ``{"format": N, "fingerprint": "...", ...}``; a file whose format or
fingerprint differs, or that cannot be read, is ignored, and one that cannot be written costs only the
next start the work it would have saved. Example::

    digest = hashlib.sha256(b"my-cache 1")
    if add_code(digest, "mspflow", mspflow.__path__, []):          # every .py file: path, size, mtime, inode
        key = digest.hexdigest()
        data = read_json(cache_path("mine.json"), 1, key) or build()
        write_json(cache_path("mine.json"), {"format": 1, "fingerprint": key, **data})
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol


class Digest(Protocol):
    """What :func:`add_code` feeds (a ``hashlib`` object)."""

    def update(self, data: bytes, /) -> None: ...


def cache_path(name: str) -> Path:
    """``$MSPFLOW_HOME/cache/<name>`` (see :func:`mspflow.db.engine.default_home`)."""
    from mspflow.db.engine import default_home

    return default_home() / "cache" / name


def add_code(digest: Digest, name: str, roots: Iterable[str], files: Iterable[str | None]) -> bool:
    """Add the path, size, modification time and inode of ``files`` and of every ``.py`` file under ``roots``
    (a package's ``__path__``) to ``digest``, under the label ``name``; False when one cannot be stat'ed."""
    found = list(files)
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            found += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".py")]
    for file in found:
        if not file:
            return False
        try:
            st = os.stat(file)
        except OSError:
            return False
        digest.update(f"\0{name}\0{file}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}".encode())
    return True


def read_json(path: Path, fmt: int, key: str) -> dict[str, Any] | None:
    """The cache file at ``path`` when it holds format ``fmt`` and fingerprint ``key``, else None."""
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != fmt or data.get("fingerprint") != key:
        return None
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, then a rename); an OSError is ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, path)  # readers see the old file or the new one, never half of one
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # a read-only home only costs the next start the work
