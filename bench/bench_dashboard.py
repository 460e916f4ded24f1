"""The dashboard at 100,000 tracks: library pages, the overview, the CSV export, idle RSS.

A made-up library (bench/library_data.py) is written straight into a store; the app is
the real one (create_app with a WebContext), called in-process, so the times are server
times (rendering included, no network). Each figure is compared with the naive way in
the same run: OFFSET pages with a LIKE scan and a COUNT per request; the overview's
figures computed per request; the CSV built in memory. Last, `genred run` with the web
side on serves the dashboard over that store, and its resident memory is sampled while
idle (and the same daemon with `web.enabled: false`).

Run with `make bench`, or alone: `pytest -m bench bench -k dashboard -s`. Library size
via GENRED_BENCH_DASHBOARD_TRACKS (default 100,000).
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench.library_data import build_library
from genred.config import parse_config
from genred.store import Store, library, stats
from genred.web import create_app
from genred.web.context import WebContext
from tests.daemon_process import DaemonProcess, wait_until

pytestmark = pytest.mark.bench

TRACKS = int(os.environ.get("GENRED_BENCH_DASHBOARD_TRACKS", "100000"))
TOKEN = "bench-token-0123456789abcdef"
LIBRARY_QUERIES = {
    "first page": "",
    "search, rare word": "q=mot%C3%B6rhead",
    "search, two words": "q=album+999",
    "search, common word": "q=track",
    "search, short word": "q=ab",
    "search, no match": "q=zzzzzz",
    "genre": "genre=Jazz",
    "confidence below 0.3": "below=0.3",
    "needs review": "status=review",
    "decided by": "by=taxonomy",
    "changed by genred": "changed=1",
    "has an override": "overridden=1",
    "sort by title": "sort=title",
    "sort by confidence, desc": "sort=confidence&order=desc",
    "changed, by confidence": "changed=1&sort=confidence&order=desc",
    "genre + search": "genre=Jazz&q=live",
}


def timed(call: Callable[[], Any], repeat: int = 5) -> tuple[float, float, Any]:
    """(first, median of the rest) in ms, and the first result."""
    times, result = [], None
    for i in range(repeat):
        started = time.perf_counter()
        value = call()
        times.append((time.perf_counter() - started) * 1000)
        result = value if i == 0 else result
    return times[0], statistics.median(times[1:]), result


def naive_page(store: Store, words: list[str], offset: int) -> tuple[list[Any], int]:
    """The obvious way: LIKE over every searched column, OFFSET pages, a COUNT each time."""
    where, params = ["t.removed = 0"], []
    for word in words:
        pattern = f"%{word}%"
        where.append(
            "(t.title LIKE ? OR t.artist LIKE ? OR t.album LIKE ? OR d.genres LIKE ? "
            "OR d.moods LIKE ? OR d.labels LIKE ?)"
        )
        params += [pattern] * 6
    sql = f"{library.FROM} WHERE {' AND '.join(where)}"
    rows = store.conn.execute(
        f"SELECT {library.COLUMNS} {sql} ORDER BY t.artist, t.album, t.track_no, t.id "
        "LIMIT 50 OFFSET ?",
        [*params, offset],
    ).fetchall()
    total = store.conn.execute(f"SELECT COUNT(*) {sql}", params).fetchone()[0]
    return rows, total


def naive_cells(row: library.LibraryRow) -> list[Any]:
    """A CSV line from the row objects the page builds (JSON decoded in Python)."""
    return [
        row.id, row.source, row.source_id, row.artist or "", row.album or "", row.title or "",
        row.year or "", "; ".join(row.original), "; ".join(row.genres), "; ".join(row.moods),
        "; ".join(row.labels), "" if row.confidence is None else f"{row.confidence:.4f}",
        row.status, row.decided_by, "yes" if row.overridden else "no",
        "yes" if row.changed else "no",
    ]  # fmt: skip


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle_rss(root: Path, db: Path, web: bool) -> float:
    """`genred run` over the store (no source: nothing to sync), the dashboard viewed a
    few times, then its resident memory over 10 quiet seconds (the largest sample)."""
    import httpx

    data = root / ("data-web" if web else "data-noweb")
    data.mkdir(exist_ok=True)
    (data / "genred.db").unlink(missing_ok=True)
    os.link(db, data / "genred.db")
    port = 18900 + int(web)
    config = root / f"idle-{int(web)}.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            data_dir: {data}
            watch: {{enabled: false}}
            web: {{enabled: {str(web).lower()}, port: {port}, api_token: {TOKEN}}}
            logging: {{level: warning}}
            """
        )
    )
    config.chmod(0o600)
    with DaemonProcess(config, watchdog_usec=60_000_000) as daemon:
        daemon.wait_ready(120)
        if web:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: httpx.get(f"{base}/", timeout=60).status_code == 200, 120, "/")
            for path in ("/", "/library", "/library?q=track", "/review", "/tracks/5", "/"):
                assert httpx.get(base + path, timeout=60).status_code == 200
        time.sleep(2)
        pid = daemon.proc.pid
        samples = []
        for _ in range(10):
            samples.append(rss_mb(pid))
            time.sleep(1)
        assert daemon.stop() == 0
    return max(samples)


