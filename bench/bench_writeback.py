"""Plex writeback benchmark: batched multi-edits against one PUT per track, in the same run.

Decisions are realistic: the store is filled straight from the emulated library (what a
sync would store, without depending on the sync stage), then the real classify stage with
the `taxonomy` classifier and the real decide stage run over it. Then, each on a fresh
emulator and a fresh copy of the store:

- batched: the writeback stage with the `plex` writeback plugin, mode append and mode
  replace, each run twice (the second run must send no PUT: idempotence);
- naive: what a script would do with plexapi: `fetchItem(key)` then `addGenre(decided)`
  (replace also `removeGenre(the others)`) for every decided track, on a slice of the
  decided tracks, extrapolated linearly to all of them.

Correctness is checked after every write: a decided track carries its decided genres
(append: among its old ones, which stay; replace: exactly them, as a case-insensitive set),
every other track is untouched.

The emulator runs in its own process, as a PMS would, so its request handling does not
share the client's interpreter (bench/emulator_process.py). Run with `make bench`, or this one alone
with `pytest -m bench bench -k writeback -s`. Sizes via GENRED_BENCH_TRACKS (default
100,000) and GENRED_BENCH_NAIVE_TRACKS (default 5,000); GENRED_BENCH_PROFILE=1 profiles
the first batched run of each mode (cProfile, top functions by cumulative and own time).
"""

from __future__ import annotations

import cProfile
import io
import json
import math
import os
import pstats
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.emulator_process import TOKEN, EmulatorProcess, emulator_process

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]

N_TRACKS = int(os.environ.get("GENRED_BENCH_TRACKS", "100000"))
# One fetch and one or two PUTs a track: past this many the naive way runs on a slice.
NAIVE_TRACKS = int(os.environ.get("GENRED_BENCH_NAIVE_TRACKS", "5000"))
PROFILE = os.environ.get("GENRED_BENCH_PROFILE", "") not in ("", "0")
PUT_GOAL_PER_100K = 2_000
SEED = 1


def fold(value: str) -> str:
    return value.casefold().strip()


def spelled(values: Sequence[str]) -> set[str]:
    from genred.taxonomy import normalize_key

    return {normalize_key(v) for v in values}


def folded(values: Sequence[str]) -> set[str]:
    return {fold(v) for v in values}


# --------------------------------------------------------------------------- the emulator


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- the store


def config_text(url: str, data_dir: Path) -> str:
    return f"data_dir: {data_dir}\nplex:\n  url: {url}\n  token: {TOKEN}\n"


@dataclass
class Library:
    """The decided picture every scenario starts from (store template + what Plex holds)."""

    template: Path
    original: dict[int, list[str]]  # ratingKey -> genres in Plex before any write
    decided: dict[int, tuple[str, ...]]  # ratingKey -> decided genres (status 'decided')
    timings: dict[str, float] = field(default_factory=dict)


