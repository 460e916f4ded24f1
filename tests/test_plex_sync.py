"""The `plex` source and the sync stage: real plexapi against the Plex emulator.

Every Plex test compares what the store holds with the emulated library, and checks what
crossed the wire (the emulator's request log). The first tests drive the stage alone with
a scripted source, to pin down its bookkeeping without a server.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result
from plexapi.server import PlexServer

from genred.config import Config, parse_config
from genred.errors import Cancelled, GenredError, PlexUnreachable
from genred.hookspecs import PluginContext
from genred.pipeline.sync import state_key, sync
from genred.progress import NullProgress
from genred.records import TRACK_COLUMNS, ScanRequest, SourcePage, TrackRecord
from genred.store import Store, state
from genred_plugins.plex.connection import RetrySettings
from genred_plugins.plex.source import PlexSource, PlexSourceConfig
from tests.conftest import FIXTURES
from tests.emulators.plex import Faults, PlexEmulator, PlexLibrary, RequestRecord, Track
from tests.emulators.plex.model import TRACK
from tests.stored import track_rows

FAST = RetrySettings(attempts=8, backoff_initial=0.001, backoff_max=0.01)
PAGE = 200  # listing page size in these tests: the 2,015-track library is 11 pages


# --------------------------------------------------------------------------- helpers


def plex_config(emu: PlexEmulator) -> Config:
    return parse_config(json.dumps({"plex": {"url": emu.url, "token": emu.token}}), env={})


def plex_source(emu: PlexEmulator, store: Store, **settings: Any) -> PlexSource:
    config = PlexSourceConfig(
        **{"page_size": PAGE, "detail_batch": 100, "retries": FAST, **settings}
    )
    return PlexSource(config, PluginContext(plex_config(emu), store))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "genred.db") as opened:
        yield opened


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def expected(lib: PlexLibrary, track: Track) -> dict[str, Any]:
    """The stored row a track must have, from the emulator's own data (full tag lists)."""
    album, artist = lib.albums[track.album_key], lib.artists[track.artist_key]
    return {
        "source": "plex",
        "source_id": str(track.rating_key),
        "title": track.title,
        "artist": track.original_title or artist.title,
        "album": album.title,
        "album_artist": artist.title,
        "album_source_id": str(album.rating_key),
        "artist_source_id": str(artist.rating_key),
        "path": track.file,
        "track_no": track.index,
        "disc_no": track.disc,
        "year": track.year,
        "duration_ms": track.duration_ms,
        "genres": track.genres,
        "moods": track.moods,
        "album_genres": album.genres,
        "artist_genres": artist.genres,
        "source_added_at": iso(track.added_at),
        "source_updated_at": iso(track.updated_at),
        "isrc": None,  # Plex does not report ISRCs
    }


def assert_store_matches(store: Store, lib: PlexLibrary) -> dict[str, dict[str, Any]]:
    """Every live track of the library is stored, active, with exactly its data."""
    stored = track_rows(store)
    live = [lib.tracks[k] for k in lib.ordered(TRACK)]
    for track in live:
        row = stored[str(track.rating_key)]
        assert {k: row[k] for k in TRACK_COLUMNS} == expected(lib, track)
        assert row["removed"] == 0
    return stored


def listings(emu: PlexEmulator) -> list[RequestRecord]:
    return [r for r in emu.requests if r.path.endswith("/all") and r.method == "GET"]


def starts(requests: list[RequestRecord]) -> list[int]:
    return [int(r.headers["X-Plex-Container-Start"]) for r in requests]


def detail_ids(emu: PlexEmulator) -> list[set[str]]:
    """The ids of each `/library/metadata/{ids}` request that got an answer."""
    return [
        set(r.path.rsplit("/", 1)[1].split(","))
        for r in emu.requests
        if r.path.startswith("/library/metadata/") and r.status == 200
    ]


def track_keys(lib: PlexLibrary) -> set[str]:
    return {str(k) for k in lib.tracks}


class CrashAfter(NullProgress):
    """A progress sink that raises after `pages` pages, like a process killed mid-sync."""

    def __init__(self, pages: int, action: Any = None) -> None:
        self.pages, self.action = pages, action

    def advance(self, n: int = 1) -> None:
        self.pages -= 1
        if self.pages == 0:
            if self.action is None:
                raise KeyboardInterrupt
            self.action()


