"""ActionContext: the only door from an action handler to the outside world."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mspflow.errors import ActionError
from mspflow.redaction import Redactor

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.secrets import SecretStore


def utcnow() -> datetime:
    return datetime.now(UTC)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose messages pass through the call's :class:`Redactor` before any handler sees them."""

    def __init__(self, logger: logging.Logger, redactor: Redactor, extra: dict[str, Any]) -> None:
        super().__init__(logger, extra)
        self.redactor = redactor

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.pop("exc_info", None)  # tracebacks could carry secrets; the runtime logs them scrubbed
            out, options = self.process(self.redactor.text(text), kwargs)
            self.logger.log(level, out, **options)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


@dataclass
class ActionContext:
    """What a handler may use: who it runs for, where in which run, and the tenant-scoped doors.

    :param tenant_id: the tenant the call runs for; every query a handler makes must filter on it.
    :param session: a database session in the call's transaction (committed with the result).
    :param run_id: the workflow run, and ``step_path`` the step inside it.
    :param attempt: 1 for the first try, incremented on each retry.
    :param idempotency_key: the key the engine claimed for a side-effectful call.
    :param invocation_id: the invocation record of this call.
    """

    tenant_id: str
    session: Session
    run_id: str | None = None
    step_path: str | None = None
    attempt: int = 1
    idempotency_key: str | None = None
    invocation_id: str | None = None
    secrets: Callable[[], SecretStore] | None = field(default=None, repr=False)
    redactor: Redactor = field(default_factory=Redactor, repr=False)
    clock: Callable[[], datetime] = utcnow
    logger: RedactingLogger = field(init=False, repr=False)
    _closers: list[Callable[[], None]] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        self.logger = RedactingLogger(logging.getLogger("mspflow.action"), self.redactor,
                                      {"tenant": self.tenant_id, "invocation_id": self.invocation_id})

    def http_client(self, *, base_url: str = "", headers: dict[str, str] | None = None,
                    timeout: float = 30.0, transport: Any = None) -> Any:
        """An ``httpx.Client`` with timeouts, closed when the call ends.

        This is the plain factory; vendor auth, retries, throttling and error mapping belong to the
        HTTP rails that vendor plugins build on.
        """
        import httpx

        client = httpx.Client(base_url=base_url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0),
                              transport=transport)
        self._closers.append(client.close)
        return client

    def close(self) -> None:
        """Release what the call opened (the runtime calls this when the handler returns or raises)."""
        while self._closers:
            self._closers.pop()()

    def secret(self, name: str, *, required: bool = True) -> str | None:
        """The tenant's secret ``name``; its value is scrubbed from everything this call records.

        A missing required secret is ``INTEGRATION_INACTIVE`` saying how to store it.
        """
        value = self.secrets().get(self.session, self.tenant_id, name) if self.secrets else None
        if value is None:
            if required:
                raise ActionError(
                    "INTEGRATION_INACTIVE",
                    f"tenant {self.tenant_id!r} has no secret {name!r}; store it in the integration "
                    f"settings (standalone: `mspflow tenant set-secret {self.tenant_id} {name}`)",
                    details={"reason": "SECRET_MISSING", "secret": name},
                )
            return None
        self.redactor.add(value)
        return value