def build_library(tmp_path: Path) -> Library:
    """Store every emulated track as a sync would, then classify and decide for real."""
    from genred.config import parse_config
    from genred.hookspecs import PluginContext
    from genred.pipeline.classify import classify
    from genred.pipeline.decide import decide
    from genred.records import TRACK_COLUMNS
    from genred.store import Store, utcnow
    from genred_plugins.taxonomy_classifier import TaxonomyClassifier, TaxonomySettings
    from tests.emulators.plex import PlexLibrary

    timings: dict[str, float] = {}
    started = time.perf_counter()
    lib = PlexLibrary.generate(n_tracks=N_TRACKS, seed=SEED)
    timings["generate"] = time.perf_counter() - started

    started = time.perf_counter()
    now = utcnow()
    rows = []
    for record in lib.track_records():
        row = record.to_row()
        rows.append((*(row[c] for c in TRACK_COLUMNS), now, now, now))
    columns = [*TRACK_COLUMNS, "first_seen_at", "changed_at", "synced_at"]
    sql = f"INSERT INTO tracks ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    original = {key: track.genres for key, track in lib.tracks.items()}
    del lib

    building = tmp_path / "building.db"
    template = tmp_path / "template.db"
    with Store.open(building) as store:
        with store.transaction() as conn:
            conn.executemany(sql, rows)
        timings["store"] = time.perf_counter() - started
        del rows

        config = parse_config(config_text("http://127.0.0.1:1", tmp_path), "bench.yaml", {})
        classifier = TaxonomyClassifier(TaxonomySettings(), PluginContext(config, store))
        started = time.perf_counter()
        classify(store, {"taxonomy": classifier})
        timings["classify"] = time.perf_counter() - started
        started = time.perf_counter()
        decide(store, config.decide)
        timings["decide"] = time.perf_counter() - started
        decided = {
            int(source_id): tuple(json.loads(genres))
            for source_id, genres in store.conn.execute(
                "SELECT t.source_id, d.genres FROM decisions d JOIN tracks t ON t.id = d.track_id "
                "WHERE d.status = 'decided'"
            )
        }
        store.conn.execute("VACUUM INTO ?", (str(template),))
    return Library(template, original, decided, timings)


def fresh_store(library: Library, path: Path) -> Path:
    path.write_bytes(library.template.read_bytes())
    return path


# --------------------------------------------------------------------------- checks


def check_written(
    library: Library, after: dict[int, list[str]], mode: str, keys: Sequence[int] | None = None
) -> None:
    """Decided tracks carry their decided genres; the others are exactly as they were."""
    considered = set(keys) if keys is not None else set(library.original)
    wrong: list[str] = []
    for key, before in library.original.items():
        now = after[key]
        wanted = library.decided.get(key) if key in considered else None
        if not wanted:  # not decided (or not in the naive slice): untouched
            if now != before:
                wrong.append(f"{key}: untouched expected {before}, got {now}")
        elif mode == "append":
            if not spelled(wanted) <= spelled(now) or not folded(before) <= folded(now):
                wrong.append(f"{key}: append of {wanted} to {before} gave {now}")
        elif folded(now) != folded(wanted):
            wrong.append(f"{key}: replace of {before} by {wanted} gave {now}")
    assert not wrong, f"{len(wrong)} tracks wrong, e.g. " + "; ".join(wrong[:5])


# --------------------------------------------------------------------------- batched


class TimedTarget:
    """The writeback plugin with the time spent in its reads and its writes added up."""

    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin
        self.name: str = plugin.name
        self.source: str = plugin.source
        self.read_s = 0.0
        self.apply_s = 0.0

    def read(self, keys: Sequence[Any]) -> Any:
        started = time.perf_counter()
        try:
            return self.plugin.read(keys)
        finally:
            self.read_s += time.perf_counter() - started

    def apply(self, edit: Any, *, lock: bool) -> None:
        started = time.perf_counter()
        try:
            self.plugin.apply(edit, lock=lock)
        finally:
            self.apply_s += time.perf_counter() - started


@dataclass
class Run:
    name: str
    tracks: int  # decided tracks the run covers (extrapolated runs: all of them)
    puts: int
    gets: int
    seconds: float
    written: int  # items changed
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    read_s: float | None = None
    apply_s: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.tracks / self.seconds if self.seconds else 0.0


def run_writeback(
    emulator: EmulatorProcess, db: Path, tmp_path: Path, mode: str, name: str, profile: bool
) -> tuple[Run, Any]:
    from genred.config import WritebackConfig, parse_config
    from genred.hookspecs import PluginContext
    from genred.pipeline.writeback import writeback
    from genred.store import Store
    from genred_plugins.plex.writeback import PlexWriteback, PlexWritebackSettings

    config = parse_config(config_text(emulator.url, tmp_path), "bench.yaml", {})
    emulator.ask("clear")
    server_cpu, client_cpu = emulator.ask("cpu"), cpu_seconds()
    profiler = cProfile.Profile() if profile else None
    with Store.open(db) as store:
        target = TimedTarget(PlexWriteback(PlexWritebackSettings(), PluginContext(config, store)))
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        report = writeback(store, target, WritebackConfig(mode=mode, levels=["track"]))
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
    counts = emulator.ask("counts")
    run = Run(
        name,
        report.counts["targets"],
        counts.get("PUT", 0),
        counts.get("GET", 0),
        seconds,
        report.counts["written"],
        cpu_seconds() - client_cpu,
        emulator.ask("cpu") - server_cpu,
        target.read_s,
        target.apply_s,
    )
    assert report.counts["failed"] == 0, report.counts
    if profiler:
        print_profile(profiler, name)
    return run, report


