"""Core group ``transform``: reshape data between workflow steps without calling any vendor."""

from __future__ import annotations

import string
from typing import Any

from pydantic import BaseModel, Field

from mspflow.errors import ActionError
from mspflow.modules import Module

transform = Module(
    "transform",
    label="Transform",
    description="Shape text and data between steps.",
    tile_kind="core",
    icon="transform",
    availability="core",
)


class RenderInput(BaseModel):
    template: str = Field(description="Text with $name or ${name} placeholders; $$ is a literal $.")
    values: dict[str, Any] = Field(default_factory=dict, description="Values for the placeholders.")


class RenderOutput(BaseModel):
    text: str


@transform.action("transform.text.render", label="Render text", category="Transform")
def render_text(params: RenderInput, ctx: Any) -> RenderOutput:
    """Fill a text template with values from earlier steps (e.g. a script's output into ticket notes)."""
    template = string.Template(params.template)
    if not template.is_valid():
        raise ActionError.validation("the template has a malformed placeholder; write $$ for a literal $",
                                     fields=["template"])
    missing = sorted(set(template.get_identifiers()) - params.values.keys())
    if missing:
        raise ActionError.validation(f"no value for placeholder(s): {', '.join(missing)}",
                                     fields=[f"values.{m}" for m in missing])
    return RenderOutput(text=template.substitute({k: _text(v) for k, v in params.values.items()}))


def _text(value: Any) -> str:
    return "" if value is None else str(value)
