"""A vendor whose side effects are counted per call, served over real HTTP on loopback, and the plugin that
calls it (installed as a throwaway distribution for worker subprocesses)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PLUGIN = '''
"""A test integration whose one action posts a side effect to the effects vendor."""

import time

from pydantic import BaseModel, Field

from mspflow import ActionContext, Module, Vendor, hookimpl, rmm_integration

effects = Module("app:effects", label="Effects", icon="effects", availability=rmm_integration("effects"),
                 description="Counts side effects at its vendor.",
                 vendor=Vendor("Effects", self_hosted=True, timeout_s=30))


class ApplyInput(BaseModel):
    label: str = Field(min_length=1, max_length=200)
    hold_s: float = Field(0.0, ge=0, le=10)


class ApplyOutput(BaseModel):
    label: str


@effects.action("effects.things.apply", label="Apply", side_effectful=True)
def apply(params: ApplyInput, ctx: ActionContext) -> ApplyOutput:
    """Post one side effect, then hold the call open for a while."""
    ctx.http().post(("effects", params.label))
    time.sleep(params.hold_s)
    return ApplyOutput(label=params.label)


@hookimpl
def register_modules(register):
    register(effects)
'''


class EffectsVendor:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    @contextmanager
    def serve(self, delay_s: float = 0.05) -> Iterator[str]:
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                label = self.path.rsplit("/", 1)[-1]
                with vendor.lock:
                    vendor.counts[label] += 1
                time.sleep(delay_s)  # the effect is done; the answer takes a moment
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
