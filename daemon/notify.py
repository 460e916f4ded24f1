"""systemd's notify protocol: one datagram per state change to $NOTIFY_SOCKET, no libsystemd.

Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so the daemon runs the same in a
terminal. A send that fails (socket gone, full) is logged once and never stops the daemon.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from datetime import timedelta

from .logs import get_logger

log = get_logger("genred.notify")

STATUS_MAX = 200  # systemctl status shows one line; keep it short


class Notifier:
    """Sends READY/STATUS/WATCHDOG/RELOADING/STOPPING to the service manager, if there is one."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        self._warned = False
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> bool:
        """Send `KEY=value` lines as one datagram; True when it was sent."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(lines).encode("utf-8"), self.address)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd", socket=self.address, error=str(exc))
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *self._status(status))

    def status(self, text: str) -> bool:
        lines = self._status(text)
        return self.send(*lines) if lines else False

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd (Type=notify-reload, v253+) match the reload it asked for.
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *self._status(status))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @staticmethod
    def _status(text: str | None) -> tuple[str, ...]:
        line = " ".join((text or "").split())
        if not line:
            return ()
        return (f"STATUS={line[: STATUS_MAX - 1] + '…' if len(line) > STATUS_MAX else line}",)


def _watchdog_interval(env: Mapping[str, str]) -> timedelta | None:
    """How often to ping: half of WatchdogSec= (WATCHDOG_USEC), when it is meant for us."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return timedelta(microseconds=value / 2) if value > 0 else None
