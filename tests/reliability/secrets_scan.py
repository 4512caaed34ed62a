"""Where a planted secret could surface, and in which encodings it is looked for there."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from sqlalchemy import MetaData, select

from mspflow.db.engine import Database
from mspflow.redaction import is_secret_key

PLANTED = (
    'Pl@nt"ed\\Secret/1+=é🔑-A1b2C3d4E5',
    "plain-planted-secret-9f8e7d6c5b4a",
    "sp ace&<tag>'secret-zz11yy22",
)


def secret_values(secrets: Iterable[str]) -> set[str]:
    """Each secret, and for a JSON secret (OAuth credentials) every string inside it instead of the JSON."""
    out: set[str] = set()
    for secret in secrets:
        try:
            parsed = json.loads(secret)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):  # its secret parts: tokens, not e.g. the instance URL beside them
            out |= {v for k, v in parsed.items() if isinstance(v, str) and len(v) >= 8 and is_secret_key(k)}
        else:
            out.add(secret)
    return out


def encodings(value: str) -> set[str]:
    raw = value.encode()
    forms = {
        value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe=""),
        quote_plus(value), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="), html.escape(value), repr(value)[1:-1], value[:12],
    }
    return {f for f in forms if len(f) >= 8}


def occurrences(texts: Iterable[tuple[str, str]], secrets: Iterable[str]) -> list[str]:
    """``where: form`` for every form of every secret found in ``(where, text)``."""
    forms = {form: secret for secret in secret_values(secrets) for form in encodings(secret)}
    return [f"{where}: {form!r}" for where, text in texts for form in forms if form in text]


def table_texts(db: Database, skip: Iterable[str] = ("tenant_secrets",)) -> list[tuple[str, str]]:
    """Every row of every table, as text (the encrypted secret store itself excepted)."""
    meta = MetaData()
    meta.reflect(db.engine)
    out = []
    with db.engine.connect() as conn:
        for table in meta.sorted_tables:
            if table.name in skip:
                continue
            for row in conn.execute(select(table)):
                out.append((f"table {table.name}", json.dumps([str(v) for v in row], ensure_ascii=False)
                            + repr(tuple(row))))
    return out