def print_profile(profiler: cProfile.Profile, name: str) -> None:
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(25)
        print(f"\n  cProfile of {name}, by {order}:\n{out.getvalue()}")


@dataclass
class GroupStats:
    groups: int  # distinct (kind, field, add, remove)
    add_lists: int  # distinct (kind, field, add)
    edits: int  # requests planned (groups split at batch_size)
    items: int
    singles: int  # groups of one item
    sizes: list[int]  # items per group, largest first
    top: list[tuple[int, tuple[str, ...], tuple[str, ...]]]  # (items, add, remove)


def group_stats(edits: Sequence[Any]) -> GroupStats:
    sizes: Counter[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = Counter()
    for edit in edits:
        sizes[(edit.kind, edit.field, edit.add, edit.remove)] += len(edit.ids)
    ranked = sizes.most_common()
    return GroupStats(
        len(sizes),
        len({key[:3] for key in sizes}),
        len(edits),
        sum(sizes.values()),
        sum(1 for n in sizes.values() if n == 1),
        [n for _, n in ranked],
        [(n, add, remove) for (_, _, add, remove), n in ranked[:5]],
    )


def size_histogram(sizes: Sequence[int]) -> str:
    bins = [(1, 1), (2, 9), (10, 99), (100, 999), (1000, 10**9)]
    parts = []
    for low, high in bins:
        groups = [n for n in sizes if low <= n <= high]
        label = f"{low}" if low == high else (f"{low}-{high}" if high < 10**9 else f"{low}+")
        parts.append(f"{label}: {len(groups):,} groups / {sum(groups):,} items")
    return "; ".join(parts)


def batched(library: Library, tmp_path: Path, mode: str) -> tuple[Run, Run, GroupStats]:
    with emulator_process(N_TRACKS, SEED) as emulator:
        before = emulator.genres()
        assert before == library.original, "the emulator's library is not the one stored"
        db = fresh_store(library, tmp_path / f"batched-{mode}.db")
        first, report = run_writeback(emulator, db, tmp_path, mode, f"batched {mode}", PROFILE)
        check_written(library, emulator.genres(), mode)
        second, again = run_writeback(
            emulator, db, tmp_path, mode, f"batched {mode}, 2nd run", False
        )
        assert second.puts == 0 and again.counts["written"] == 0, again.counts
        assert emulator.genres() != before or not report.planned
    return first, second, group_stats(report.planned)


# --------------------------------------------------------------------------- naive


def naive(library: Library, tmp_path: Path, mode: str) -> Run:
    """fetchItem + addGenre (+ removeGenre for replace) per decided track, on a slice."""
    from plexapi.server import PlexServer

    keys = sorted(library.decided)[: min(NAIVE_TRACKS, len(library.decided))]
    with emulator_process(N_TRACKS, SEED) as emulator:
        server_cpu, client_cpu = emulator.ask("cpu"), cpu_seconds()
        started = time.perf_counter()
        plex = PlexServer(emulator.url, TOKEN)
        for key in keys:
            wanted = list(library.decided[key])
            item = plex.fetchItem(key)  # the full item: a listing would truncate its genres
            others = [g.tag for g in item.genres if fold(g.tag) not in folded(wanted)]
            item.addGenre(wanted)  # sends the item's genres plus these: its new complete list
            if mode == "replace" and others:
                item.removeGenre(others)
        seconds = time.perf_counter() - started
        client_cpu, server_cpu = cpu_seconds() - client_cpu, emulator.ask("cpu") - server_cpu
        counts = emulator.ask("counts")
        check_written(library, emulator.genres(), mode, keys)
    scale = len(library.decided) / len(keys)
    return Run(
        f"naive {mode}" + (" (extrapolated)" if scale != 1 else ""),
        len(library.decided),
        round(counts.get("PUT", 0) * scale),
        round(counts.get("GET", 0) * scale),
        seconds * scale,
        len(library.decided),
        client_cpu * scale,
        server_cpu * scale,
        note=f"ran {len(keys):,} tracks in {seconds:.1f} s, ×{scale:.2f} linear"
        if scale != 1
        else "",
    )


# --------------------------------------------------------------------------- the benchmark


def row(run: Run) -> str:
    split = ""
    if run.read_s is not None and run.apply_s is not None:
        other = run.seconds - run.read_s - run.apply_s
        split = f"  read {run.read_s:.1f} s, PUTs {run.apply_s:.1f} s, rest {other:.1f} s;"
    return (
        f"  {run.name:<30} {run.tracks:>8,} {run.puts:>8,} {run.gets:>8,} {run.seconds:>9.2f}"
        f" {run.rate:>10,.0f} {run.written:>8,}  "
        f"(CPU client {run.client_cpu:.1f} s, emulator {run.server_cpu:.1f} s;{split}"
        f"{' ' + run.note if run.note else ''})"
    )


def test_writeback_batched_vs_naive(tmp_path: Path) -> None:
    library = build_library(tmp_path)
    t = library.timings
    print(
        f"\nPlex writeback, {N_TRACKS:,} generated tracks, {len(library.decided):,} decided "
        f"(generate {t['generate']:.1f} s, store {t['store']:.1f} s, classify "
        f"{t['classify']:.1f} s, decide {t['decide']:.1f} s; emulator in its own process, "
        f"{os.cpu_count()} CPUs)"
    )
    runs: dict[str, tuple[Run, Run, GroupStats]] = {}
    naive_runs: dict[str, Run] = {}
    for mode in ("append", "replace"):
        runs[mode] = batched(library, tmp_path, mode)
        naive_runs[mode] = naive(library, tmp_path, mode)

    print(
        f"\n  {'mode':<30} {'tracks':>8} {'PUTs':>8} {'GETs':>8} {'wall s':>9} "
        f"{'tracks/s':>10} {'written':>8}"
    )
    for mode in ("append", "replace"):
        first, second, _ = runs[mode]
        print(row(first))
        print(row(second))
        print(row(naive_runs[mode]))
    goal = math.ceil(PUT_GOAL_PER_100K * N_TRACKS / 100_000)
    for mode in ("append", "replace"):
        first, second, stats = runs[mode]
        slow = naive_runs[mode]
        print(
            f"\n  {mode}: {slow.puts / max(first.puts, 1):,.0f}× fewer PUTs and "
            f"{slow.seconds / first.seconds:,.1f}× less wall time than the naive way "
            f"({slow.puts:,} PUTs, {slow.seconds:,.1f} s{', extrapolated' if slow.note else ''}); "
            f"2nd run: {second.puts} PUTs, {second.gets} GETs, {second.seconds:.2f} s"
        )
        verdict = "met" if first.puts <= goal else f"NOT met, {first.puts - goal:,} over"
        print(
            f"  PUT goal (≤ {PUT_GOAL_PER_100K:,} per 100k tracks, {goal:,} here): {verdict}; "
            f"{stats.items:,} items changed in {stats.groups:,} distinct (add, remove) groups "
            f"→ {stats.edits:,} requests ({stats.add_lists:,} distinct add lists); "
            f"{stats.singles:,} groups of one item"
        )
        print(f"    group sizes: {size_histogram(stats.sizes)}")
        for n, add, remove in stats.top:
            print(f"    {n:>7,} items: add {list(add)} remove {list(remove)}")
