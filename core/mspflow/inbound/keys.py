"""A tenant's secrets on the request path: the key to verify with and every value to scrub, in one query.

The default store (:class:`mspflow.secrets.DatabaseSecretStore`) is read with one statement, joined to the
connection lookup, and each ciphertext is decrypted once per process (Fernet ciphertext changes with
every write, so a rotated key is never served from the cache). Any other store is asked through its
methods (``all(session, tenant)`` when it has it, else ``names`` and ``get``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from mspflow.db.models import InboundConnection, TenantSecret
from mspflow.redaction import Redactor

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.inbound.journal import Connection
    from mspflow.secrets import SecretStore

_C, _S = InboundConnection, TenantSecret
_SECRETS = select(_S.name, _S.value).where(_S.tenant == bindparam("tenant"))
_CONNECTION_AND_SECRETS = select(_C.connection_id, _C.tenant, _S.name, _S.value).outerjoin(
    _S, _S.tenant == _C.tenant).where(_C.token == bindparam("token"), _C.provider == bindparam("provider"))
_PLAIN: dict[tuple[int, bytes], str] = {}
_PLAIN_MAX = 4096


def _fernet_of(store: SecretStore) -> Any:
    from mspflow.secrets import DatabaseSecretStore

    return getattr(store, "_fernet", None) if isinstance(store, DatabaseSecretStore) else None


def tenant_secrets(store: SecretStore, session: Session, tenant: str) -> dict[str, str]:
    """Every secret of ``tenant``, by name."""
    fernet = _fernet_of(store)
    if fernet is not None:
        rows = session.connection().execute(_SECRETS, {"tenant": tenant}).all()
        return {name: _decrypt(fernet, blob) for name, blob in rows}
    read_all = getattr(store, "all", None)
    if callable(read_all):
        return dict(read_all(session, tenant))
    found = {name: store.get(session, tenant, name) for name in store.names(session, tenant)}
    return {name: value for name, value in found.items() if value is not None}


def connection_and_secrets(store: SecretStore, session: Session, provider: str,
                           token: str) -> tuple[Connection | None, dict[str, str]]:
    """The connection a delivery URL names and every secret of its tenant; (None, {}) for an unknown token."""
    from mspflow.inbound.journal import Connection, find_connection

    fernet = _fernet_of(store)
    if fernet is None or not token or len(token) > 64:
        connection = find_connection(session, provider, token)
        return connection, ({} if connection is None else tenant_secrets(store, session, connection.tenant))
    rows = session.connection().execute(_CONNECTION_AND_SECRETS, {"token": token, "provider": provider}).all()
    if not rows:
        return None, {}
    found = Connection(rows[0].connection_id, rows[0].tenant, provider)
    return found, {r.name: _decrypt(fernet, r.value) for r in rows if r.name is not None}


def redactor_for(values: frozenset[str]) -> Redactor:
    """A redactor knowing ``values``; the same set gets the same (read-only) redactor."""
    return _redactor(values)


@lru_cache(maxsize=256)
def _redactor(values: frozenset[str]) -> Redactor:
    return Redactor(set(values))


def _decrypt(fernet: Any, blob: bytes) -> str:
    key = (id(fernet), bytes(blob))
    value = _PLAIN.get(key)
    if value is None:
        value = fernet.decrypt(key[1]).decode()
        if len(_PLAIN) >= _PLAIN_MAX:
            _PLAIN.clear()
        _PLAIN[key] = value
    return value
