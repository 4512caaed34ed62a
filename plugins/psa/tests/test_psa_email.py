"""email.send through a real SMTP server on loopback (aiosmtpd): STARTTLS with auth, SMTPS, the queued default."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from psa_support import OTHER, TENANT, Desk

from mspflow.testing.live import free_port

PASSWORD = "s3cret-smtp-pass"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def _cert(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"mailer" and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Inbox, dict[str, Any]]]:
    """A STARTTLS server that requires auth (login ``mailer``), and its settings."""
    cert, key = _cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
                        authenticator=_authenticate, auth_require_tls=True)
    server.start()
    yield inbox, {"host": "127.0.0.1", "port": port, "security": "starttls", "from": "help@msp.example",
                  "ca_file": str(cert)}
    server.stop()


@pytest.fixture
def smtps(tmp_path: Path) -> Iterator[tuple[Inbox, dict[str, Any]]]:
    cert, key = _cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=tls)
    server.start()
    yield inbox, {"host": "127.0.0.1", "port": port, "security": "smtps", "from": "help@msp.example",
                  "ca_file": str(cert)}
    server.stop()


def configure(desk: Desk, settings: dict[str, Any], *, username: str | None = "mailer",
              password: str = PASSWORD, tenant: str = TENANT) -> None:
    desk.add("RmmIntegration", tenant=tenant, provider="psa", is_active=True, settings={"smtp": settings})
    with desk.app.db.session() as s:
        if username:
            desk.app.secrets.set(s, tenant, "smtp_username", username)
            desk.app.secrets.set(s, tenant, "smtp_password", password)


MAIL = {"to": ["peter@initech.example"], "cc": ["milton@initech.example"], "subject": "Your ticket",
        "body_text": "We fixed the printer.", "body_html": "<p>We fixed the printer.</p>"}


def recorded_inputs(desk: Desk, action: str) -> list[dict[str, Any]]:
    return [r["input"] for r in desk.rows("workflow_action_invocations") if r["action_id"] == action]


def test_without_a_server_the_message_is_queued_and_says_so(desk: Desk) -> None:
    out = desk.ok("email.send", MAIL)
    assert out["status"] == "queued" and "no outbound SMTP server" in out["detail"]
    rows = desk.rows("email_messages")
    assert [(r["status"], r["subject"], r["body_text"]) for r in rows] == [
        ("queued", "Your ticket", "We fixed the printer.")]
    recorded = recorded_inputs(desk, "email.send")[0]
    assert recorded["body_text"] == recorded["body_html"] == "[REDACTED]" and recorded["subject"] == "Your ticket"


def test_starttls_with_auth_sends_once_and_a_replay_sends_nothing(desk: Desk, smtp: tuple[Inbox, dict]) -> None:
    inbox, settings = smtp
    configure(desk, settings)
    t = desk.ticket()
    first = desk.ok("email.send", {**MAIL, "ticket_id": t["ticket_id"]}, idempotency_key="mail-1")
    again = desk.ok("email.send", {**MAIL, "ticket_id": t["ticket_id"]}, idempotency_key="mail-1")
    assert first == again and first["status"] == "sent"
    assert first["recipients"] == ["peter@initech.example", "milton@initech.example"]
    assert len(inbox.messages) == 1
    envelope = inbox.messages[0]
    assert envelope.mail_from == "help@msp.example" and envelope.rcpt_tos == first["recipients"]
    assert b"We fixed the printer." in envelope.content and b"Subject: Your ticket" in envelope.content
    assert [r["status"] for r in desk.rows("email_messages")] == ["sent"]
    everything = str(desk.rows("workflow_action_invocations")) + str(first) + str(desk.rows("audit_log"))
    assert PASSWORD not in everything and "We fixed the printer" not in everything


def test_smtps_without_auth(desk: Desk, smtps: tuple[Inbox, dict]) -> None:
    inbox, settings = smtps
    configure(desk, settings, username=None)
    assert desk.ok("email.send", MAIL)["status"] == "sent" and len(inbox.messages) == 1


def test_a_refused_login_says_what_to_fix_and_sends_nothing(desk: Desk, smtp: tuple[Inbox, dict]) -> None:
    inbox, settings = smtp
    configure(desk, settings, password="wrong-password")
    err = desk.fail("email.send", MAIL)
    assert err.code == "INTEGRATION_INACTIVE" and "smtp_password" in err.message and "wrong-password" not in str(
        err.to_dict())
    assert inbox.messages == [] and desk.rows("email_messages") == []


def test_an_unreachable_server_is_retryable(desk: Desk) -> None:
    configure(desk, {"host": "127.0.0.1", "port": free_port(), "security": "none"}, username=None)
    err = desk.fail("email.send", MAIL)
    assert err.code == "TRANSIENT_FAILURE" and err.retryable


def test_bad_addresses_header_injection_and_other_tenants_tickets(desk: Desk) -> None:
    err = desk.fail("email.send", {**MAIL, "to": ["ok@example.com", "not-an-address"],
                                   "subject": "hi\r\nBcc: all@example.com"})
    assert {f["path"] for f in err.details["fields"]} == {"to.1", "subject"}
    assert desk.fail("email.send", {"to": ["a@b.example"], "subject": "x"}).code == "VALIDATION_ERROR"
    theirs = desk.ok("tickets.create", {"title": "theirs"}, tenant=OTHER)["ticket"]
    assert desk.fail("email.send", {**MAIL, "ticket_id": theirs["ticket_id"]}).code == "NOT_FOUND"


def test_standalone_the_server_can_be_given_as_tenant_secrets(desk: Desk) -> None:
    """`mspflow tenant set-secret T smtp_host` ...: no PSA settings row needed."""
    inbox, port = Inbox(), free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        with desk.app.db.session() as s:
            for name, value in (("host", "127.0.0.1"), ("port", str(port)), ("security", "none"),
                                ("from", "desk@msp.example")):
                desk.app.secrets.set(s, TENANT, f"smtp_{name}", value)
        out = desk.ok("email.send", MAIL)
    finally:
        server.stop()
    assert out["status"] == "sent" and [m.mail_from for m in inbox.messages] == ["desk@msp.example"]
