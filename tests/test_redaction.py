"""Redaction: every secret of the tenant, in every encoding, scrubbed before anything is cut or stored."""

from __future__ import annotations

import ast
import base64
import html
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import text

from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.errors import ActionError
from mspflow.hookspecs import hookimpl
from mspflow.modules import action
from mspflow.plugins import Plugins
from mspflow.redaction import MASK, Redactor, cap, cap_json, truncate
from mspflow.secrets import DatabaseSecretStore

# Secrets with the characters each encoding changes: quotes, backslash, slash, plus, equals, unicode.
SECRETS = {
    "quote": 'pa"ss\'w0rd-with-quotes',
    "backslash": "C:\\vault\\k3y\\material",
    "slash_plus": "ab/cd+ef==gh/ij+kl=mn",
    "unicode": "päss-wört-ключ-🔑-1234",
    "plain": "sk_live_8Hq2ZpT0k9VvXwYz",
}

# Each: encode a text holding the secret, and decode it back (None: not reversible, checked otherwise).
TEXT_ENCODINGS: dict[str, tuple[Callable[[str], str], Callable[[str], str]]] = {
    "raw": (lambda t: t, lambda t: t),
    "json": (json.dumps, json.loads),
    "json_unicode": (lambda t: json.dumps(t, ensure_ascii=False), json.loads),
    "json_slashes": (lambda t: json.dumps(t).replace("/", "\\/"), json.loads),
    "json_in_json": (lambda t: json.dumps(json.dumps(t)), lambda t: json.loads(json.loads(t))),
    "quote": (lambda t: quote(t, safe=""), unquote),
    "quote_path": (quote, unquote),
    "quote_plus": (quote_plus, unquote_plus),
    "quote_lower_hex": (lambda t: _lower_hex(quote(t, safe="")), unquote),
    "html": (html.escape, html.unescape),
    "html_no_quotes": (lambda t: html.escape(t, quote=False), html.unescape),
    "repr": (repr, ast.literal_eval),
    "ascii": (ascii, ast.literal_eval),
}


def _lower_hex(encoded: str) -> str:
    import re

    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)


def _redactor_for_tenant() -> Redactor:
    r = Redactor()
    r.add_all(SECRETS.values())
    return r


@pytest.mark.parametrize("name", sorted(SECRETS))
@pytest.mark.parametrize("encoding", sorted(TEXT_ENCODINGS))
@pytest.mark.parametrize("context", ["{}", "Vendor said: {} (400)", "'{}\"", "{}{}"])
def test_a_secret_is_scrubbed_in_every_textual_encoding(name: str, encoding: str, context: str) -> None:
    secret = SECRETS[name]
    encode, decode = TEXT_ENCODINGS[encoding]
    stored = encode(context.format(secret, secret))
    scrubbed = _redactor_for_tenant().text(stored)
    assert MASK in scrubbed
    assert secret not in decode(scrubbed), (encoding, scrubbed)


@pytest.mark.parametrize("name", sorted(SECRETS))
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode], ids=["std", "urlsafe"])
@pytest.mark.parametrize("prefix", ["", "u", "us", "user:", "Basic-auth-user-name:"])
def test_a_secret_is_scrubbed_from_base64_wherever_it_starts(name: str, encode: Callable[[bytes], bytes],
                                                             prefix: str) -> None:
    secret = SECRETS[name]
    stored = encode(f"{prefix}{secret}@tail".encode()).decode()
    scrubbed = _redactor_for_tenant().text(stored)
    start, end = len(prefix.encode()), len(prefix.encode()) + len(secret.encode())
    first, last = 8 * start // 6, -(-8 * end // 6)  # the characters that encode the secret's bytes
    assert stored[first + 2:last - 2] not in scrubbed  # at most the 2 chars shared with a neighbour remain
    assert MASK in scrubbed


@given(st.text(min_size=4, max_size=40).filter(lambda s: s.strip() == s and len(s.strip()) >= 4))
def test_any_secret_is_scrubbed_raw_json_and_url_encoded(secret: str) -> None:
    r = Redactor([secret])
    for encode, decode in (TEXT_ENCODINGS["raw"], TEXT_ENCODINGS["json"], TEXT_ENCODINGS["quote_plus"],
                           TEXT_ENCODINGS["json_unicode"]):
        assert secret not in decode(r.text(encode(f"x {secret} y"))).replace(MASK, "\0")


def test_truncate_scrubs_before_it_cuts() -> None:
    secret = "k3y_" + "A" * 18  # 22 characters
    r = Redactor([secret])
    body = "x" * 290 + secret + " and more"
    assert body[:300][-10:] == secret[:10]  # what cutting first leaves: its first 10 of 22 characters
    cut = r.truncate(body, 300)
    assert len(cut) <= 300 and secret[:6] not in cut and cut.endswith(" …")
    assert truncate(body, 300, r) == cut
    assert MASK in truncate("x" * 280 + secret, 295, r)  # the mask fits: kept whole
    for limit in range(280, 305):  # never half a mask
        out = r.truncate("x" * 285 + secret + "y" * 50, limit)
        assert "[RE" not in out or MASK in out, (limit, out)
    assert truncate("short", 300) == "short"


def test_cap_scrubs_its_preview() -> None:
    secret = "s3cr3t-preview-material"
    r = Redactor([secret])
    capped = cap({"blob": "y" * (16 * 1024 - 20) + secret + "z" * 30_000}, redactor=r)
    assert capped["_truncated"] and secret[:5] not in capped["preview"]


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@given(_json_values, st.integers(min_value=2, max_value=400))
def test_cap_json_is_the_json_of_cap(value: Any, limit: int) -> None:
    """The ledger stores ``cap_json(output)``: the same text as dumping ``cap(output)``, multi-byte text included."""
    assert cap_json(value, limit) == json.dumps(cap(value, limit), default=str)


