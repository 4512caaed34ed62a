"""A real HTTP server on loopback for tests: an ASGI app (``mspflow serve``'s, a plugin's webhook receiver
under :func:`mspflow.inbound.server.create_app`) under Uvicorn in a thread, and free loopback ports.

Examples::

    live = LiveServer(create_app(app))
    httpx.post(f"{live.url}/hooks/acme/{token}", content=body, headers=signed)
    live.stop()

    port = free_port()   # for a server started in a subprocess (``mspflow serve --port``)
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """An ASGI app under a real Uvicorn server in a thread, on 127.0.0.1 and a free port (``url``, ``port``)."""

    def __init__(self, asgi: Any) -> None:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", access_log=False, lifespan="on",
                                                    log_config=None))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Uvicorn server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


__all__ = ["LiveServer", "free_port"]
