"""The error taxonomy every action failure is normalized onto.

Handlers raise :class:`ActionError` (or let the core map a vendor HTTP failure onto it); anything else
that escapes a handler becomes ``INTERNAL_ERROR`` without stack text. ``retryable`` tells workers
whether another attempt can help; ``retry_after`` (seconds) is honoured for rate limits.

Examples::

    raise ActionError.not_found("No device 1041 in NinjaOne", device_id="1041")
    raise ActionError("VALIDATION_ERROR", "end must be after start", details={"fields": ["window.end"]})
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import httpx

ErrorCode = Literal[
    "VALIDATION_ERROR",
    "PERMISSION_DENIED",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "TRANSIENT_FAILURE",
    "INTEGRATION_INACTIVE",
    "INTERNAL_ERROR",
]

ERROR_CODES: tuple[ErrorCode, ...] = (
    "VALIDATION_ERROR",
    "PERMISSION_DENIED",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "TRANSIENT_FAILURE",
    "INTEGRATION_INACTIVE",
    "INTERNAL_ERROR",
)

RETRYABLE_BY_DEFAULT: frozenset[ErrorCode] = frozenset({"RATE_LIMITED", "TRANSIENT_FAILURE"})

MAX_RETRY_AFTER_S = 3600.0
"""The longest wait :attr:`ActionError.retry_after` may ask for (one hour); longer hints are capped to it."""


def sane_delay(seconds: object) -> float | None:
    """``seconds`` as a finite delay in ``[0, MAX_RETRY_AFTER_S]``, or None when it is no number at all.

    ``inf`` and ``1e400`` are capped (the vendor asked for a very long wait); NaN, booleans and
    non-numbers are dropped; negatives become 0.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    try:
        value = float(seconds)
    except (OverflowError, ValueError):  # an int too large for a float
        return MAX_RETRY_AFTER_S if seconds > 0 else 0.0
    if math.isnan(value):
        return None
    return min(max(value, 0.0), MAX_RETRY_AFTER_S)


class ActionError(Exception):
    """A typed, user-facing action failure.

    :param code: one of :data:`ERROR_CODES`.
    :param message: what happened and, where possible, what to do next. Never contains secrets.
    :param details: small JSON-able facts; ``details["reason"]`` may carry a finer machine reason.
    :param retryable: defaults to True for ``RATE_LIMITED`` and ``TRANSIENT_FAILURE``.
    :param retry_after: seconds to wait before the next attempt, when the vendor said so; kept finite,
        at least 0 and at most :data:`MAX_RETRY_AFTER_S` (see :func:`sane_delay`).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}; use one of {', '.join(ERROR_CODES)}")
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.retryable = code in RETRYABLE_BY_DEFAULT if retryable is None else retryable
        self.retry_after = retry_after

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before the next attempt: None, or finite within ``[0, MAX_RETRY_AFTER_S]``."""
        return self._retry_after

    @retry_after.setter
    def retry_after(self, seconds: float | None) -> None:
        self._retry_after = None if seconds is None else sane_delay(seconds)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape printed by the CLI and stored in invocation records."""
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "details": self.details,
        }
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return out

    def with_retry_after(self, seconds: float) -> ActionError:
        """Set :attr:`retry_after` (seconds) and return the error, for chaining."""
        self.retry_after = sane_delay(seconds)
        return self

    def __repr__(self) -> str:
        return f"ActionError({self.code!r}, {self.message!r})"

    @classmethod
    def validation(cls, message: str, *, fields: list[str] | None = None, **details: Any) -> ActionError:
        """``VALIDATION_ERROR``; ``fields`` are input paths, reported in the same shape as schema errors."""
        if fields is not None:
            details["fields"] = [{"path": f, "message": message, "type": "value_error"} for f in fields]
        return cls("VALIDATION_ERROR", message, details=details)

    @classmethod
    def not_found(cls, message: str, **details: Any) -> ActionError:
        return cls("NOT_FOUND", message, details=details)

    @classmethod
    def conflict(cls, message: str, *, retryable: bool = False, **details: Any) -> ActionError:
        return cls("CONFLICT", message, details=details, retryable=retryable)

    @classmethod
    def permission_denied(cls, message: str, **details: Any) -> ActionError:
        return cls("PERMISSION_DENIED", message, details=details)

    @classmethod
    def inactive(cls, message: str, **details: Any) -> ActionError:
        return cls("INTEGRATION_INACTIVE", message, details=details)

    @classmethod
    def internal(cls, message: str = "The action failed unexpectedly.", **details: Any) -> ActionError:
        return cls("INTERNAL_ERROR", message, details=details)


# -- vendor HTTP failures onto the taxonomy ------------------------------------------------------------

_ERROR_FIELDS = ("error_description", "errorMessage", "message", "detail", "error", "title", "resultCode")

MESSAGE_LIMIT = 300
"""The longest vendor text quoted in a message, cut only after every secret was scrubbed from it."""

class _Scrubber(Protocol):
    def text(self, text: str) -> str: ...


def scrub_cut(text: str, redactor: _Scrubber | None, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` with every known secret masked, *then* cut to ``limit`` characters (never the other way
    round: a cut through a secret would leave its first characters unmasked)."""
    clean = redactor.text(text) if redactor is not None else text
    return clean if len(clean) <= limit else clean[: limit - 1] + "\u2026"


