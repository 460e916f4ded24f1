"""Plex sync benchmark: the fast path against the naive one, in the same run.

Fast: the `plex` source plugin + the sync stage (large listing pages parsed as XML, details
only for new/changed tracks, bulk upserts). Naive: `section.searchTracks()` (plexapi objects,
its default container size) and one INSERT per row. Both sync the same generated library.

The emulator runs in its own process, as a PMS would, so its rendering does not share the
client's interpreter; every measured client also runs in a fresh process, so its peak RSS is
its own. Run with `make bench` (or `pytest -m bench bench -s`); sizes via GENRED_BENCH_TRACKS
and GENRED_BENCH_NAIVE_TRACKS.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.emulator_process import FORK, TOKEN, EmulatorProcess

pytestmark = pytest.mark.bench

N_TRACKS = int(os.environ.get("GENRED_BENCH_TRACKS", "100000"))
# The naive way runs on this many tracks (fewer: extrapolated linearly, and said so).
NAIVE_TRACKS = int(os.environ.get("GENRED_BENCH_NAIVE_TRACKS", str(N_TRACKS)))


# --------------------------------------------------------------------------- the emulator


def in_child(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `work` in a fresh process; its result plus that process's peak RSS (MiB)."""
    parent, child = FORK.Pipe()

    def main() -> None:
        result = work()
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child.send(result)

    process = FORK.Process(target=main)
    process.start()
    result = parent.recv()
    process.join()
    return result


# --------------------------------------------------------------------------- the two ways


def fast_sync(url: str, db: Path, full: bool | None) -> dict[str, Any]:
    from genred.config import parse_config
    from genred.hookspecs import PluginContext
    from genred.pipeline.sync import sync
    from genred.store import Store
    from genred_plugins.plex.source import PlexSource, PlexSourceConfig

    config = parse_config(f"plex:\n  url: {url}\n  token: {TOKEN}\n", env={})
    with Store.open(db) as store:
        source = PlexSource(PlexSourceConfig(), PluginContext(config, store))
        started = time.perf_counter()
        result = sync(store, "plex", source, full=full)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "tracks": result.seen, "added": result.added, "full": result.full}


def naive_sync(url: str, db: Path, limit: int) -> dict[str, Any]:
    """searchTracks() and one INSERT per row; attributes read without plexapi's auto-reload.

    (With auto-reload, reading `moods` of a listed track that has none fetches the track
    again: one more request for most tracks. Leaving that out makes this a lower bound.)
    """
    from plexapi.server import PlexServer

    from genred.records import TrackRecord
    from genred.store import Store

    def iso(moment: datetime | None) -> str | None:
        return moment.astimezone(UTC).isoformat() if moment else None

    with Store.open(db) as store:
        started = time.perf_counter()
        section = PlexServer(url, TOKEN).library.section("Music")
        count = 0
        for track in section.searchTracks(maxresults=limit):
            track._autoReload = False
            parts = track.media[0].parts if track.media else []
            record = TrackRecord(
                source="plex",
                source_id=str(track.ratingKey),
                title=track.title,
                artist=track.originalTitle or track.grandparentTitle,
                album=track.parentTitle,
                album_artist=track.grandparentTitle,
                album_source_id=str(track.parentRatingKey),
                artist_source_id=str(track.grandparentRatingKey),
                path=parts[0].file if parts else None,
                track_no=track.index,
                disc_no=track.parentIndex,
                year=track.year,
                duration_ms=track.duration,
                genres=tuple(g.tag for g in track.genres),
                moods=tuple(m.tag for m in track.moods),
                source_added_at=iso(track.addedAt),
                source_updated_at=iso(track.updatedAt),
            )
            row = record.to_row()
            now = datetime.now(UTC).isoformat()
            columns = [*row, "first_seen_at", "changed_at", "synced_at"]
            store.conn.execute(  # autocommit: one transaction per row
                f"INSERT INTO tracks ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                (*row.values(), now, now, now),
            )
            count += 1
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "tracks": count}


# --------------------------------------------------------------------------- the benchmark


def measure(
    emulator: EmulatorProcess, name: str, work: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    requests_before, cpu_before = emulator.ask("requests"), emulator.ask("cpu")
    result = in_child(work)
    result["requests"] = emulator.ask("requests") - requests_before
    result["server_cpu"] = emulator.ask("cpu") - cpu_before
    result["name"] = name
    return result


def line(result: dict[str, Any], note: str = "") -> str:
    rate = f"{result['tracks'] / result['seconds']:9,.0f}" if result["tracks"] else f"{'-':>9}"
    return (
        f"  {result['name']:<34} {result['seconds']:8.2f} s  {result['requests']:6,} requests  "
        f"{rate} tracks/s  peak RSS {result['peak_rss_mib']:6.0f} MiB  "
        f"(emulator CPU {result['server_cpu']:.1f} s){note}"
    )


def test_sync_fast_vs_naive(tmp_path: Path) -> None:
    built = time.perf_counter()
    emulator = EmulatorProcess(N_TRACKS, warm=True)
    print(
        f"\nPlex sync, {N_TRACKS:,} generated tracks (emulator ready in "
        f"{time.perf_counter() - built:.1f} s in its own process, every item rendered once; "
        f"{os.cpu_count()} CPUs)"
    )
    try:
        fast_db, naive_db = tmp_path / "fast.db", tmp_path / "naive.db"
        full = measure(emulator, "fast: full sync", lambda: fast_sync(emulator.url, fast_db, True))
        resync = measure(
            emulator,
            "fast: no-change resync (auto)",
            lambda: fast_sync(emulator.url, fast_db, None),
        )
        full_again = measure(
            emulator, "fast: no-change full sync", lambda: fast_sync(emulator.url, fast_db, True)
        )
        naive_n = min(NAIVE_TRACKS, N_TRACKS)
        naive = measure(
            emulator,
            "naive: searchTracks + row inserts",
            lambda: naive_sync(emulator.url, naive_db, naive_n),
        )
    finally:
        emulator.stop()

    assert full["tracks"] == N_TRACKS and full["added"] == N_TRACKS and full["full"]
    assert not resync["full"] and resync["added"] == 0
    assert naive["tracks"] == naive_n
    print(line(full))
    print(line(resync))
    print(line(full_again))
    scale = N_TRACKS / naive_n
    note = ""
    if scale != 1:
        note = f"  [ran {naive_n:,}; ×{scale:g} linear: {naive['seconds'] * scale:.1f} s]"
    print(line(naive, note))
    naive_seconds = naive["seconds"] * scale
    print(
        f"  speed-up of the full sync: {naive_seconds / full['seconds']:.1f}× "
        f"(naive {naive_seconds:.1f} s{' extrapolated' if scale != 1 else ''} / "
        f"fast {full['seconds']:.1f} s); the naive result also lacks full genre lists, "
        "moods and album/artist genres"
    )
