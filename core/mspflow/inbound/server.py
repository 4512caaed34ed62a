"""The ASGI application behind ``mspflow serve``: verify, journal once, answer; a worker does the rest.

A host mounts it in its own server; ``mspflow serve`` runs it under Uvicorn::

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from mspflow import App
    from mspflow.inbound.server import create_app

    psa = Starlette(routes=[Mount("/mspflow", app=create_app(App.from_env()))])
    # the vendor's URL is then https://psa.example/mspflow/hooks/<provider>/<token>

Routes: ``POST /hooks/{provider}/{token}`` and ``GET /healthz``. Answers:

=====  ========================================================================================
200    accepted (journaled, queued for a worker) or duplicate (this delivery id was journaled before)
401    bad or missing signature or secret: nothing is journaled, nothing of the payload is logged (403
       for a verifier whose ``refusal_status`` says so, e.g. the Bot Framework's JWT)
404    no receiver for the provider, or no connection with this token
413    body larger than the cap (``MSPFLOW_INBOUND_MAX_BODY_BYTES``, default 1 MiB)
415    a media type the receiver does not accept, or a body it cannot read
503    the database is unavailable (with ``Retry-After``): the vendor retries
500    anything else; the body never carries a traceback (it goes to the log, scrubbed)
=====  ========================================================================================

The request path makes no vendor call and runs no rule: parsing into typed events and handling them
happen in a worker (:mod:`mspflow.inbound.processing`). A delivery the plugin cannot map (say, an
unknown organization) is answered 200 like any other and recorded IGNORED by the worker, with the reason.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mspflow.inbound.journal import insert_once, max_body_bytes, new_row
from mspflow.inbound.keys import connection_and_secrets, redactor_for
from mspflow.inbound.receivers import Receiver, media_kind
from mspflow.inbound.verify import InboundRequest, body_hash
from mspflow.redaction import MAX_STORED_BYTES, cap

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mspflow.app import App

log = logging.getLogger("mspflow.inbound")

RETRY_AFTER_S = 30
MAX_DELIVERY_ID = 200
MAX_STORED_HEADERS = 8 * 1024


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


NOT_FOUND = Answer(404, {"error": "not found"})
UNAUTHORIZED = Answer(401, {"error": "missing or invalid signature"})
UNAVAILABLE = Answer(503, {"error": "temporarily unavailable; retry later"}, {"Retry-After": str(RETRY_AFTER_S)})
INTERNAL = Answer(500, {"error": "internal error"})


class Inbox:
    """The request path: everything between the raw request and the journal row."""

    def __init__(self, app: App, *, max_body: int | None = None, enqueue: bool = True) -> None:
        self.app = app
        self.max_body = max_body or max_body_bytes()
        self.enqueue = enqueue

    def _stored(self, payload: Any, body: bytes) -> Any:
        """The payload as journaled: capped at 4 x the body cap of JSON (a body under the cap re-encodes to
        at most about 3 x its size, so only a pathological one is cut); small bodies skip the measuring."""
        return payload if len(body) <= MAX_STORED_BYTES else cap(payload, 4 * self.max_body)

    def too_large(self) -> Answer:
        return Answer(413, {"error": "body too large", "max_bytes": self.max_body})

    def accept(self, receiver: Receiver, token: str, request: InboundRequest) -> Answer:
        """Verify, decode, journal once; the answer for the vendor. Runs in a worker thread."""
        try:
            return self._accept(receiver, token, request)
        except Exception as exc:
            from mspflow.secrets import SecretKeyMissing

            if isinstance(exc, SecretKeyMissing):  # set-up, not the delivery: the vendor retries once it is fixed
                log.error("inbound %s: cannot read tenant secrets (%s); answered 503", receiver.provider, exc)
                return UNAVAILABLE
            if _database_unavailable(exc):
                log.warning("inbound %s: database unavailable (%s); answered 503", receiver.provider,
                            _one_line(exc))
                return UNAVAILABLE
            # A receiver's delivery_id function, say, raised. The frames go to the log, not the exception's
            # message: it may quote the payload or a secret.
            log.error("inbound %s: delivery failed unexpectedly (%s); answered 500\n%s", receiver.provider,
                      type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)).rstrip())
            return INTERNAL

    def _accept(self, receiver: Receiver, token: str, request: InboundRequest) -> Answer:
        app = self.app
        db = app.db
        provider = receiver.provider
        with db.engine.connect() as conn:  # one pooled connection: a read transaction, then the insert
            with conn.begin(), Session(bind=conn) as session:
                # The connection and every secret of its tenant (the key to verify with, and what to scrub).
                connection, known = connection_and_secrets(app.secrets, session, provider, token)
                if connection is None:
                    log.info("inbound %s: unknown connection token; answered 404", provider)
                    return NOT_FOUND
                load = getattr(receiver.verify, "load", None)
                if callable(load):  # per-tenant values the verifier needs (e.g. the bot app id)
                    request = replace(request, context=dict(load(session, connection.tenant)))
            secret = known.get(receiver.secret) if receiver.verify.needs_secret else None
            try:
                verified = receiver.verify.verify(request, secret)
            except Exception as exc:  # a custom verifier that raises refuses the delivery
                log.info("inbound %s: verifier raised %s for connection %s; answered 401", provider,
                         type(exc).__name__, connection.connection_id)
                verified = False
            if not verified:
                why = "no webhook secret is stored for the tenant" if receiver.verify.needs_secret and not secret \
                    else "missing or invalid signature or secret"
                status = getattr(receiver.verify, "refusal_status", 401)
                log.info("inbound %s: %s (connection %s, tenant %s); answered %d", provider, why,
                         connection.connection_id, connection.tenant, status)
                return UNAUTHORIZED if status == 401 else Answer(status, {"error": "forbidden: " + why})
            decoded = decode(receiver, request)
            if isinstance(decoded, Answer):
                log.info("inbound %s: %s (connection %s); answered 415", provider, decoded.body["error"],
                         connection.connection_id)
                return decoded
            content_type, payload = decoded
            delivery_id = _delivery_id(receiver, request, payload)
            redactor = redactor_for(frozenset(known.values()))
            hidden = set(receiver.verify.secret_headers())
            headers = redactor.data({k: v for k, v in request.headers.items() if k not in hidden})
            if len(json.dumps(headers)) > MAX_STORED_HEADERS:
                headers = {"_truncated": "true"}
            row = new_row(tenant=connection.tenant, provider=provider, connection_id=connection.connection_id,
                          delivery_id=delivery_id, payload=self._stored(redactor.data(payload), request.body),
                          headers=headers, content_type=content_type, received_at=datetime.now(UTC))
            if db.dialect == "sqlite":
                conn.execution_options(mspflow_write=True)  # BEGIN IMMEDIATE: SQLite's one writer
            try:
                with conn.begin():
                    inserted = conn.execute(insert_once(db.dialect), row).first() is not None
            except IntegrityError:  # a database without ON CONFLICT: the unique constraint said "replay"
                inserted = False
        if not inserted:
            log.info("inbound %s: delivery %s for tenant %s already journaled; answered 200 (duplicate)", provider,
                     delivery_id, connection.tenant)
            return Answer(200, {"status": "duplicate"})
        log.info("inbound %s: delivery %s journaled as event %s for tenant %s", provider, delivery_id,
                 row["event_id"], connection.tenant)
        if self.enqueue:
            try:
                app.dispatcher.inbound.send(row["event_id"], provider)
            except Exception as exc:  # journaled all the same: a restart or `mspflow inbound replay` resumes it
                log.warning("inbound event %s journaled but not queued (%s); it stays RECEIVED until "
                            "`mspflow inbound replay %s`", row["event_id"], _one_line(exc), row["event_id"])
        return Answer(200, {"status": "accepted", "event_id": row["event_id"]})


def decode(receiver: Receiver, request: InboundRequest) -> tuple[str | None, Any] | Answer:
    """(content type, decoded body), or the 415 answer."""
    raw_type = request.header("content-type")
    accepts = [t.lower() for t in receiver.content_types]
    refused = Answer(415, {"error": "unsupported media type", "accepts": list(receiver.content_types)})
    if raw_type is None or not raw_type.strip():
        if not receiver.allow_missing_content_type:
            return refused
        media = accepts[0]
    else:
        media = raw_type.split(";", 1)[0].strip().lower()
        if media not in accepts:
            return refused
    kind = media_kind(media)
    unreadable = Answer(415, {"error": f"the body is not readable as {media}", "accepts": list(receiver.content_types)})
    try:
        if kind == "json":
            return raw_type, json.loads(request.body)
        text = request.body.decode("utf-8")
        if kind == "form":
            return raw_type, {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text, keep_blank_values=True).items()}
        return raw_type, text
    except (ValueError, UnicodeDecodeError):
        return unreadable


def _delivery_id(receiver: Receiver, request: InboundRequest, payload: Any) -> str:
    found = receiver.delivery_id(request.headers, payload) if receiver.delivery_id is not None else None
    if not found:
        return body_hash(request.body)
    found = str(found)
    return found if len(found) <= MAX_DELIVERY_ID else body_hash(found.encode())


def _database_unavailable(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, IntegrityError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from mspflow.db.migrate import SchemaNotCurrent

    return (isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError)) or isinstance(
        exc, (PoolTimeout, SchemaNotCurrent))


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0]}" if text else type(orig).__name__


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(app: App | None = None, *, max_body_bytes: int | None = None, enqueue: bool | None = None,
               resume: bool = True) -> Starlette:
    """The inbound ASGI app for ``app`` (default: ``App.from_env()``, closed on shutdown).

    :param max_body_bytes: the body cap (default ``MSPFLOW_INBOUND_MAX_BODY_BYTES`` or 1 MiB).
    :param enqueue: send each journaled delivery to a worker (default: unless ``MSPFLOW_INBOUND_ENQUEUE`` is
        ``0``); ``False`` only journals, leaving deliveries RECEIVED (benchmarks).
    :param resume: at startup, send deliveries a previous process left waiting (embedded broker only;
        on Redis the messages are still in the queue).
    """
    from contextlib import asynccontextmanager

    from mspflow.app import App as AppClass

    owned = app is None
    if enqueue is None:
        from mspflow.settings import env_flag

        enqueue = env_flag("MSPFLOW_INBOUND_ENQUEUE", default=True)
    instance = app if app is not None else AppClass.from_env()
    inbox = Inbox(instance, max_body=max_body_bytes, enqueue=enqueue)

    async def receive(request: Request) -> JSONResponse:
        provider = request.path_params["provider"]
        receiver = instance.registry.receivers.get(provider)
        if receiver is None:
            return NOT_FOUND.response()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > inbox.max_body):
            if not length.isdigit():
                return Answer(400, {"error": "invalid Content-Length"}).response()
            return inbox.too_large().response()
        body = await _read_body(request, inbox.max_body)
        if body is None:
            return inbox.too_large().response()
        inbound = InboundRequest(method=request.method, path=request.url.path,
                                 headers={k.lower(): v for k, v in request.headers.items()}, body=body,
                                 query=dict(request.query_params))
        answer = await run_in_threadpool(inbox.accept, receiver, request.path_params["token"], inbound)
        return answer.response()

    async def healthz(request: Request) -> JSONResponse:
        ok = await run_in_threadpool(_database_ok, instance)
        if ok:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_S)})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if enqueue and resume:
            await run_in_threadpool(_resume, instance)
        try:
            yield
        finally:
            if owned:
                await run_in_threadpool(instance.close)

    return Starlette(routes=[Route("/hooks/{provider}/{token}", receive, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])], lifespan=lifespan)


def _database_ok(app: App) -> bool:
    from sqlalchemy import text

    try:
        with app.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        if _database_unavailable(exc):
            return False
        raise


def _resume(app: App) -> None:
    if not app.dispatcher.embedded:
        return
    try:
        count = app.dispatcher.inbound.resume()
    except Exception as exc:
        if not _database_unavailable(exc):
            raise
        log.warning("inbound: could not look for waiting deliveries at startup (%s)", _one_line(exc))
        return
    if count:
        log.warning("inbound: %d journaled delivery(ies) were waiting for a worker; sent them again", count)


def serve_app() -> Starlette:
    """Uvicorn factory for ``mspflow serve --workers N``: one app per worker process, from the environment."""
    return create_app()