def _html_title(response: httpx.Response) -> str | None:
    """The page title of an HTML body (an error page is never quoted whole), or None if it is not HTML."""
    head = response.content[:512].lstrip().lower()
    if "html" not in response.headers.get("content-type", "").lower() and not head.startswith((b"<!doctype", b"<html")):
        return None
    import re

    found = re.search(r"<title[^>]*>(.*?)</title>", response.text, re.IGNORECASE | re.DOTALL)
    title = " ".join(found.group(1).split()) if found else ""
    return f"an HTML page titled {title[:100]!r}" if title else "an HTML page"


def vendor_message(response: httpx.Response, redactor: _Scrubber | None = None) -> str:
    """The vendor's own words from an error body (JSON string, common object fields, or text).

    Secrets known to ``redactor`` are scrubbed before the text is cut to :data:`MESSAGE_LIMIT`; an HTML
    page is reported by its title only.
    """
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        title = _html_title(response)
        if title is not None:
            return title
        return scrub_cut(response.text.strip(), redactor) or response.reason_phrase
    if isinstance(body, str):
        return scrub_cut(body, redactor)
    if isinstance(body, dict):
        for field in _ERROR_FIELDS:
            value = body.get(field)
            if isinstance(value, str) and value:
                return scrub_cut(value, redactor)
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return scrub_cut(str(value["message"]), redactor)
    import json

    return scrub_cut(json.dumps(body), redactor)


def sane_retry_after(seconds: float | None) -> float | None:
    """A vendor's retry hint fit to act on: NaN or negative is no advice (None); ``inf`` or more than
    :data:`MAX_RETRY_AFTER_S` is that cap (:func:`sane_delay`)."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return None
    return sane_delay(seconds)


def retry_after_of(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta or HTTP date), capped at :data:`MAX_RETRY_AFTER_S`;
    None when absent, unreadable, negative or NaN. A date in the past is 0."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return sane_retry_after(float(value.strip()))
    except ValueError:
        import time
        from email.utils import parsedate_to_datetime

        try:
            return sane_retry_after(max(0.0, parsedate_to_datetime(value).timestamp() - time.time()))
        except (TypeError, ValueError, OverflowError, IndexError):
            return None


def vendor_error(vendor: str, response: httpx.Response, redactor: _Scrubber | None = None, *,
                 side_effect: bool = False) -> ActionError:
    """Map a failed response onto the taxonomy; ``redactor`` scrubs the vendor's words before they are cut.

    On a side-effectful request a 5xx other than 503 means the vendor may have done it: the outcome is
    unknown and the engine does not repeat it (``details.outcome = "unknown"``, not retryable).
    """
    status = response.status_code
    text = f"{vendor} API {status}: {vendor_message(response, redactor)}"
    details: dict[str, Any] = {"status": status}
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            details["vendor_error"] = scrub_cut(body["error"], redactor, 100)
        elif isinstance(body, dict) and isinstance(body.get("error"), dict) \
                and isinstance(body["error"].get("code"), str):  # {"error": {"code", "message"}} (Graph, Bot)
            details["vendor_code"] = scrub_cut(body["error"]["code"], redactor, 100)
    except (ValueError, UnicodeDecodeError):
        pass
    if status in (400, 422):
        return ActionError("VALIDATION_ERROR", text, details=details)
    if status in (401, 403):
        return ActionError("PERMISSION_DENIED", f"{text} (reconnect the integration, or give its API key the "
                           "rights this action needs)", details=details)
    if status == 404:
        return ActionError("NOT_FOUND", text, details=details)
    if status == 409:
        return ActionError("CONFLICT", text, details=details)
    if status == 429:
        return ActionError("RATE_LIMITED", text, details=details, retry_after=retry_after_of(response))
    if status >= 500 and side_effect and status != 503:
        return ActionError("TRANSIENT_FAILURE", f"{text}; the request was sent and may or may not have been "
                           "carried out, so it is not repeated automatically: check in the vendor console",
                           details={**details, "outcome": "unknown"}, retryable=False)
    if status >= 500:
        return ActionError("TRANSIENT_FAILURE", text, details=details, retry_after=retry_after_of(response))
    return ActionError("INTERNAL_ERROR", f"{text} (unexpected status)", details=details)