# --------------------------------------------------------------------------- the stage alone


@dataclass
class ScriptedSource:
    """A source whose pages are given in advance; records every request it got."""

    pages: list[SourcePage]
    present: set[str] = field(default_factory=set)
    requests: list[ScanRequest] = field(default_factory=list)

    def scan(self, request: ScanRequest) -> Iterator[SourcePage]:
        self.requests.append(request)
        yield from self.pages

    def gone(self, source_ids: Sequence[str]) -> set[str]:
        return set(source_ids) - self.present


def record(sid: str, **fields: Any) -> TrackRecord:
    base: dict[str, Any] = {"title": f"t{sid}", "genres": ("Rock",), "source_updated_at": "u1"}
    return TrackRecord("plex", sid, **{**base, **fields})


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_stage_bumps_changed_at_only_for_real_changes(store: Store) -> None:
    clock = Clock()
    first = ScriptedSource([SourcePage(["1", "2", "3"], [record("1"), record("2"), record("3")])])
    result = sync(store, "plex", first, full=True, clock=clock)
    assert (result.added, result.changed, result.unchanged) == (3, 0, 0)
    before = track_rows(store)

    clock.now += timedelta(hours=1)
    page = SourcePage(
        ["1", "2", "3"],
        [record("1", genres=("Rock", "Dub")), record("2", source_updated_at="u2")],
    )
    result = sync(store, "plex", ScriptedSource([page]), full=True, clock=clock)
    after = track_rows(store)
    assert (result.added, result.changed, result.unchanged) == (0, 1, 2)
    assert result.changed_track_ids == [before["1"]["id"]]
    assert after["1"]["genres"] == ["Rock", "Dub"]
    assert after["1"]["changed_at"] > before["1"]["changed_at"]
    assert after["2"]["source_updated_at"] == "u2"  # stored, but no content change:
    assert after["2"]["changed_at"] == before["2"]["changed_at"]
    assert after["3"]["changed_at"] == before["3"]["changed_at"]
    assert all(after[s]["synced_at"] > before[s]["synced_at"] for s in "123")
    assert all(after[s]["first_seen_at"] == before[s]["first_seen_at"] for s in "123")


def test_stage_picks_full_or_incremental_by_age(store: Store) -> None:
    clock = Clock()
    source = ScriptedSource([SourcePage(["1"], [record("1")])])
    assert sync(store, "plex", source, clock=clock).full  # never synced: full
    started = clock.now
    clock.now += timedelta(hours=2)
    assert not sync(store, "plex", source, clock=clock).full
    assert source.requests[-1].since == started  # changes since the last sync began
    clock.now += timedelta(hours=23)
    assert sync(store, "plex", source, clock=clock).full  # last full over a day ago
    assert source.requests[-1].since is None
    assert not sync(store, "plex", source, full=False, clock=clock).full


def test_stage_removes_only_what_the_source_confirms_gone(store: Store) -> None:
    clock = Clock()
    sync(
        store,
        "plex",
        ScriptedSource([SourcePage(["1", "2", "3"], [record(s) for s in "123"])]),
        clock=clock,
    )
    clock.now += timedelta(hours=1)
    # "2" and "3" were not listed; the source says "3" still exists (a skipped item).
    result = sync(
        store, "plex", ScriptedSource([SourcePage(["1"])], present={"3"}), full=True, clock=clock
    )
    stored = track_rows(store)
    assert result.removed == 1
    assert (stored["2"]["removed"], stored["3"]["removed"]) == (1, 0)
    assert stored["2"]["removed_at"] == clock.now.isoformat(timespec="microseconds")
    clock.now += timedelta(hours=1)
    result = sync(store, "plex", ScriptedSource([SourcePage(["1", "2"])]), full=True, clock=clock)
    assert result.restored == 1 and track_rows(store)["2"]["removed"] == 0
    assert result.changed_track_ids == [stored["2"]["id"]]


