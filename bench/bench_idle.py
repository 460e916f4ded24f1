"""Idle daemon: CPU and memory of `genred run` over a quiet minute, and torch not loaded.

The daemon runs as systemd would start it (notify socket, watchdog pings every 30 s),
against the emulated Plex with a generated library, watching a folder tree of 5,000
files, with the web server on. After its first sync and the stages that follow it have
finished, its CPU time (from /proc/<pid>/stat) and resident memory (VmRSS, sampled every
second) are measured for GENRED_BENCH_IDLE_S seconds (default 60). The same is measured
for the naive watcher, polling the tree every second instead of inotify
(`watch.polling: true, poll_interval: 1s`), in the same run.

Run with `make bench`, or alone: `pytest -m bench bench -k idle -s`. Library size via
GENRED_BENCH_IDLE_TRACKS (default 20,000).
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from bench.emulator_process import TOKEN, emulator_process
from tests.daemon_process import DaemonProcess, runs, wait_until

pytestmark = pytest.mark.bench

SECONDS = float(os.environ.get("GENRED_BENCH_IDLE_S", "60"))
TRACKS = int(os.environ.get("GENRED_BENCH_IDLE_TRACKS", "20000"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def torch_loaded(pid: int) -> bool:
    return "/torch/" in Path(f"/proc/{pid}/maps").read_text()


def make_tree(root: Path, dirs: int = 500, per_dir: int = 10) -> None:
    for d in range(dirs):
        folder = root / f"Artist {d // 10}" / f"Album {d}"
        folder.mkdir(parents=True, exist_ok=True)
        for t in range(per_dir):
            (folder / f"{t + 1:02d} track.mp3").write_bytes(b"\0" * 128)


def measure(tmp: Path, url: str, *, polling: bool) -> dict[str, float]:
    name = "polling" if polling else "inotify"
    music = tmp / "music"
    config = tmp / f"genred-{name}.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            data_dir: {tmp / f"data-{name}"}
            plex: {{url: {url}, token: {TOKEN}}}
            folders: [{music}]
            plugins:
              sources: [plex]
              classifiers: [taxonomy]
              writeback: [plex]
            schedule: {{first_sync_after: 0.1s}}
            watch: {{polling: {str(polling).lower()}, poll_interval: 1s}}
            web: {{enabled: true, port: {18800 + int(polling)}, webhook_secret: bench}}
            logging: {{level: warning}}
            """
        )
    )
    config.chmod(0o600)
    db = tmp / f"data-{name}" / "genred.db"
    with DaemonProcess(config, watchdog_usec=60_000_000) as daemon:
        daemon.wait_ready(60)
        wait_until(
            lambda: any(r[1] == "writeback" and r[3] == "ok" for r in runs(db)),
            600,
            "the first sync and the stages after it",
        )
        pid = daemon.proc.pid
        time.sleep(2)  # let the last job's thread settle
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        rss: list[float] = []
        while time.monotonic() - t0 < SECONDS:
            rss.append(rss_mb(pid))
            time.sleep(1)
        cpu = cpu_seconds(pid) - cpu0
        elapsed = time.monotonic() - t0
        loaded = torch_loaded(pid)
        assert daemon.stop() == 0
    return {
        "cpu_pct": 100 * cpu / elapsed,
        "cpu_s": cpu,
        "rss_max": max(rss),
        "rss_mean": sum(rss) / len(rss),
        "torch": float(loaded),
    }


def test_idle_daemon(tmp_path: Path) -> None:
    make_tree(tmp_path / "music")
    with emulator_process(TRACKS) as emulator:
        fast = measure(tmp_path, emulator.url, polling=False)
        naive = measure(tmp_path, emulator.url, polling=True)
    print(f"\nidle `genred run` over {SECONDS:.0f} s ({TRACKS:,} Plex tracks, 5,000 watched files)")
    for name, m in (("inotify (default)", fast), ("naive: polling 1 s", naive)):
        print(
            f"  {name:20} CPU {m['cpu_pct']:.2f} % ({m['cpu_s']:.2f} s), "
            f"RSS max {m['rss_max']:.0f} MB (mean {m['rss_mean']:.0f} MB), "
            f"torch loaded: {'yes' if m['torch'] else 'no'}"
        )
    assert fast["torch"] == 0.0, "the idle daemon must not import torch"
    assert fast["cpu_pct"] < 1.0 and fast["rss_max"] < 200
