"""uvicorn in a daemon thread, started and stopped by the daemon.

The socket is bound here, before uvicorn runs, so a taken port is a `GenredError` the daemon
can report (uvicorn itself would log and `sys.exit` inside its thread), and port 0 gives
a free port that `WebServer.port` tells. uvicorn installs no signal handlers (the daemon
owns signals), configures no logging (records go through genred's structlog set-up) and
keeps no access log (webhook paths hold a secret; the app logs requests redacted).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from genred.errors import GenredError
from genred.logs import get_logger

log = get_logger("genred.web")


class _ThreadServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon owns SIGTERM/SIGINT/SIGHUP


class WebServer:
    """One uvicorn server for `app` on host:port, run in a background thread."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        stopping: threading.Event | None = None,
        root_path: str = "",
    ) -> None:
        self.app, self.host, self.requested_port = app, host, port
        # Set before uvicorn is told to exit: open event streams end at once, instead of
        # holding the shutdown for its graceful timeout.
        self.stopping = stopping
        self.root_path = root_path
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the real one when it was asked for port 0)."""
        if self._port is None:
            raise RuntimeError("the web server is not started")
        return self._port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> None:
        """Listen, and return once uvicorn serves; GenredError when it cannot."""
        if self.running:
            return
        sock = self._bind()
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=5,
            root_path=self.root_path,
        )
        server = _ThreadServer(config)
        self._server, self._socket, self._failure = server, sock, None
        self._port = int(sock.getsockname()[1])
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name="genred-web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                reason = repr(self._failure) if self._failure else "did not start in time"
                self.stop(timeout=1)
                raise GenredError(f"web: cannot serve on {self._address}: {reason}")
            time.sleep(0.01)
        log.info("web server listening", host=self.host, port=self.port)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish requests in flight (up to `timeout` seconds), then close."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            if self.stopping is not None:
                self.stopping.set()  # streams see it within 0.25 s; uvicorn waits for them
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(1.0)
            log.info("web server stopped", host=self.host)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def _address(self) -> str:
        return f"{self.host}:{self.requested_port}"

    def _bind(self) -> socket.socket:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self.requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise GenredError(f"web: cannot listen on {self._address}: {_reason(exc)}") from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise GenredError(f"web: cannot listen on {self._address}: {_reason(exc)}") from None
        sock.setblocking(False)
        return sock

    def _run(self, server: _ThreadServer, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from uvicorn included: report, don't raise
            self._failure = exc
            log.error("web server failed", error=repr(exc))


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]