def test_dashboard_at_100k(tmp_path: Path) -> None:
    started = time.perf_counter()
    db = tmp_path / "data" / "genred.db"
    db.parent.mkdir()
    build_library(db, TRACKS).close()
    built = time.perf_counter() - started
    config = parse_config(f"data_dir: {db.parent}\nweb: {{api_token: {TOKEN}}}\n", env={})
    context = WebContext(config=lambda: config)
    client = TestClient(create_app([], None, web=context))
    print(f"\ndashboard at {TRACKS:,} tracks (library written in {built:.1f} s)")

    # -- the library page (templates compiled and a connection opened first, as after
    # the first visit of anyone)
    assert client.get("/library?q=warming-up").status_code == 200
    print("  library page, server time (ms)     first  again   naive (OFFSET + LIKE + COUNT)")
    worst = 0.0
    with Store.open(db) as store:
        for name, query in LIBRARY_QUERIES.items():
            first, again, answer = timed(lambda q=query: client.get(f"/library?{q}"))
            assert answer.status_code == 200
            words = [w for k, v in (p.split("=") for p in query.split("&") if p) if k == "q"
                     for w in [v.replace("%C3%B6", "ö").replace("+", " ")]]  # fmt: skip
            naive = timed(lambda w=words: naive_page(store, " ".join(w).split(), 0), 3)[1]
            worst = max(worst, first, again)
            print(f"  {name:34} {first:6.1f} {again:6.1f}   {naive:6.1f}")
        deep = library.page(store, library.LibraryQuery(), limit=TRACKS // 2, with_total=False)
        cursor = deep.next_cursor
        assert cursor is not None
        first, again, answer = timed(lambda: client.get("/library", params={"cursor": cursor}))
        assert answer.status_code == 200 and "Next 50" in answer.text
        naive = timed(lambda: naive_page(store, [], TRACKS // 2), 3)[1]
        worst = max(worst, first, again)
        print(
            f"  {'page at track ' + f'{TRACKS // 2:,}':34} {first:6.1f} {again:6.1f}   {naive:6.1f}"
        )

        # -- the overview
        cold, warm, answer = timed(lambda: client.get("/"))
        assert answer.status_code == 200
        naive = timed(lambda: stats.overview(store), 3)[1]
        print(
            f"  overview: first view {cold:.0f} ms (computes the figures), then {warm:.1f} ms; "
            f"naive (figures per request) {naive:.0f} ms"
        )

    # -- the CSV export
    tracemalloc.start()
    began = time.perf_counter()
    with client.stream("GET", "/export.csv") as response:
        lines = sum(chunk.count("\n") for chunk in response.iter_text())
    took = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    tracemalloc.start()
    began = time.perf_counter()
    with Store.open(db) as store:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in library.page(store, library.LibraryQuery(), limit=TRACKS + 1).rows:
            writer.writerow(naive_cells(row))
        whole = buffer.getvalue()
    naive_took = time.perf_counter() - began
    naive_peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    assert lines == TRACKS + 1 and whole.count("\n") == TRACKS
    print(
        f"  CSV of {TRACKS:,} rows streamed in {took:.2f} s, peak Python memory {peak:.1f} MB; "
        f"naive (all rows, then the text) {naive_took:.2f} s, {naive_peak:.0f} MB"
    )
    context.close()

    # -- the idle daemon
    with_web = idle_rss(tmp_path, db, web=True)
    without = idle_rss(tmp_path, db, web=False)
    print(
        f"  idle `genred run` over it: RSS {with_web:.0f} MB with the dashboard viewed, "
        f"{without:.0f} MB with web off"
    )
    assert worst <= 150, f"a library page took {worst:.0f} ms"
    assert warm <= 200, f"the overview took {warm:.0f} ms"
    assert took <= 5 and peak < 50
    assert with_web < 200
