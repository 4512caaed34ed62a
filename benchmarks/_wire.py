"""Round trips counted on the wire: a TCP relay in front of PostgreSQL (a helper, not a benchmark).

A round trip is a turn of the conversation: the client sends, then waits for the server. The relay
counts one each time bytes go from a client to the server after the server last spoke on that
connection (pipelined messages sent together are one round trip, as they cost one wait). Connection
set-up turns are counted too, so callers warm their pools first and count a difference.

    with CountingRelay("127.0.0.1", 5432) as relay:
        url = relay.url(database_url)       # the same URL, through the relay
        ...warm up...
        before = relay.round_trips
        ...N calls...
        print((relay.round_trips - before) / N)

The relay adds latency (a thread hop each way): measure rates without it, round trips with it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any


class CountingRelay:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.round_trips = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = False

    def url(self, database_url: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def __enter__(self) -> CountingRelay:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            with self._lock:
                self.connections += 1
            state = {"last": "server"}
            threading.Thread(target=self._pump, args=(client, server, state, "client"), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, state, "server"), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, state: dict[str, str], side: str) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    if side == "client" and state["last"] != "client":
                        self.round_trips += 1
                    state["last"] = side
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
