"""``email.send`` (real SMTP through the tenant's outbound server) and ``tickets.add_attachment``.

**Email.** The tenant's outbound server is its PSA settings (``rmm_integrations`` row of provider ``psa``,
``settings["smtp"]``: ``host``, ``port``, ``security`` = ``starttls`` (default) | ``smtps`` | ``none``, ``from``,
optional ``ca_file`` for a private CA) — or, standalone, the secrets ``smtp_host``, ``smtp_port``,
``smtp_security``, ``smtp_from`` — and its secrets ``smtp_username`` / ``smtp_password`` (scrubbed from
everything recorded). Without a server — the embedded default — the message is kept in ``email_messages``
as ``queued`` and the output says so. Every message is recorded; bodies are kept out of the invocation
record (``redact_input``). A replayed call returns the recorded result and sends nothing.

**Attachments** come as base64 ``content`` or from a public ``url`` (https only, public addresses only, a
size cap, never with the tenant's vendor credentials: :meth:`mspflow.ActionContext.fetch_public`), and are
kept in the attachments directory under a storage reference.
"""

from __future__ import annotations

import base64
import binascii
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from mspflow import ActionContext, ActionError, exactly_one_of

from .base import CATEGORY, psa, ticket_row

Address = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")]
Header = Annotated[str, Field(min_length=1, max_length=998, pattern=r"^[^\r\n]*$")]
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
DEFAULT_PORTS = {"starttls": 587, "smtps": 465, "none": 25}


class EmailInput(BaseModel):
    to: Annotated[list[Address], Field(min_length=1, max_length=50)]
    cc: Annotated[list[Address], Field(max_length=50)] = Field(default_factory=list)
    subject: Header
    body_text: Annotated[str, Field(max_length=1_000_000)] = Field(
        description="The plain-text body (every client reads it).")
    body_html: Annotated[str, Field(max_length=1_000_000)] | None = Field(
        None, description="Optionally, an HTML alternative.")
    reply_to: Address | None = None
    ticket_id: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        None, description="Record the message against this ticket.")


class EmailOutput(BaseModel):
    message_id: str
    status: Literal["sent", "queued"]
    detail: str
    recipients: list[str]


def _smtp_settings(ctx: ActionContext) -> dict[str, Any] | None:
    """The tenant's outbound server: its PSA settings' ``smtp``, else the secrets ``smtp_host``,
    ``smtp_port``, ``smtp_security`` and ``smtp_from`` (settable with ``mspflow tenant set-secret``)."""
    smtp = ctx.settings.get("smtp")
    if isinstance(smtp, dict) and smtp.get("host"):
        return dict(smtp)
    host = ctx.secret("smtp_host", required=False)
    if not host:
        return None
    return {"host": host, "port": ctx.secret("smtp_port", required=False),
            "security": ctx.secret("smtp_security", required=False), "from": ctx.secret("smtp_from", required=False)}