def test_stage_commits_whole_pages_only(store: Store) -> None:
    clock = Clock()
    sync(store, "plex", ScriptedSource([SourcePage(["1"], [record("1")])]), clock=clock)
    before = track_rows(store)
    clock.now += timedelta(hours=1)
    bad = record("9", title=object())  # SQLite cannot store it: the page fails mid-write
    pages = [SourcePage(["2"], [record("2")], cursor={"n": 1}), SourcePage(["1", "9"], [bad])]
    with pytest.raises(Exception, match=r"type 'object' is not supported|binding parameter"):
        sync(store, "plex", ScriptedSource(pages), full=True, clock=clock)
    after = track_rows(store)
    assert set(after) == {"1", "2"}  # page 1 committed, page 2 not at all:
    assert after["1"]["synced_at"] == before["1"]["synced_at"]  # its touch was rolled back
    assert state.get(store, state_key("plex", "pending_full"))["cursor"] == {"n": 1}


def test_stage_stops_between_pages_when_cancelled_and_resumes(store: Store) -> None:
    clock, cancel = Clock(), threading.Event()
    pages = [
        SourcePage(["1"], [record("1")], cursor={"n": 1}),
        SourcePage(["2"], [record("2")], cursor={"n": 2}),
    ]
    source = ScriptedSource(pages)

    class CancelAfterFirstPage(NullProgress):
        def advance(self, n: int = 1) -> None:
            cancel.set()  # as SIGTERM arriving while page 1 was being stored

    with pytest.raises(Cancelled, match="sync: stopped for shutdown"):
        sync(store, "plex", source, progress=CancelAfterFirstPage(), clock=clock, cancel=cancel)
    assert set(track_rows(store)) == {"1"}  # page 1 committed, page 2 never asked for
    pending = state.get(store, state_key("plex", "pending_full"))
    assert pending["cursor"] == {"n": 1}
    assert state.get(store, state_key("plex", "last")) is None

    source.pages = pages[1:]
    result = sync(store, "plex", source, clock=clock, cancel=threading.Event())
    assert source.requests[-1].resume == {"n": 1}  # the same full scan, continued
    assert (result.full, result.added, result.removed) == (True, 1, 0)
    assert set(track_rows(store)) == {"1", "2"}
    assert state.get(store, state_key("plex", "pending_full")) is None


def test_stage_limits_to_paths_only_for_plugins_that_support_them(store: Store) -> None:
    clock = Clock()
    source = ScriptedSource([SourcePage(["1"], [record("1")])])
    sync(store, "plex", source, clock=clock)
    last = state.get(store, state_key("plex", "last"))
    clock.now += timedelta(hours=1)
    result = sync(store, "plex", source, paths=["/music/a"], full=True, clock=clock)
    assert not result.full  # a sync limited to paths is never a full scan
    request = source.requests[-1]
    assert (request.since, request.paths) == (datetime.fromisoformat(last), ())  # incremental

    @dataclass
    class PathSource(ScriptedSource):
        supports_paths = True

    by_path = PathSource([SourcePage(["1"])])
    sync(store, "plex", by_path, paths=["/music/a/"], clock=clock)
    assert (by_path.requests[-1].since, by_path.requests[-1].paths) == (None, ("/music/a",))


# --------------------------------------------------------------------------- Plex: full sync


def test_full_sync_stores_every_field_of_every_track(
    plex_emulator: PlexEmulator, store: Store
) -> None:
    emu, lib = plex_emulator, plex_emulator.library
    result = sync(store, "plex", plex_source(emu, store), full=True)

    assert (result.seen, result.added, result.removed) == (len(lib), len(lib), 0)
    stored = assert_store_matches(store, lib)
    assert len(stored) == len(lib) == 2015
    # The listing shows at most 2 genres; the stored lists are the full ones.
    long = [t for t in lib.tracks.values() if len(t.genres) > 2]
    assert long and all(stored[str(t.rating_key)]["genres"] == t.genres for t in long)
    compilation = next(t for t in lib.tracks.values() if t.original_title)
    assert stored[str(compilation.rating_key)]["artist"] == compilation.original_title
    assert {r["source_id"] for r in stored.values() if r["moods"]}  # moods came through

    # On the wire: 11 listing pages of 200 (trimmed), each track's details once, in batches.
    pages = listings(emu)
    assert starts(pages) == list(range(0, 2015, PAGE))
    assert all(r.headers["X-Plex-Container-Size"] == str(PAGE) for r in pages)
    assert all(r.query["excludeElements"] for r in pages)
    fetched = [ids & track_keys(lib) for ids in detail_ids(emu)]
    flat = [i for ids in fetched for i in ids]
    assert sorted(flat) == sorted(stored) and all(len(ids) <= 100 for ids in fetched)
    # Album and artist genres came from their own metadata, each item asked for once.
    parents = [i for ids in detail_ids(emu) for i in ids - track_keys(lib)]
    wanted = {r["album_source_id"] for r in stored.values()}
    wanted |= {r["artist_source_id"] for r in stored.values()}
    assert sorted(parents) == sorted(wanted)


