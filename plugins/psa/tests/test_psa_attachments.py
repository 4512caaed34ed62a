"""tickets.add_attachment: given bytes or a public https URL; refused URLs never reach a socket."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import mspflow_psa.comms
import pytest
from psa_support import TENANT, Desk

from mspflow import vendor
from mspflow.files import read
from mspflow.vendor.network import GuardedBackend

PDF = b"%PDF-1.7 report" * 10
seen: list[httpx.Request] = []


def _files(request: httpx.Request) -> httpx.Response:
    seen.append(request)
    if request.url.path == "/big":
        return httpx.Response(200, content=iter([b"x" * 600, b"x" * 600]))  # streamed, no length
    if request.url.path == "/moved":
        return httpx.Response(302, headers={"location": "https://169.254.169.254/"})
    return httpx.Response(200, content=PDF, headers={"content-type": "application/pdf"})


@pytest.fixture
def files() -> Iterator[None]:
    seen.clear()
    vendor.mount("https://files.example.com", httpx.MockTransport(_files))
    yield
    vendor.unmount()


def test_given_bytes_are_stored_under_a_storage_reference(desk: Desk) -> None:
    t = desk.ticket()
    out = desk.ok("tickets.add_attachment", {"ticket_id": t["ticket_id"], "file_name": "log.txt",
                                             "content_base64": base64.b64encode(b"hello").decode()})
    assert out["size_bytes"] == 5 and read(TENANT, out["storage_ref"]) == b"hello"
    assert desk.rows("ticket_attachments")[0]["storage_ref"] == out["storage_ref"]
    recorded = next(r["input"] for r in desk.rows("workflow_action_invocations")
                if r["action_id"] == "tickets.add_attachment")
    assert recorded["content_base64"] == "[REDACTED]"
    err = desk.fail("tickets.add_attachment", {"ticket_id": t["ticket_id"], "file_name": "../x",
                                               "content_base64": "!!"})
    assert {f["path"] for f in err.details["fields"]} == {"file_name"}
    err = desk.fail("tickets.add_attachment", {"ticket_id": t["ticket_id"], "file_name": "x", "content_base64": "!!"})
    assert err.details["fields"][0]["path"] == "content_base64"


def test_a_public_https_url_is_fetched_without_credentials(desk: Desk, files: None) -> None:
    t = desk.ticket()
    with desk.app.db.session() as s:
        desk.app.secrets.set(s, TENANT, "ninjaone_client_secret", "vendor-credential-xyz")
    out = desk.ok("tickets.add_attachment", {"ticket_id": t["ticket_id"], "file_name": "report.pdf",
                                             "url": "https://files.example.com/report.pdf"})
    assert out["size_bytes"] == len(PDF) and read(TENANT, out["storage_ref"]) == PDF
    assert desk.rows("ticket_attachments")[0]["content_type"] == "application/pdf"
    headers = {k.lower(): v for k, v in seen[0].headers.items()}
    assert "authorization" not in headers and "cookie" not in headers
    assert "vendor-credential-xyz" not in str(seen[0].headers)


@pytest.mark.parametrize(("url", "reason"), [
    ("http://files.example.com/report.pdf", "SCHEME_REFUSED"),
    ("https://127.0.0.1/report.pdf", "ADDRESS_REFUSED"),
    ("https://169.254.169.254/latest/meta-data/", "ADDRESS_REFUSED"),
    ("https://intranet.example/report.pdf", "ADDRESS_REFUSED"),
    ("https://files.example.com/big", "TOO_LARGE"),
    ("https://files.example.com/moved", "REDIRECT_NOT_FOLLOWED"),
    ("https://user:pw@files.example.com/report.pdf", "CREDENTIALS_IN_URL"),
])
def test_refused_urls(desk: Desk, files: None, monkeypatch: pytest.MonkeyPatch, url: str, reason: str) -> None:
    real = GuardedBackend.resolve
    monkeypatch.setattr(GuardedBackend, "resolve", lambda self, host, port: ["10.20.30.40"]
                        if host == "intranet.example" else real(self, host, port))
    monkeypatch.setattr(mspflow_psa.comms, "MAX_ATTACHMENT_BYTES", 1000)
    monkeypatch.setenv("MSPFLOW_ALLOW_HTTP_VENDOR_URLS", "1")  # even where vendors may use loopback
    t = desk.ticket()
    err = desk.fail("tickets.add_attachment", {"ticket_id": t["ticket_id"], "file_name": "f", "url": url})
    assert err.code == "VALIDATION_ERROR" and err.details["reason"] == reason, err.to_dict()
    assert desk.rows("ticket_attachments") == []
    if reason in ("SCHEME_REFUSED", "ADDRESS_REFUSED", "CREDENTIALS_IN_URL"):
        assert seen == []
