"""What the emulators share: a threaded HTTP server on 127.0.0.1 and its life cycle."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    emulator: Any  # the emulator object its handler answers for


class ThreadedEmulator:
    """Serves `handler` on host:port (port 0: a free one) in a background thread.

    A subclass sets `handler` and `thread_name`, calls `_init_http(host, port)` in its
    constructor, and may override `_before_stop()`.
    """

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str] = "emulator"

    def _init_http(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Listen in a background thread; returns self."""
        if self._server is None:
            self._server = EmulatorServer((self._host, self._port), self.handler)
            self._server.emulator = self
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=self.thread_name,
                daemon=True,
            )
            self._thread.start()
        return self

    def _before_stop(self) -> None:
        """Close what outlives a request (open websockets) before the server goes."""

    def stop(self) -> None:
        if self._server is not None:
            self._before_stop()
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"


def serve_until_signal(emulator: ThreadedEmulator) -> None:
    """For `python -m tests.emulators.…`: run until SIGTERM or SIGINT, then stop."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    emulator.stop()


def send_reply(handler: BaseHTTPRequestHandler, reply: Any) -> None:
    """Write `reply` (status, headers, body); None drops the connection without a byte."""
    if reply is None:
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)
        return
    handler.send_response(reply.status)
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(reply.body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(reply.body)