def test_missing_plex_section_is_a_clear_error(store: Store) -> None:
    with pytest.raises(GenredError, match="needs a `plex:` section"):
        PlexSource(PlexSourceConfig(), PluginContext(parse_config("{}", env={}), store))


# --------------------------------------------------------------------------- incremental


def test_incremental_sync_fetches_only_what_changed(
    plex_emulator: PlexEmulator, store: Store
) -> None:
    emu, lib = plex_emulator, plex_emulator.library
    source = plex_source(emu, store)
    sync(store, "plex", source, full=True)
    last = datetime.fromisoformat(state.get(store, state_key("plex", "last")))

    edited = lib.tracks[lib.ordered(TRACK)[100]]
    PlexServer(emu.url, emu.token).fetchItem(edited.rating_key).addGenre("Dub")
    audio = next((FIXTURES / "audio" / "debian").glob("*.ogg"))
    folder = emu.scan_roots[lib.root] / "New Artist" / "New Album"
    folder.mkdir(parents=True)
    shutil.copy(audio, folder / "01 - New Song.ogg")
    (added_key,) = emu.scan().added
    added = lib.track(added_key)
    emu.clear_requests()

    result = sync(store, "plex", source)  # full=None: the last full sync is fresh
    assert not result.full
    assert (result.added, result.changed, result.removed) == (1, 1, 0)
    stored = assert_store_matches(store, lib)
    assert "Dub" in stored[str(edited.rating_key)]["genres"]
    assert stored[str(added.rating_key)]["path"] == added.file
    assert set(result.changed_track_ids) == {
        stored[str(edited.rating_key)]["id"],
        stored[str(added.rating_key)]["id"],
    }

    # One track listing, asking for items updated since the last sync minus the 5-minute
    # overlap, and details of the two tracks only (plus their albums and artists); then
    # the albums and artists updated since (here: the new ones, already read).
    by_type = {r.query["type"][0]: r for r in listings(emu)}
    assert sorted(by_type) == ["10", "8", "9"] and len(listings(emu)) == 3
    for listing in by_type.values():
        since = int(listing.query["updatedAt>>"][0])
        assert abs(since - (last.timestamp() - 300)) <= 1
    fetched_tracks = set().union(*detail_ids(emu)) & track_keys(lib)
    assert fetched_tracks == {str(edited.rating_key), str(added.rating_key)}
    assert len(emu.requests) <= 10


def test_no_change_resync_does_almost_nothing(plex_emulator: PlexEmulator, store: Store) -> None:
    emu = plex_emulator
    source = plex_source(emu, store)
    sync(store, "plex", source, full=True)
    emu.clear_requests()
    result = sync(store, "plex", source)
    assert (result.full, result.seen, result.added, result.changed) == (False, 0, 0, 0)
    assert [(r.path, r.query.get("type")) for r in emu.requests] == [
        ("/", None),
        ("/library", None),
        ("/library/sections", None),
        (f"/library/sections/{emu.section_id}/all", ["10"]),  # tracks updated since
        (f"/library/sections/{emu.section_id}/all", ["9"]),  # albums updated since
        (f"/library/sections/{emu.section_id}/all", ["8"]),  # artists updated since
    ]


# --------------------------------------------------------------------------- removals


