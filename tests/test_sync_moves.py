"""Moved files keep their track id, and so their predictions, decisions and overrides:
`moves.move` (the watcher saw the rename) and the offline moves a scan finds by tags."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mutagen
import pytest

from genred.config import parse_config
from genred.hookspecs import PluginContext
from genred.pipeline import moves
from genred.pipeline.sync import sync
from genred.records import SourcePage, TrackRecord
from genred.store import Store, failures, utcnow
from genred_plugins.folder.source import FolderSource, FolderSourceConfig
from tests.conftest import FIXTURES
from tests.test_plex_sync import ScriptedSource

TRUMPET = FIXTURES / "audio" / "librosa-data" / "sorohanro_-_solo-trumpet-06.ogg"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "genred.db") as opened:
        yield opened


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> Clock:
        self.now += timedelta(hours=1)
        return self


def record(path: str, **fields: Any) -> TrackRecord:
    base: dict[str, Any] = {"title": Path(path).stem, "duration_ms": 200_000}
    return TrackRecord("folder", path, path=path, **{**base, **fields})


def store_tracks(store: Store, *paths: str) -> dict[str, int]:
    """Sync these folder-like tracks (source id = path) in; their store ids by path."""
    sync(
        store, "folder", ScriptedSource([SourcePage(paths, [record(p) for p in paths])]), full=True
    )
    return {p: track_id(store, p) for p in paths}


def track_id(store: Store, source_id: str) -> int:
    row = store.conn.execute(
        "SELECT id FROM tracks WHERE source = 'folder' AND source_id = ?", (source_id,)
    ).fetchone()
    return int(row[0])


def derive(store: Store, track: int, genre: str) -> None:
    """What the later stages attach to a track: a prediction, a decision, an override."""
    now = utcnow()
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO predictions VALUES (?, 'taxonomy', 'genre', '1', ?, ?)",
            (track, json.dumps([[genre, 1.0]]), now),
        )
        conn.execute(
            "INSERT INTO decisions (track_id, genres, status, decided_at) VALUES (?, ?, 'decided', ?)",
            (track, json.dumps([genre]), now),
        )
        conn.execute(
            "INSERT INTO overrides VALUES (?, 'genre', ?, 'cli', 'me', ?)",
            (track, json.dumps([genre]), now),
        )


def derived(store: Store, track: int) -> tuple[Any, ...]:
    one = store.conn.execute
    return (
        one("SELECT labels FROM predictions WHERE track_id = ?", (track,)).fetchall(),
        one("SELECT genres FROM decisions WHERE track_id = ?", (track,)).fetchall(),
        one("SELECT value FROM overrides WHERE track_id = ?", (track,)).fetchall(),
    )


def location(store: Store, track: int) -> tuple[str, str, int]:
    row = store.conn.execute(
        "SELECT source_id, path, removed FROM tracks WHERE id = ?", (track,)
    ).fetchone()
    return tuple(row)


def count_tracks(store: Store) -> int:
    return int(store.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0])


# --------------------------------------------------------------------------- moves.move


def test_move_of_a_file_keeps_the_track_and_what_hangs_on_it(store: Store) -> None:
    ids = store_tracks(store, "/m/a/song.ogg", "/m/a/other.ogg")
    song = ids["/m/a/song.ogg"]
    derive(store, song, "Jazz")
    before = derived(store, song)
    changed_at = store.conn.execute(
        "SELECT changed_at FROM tracks WHERE id = ?", (song,)
    ).fetchone()

    assert moves.move(store, "folder", "/m/a/song.ogg", "/m/b/renamed.ogg") == 1

    assert location(store, song) == ("/m/b/renamed.ogg", "/m/b/renamed.ogg", 0)
    assert derived(store, song) == before and before[0]
    assert location(store, ids["/m/a/other.ogg"])[0] == "/m/a/other.ogg"
    assert count_tracks(store) == 2
    assert (
        store.conn.execute("SELECT changed_at FROM tracks WHERE id = ?", (song,)).fetchone()
        == changed_at
    )  # same file: nothing downstream to redo
    assert moves.move(store, "folder", "/m/a/song.ogg", "/m/c/x.ogg") == 0  # nothing there now


def test_move_of_a_folder_moves_everything_under_it(store: Store) -> None:
    ids = store_tracks(
        store, "/m/Artist/Album/1.ogg", "/m/Artist/Album/cd2/2.ogg", "/m/Artist/Album2/3.ogg"
    )
    for track in ids.values():
        derive(store, track, "Rock")

    assert moves.move(store, "folder", "/m/Artist/Album/", "/m/Other/Album") == 2

    assert location(store, ids["/m/Artist/Album/1.ogg"])[:2] == ("/m/Other/Album/1.ogg",) * 2
    assert (
        location(store, ids["/m/Artist/Album/cd2/2.ogg"])[:2] == ("/m/Other/Album/cd2/2.ogg",) * 2
    )
    assert (
        location(store, ids["/m/Artist/Album2/3.ogg"])[0] == "/m/Artist/Album2/3.ogg"
    )  # a sibling
    assert all(derived(store, t)[0] for t in ids.values())


def test_move_onto_a_track_already_stored_keeps_the_older_identity(store: Store) -> None:
    ids = store_tracks(store, "/m/old/song.ogg")
    old = ids["/m/old/song.ogg"]
    derive(store, old, "Jazz")
    clock = Clock().tick()
    # A scan saw the file at its new place before the watcher's move event was handled.
    newer_page = SourcePage(["/m/new/song.ogg"], [record("/m/new/song.ogg")])
    sync(store, "folder", ScriptedSource([newer_page]), full=False, clock=clock)
    newer = track_id(store, "/m/new/song.ogg")
    derive(store, newer, "Blues")
    failures.record(store, "classify:taxonomy", str(newer), RuntimeError("boom"))
    with store.transaction() as conn:
        conn.execute("UPDATE tracks SET removed = 1 WHERE id = ?", (old,))

    assert moves.move(store, "folder", "/m/old/song.ogg", "/m/new/song.ogg") == 1

    assert location(store, old) == ("/m/new/song.ogg", "/m/new/song.ogg", 0)  # restored too
    assert derived(store, old)[1] == [('["Jazz"]',)]
    assert store.conn.execute("SELECT COUNT(*) FROM tracks WHERE id = ?", (newer,)).fetchone() == (
        0,
    )
    assert derived(store, newer) == ([], [], [])  # its dependents went with it
    assert failures.counts_by_stage(store) == {}


# --------------------------------------------------------------------------- offline moves


def folder_source(root: Path) -> FolderSource:
    config = parse_config(json.dumps({"folders": [str(root)]}), env={})
    return FolderSource(FolderSourceConfig(), PluginContext(config))


def tagged(dest: Path, **tags: str) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TRUMPET, dest)
    audio = mutagen.File(dest, easy=True)
    for key, value in tags.items():
        audio[key] = value
    audio.save()
    return dest


def test_full_scan_finds_a_file_moved_while_down(tmp_path: Path, store: Store) -> None:
    music = tmp_path / "music"
    song = tagged(music / "incoming" / "song.ogg", title="Song", artist="A", album="X")
    other = tagged(music / "incoming" / "other.ogg", title="Other", artist="A", album="X")
    source, clock = folder_source(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)
    track = track_id(store, str(song))
    derive(store, track, "Jazz")
    before = derived(store, track)

    moved = music / "library" / "A" / "X" / "01 Song.ogg"
    moved.parent.mkdir(parents=True)
    song.rename(moved)
    result = sync(store, "folder", source, full=True, clock=clock.tick())

    assert (result.moved, result.added, result.removed, result.seen) == (1, 0, 0, 2)
    assert result.counts()["moved"] == 1 and "1 moved" in result.summary()
    assert result.changed_track_ids == []
    assert location(store, track) == (str(moved), str(moved), 0)
    assert derived(store, track) == before
    assert count_tracks(store) == 2
    assert location(store, track_id(store, str(other)))[2] == 0


def test_folder_renamed_while_down_moves_every_track(tmp_path: Path, store: Store) -> None:
    music = tmp_path / "music"
    paths = [
        tagged(music / "Album" / f"{n}.ogg", title=f"Take {n}", tracknumber=str(n))
        for n in (1, 2, 3)
    ]
    source, clock = folder_source(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)
    ids = [track_id(store, str(p)) for p in paths]
    (music / "Album").rename(music / "Album (2019)")

    result = sync(store, "folder", source, full=True, clock=clock.tick())
    assert (result.moved, result.added, result.removed) == (3, 0, 0)
    assert [location(store, t)[0] for t in ids] == [
        str(music / "Album (2019)" / f"{n}.ogg") for n in (1, 2, 3)
    ]


def test_retagged_and_moved_while_down_is_a_new_track(tmp_path: Path, store: Store) -> None:
    music = tmp_path / "music"
    song = tagged(music / "a" / "song.ogg", title="Song", artist="A")
    source, clock = folder_source(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)
    old = track_id(store, str(song))
    moved = music / "b" / "song.ogg"
    moved.parent.mkdir()
    song.rename(moved)
    audio = mutagen.File(moved, easy=True)
    audio["title"] = "Another Song"
    audio.save()

    result = sync(store, "folder", source, full=True, clock=clock.tick())
    assert (result.moved, result.added, result.removed) == (0, 1, 1)
    assert location(store, old) == (str(song), str(song), 1)


def test_identical_tracks_are_never_guessed_apart(tmp_path: Path, store: Store) -> None:
    music = tmp_path / "music"
    copies = [tagged(music / d / "song.ogg", title="Song", artist="A") for d in ("one", "two")]
    single = tagged(music / "three" / "single.ogg", title="Single", artist="A")
    source, clock = folder_source(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)
    old_ids = {track_id(store, str(p)) for p in copies}

    # Both copies moved: their key is not unique among the gone tracks.
    for path in copies:
        path.rename(path.with_name("moved.ogg"))
    result = sync(store, "folder", source, full=True, clock=clock.tick())
    assert (result.moved, result.added, result.removed) == (0, 2, 2)
    assert all(location(store, t)[2] == 1 for t in old_ids)

    # One track gone, two identical ones new: not unique among the added tracks.
    shutil.copyfile(single, music / "one" / "single.ogg")
    single.rename(music / "two" / "single.ogg")
    result = sync(store, "folder", source, full=True, clock=clock.tick())
    assert (result.moved, result.added, result.removed) == (0, 2, 1)


def test_tracks_without_title_and_duration_are_not_matched(store: Store) -> None:
    clock = Clock()
    first = SourcePage(["/m/a.ogg"], [record("/m/a.ogg", duration_ms=None)])
    sync(store, "folder", ScriptedSource([first]), full=True, clock=clock)
    second = SourcePage(["/m/b.ogg"], [record("/m/b.ogg", title="a", duration_ms=None)])
    result = sync(store, "folder", ScriptedSource([second]), full=True, clock=clock.tick())
    assert (result.moved, result.added, result.removed) == (0, 1, 1)
    assert moves.match_key("A", "X", "T", 1, None, 199_600) == ("A", "X", "T", 1, None, 200)
    assert moves.match_key("A", "X", None, 1, None, 199_600) is None


def test_paths_limited_sync_of_both_folders_finds_the_move(tmp_path: Path, store: Store) -> None:
    music = tmp_path / "music"
    song = tagged(music / "a" / "song.ogg", title="Song", artist="A")
    source, clock = folder_source(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)
    track = track_id(store, str(song))
    (music / "b").mkdir()
    song.rename(music / "b" / "song.ogg")

    paths = [str(music / "a"), str(music / "b")]
    result = sync(store, "folder", source, paths=paths, clock=clock.tick())
    assert (result.moved, result.added, result.removed) == (1, 0, 0)
    assert location(store, track)[0] == str(music / "b" / "song.ogg")
