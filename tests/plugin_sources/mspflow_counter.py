"""Test-only integration whose side effects are counted in the database (table counter_effects).

Installed as a throwaway distribution for subprocess tests, registered directly for in-process ones.
"""

import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import text

from mspflow import ActionContext, ActionError, Module, hookimpl, rmm_integration

counter = Module("app:counter", label="Counter", icon="counter", availability=rmm_integration("counter"),
                 description="Counts its side effects.")
CALLS: dict[str, int] = {}
_lock = threading.Lock()
SCHEMA = "CREATE TABLE IF NOT EXISTS counter_effects (label VARCHAR(200) NOT NULL, attempt INTEGER NOT NULL)"


class Window(BaseModel):
    start: int
    end: int


class ApplyInput(BaseModel):
    label: str
    fail: Literal["none", "transient", "permanent", "crash", "secret", "rate_limited", "rate_limited_inf",
                  "bad_output"] = "none"
    fail_until_attempt: int = 1
    sleep: float = Field(0.0, ge=0, le=30)
    window: Window | None = None
    tags: list[str] = []


class ApplyOutput(BaseModel):
    label: str
    attempt: int


def _count(label: str) -> None:
    with _lock:
        CALLS[label] = CALLS.get(label, 0) + 1


@counter.action("counter.effects.apply", label="Apply effect", side_effectful=True, output_model=ApplyOutput)
def apply(params: ApplyInput, ctx: ActionContext) -> Any:
    """Record one side effect, or fail the way the input asks."""
    _count(params.label)
    if params.sleep:
        time.sleep(params.sleep)
    ctx.session.execute(text("INSERT INTO counter_effects (label, attempt) VALUES (:l, :a)"),
                        {"l": params.label, "a": ctx.attempt})
    failing = ctx.attempt <= params.fail_until_attempt
    if params.fail == "transient" and failing:
        raise ActionError("TRANSIENT_FAILURE", "vendor answered 503")
    if params.fail == "rate_limited" and failing:
        raise ActionError("RATE_LIMITED", "vendor answered 429", retry_after=0.2)
    if params.fail == "rate_limited_inf":  # a vendor that answered Retry-After: 1e400
        raise ActionError("RATE_LIMITED", "vendor answered 429", retry_after=float("1e400"))
    if params.fail == "permanent":
        raise ActionError.not_found(f"no device {params.label}", device_id=params.label)
    if params.fail == "crash":
        raise ZeroDivisionError("division by zero in vendor shape parsing")
    if params.fail == "secret":
        key = ctx.secret("counter_api_key")
        ctx.logger.warning("calling the vendor with key %s", key)
        raise RuntimeError(f"vendor rejected key {key} for tenant")
    if params.fail == "bad_output":
        return {"label": params.label}
    return ApplyOutput(label=params.label, attempt=ctx.attempt)


class ReadInput(BaseModel):
    label: str


class ReadOutput(BaseModel):
    count: int


@counter.action("counter.effects.read", label="Read effects")
def read(params: ReadInput, ctx: ActionContext) -> ReadOutput:
    """How many effects were recorded for a label."""
    n = ctx.session.execute(text("SELECT count(*) FROM counter_effects WHERE label = :l"),
                            {"l": params.label}).scalar_one()
    return ReadOutput(count=n)


@counter.action("counter.effects.guarded", label="Guarded effect", side_effectful=True,
                permission="counter:apply")
def guarded(params: ReadInput, ctx: ActionContext) -> ReadOutput:
    """An action that declares a permission."""
    _count(params.label)
    return ReadOutput(count=1)


@hookimpl
def register_modules(register: Any) -> None:
    register(counter)
