"""Tenant secrets: encrypted at rest, scoped to one tenant, key from MSPFLOW_SECRET_KEY or a key file."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from mspflow.db.engine import Database
from mspflow.secrets import DatabaseSecretStore, SecretKeyMissing, load_fernet


def test_secrets_are_encrypted_and_tenant_scoped(db: Database) -> None:
    store = DatabaseSecretStore(Fernet(Fernet.generate_key()))
    with db.session() as s:
        store.set(s, "acme", "ninjaone_client_secret", "acme-value")
        store.set(s, "globex", "ninjaone_client_secret", "globex-value")
        store.set(s, "acme", "ninjaone_client_secret", "acme-rotated")
    with db.session() as s:
        assert store.get(s, "acme", "ninjaone_client_secret") == "acme-rotated"
        assert store.get(s, "globex", "ninjaone_client_secret") == "globex-value"
        assert store.get(s, "initech", "ninjaone_client_secret") is None
        assert store.names(s, "acme") == ["ninjaone_client_secret"]
        raw = s.execute(text("SELECT value FROM tenant_secrets")).scalars().all()
    assert all(b"value" not in bytes(v) and b"rotated" not in bytes(v) for v in raw)
    with db.session() as s:
        assert store.delete(s, "acme", "ninjaone_client_secret") is True
        assert store.delete(s, "acme", "ninjaone_client_secret") is False
        assert store.get(s, "globex", "ninjaone_client_secret") == "globex-value"


def test_key_comes_from_the_environment_first(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    key = Fernet.generate_key()
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", key.decode())
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    token = load_fernet(db).encrypt(b"v")
    assert Fernet(key).decrypt(token) == b"v"
    assert not (tmp_path / "x.sqlite3.key").exists()
    monkeypatch.setenv("MSPFLOW_SECRET_KEY", "not-a-key")
    with pytest.raises(SecretKeyMissing, match=r"not a valid Fernet key"):
        load_fernet(db)


def test_embedded_default_keeps_one_key_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MSPFLOW_SECRET_KEY", raising=False)
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    token = load_fernet(db).encrypt(b"v")
    assert load_fernet(db).decrypt(token) == b"v"  # the second load reads the same file
    assert (tmp_path / "x.sqlite3.key").stat().st_mode & 0o077 == 0


def test_a_server_database_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MSPFLOW_SECRET_KEY", raising=False)
    db = Database("postgresql+psycopg://u:hunter2@db.internal/psa")
    with pytest.raises(SecretKeyMissing) as err:
        load_fernet(db)
    assert "MSPFLOW_SECRET_KEY" in str(err.value) and "hunter2" not in str(err.value)