def test_removed_tracks_are_marked_never_deleted_and_restored(
    plex_emulator: PlexEmulator, store: Store
) -> None:
    emu, lib = plex_emulator, plex_emulator.library
    source = plex_source(emu, store)
    sync(store, "plex", source, full=True)
    album = next(a for a in lib.albums.values() if len(lib.tracks_of_album(a.rating_key)) > 2)
    gone = lib.tracks_of_album(album.rating_key)[0]
    lib.remove_track(gone.rating_key)

    assert sync(store, "plex", source, full=False).removed == 0  # only a full scan removes
    emu.clear_requests()
    result = sync(store, "plex", source, full=True)
    stored = track_rows(store)
    assert result.removed == 1 and len(stored) == 2015  # marked, not deleted
    assert stored[str(gone.rating_key)]["removed"] == 1
    assert stored[str(gone.rating_key)]["removed_at"]
    assert sum(r["removed"] for r in stored.values()) == 1
    asked = [
        r for r in emu.requests if str(gone.rating_key) in r.path.rsplit("/", 1)[-1].split(",")
    ]
    assert asked and asked[-1].status == 404  # confirmed gone before being marked

    # Found again (e.g. a drive back online before PMS emptied its trash): same ratingKey.
    gone.removed = False
    lib.invalidate_order()
    result = sync(store, "plex", source, full=True)
    row = track_rows(store)[str(gone.rating_key)]
    assert result.restored == 1 and row["removed"] == 0 and row["removed_at"] is None
    assert row["id"] in result.changed_track_ids


# --------------------------------------------------------------------------- resume


def test_interrupted_full_sync_resumes_where_it_stopped(
    plex_emulator: PlexEmulator, store: Store
) -> None:
    emu, lib = plex_emulator, plex_emulator.library
    source = plex_source(emu, store)
    with pytest.raises(KeyboardInterrupt):
        sync(store, "plex", source, full=True, progress=CrashAfter(4))
    pending = state.get(store, state_key("plex", "pending_full"))
    assert len(track_rows(store)) == 4 * PAGE and pending["cursor"]["offset"] == 4 * PAGE
    first_run = starts(listings(emu))
    first_details = set().union(*detail_ids(emu)) & track_keys(lib)
    emu.clear_requests()

    result = sync(store, "plex", source)  # full=None: the pending full scan goes on
    assert result.full and result.removed == 0
    assert_store_matches(store, lib)
    # It went on from the cursor (less a 20-item margin to find its place again), fetched
    # no detail twice, and the only page listed twice is the one prefetched at the crash.
    second_run = starts(listings(emu))
    assert first_run[:4] == [0, 200, 400, 600] and set(first_run) <= {0, 200, 400, 600, 800}
    assert second_run == list(range(780, 2015, PAGE))
    assert not (set().union(*detail_ids(emu)) & first_details)
    assert state.get(store, state_key("plex", "pending_full")) is None
    assert state.get(store, state_key("plex", "last_full")) == pending["started_at"]


def test_resume_finds_its_place_after_the_library_shifted(
    plex_emulator: PlexEmulator, store: Store
) -> None:
    emu, lib = plex_emulator, plex_emulator.library
    source = plex_source(emu, store)
    with pytest.raises(KeyboardInterrupt):
        sync(store, "plex", source, full=True, progress=CrashAfter(4))
    # Tracks before the cursor go away: everything after moves 6 places up the listing.
    early = [lib.tracks[k] for k in lib.ordered(TRACK)[100:106]]
    for track in early:
        lib.remove_track(track.rating_key)

    result = sync(store, "plex", source)
    assert result.full
    stored = assert_store_matches(store, lib)  # nothing skipped at the resume point
    # Seen before they went, so this scan cannot tell; the next full scan marks them.
    assert all(stored[str(t.rating_key)]["removed"] == 0 for t in early)
    assert sync(store, "plex", source, full=True).removed == len(early)


def test_server_outage_mid_sync_then_resume(plex_emulator: PlexEmulator, store: Store) -> None:
    emu, lib = plex_emulator, plex_emulator.library
    source = plex_source(
        emu, store, retries=RetrySettings(attempts=3, backoff_initial=0.001, backoff_max=0.01)
    )

    def outage() -> None:
        emu.faults = Faults(error_5xx_rate=1.0, error_status=503)

    with pytest.raises(PlexUnreachable, match=r"Plex kept failing while .*503"):
        sync(store, "plex", source, full=True, progress=CrashAfter(3, outage))
    assert len(track_rows(store)) == 3 * PAGE
    emu.faults = Faults()
    result = sync(store, "plex", source, full=True)
    assert result.added == len(lib) - 3 * PAGE and result.removed == 0
    assert_store_matches(store, lib)


# --------------------------------------------------------------------------- faults


