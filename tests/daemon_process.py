"""`genred run` as a subprocess for end-to-end tests: its notify datagrams, log and database.

The test owns the NOTIFY_SOCKET (a datagram socket, as systemd's) and reads every
message the daemon sends; the daemon's JSON log lines (stdout/stderr are a pipe, so
JSON) are collected too. Waits poll a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.waiting import wait_for

GENRED = [sys.executable, "-m", "genred"]
wait_until = wait_for  # the e2e tests' name for it


class DaemonProcess:
    """One `genred run --config CONFIG` child with a test-owned notify socket."""

    def __init__(
        self, config: Path, *, watchdog_usec: int = 1_000_000, env: dict[str, str] | None = None
    ) -> None:
        self.config = config
        self._dir = tempfile.mkdtemp(prefix="gn-", dir="/tmp")  # AF_UNIX paths are short
        self.socket_path = os.path.join(self._dir, "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.socket_path)
        self._sock.settimeout(0.2)
        self.notifications: list[tuple[float, str]] = []
        self.log: list[dict[str, Any]] = []
        self.raw_output: list[str] = []
        self._lock = threading.Lock()
        self.env = {
            **os.environ,
            "NOTIFY_SOCKET": self.socket_path,
            "WATCHDOG_USEC": str(watchdog_usec),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.env.pop("WATCHDOG_PID", None)
        self.proc: subprocess.Popen[str] | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life cycle

    def start(self) -> DaemonProcess:
        self.proc = subprocess.Popen(
            [*GENRED, "run", "--config", str(self.config)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._threads = [
            threading.Thread(target=self._read_notify, daemon=True),
            threading.Thread(target=self._read_output, args=(self.proc,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        wait_until(
            lambda: self.has_notify("READY=1") or self.exited(),
            timeout,
            "READY=1 from the daemon",
        )
        assert not self.exited(), f"daemon exited early:\n{self.output()}"

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._sock.close()
        for thread in self._threads:
            thread.join(2)
        try:
            os.unlink(self.socket_path)
            os.rmdir(self._dir)
        except OSError:
            pass

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        if exc_type is not None:  # pytest shows captured stdout with the failure
            print(f"--- genred run output (last lines) ---\n{self.output()}")
        self.close()

    # ------------------------------------------------------------------ readers

    def _read_notify(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                if self.exited():  # the socket was drained: nothing more will come
                    return
                continue
            except OSError:
                return
            with self._lock:
                self.notifications.append((time.monotonic(), data.decode()))

    def _read_output(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._lock:
                self.raw_output.append(line.rstrip("\n"))
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    self.log.append(record)

    # ------------------------------------------------------------------ queries

    def messages(self) -> list[str]:
        with self._lock:
            return [text for _t, text in self.notifications]

    def has_notify(self, line: str) -> bool:
        return any(line in text.split("\n") for text in self.messages())

    def count_notify(self, line: str) -> int:
        return sum(line in text.split("\n") for text in self.messages())

    def events(self, event: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.log if r.get("event") == event]

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.raw_output[-80:])


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the daemon's database from outside (read-only; WAL lets it run alongside)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet
    finally:
        conn.close()


def runs(db: Path, job: str | None = None) -> list[tuple[Any, ...]]:
    """(id, job, trigger, status, counts JSON, error) of the recorded runs, oldest first."""
    where, params = ("WHERE job = ?", (job,)) if job else ("", ())
    return query(
        db, f"SELECT id, job, trigger, status, counts, error FROM runs {where} ORDER BY id", params
    )
