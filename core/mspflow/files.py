"""Where files mspflow keeps (ticket attachments) live: a directory, named by a storage reference.

The directory is ``MSPFLOW_ATTACHMENTS_DIR``, else ``attachments`` in ``MSPFLOW_HOME`` (the embedded
default's home, next to its database). A reference looks like ``file:<tenant-hash>/<sha256>``:
content-addressed per tenant, so the same bytes stored twice are one file and no tenant can name
another's. A host with object storage maps ``storage_ref`` to its own store.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENV = "MSPFLOW_ATTACHMENTS_DIR"


def root() -> Path:
    from mspflow.db.engine import default_home

    configured = os.environ.get(ENV)
    return Path(configured).expanduser() if configured else default_home() / "attachments"


def _tenant_dir(tenant: str) -> str:
    return hashlib.sha256(tenant.encode()).hexdigest()[:32]


def put(tenant: str, content: bytes) -> tuple[str, str]:
    """Store ``content`` for ``tenant``; returns (storage reference, sha256)."""
    digest = hashlib.sha256(content).hexdigest()
    folder = root() / _tenant_dir(tenant)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest
    if not path.exists():
        tmp = folder / f".{digest}.{os.getpid()}.tmp"
        tmp.write_bytes(content)
        tmp.replace(path)
    return f"file:{_tenant_dir(tenant)}/{digest}", digest


def read(tenant: str, ref: str) -> bytes:
    """The bytes behind ``ref`` (which must be one of ``tenant``'s)."""
    prefix = f"file:{_tenant_dir(tenant)}/"
    if not ref.startswith(prefix) or "/" in ref[len(prefix):]:
        raise FileNotFoundError(ref)
    return (root() / _tenant_dir(tenant) / ref[len(prefix):]).read_bytes()