def test_keys_holding_a_secret_are_scrubbed_too() -> None:
    r = Redactor(["s3cr3t-as-a-key"])
    assert r.data({"s3cr3t-as-a-key": 1, "api_key": "x", "n": [None]}) == {MASK: 1, "api_key": MASK, "n": [None]}


# -- through the runtime: output, error, invocation row and log -----------------------------------------


class EchoInput(BaseModel):
    how: str


class EchoOutput(BaseModel):
    echoed: list[str]


def _echoes() -> list[str]:
    """Every tenant secret (also those this call never reads), in every encoding a vendor might echo."""
    found = []
    for secret in SECRETS.values():
        for encode, _ in TEXT_ENCODINGS.values():
            found.append(encode(f"vendor: {secret}."))
        found += [base64.b64encode(f"user:{secret}".encode()).decode(),
                  base64.urlsafe_b64encode(secret.encode()).decode()]
    return found


def echo(params: EchoInput, ctx: Any) -> EchoOutput:
    """Read one secret (as a vendor client would), then echo all of them the way a vendor might."""
    ctx.secret("plain")
    echoes = _echoes()
    ctx.logger.warning("vendor answered %s", " | ".join(echoes))
    if params.how == "error":
        raise ActionError("VALIDATION_ERROR", "Vendor API 400: " + " | ".join(echoes), details={"body": echoes})
    if params.how == "crash":
        raise RuntimeError(" | ".join(echoes))
    return EchoOutput(echoed=echoes)


def echo_nothing_read(params: EchoInput, ctx: Any) -> EchoOutput:
    """A call that reads no secret and makes no vendor call: nothing to scrub with."""
    return EchoOutput(echoed=[])


class EchoPlugin:
    @hookimpl
    def register_actions(self, register: Any) -> None:
        register(action("probe.secret.echo", label="Echo", handler=echo, side_effectful=True))
        register(action("probe.secret.quiet", label="Quiet", handler=echo_nothing_read))


@pytest.fixture
def echo_app(db: Database) -> App:
    store = DatabaseSecretStore(Fernet(Fernet.generate_key()))
    with db.session() as s:
        for name, value in SECRETS.items():
            store.set(s, "acme", name, value)
        store.set(s, "globex", "plain", "globex-only-secret")
    return App(db=db, plugins=Plugins(entry_points=[], extra=[("probe", EchoPlugin())], strict=True), secrets=store)


def _leaks(everything: str) -> list[str]:
    leaked = []
    for name, secret in SECRETS.items():
        for label, (encode, _) in TEXT_ENCODINGS.items():
            form = encode(secret)
            if label in {"repr", "ascii", "json", "json_unicode", "json_slashes", "json_in_json"}:
                form = form[1:-1] if label != "json_in_json" else form[2:-2]
            if form in everything:
                leaked.append(f"{name}/{label}")
        if base64.b64encode(secret.encode()).decode()[:-4] in everything:
            leaked.append(f"{name}/base64")
    return leaked


@pytest.mark.parametrize("how", ["ok", "error", "crash"])
def test_no_tenant_secret_reaches_output_error_row_or_log_in_any_encoding(
        echo_app: App, db: Database, caplog: pytest.LogCaptureFixture, how: str) -> None:
    caplog.set_level(logging.DEBUG)
    result = echo_app.execute("probe.secret.echo", tenant="acme", input={"how": how})
    assert result.ok is (how == "ok")
    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT * FROM workflow_action_invocations WHERE invocation_id = :i"),
                              {"i": result.invocation_id}).mappings().one()
    everything = json.dumps(result.to_json()) + repr(result.to_json()) + repr(dict(stored)) + caplog.text
    assert _leaks(everything) == []
    assert MASK in caplog.text


def test_the_first_secret_read_loads_the_tenant_set_in_one_query(echo_app: App, db: Database) -> None:
    from sqlalchemy import event

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert echo_app.execute("probe.secret.echo", tenant="acme", input={"how": "ok"}).ok
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len([s for s in seen if "tenant_secrets" in s]) == 1


def test_a_call_that_reads_no_secret_scrubs_only_secret_named_keys(echo_app: App) -> None:
    result = echo_app.execute("probe.secret.quiet", tenant="acme", input={"how": "ok"})
    assert result.ok and result.output == {"echoed": []}


def test_store_all_reads_one_tenant(db: Database) -> None:
    store = DatabaseSecretStore(Fernet(Fernet.generate_key()))
    with db.session() as s:
        store.set(s, "acme", "a", "acme-a")
        store.set(s, "acme", "b", "acme-b")
        store.set(s, "globex", "a", "globex-a")
    with db.session() as s:
        assert store.all(s, "acme") == {"a": "acme-a", "b": "acme-b"}
        assert store.all(s, "initech") == {}


def test_a_store_without_all_still_feeds_the_redactor(db: Database) -> None:
    from mspflow.secrets import all_secrets

    class OldStore:
        def __init__(self) -> None:
            self.data = {("acme", "a"): "acme-a", ("acme", "b"): "acme-b"}

        def get(self, session: Any, tenant: str, name: str) -> str | None:
            return self.data.get((tenant, name))

        def names(self, session: Any, tenant: str) -> list[str]:
            return sorted(n for t, n in self.data if t == tenant)

    assert all_secrets(OldStore(), None, "acme") == {"a": "acme-a", "b": "acme-b"}  # type: ignore[arg-type]