def _deliver(ctx: ActionContext, smtp: dict[str, Any], message: EmailMessage, recipients: list[str]) -> None:
    security = str(smtp.get("security") or "starttls")
    if security not in DEFAULT_PORTS:
        raise ActionError.internal(f"smtp security must be starttls, smtps or none, not {security!r}")
    host, port = str(smtp["host"]), int(smtp.get("port") or DEFAULT_PORTS[security])
    username = ctx.secret("smtp_username", required=False)
    password = ctx.secret("smtp_password", required=False)
    tls = ssl.create_default_context(cafile=smtp.get("ca_file") or None)
    try:
        server: smtplib.SMTP = (smtplib.SMTP_SSL(host, port, timeout=30, context=tls) if security == "smtps"
                                else smtplib.SMTP(host, port, timeout=30))
    except (OSError, smtplib.SMTPException) as exc:
        raise ActionError("TRANSIENT_FAILURE", f"cannot reach the SMTP server ({type(exc).__name__})",
                          details={"reason": "SMTP_UNREACHABLE"}, retryable=True) from None
    with server:
        try:
            if security == "starttls":
                server.starttls(context=tls)
            if username:
                server.login(username, password or "")
        except smtplib.SMTPAuthenticationError:
            raise ActionError("INTEGRATION_INACTIVE", "the SMTP server refused the tenant's smtp_username / "
                              "smtp_password; store working ones", details={"reason": "SMTP_AUTH"}) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ActionError("TRANSIENT_FAILURE", f"SMTP set-up failed ({type(exc).__name__})",
                              details={"reason": "SMTP_SETUP"}, retryable=True) from None
        ctx.sending_side_effect()  # from here the outcome may be unknown: never sent twice by the engine
        try:
            refused = server.send_message(message, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused:
            raise ActionError.validation("the SMTP server refused every recipient", fields=["to"]) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ActionError("TRANSIENT_FAILURE", f"SMTP delivery failed ({type(exc).__name__}); it may or "
                              "may not have been sent", details={"outcome": "unknown"}, retryable=False) from None
        if refused:
            ctx.logger.warning("SMTP server refused %d recipient(s)", len(refused))


@psa.action("email.send", label="Send email", category=CATEGORY, side_effectful=True, permission="email:send",
            redact_input=("body_text", "body_html"))
def send_email(params: EmailInput, ctx: ActionContext) -> EmailOutput:
    """Send an email through the tenant's outbound SMTP server (or queue it when none is configured)."""
    if params.ticket_id is not None:
        ticket_row(ctx, params.ticket_id)
    smtp = _smtp_settings(ctx)
    sender = str((smtp or {}).get("from") or ctx.settings.get("email_from") or "mspflow@localhost")
    recipients = list(dict.fromkeys([*params.to, *params.cc]))
    row = ctx.records.insert("email_messages", {
        "status": "queued", "from_address": sender, "to_addresses": params.to, "cc_addresses": params.cc,
        "subject": params.subject, "body_text": params.body_text, "body_html": params.body_html,
        "ticket_id": params.ticket_id})
    if smtp is None:
        detail = ("no outbound SMTP server is configured for this tenant; the message is queued in the outbox "
                  "(email_messages) and was not sent")
    else:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, ", ".join(params.to), params.subject
        if params.cc:
            message["Cc"] = ", ".join(params.cc)
        if params.reply_to:
            message["Reply-To"] = params.reply_to
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(idstring=row["message_id"], domain=sender.rpartition("@")[2] or None)
        message.set_content(params.body_text)
        if params.body_html is not None:
            message.add_alternative(params.body_html, subtype="html")
        _deliver(ctx, smtp, message, recipients)
        ctx.records.update("email_messages", {"message_id": row["message_id"]},
                           {"status": "sent", "sent_at": ctx.records.now()})
        detail = f"sent to {len(recipients)} recipient(s) through the tenant's SMTP server"
    ctx.records.audit({"message_id": row["message_id"], "ticket_id": params.ticket_id})
    return EmailOutput(message_id=row["message_id"], status="sent" if smtp else "queued", detail=detail,
                       recipients=recipients)


class AttachmentInput(BaseModel):
    ticket_id: Annotated[str, Field(min_length=1, max_length=255)]
    file_name: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")]
    content_base64: str | None = Field(None, max_length=MAX_ATTACHMENT_BYTES * 4 // 3 + 4,
                                       description="The file itself, base64.")
    url: Annotated[str, Field(max_length=2048)] | None = Field(
        None, description="Or a public https URL to fetch it from (10 MiB at most).")
    content_type: Annotated[str, Field(max_length=255)] | None = None

    _one_source = exactly_one_of("content_base64", "url")


class AttachmentOutput(BaseModel):
    attachment_id: str
    ticket_id: str
    file_name: str
    size_bytes: int
    sha256: str
    storage_ref: str


@psa.action("tickets.add_attachment", label="Add ticket attachment", category=CATEGORY, side_effectful=True,
            permission="ticket:update", redact_input=("content_base64",))
def add_attachment(params: AttachmentInput, ctx: ActionContext) -> AttachmentOutput:
    """Attach a file (given, or fetched from a public https URL) to a ticket."""
    ticket_row(ctx, params.ticket_id)
    content_type = params.content_type
    if params.content_base64 is not None:
        try:
            content = base64.b64decode(params.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ActionError.validation("content_base64 is not valid base64", fields=["content_base64"]) from None
        if len(content) > MAX_ATTACHMENT_BYTES:
            raise ActionError.validation(f"the file is larger than {MAX_ATTACHMENT_BYTES} bytes",
                                         fields=["content_base64"], reason="TOO_LARGE")
    else:
        assert params.url is not None
        content, fetched_type = ctx.fetch_public(params.url, max_bytes=MAX_ATTACHMENT_BYTES)
        content_type = content_type or fetched_type
    ref, digest = ctx.store_file(content)
    row = ctx.records.insert("ticket_attachments", {
        "ticket_id": params.ticket_id, "file_name": params.file_name, "content_type": content_type,
        "size_bytes": len(content), "sha256": digest, "storage_ref": ref, "source_url": params.url})
    ctx.records.audit({"ticket_id": params.ticket_id, "attachment_id": row["attachment_id"]})
    return AttachmentOutput(attachment_id=row["attachment_id"], ticket_id=params.ticket_id,
                            file_name=params.file_name, size_bytes=len(content), sha256=digest, storage_ref=ref)


