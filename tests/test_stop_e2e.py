"""SIGTERM ends `genred run` with exit 0 within 5 s in every state: while it starts (also
before its handlers are in place), during the first sync against a Plex that is down
(connection refused, then mid-backoff), and mid-writeback against a slow Plex and one that
hangs (the request in hand is abandoned; the restart writes nothing twice).

Each case prints the seconds from the signal to the exit (`pytest -s` shows them)."""

from __future__ import annotations

import signal
import socket
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess, runs, wait_until
from tests.emulators.plex import Faults, PlexEmulator
from tests.test_daemon_e2e import plex_config, put_ids, write

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PROMPT_S = 5.0  # the promise: exit 0 within this of SIGTERM, whatever genred is doing


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once it is closed


def stopped_in(daemon: DaemonProcess) -> tuple[int, float]:
    """SIGTERM now; (exit code, seconds until the process was gone)."""
    assert daemon.proc is not None
    began = time.monotonic()
    daemon.signal(signal.SIGTERM)
    code = daemon.proc.wait(30)
    return code, time.monotonic() - began


def down_config(tmp_path: Path) -> Path:
    """Plex at a closed port, the default retry series (5 attempts, 1 s … 30 s backoff)."""
    return write(
        tmp_path / "genred.yaml",
        f"""
        data_dir: {tmp_path / "data"}
        plex: {{url: "http://127.0.0.1:{closed_port()}", token: x}}
        web: {{enabled: false}}
        schedule: {{first_sync_after: 0.1s}}
        """,
    )


@pytest.mark.parametrize("after", [0.1, 0.2, 0.4, 0.7, 1.0, 1.5])
def test_sigterm_while_starting_is_a_clean_stop(tmp_path: Path, after: float) -> None:
    config = down_config(tmp_path)
    with DaemonProcess(config) as daemon:
        time.sleep(after)  # the point in start-up to hit: before READY=1
        code, seconds = stopped_in(daemon)
        print(f"start-up +{after:.1f} s: exit {code} after {seconds:.2f} s")
        assert code == 0, daemon.output()
        assert seconds < PROMPT_S


@pytest.mark.parametrize("after", [0.3, 1.5, 4.0, 8.0])
def test_sigterm_during_the_first_sync_against_a_closed_port(tmp_path: Path, after: float) -> None:
    config = down_config(tmp_path)
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(lambda: daemon.events("plex request failed, retrying"), 10, "the first retry")
        time.sleep(after)  # somewhere in the retry series' backoff
        code, seconds = stopped_in(daemon)
        print(f"closed port, backoff +{after:.1f} s: exit {code} after {seconds:.2f} s")
        assert code == 0, daemon.output()
        assert seconds < PROMPT_S
    assert runs(tmp_path / "data" / "genred.db", "sync")[-1][3] == "interrupted"


@pytest.mark.parametrize("latency_s", [1.5, 20.0], ids=["slow", "hung"])
def test_sigterm_mid_writeback_against_a_slow_plex(
    tmp_path: Path, plex_emulator: PlexEmulator, latency_s: float
) -> None:
    emu = plex_emulator
    config = plex_config(tmp_path, emu, writeback=", batch_size: 5")
    db = tmp_path / "data" / "genred.db"
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(lambda: len(emu.puts()) >= 2, 120, "writeback under way")
        emu.faults = Faults(latency_ms=latency_s * 1000)
        sent = len(emu.puts())
        time.sleep(0.5)  # the next PUT is in flight, held up by the server
        code, seconds = stopped_in(daemon)
        print(f"writeback, {latency_s:g} s per request: exit {code} after {seconds:.2f} s")
        assert code == 0, daemon.output()
        assert seconds < PROMPT_S
    # the request in hand finished and the run stopped after it; or it was abandoned
    left = runs(db, "writeback")[-1][3]
    assert left == ("interrupted" if latency_s < PROMPT_S else "running")
    # the restart finishes the writeback, and no item is written twice
    emu.faults = Faults()
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(lambda: runs(db, "writeback")[-1][3] == "ok", 120, "writeback finished")
        assert daemon.stop() == 0
    assert len(emu.puts()) > sent
    repeated = {i: n for i, n in Counter(put_ids(emu)).items() if n > 1}
    if latency_s < 5:
        assert not repeated, f"items written more than once: {repeated}"
    else:  # the abandoned request may have landed: sent again only when it had not
        assert len(repeated) <= 5