def test_faults_are_retried_and_the_store_ends_consistent(
    plex_emulator: PlexEmulator, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    emu, lib = plex_emulator, plex_emulator.library
    emu.faults = Faults(error_5xx_rate=0.15, drop_rate=0.1, throttle_429_rate=0.05, seed=7)
    caplog.set_level("DEBUG")
    with structlog.testing.capture_logs() as logs:
        result = sync(store, "plex", plex_source(emu, store), full=True)
    assert result.added == len(lib)
    assert_store_matches(store, lib)
    faults = {r.fault for r in emu.requests}
    assert {"5xx", "drop", "429"} <= faults  # each kind met, and retried past
    assert any(e["event"] == "plex request failed, retrying" for e in logs)
    assert emu.token not in caplog.text + repr(logs)


# --------------------------------------------------------------------------- CLI


def cli_config(tmp_path: Path, emu: PlexEmulator, token: str | None = None, **plex: Any) -> Path:
    path = tmp_path / "genred.yaml"
    path.write_text(
        json.dumps(
            {
                "data_dir": str(tmp_path / "data"),
                "plex": {"url": emu.url, "token": token or emu.token, **plex},
                "plugins": {
                    "sources": {"plex": {"page_size": 500, "retries": FAST.model_dump()}},
                    "writeback": [],
                },
                "logging": {"level": "error"},
            }
        )
    )
    path.chmod(0o600)
    return path


def genred(config: Path, *args: str) -> Result:
    from genred.cli import cli

    return CliRunner().invoke(cli, [*args, "--config", str(config)], catch_exceptions=False)


def test_cli_sync_prints_a_summary_and_records_the_run(
    plex_emulator: PlexEmulator, tmp_path: Path
) -> None:
    config = cli_config(tmp_path, plex_emulator)
    result = genred(config, "sync", "--full")
    assert result.exit_code == 0, result.output
    assert "synced 2,015 tracks: 2,015 added, 0 changed, 0 removed in " in result.output
    result = genred(config, "sync", "--incremental", "--source", "plex")
    assert result.exit_code == 0, result.output
    assert "synced 0 tracks: 0 added, 0 changed, 0 removed in " in result.output
    with Store.open(tmp_path / "data" / "genred.db") as store:
        runs = store.conn.execute("SELECT status, counts FROM runs WHERE job = 'sync'").fetchall()
    assert [r[0] for r in runs] == ["ok", "ok"]
    assert json.loads(runs[0][1])["added"] == 2015


def test_cli_sync_with_a_wrong_token_exits_1_with_one_line(
    plex_emulator: PlexEmulator, tmp_path: Path
) -> None:
    config = cli_config(tmp_path, plex_emulator, token="wrong-token-123")
    result = genred(config, "sync")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == ["error: Plex refused the token while connecting: check plex.token"]
    assert "wrong-token-123" not in result.output
    result = genred(config, "sync", "--source", "folder")
    assert result.exit_code == 1 and "source 'folder' is not enabled" in result.output


def test_plex_check_counts_readable_files_through_the_path_map(
    plex_emulator: PlexEmulator, tmp_path: Path
) -> None:
    lib = plex_emulator.library
    path_map = {prefix: str(local) for prefix, local in lib.audio_path_map().items()}
    config = cli_config(tmp_path, plex_emulator, path_map=path_map)
    before = genred(config, "plex", "check")
    assert before.exit_code == 1 and "nothing synced from Plex yet" in before.output

    assert genred(config, "sync").exit_code == 0
    result = genred(config, "plex", "check", "--sample", "3")
    assert result.exit_code == 1  # the CSV tracks have no file behind them
    readable = len(lib.audio_files)  # the 15 real fixture files
    assert f"{readable} of 2,015 tracks readable" in result.output
    assert f"{2015 - readable:,} unreadable, for example:" in result.output
    samples = [line for line in result.output.splitlines() if line.startswith("  ")]
    assert len(samples) == 3 and all(line.endswith("(missing)") for line in samples)

    # Every fixture file is read at its mapped place; unmapped, none is.
    with Store.open(tmp_path / "data" / "genred.db") as store:
        paths = {r[0] for r in store.conn.execute("SELECT path FROM tracks")}
    assert set(lib.audio_files) <= paths
    unmapped = cli_config(tmp_path, plex_emulator)
    assert "0 of 2,015 tracks readable" in genred(unmapped, "plex", "check").output
