"""Tenant-scoped secrets, encrypted at rest.

The default store keeps Fernet ciphertext in ``tenant_secrets``. The key comes from
``MSPFLOW_SECRET_KEY`` (a Fernet key: ``python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"``); the embedded default creates a private key file
(mode 0600) beside its SQLite database instead. A host with its own vault implements
:class:`SecretStore`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete, select

if TYPE_CHECKING:
    from cryptography.fernet import Fernet
    from sqlalchemy.orm import Session

    from mspflow.db.engine import Database

KEY_ENV = "MSPFLOW_SECRET_KEY"
KEY_FILE_SUFFIX = ".key"


class SecretKeyMissing(RuntimeError):
    """No encryption key is configured for a database that is not the embedded default."""


class SecretStore(Protocol):
    """Where tenant secrets live. Every method is scoped to one tenant.

    ``all`` returns every secret of the tenant in one round trip: each action call reads it once, on its
    first secret read or vendor client, so that every value is known to the call's redactor. A store
    without ``all`` still works (:func:`all_secrets` falls back to ``names`` plus one ``get`` each).
    """

    def get(self, session: Session, tenant: str, name: str) -> str | None: ...

    def all(self, session: Session, tenant: str) -> dict[str, str]: ...

    def set(self, session: Session, tenant: str, name: str, value: str) -> None: ...

    def delete(self, session: Session, tenant: str, name: str) -> bool: ...

    def names(self, session: Session, tenant: str) -> list[str]: ...


def all_secrets(store: SecretStore, session: Session, tenant: str) -> dict[str, str]:
    """Every secret of ``tenant``: ``store.all`` when the store has it, else one ``get`` per name."""
    read_all = getattr(store, "all", None)
    if callable(read_all):
        return dict(read_all(session, tenant))
    found = {name: store.get(session, tenant, name) for name in store.names(session, tenant)}
    return {name: value for name, value in found.items() if value is not None}


def load_fernet(db: Database) -> Fernet:
    """The cipher for ``db``: ``MSPFLOW_SECRET_KEY``, else the embedded default's key file."""
    from cryptography.fernet import Fernet

    if key := os.environ.get(KEY_ENV):
        try:
            return Fernet(key.encode())
        except ValueError as exc:
            raise SecretKeyMissing(f"{KEY_ENV} is not a valid Fernet key (32 url-safe base64 bytes)") from exc
    path = db.sqlite_path
    if path is None:
        raise SecretKeyMissing(
            f"set {KEY_ENV} to a Fernet key to store tenant secrets in {db.display_url()} "
            "(generate one with: python -c \"from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())\")"
        )
    return Fernet(_key_file(path.with_name(path.name + KEY_FILE_SUFFIX)))


def _key_file(path: Path) -> bytes:
    from cryptography.fernet import Fernet

    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class DatabaseSecretStore:
    """Secrets in ``tenant_secrets``, encrypted with Fernet; every query is scoped to one tenant."""

    def __init__(self, fernet: Fernet) -> None:
        self._fernet = fernet

    def get(self, session: Session, tenant: str, name: str) -> str | None:
        from mspflow.db.models import TenantSecret as S

        blob = session.execute(select(S.value).where(S.tenant == tenant, S.name == name)).scalar()
        return None if blob is None else self._fernet.decrypt(blob).decode()

    def set(self, session: Session, tenant: str, name: str, value: str) -> None:
        from mspflow.db.models import TenantSecret

        token = self._fernet.encrypt(value.encode())
        row = session.get(TenantSecret, (tenant, name))
        if row is None:
            session.add(TenantSecret(tenant=tenant, name=name, value=token))
        else:
            row.value = token

    def delete(self, session: Session, tenant: str, name: str) -> bool:
        from mspflow.db.models import TenantSecret as S

        result = session.execute(delete(S).where(S.tenant == tenant, S.name == name))
        return bool(getattr(result, "rowcount", 0))

    def names(self, session: Session, tenant: str) -> list[str]:
        from mspflow.db.models import TenantSecret as S

        return list(session.execute(select(S.name).where(S.tenant == tenant).order_by(S.name)).scalars())

    def all(self, session: Session, tenant: str) -> dict[str, str]:
        from mspflow.db.models import TenantSecret as S

        rows = session.execute(select(S.name, S.value).where(S.tenant == tenant)).all()
        return {name: self._fernet.decrypt(blob).decode() for name, blob in rows}
