"""Small module and action definitions for tests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, create_model

from mspflow.availability import rmm_integration
from mspflow.modules import Module


class PingInput(BaseModel):
    device_id: str


class PingOutput(BaseModel):
    ok: bool


def rmm_module(vendor: str, actions: int = 2, **module_kwargs: Any) -> Module:
    """An RMM-style module ``app:<vendor>`` gated by ``rmm_integration(vendor)``."""
    module = Module(f"app:{vendor}", label=vendor.title(), icon=vendor,
                    availability=module_kwargs.pop("availability", rmm_integration(vendor)), **module_kwargs)
    for i in range(actions):
        side_effect = i % 2 == 1
        out = create_model(f"{vendor.title()}Out{i}", ok=(bool, ...))

        def handler(params: PingInput, ctx: Any) -> Any:
            return {"ok": True}

        module.action(f"{vendor}.devices.op{i}", label=f"Operation {i}", description=f"Operation {i}.",
                      side_effectful=side_effect, input_model=PingInput, output_model=out)(handler)
    return module
