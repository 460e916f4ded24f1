"""systemd's notify protocol (genred.notify) against a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from genred.notify import STATUS_MAX, Notifier


class Listener:
    """The service manager's end: a bound datagram socket that hands back what it got."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2.0)

    def receive(self) -> bytes:
        return self.sock.recv(65536)

    def nothing_more(self) -> bool:
        self.sock.settimeout(0.05)
        try:
            self.sock.recv(65536)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(2.0)
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """AF_UNIX paths are limited to ~107 bytes: pytest's tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="gn-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def listener(short_dir: Path) -> Iterator[Listener]:
    server = Listener(str(short_dir / "notify.sock"))
    yield server
    server.close()


@pytest.fixture
def notifier(listener: Listener) -> Iterator[Notifier]:
    n = Notifier({"NOTIFY_SOCKET": listener.address})
    yield n
    n.close()


# --------------------------------------------------------------------------- no systemd


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert n.address == ""
    assert n.ready("idle") is False
    assert n.status("syncing") is False
    assert n.watchdog() is False
    assert n.reloading() is False
    assert n.stopping("bye") is False
    assert n.send("X=1") is False
    assert n.watchdog_interval is None
    n.close()  # harmless


def test_empty_notify_socket_is_no_systemd() -> None:
    assert not Notifier({"NOTIFY_SOCKET": ""}).enabled


def test_defaults_to_the_process_environment(
    monkeypatch: pytest.MonkeyPatch, listener: Listener
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    n = Notifier()
    try:
        assert n.enabled
        assert n.watchdog() is True
        assert listener.receive() == b"WATCHDOG=1"
    finally:
        n.close()


# --------------------------------------------------------------------------- datagrams


def test_ready_with_status_is_one_datagram(notifier: Notifier, listener: Listener) -> None:
    assert notifier.enabled
    assert notifier.ready("idle") is True
    assert listener.receive() == b"READY=1\nSTATUS=idle"
    assert listener.nothing_more()


def test_each_message_exactly(notifier: Notifier, listener: Listener) -> None:
    assert notifier.ready()
    assert listener.receive() == b"READY=1"
    assert notifier.status("syncing plex")
    assert listener.receive() == b"STATUS=syncing plex"
    assert notifier.watchdog()
    assert listener.receive() == b"WATCHDOG=1"
    assert notifier.stopping("stopping (SIGTERM)")
    assert listener.receive() == b"STOPPING=1\nSTATUS=stopping (SIGTERM)"
    assert notifier.stopping()
    assert listener.receive() == b"STOPPING=1"
    assert notifier.send("A=1", "B=two")
    assert listener.receive() == b"A=1\nB=two"
    assert listener.nothing_more()


def test_reloading_carries_the_monotonic_clock(notifier: Notifier, listener: Listener) -> None:
    before = time.monotonic_ns() // 1000
    assert notifier.reloading()
    after = time.monotonic_ns() // 1000
    first, second = listener.receive().split(b"\n")
    assert first == b"RELOADING=1"
    key, value = second.split(b"=")
    assert key == b"MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_status_is_one_line(notifier: Notifier, listener: Listener) -> None:
    notifier.status("sync plex:\n  1,234 of 5,000\tpages ")
    assert listener.receive() == b"STATUS=sync plex: 1,234 of 5,000 pages"


def test_status_is_sent_as_utf8(notifier: Notifier, listener: Listener) -> None:
    notifier.status("Björk → Électronique")
    assert listener.receive() == "STATUS=Björk → Électronique".encode()


def test_long_status_is_cut_to_status_max_with_an_ellipsis(
    notifier: Notifier, listener: Listener
) -> None:
    notifier.status("x" * 500)
    line = listener.receive().decode()
    value = line.removeprefix("STATUS=")
    assert line.startswith("STATUS=")
    assert len(value) == STATUS_MAX
    assert value == "x" * (STATUS_MAX - 1) + "…"


def test_status_of_exactly_status_max_is_kept_whole(notifier: Notifier, listener: Listener) -> None:
    text = "y" * STATUS_MAX
    notifier.status(text)
    assert listener.receive() == f"STATUS={text}".encode()


def test_abstract_namespace_socket() -> None:
    name = f"genred-test-{secrets.token_hex(6)}"
    server = Listener("\0" + name)
    n = Notifier({"NOTIFY_SOCKET": "@" + name})
    try:
        assert n.address == "\0" + name
        assert n.ready("idle") is True
        assert server.receive() == b"READY=1\nSTATUS=idle"
        assert n.watchdog() is True
        assert server.receive() == b"WATCHDOG=1"
    finally:
        n.close()
        server.close()


# --------------------------------------------------------------------------- failures


def test_vanished_socket_returns_false_and_warns_once(
    notifier: Notifier, listener: Listener
) -> None:
    assert notifier.ready("idle")
    assert listener.receive() == b"READY=1\nSTATUS=idle"
    listener.close()
    os.unlink(listener.address)
    with structlog.testing.capture_logs() as logs:
        assert notifier.status("one") is False
        assert notifier.watchdog() is False
        assert notifier.stopping("bye") is False
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1, logs
    assert warnings[0]["event"] == "cannot notify systemd"
    assert warnings[0]["socket"] == listener.address
    assert notifier.enabled  # the daemon goes on; sending is merely pointless


def test_socket_that_never_existed_does_not_raise(short_dir: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(short_dir / "nobody.sock")})
    try:
        with structlog.testing.capture_logs() as logs:
            assert n.ready("idle") is False
            assert n.ready("idle") is False
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "cannot notify systemd"
        ]
    finally:
        n.close()


def test_close_disables(notifier: Notifier, listener: Listener) -> None:
    notifier.close()
    assert not notifier.enabled
    assert notifier.ready("idle") is False
    assert listener.nothing_more()
    notifier.close()  # twice is fine


# --------------------------------------------------------------------------- watchdog


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, timedelta(seconds=15)),
        ({"WATCHDOG_USEC": "1000001"}, timedelta(microseconds=500000.5)),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "<self>"}, timedelta(seconds=15)),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "<other>"}, None),  # for another process
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": ""}, None),
        ({"WATCHDOG_PID": "<self>"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    env: dict[str, str], expected: timedelta | None
) -> None:
    pids = {"<self>": str(os.getpid()), "<other>": str(os.getpid() + 1)}
    env = {k: pids.get(v, v) for k, v in env.items()}
    n = Notifier(env)
    assert n.watchdog_interval == expected
    assert not n.enabled  # no NOTIFY_SOCKET: the interval is still read
