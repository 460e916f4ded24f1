"""The `folder` source with the sync stage: real audio files (copied from the fixtures, some
retagged with mutagen) in temporary folders, read back from the store."""

from __future__ import annotations

import json
import os
import shutil
import struct
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mutagen
import pytest
import structlog
from mutagen.id3 import ID3, TCON, TIT2, TMOO, TPE1, TRCK
from mutagen.wave import WAVE

from genred.config import parse_config
from genred.errors import GenredError
from genred.hookspecs import PluginContext
from genred.loader import discover, load_plugins
from genred.pipeline.sync import state_key, sync
from genred.records import ScanRequest
from genred.store import Store, state
from genred_plugins.folder import source as folder_source
from genred_plugins.folder.source import FolderSource, FolderSourceConfig
from tests.conftest import FIXTURES
from tests.stored import track_rows

AUDIO = FIXTURES / "audio"
WESNOTH = AUDIO / "debian" / "wesnoth_revelation.ogg"
MP3 = AUDIO / "debian" / "asc_machine_wars.mp3"
OPUS = AUDIO / "debian" / "warzone2100_aftermath_track19.opus"
TRUMPET = AUDIO / "librosa-data" / "sorohanro_-_solo-trumpet-06.ogg"  # 27 kB, 5.3 s


# --------------------------------------------------------------------------- helpers


def folder_source_for(*folders: Any, **settings: Any) -> FolderSource:
    config = parse_config(json.dumps({"folders": [str(f) for f in folders]}), env={})
    return FolderSource(FolderSourceConfig(**settings), PluginContext(config))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "genred.db") as opened:
        yield opened


@pytest.fixture
def music(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    root.mkdir()
    return root


def copy(src: Path, dest: Path, **tags: str | list[str]) -> Path:
    """Copy a fixture file, then (re)write the given tags with mutagen's easy interface."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    if tags:
        audio = mutagen.File(dest, easy=True)
        if audio.tags is None:
            audio.add_tags()
        for key, value in tags.items():
            audio[key] = value
        audio.save()
    return dest


def write_wav(dest: Path, seconds: float = 1.0) -> Path:
    """A short silent WAV (the stdlib writes it), tagged with ID3 frames as WAV files carry."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(dest), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(struct.pack("<h", 0) * int(8000 * seconds))
    audio = WAVE(dest)
    audio.add_tags()
    assert isinstance(audio.tags, ID3)
    audio.tags.add(TIT2(encoding=3, text="Silence"))
    audio.tags.add(TPE1(encoding=3, text="Nobody"))
    audio.tags.add(TRCK(encoding=3, text="2/9"))
    audio.tags.add(TCON(encoding=3, text=["Ambient", "Drone"]))
    audio.tags.add(TMOO(encoding=3, text="Calm"))
    audio.save()
    return dest


def bump_mtime(path: Path, seconds: int = 10) -> None:
    """Move the mtime on, so a change shows whatever the file system's time resolution."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + seconds * 1_000_000_000))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every file the plugin hands to mutagen."""
    calls: list[str] = []
    real = mutagen.File

    def counting(path: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(folder_source.mutagen, "File", counting)
    return calls


# --------------------------------------------------------------------------- full scans


def test_full_scan_stores_tracks_with_their_tags(music: Path, store: Store) -> None:
    revelation = copy(WESNOTH, music / "Wesnoth" / "OST" / "12 Revelation.ogg")
    trumpet = copy(
        TRUMPET,
        music / "Jazz" / "trumpet.ogg",
        title="Solo Trumpet",
        artist="Mihai Sorohan",
        albumartist="Various Artists",
        album="Loops",
        tracknumber="3/12",
        discnumber="2/2",
        date="1999-05-01",
        genre=["Jazz", "Blues", "hip-hop/rap"],
        mood="Mellow",
    )
    mp3 = copy(MP3, music / "machine.MP3", title="Machine Wars", artist="Kievernagel", genre="Rock")
    untagged = copy(OPUS, music / "track19.opus")
    silence = write_wav(music / "silence.wav")
    (music / "cover.jpg").write_bytes(b"\xff\xd8 not music")

    result = sync(store, "folder", folder_source_for(music), full=True)

    assert (result.full, result.seen, result.added, result.removed) == (True, 5, 5, 0)
    stored = track_rows(store)
    assert set(stored) == {str(p) for p in (revelation, trumpet, mp3, untagged, silence)}
    row = stored[str(trumpet)]
    assert {k: row[k] for k in ("source", "path", "title", "artist", "album", "album_artist")} == {
        "source": "folder",
        "path": str(trumpet),
        "title": "Solo Trumpet",
        "artist": "Mihai Sorohan",
        "album": "Loops",
        "album_artist": "Various Artists",
    }
    assert (row["track_no"], row["disc_no"], row["year"]) == (3, 2, 1999)
    assert row["genres"] == ["Jazz", "Blues", "hip-hop/rap"]  # every value, spelling kept
    assert row["moods"] == ["Mellow"]
    assert abs(row["duration_ms"] - 5333) <= 5
    assert row["album_source_id"].startswith("album:")
    assert row["artist_source_id"].startswith("artist:")
    info = trumpet.stat()
    mtime = datetime.fromtimestamp(info.st_mtime_ns / 1e9, UTC)
    stamp_time, size = row["source_updated_at"].split("|")
    assert int(size) == info.st_size
    assert abs(datetime.fromisoformat(stamp_time) - mtime) < timedelta(milliseconds=1)

    real = stored[str(revelation)]  # the fixture's own Vorbis comments
    assert (real["title"], real["artist"], real["album_artist"]) == (
        "Revelation",
        "Joseph G. Toscano (Zhaytee)",
        "Wesnoth Project",
    )
    assert (real["album"], real["track_no"], real["disc_no"], real["year"]) == (
        "The Battle for Wesnoth OST",
        12,
        1,
        2004,
    )
    assert real["genres"] == ["Romantic Classical"] and real["moods"] == []
    assert abs(real["duration_ms"] - 77714) <= 5

    assert (stored[str(mp3)]["title"], stored[str(mp3)]["genres"]) == ("Machine Wars", ["Rock"])
    assert stored[str(mp3)]["album"] is None and stored[str(mp3)]["album_source_id"] is None
    bare = stored[str(untagged)]  # no tags at all: the file name is the title, the rest None
    assert (bare["title"], bare["artist"], bare["album"], bare["genres"]) == (
        "track19",
        None,
        None,
        [],
    )
    assert abs(bare["duration_ms"] - 361_510) <= 50
    wav = stored[str(silence)]  # ID3 frames inside a WAV file
    assert (wav["title"], wav["artist"], wav["track_no"]) == ("Silence", "Nobody", 2)
    assert (wav["genres"], wav["moods"], wav["duration_ms"]) == (
        ["Ambient", "Drone"],
        ["Calm"],
        1000,
    )


def test_album_and_artist_ids_ignore_case_and_spacing(music: Path, store: Store) -> None:
    one = copy(TRUMPET, music / "a.ogg", title="A", artist="The Band", album="First  Light")
    two = copy(TRUMPET, music / "b.ogg", title="B", artist="the band", album="first light")
    other = copy(TRUMPET, music / "c.ogg", title="C", artist="The Band", album="Second")
    sync(store, "folder", folder_source_for(music), full=True)
    stored = track_rows(store)
    assert stored[str(one)]["album_source_id"] == stored[str(two)]["album_source_id"]
    assert stored[str(one)]["artist_source_id"] == stored[str(other)]["artist_source_id"]
    assert stored[str(one)]["album_source_id"] != stored[str(other)]["album_source_id"]


def test_rescan_without_changes_reads_no_tags(
    music: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(7):
        copy(TRUMPET, music / f"d{n % 2}" / f"{n}.ogg", title=f"Take {n}")
    source = folder_source_for(music, page_size=3)
    clock = Clock()
    sync(store, "folder", source, full=True, clock=clock)
    before = track_rows(store)
    reads = count_reads(monkeypatch)

    pages = list(
        source.scan(ScanRequest(None, lambda ids: {k: before[k]["source_updated_at"] for k in ids}))
    )
    assert [len(p.seen) for p in pages] == [3, 3, 1]
    assert [p.total for p in pages] == [7, None, None]
    assert all(not p.records for p in pages) and reads == []

    clock.now += timedelta(hours=1)
    result = sync(store, "folder", source, full=True, clock=clock)
    assert (result.seen, result.added, result.changed, result.unchanged) == (7, 0, 0, 7)
    assert reads == [] and result.changed_track_ids == []
    after = track_rows(store)
    assert all(after[k]["changed_at"] == before[k]["changed_at"] for k in before)
    assert all(after[k]["synced_at"] > before[k]["synced_at"] for k in before)


def test_tag_edit_gives_a_changed_record(
    music: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited = copy(TRUMPET, music / "edited.ogg", title="Before", genre="Jazz")
    copy(TRUMPET, music / "other.ogg", title="Other")
    source, clock = folder_source_for(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)
    before = track_rows(store)[str(edited)]

    audio = mutagen.File(edited, easy=True)
    audio["genre"] = ["Jazz", "Dub"]
    audio["title"] = "After"
    audio.save()
    bump_mtime(edited)
    reads = count_reads(monkeypatch)
    clock.now += timedelta(hours=1)
    result = sync(store, "folder", source, full=True, clock=clock)

    assert (result.added, result.changed, result.unchanged) == (0, 1, 1)
    assert result.changed_track_ids == [before["id"]]
    assert reads == [str(edited)]  # only the changed file was read
    after = track_rows(store)[str(edited)]
    assert (after["title"], after["genres"]) == ("After", ["Jazz", "Dub"])
    assert after["source_updated_at"] != before["source_updated_at"]
    assert after["changed_at"] > before["changed_at"]


def test_unreadable_files_are_listed_by_their_path_and_empty_ones_skipped(
    music: Path, store: Store
) -> None:
    album = music / "Some Artist" / "Some Album"
    album.mkdir(parents=True)
    (album / "01 corrupt.mp3").write_bytes(b"this is not an mp3 file at all\n" * 20)
    (album / "02 truncated.ogg").write_bytes(TRUMPET.read_bytes()[:60])
    (album / "03 notes.flac").write_text("shopping list: milk, eggs")
    (album / "04 empty.mp3").write_bytes(b"")
    (music / "loose.wma").write_bytes(os.urandom(300))
    good = copy(TRUMPET, album / "05 good.ogg", title="Good")

    with structlog.testing.capture_logs() as logs:
        result = sync(store, "folder", folder_source_for(music), full=True)

    stored = track_rows(store)
    listed = {Path(p).name for p in stored}
    assert listed == {"01 corrupt.mp3", "02 truncated.ogg", "03 notes.flac", "loose.wma", good.name}
    assert result.added == 5
    corrupt = stored[str(album / "01 corrupt.mp3")]
    assert (corrupt["title"], corrupt["album"], corrupt["artist"]) == (
        "01 corrupt",
        "Some Album",
        "Some Artist",
    )
    assert corrupt["duration_ms"] is None and corrupt["album_source_id"].startswith("album:")
    loose = stored[str(music / "loose.wma")]  # directly in the configured folder: no album
    assert (loose["title"], loose["album"], loose["artist"]) == ("loose", None, None)
    assert stored[str(good)]["title"] == "Good"
    warned = {e["path"] for e in logs if e["event"] == "cannot read tags, listed by its path"}
    assert warned == {p for p in stored if not p.endswith("good.ogg")}
    assert all(e["log_level"] == "warning" for e in logs if e.get("path") in warned)

    # A file emptied later (being rewritten) is neither read nor removed.
    (album / "05 good.ogg").write_bytes(b"")
    result = sync(store, "folder", folder_source_for(music), full=True)
    assert result.removed == 0 and track_rows(store)[str(good)]["removed"] == 0
    assert track_rows(store)[str(good)]["title"] == "Good"


def test_unreadable_folder_is_skipped_and_its_tracks_kept(
    music: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = music / "locked"
    inside = copy(TRUMPET, locked / "inside.ogg", title="Inside")
    outside = copy(TRUMPET, music / "open" / "outside.ogg", title="Outside")
    source, clock = folder_source_for(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)

    real_scandir, real_stat = os.scandir, os.stat

    def refusing(path: Any = ".") -> Any:  # a folder of mode 000, as seen by a non-root user
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def refusing_stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).startswith(str(locked) + "/"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(folder_source.os, "scandir", refusing)
    monkeypatch.setattr(folder_source.os, "stat", refusing_stat)
    added = copy(TRUMPET, music / "open" / "new.ogg", title="New")
    clock.now += timedelta(hours=1)
    with structlog.testing.capture_logs() as logs:
        result = sync(store, "folder", source, full=True, clock=clock)
    assert result.added == 1 and result.removed == 0
    stored = track_rows(store)
    assert stored[str(added)]["removed"] == 0 and stored[str(outside)]["removed"] == 0
    assert stored[str(inside)]["removed"] == 0  # exists, only unreadable: not gone
    (skip,) = [e for e in logs if e["event"] == "cannot read folder, skipped"]
    assert skip["path"] == str(locked) and skip["reason"] == "Permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_folder_without_permissions_is_skipped(music: Path, store: Store) -> None:
    locked = music / "locked"
    copy(TRUMPET, locked / "inside.ogg")
    outside = copy(TRUMPET, music / "outside.ogg")
    locked.chmod(0)
    try:
        result = sync(store, "folder", folder_source_for(music), full=True)
    finally:
        locked.chmod(0o755)
    assert result.added == 1 and set(track_rows(store)) == {str(outside)}


def test_hidden_files_other_extensions_and_symlinks(
    music: Path, store: Store, tmp_path: Path
) -> None:
    kept = copy(TRUMPET, music / "kept.OGG")
    copy(TRUMPET, music / "._kept.ogg")  # AppleDouble junk
    copy(TRUMPET, music / ".Trash-1000" / "deleted.ogg")
    copy(TRUMPET, music / "kept.txt")
    elsewhere = copy(TRUMPET, tmp_path / "elsewhere" / "linked.ogg")
    (music / "link.ogg").symlink_to(elsewhere)
    (music / "linked-folder").symlink_to(elsewhere.parent)
    (music / "loop").symlink_to(music)

    sync(store, "folder", folder_source_for(music), full=True)
    assert set(track_rows(store)) == {str(kept)}

    source = folder_source_for(music, follow_symlinks=True, extensions=["OGG", "txt"])
    assert source.extensions == {".ogg", ".txt"}
    sync(store, "folder", source, full=True)
    assert set(track_rows(store)) == {
        str(kept),
        str(music / "kept.txt"),  # not audio: listed by its path
        str(music / "link.ogg"),  # the link's own path, not resolved
        str(music / "linked-folder" / "linked.ogg"),
    }


def test_full_scan_resumes_after_the_cursor(music: Path) -> None:
    for name in "abcde":
        copy(TRUMPET, music / f"{name}.ogg")
    source = folder_source_for(music, page_size=2)
    pages = list(source.scan(ScanRequest(None, lambda ids: {})))
    assert [p.cursor for p in pages] == [
        str(music / "b.ogg"),
        str(music / "d.ogg"),
        str(music / "e.ogg"),
    ]
    resumed = list(source.scan(ScanRequest(None, lambda ids: {}, resume=pages[0].cursor)))
    assert [list(p.seen) for p in resumed] == [
        [str(music / "c.ogg"), str(music / "d.ogg")],
        [str(music / "e.ogg")],
    ]
    assert resumed[0].total == 3


def test_incremental_scan_lists_recent_files_and_fresh_folders(music: Path) -> None:
    copy(TRUMPET, music / "old" / "old.ogg")
    touched = copy(TRUMPET, music / "old" / "touched.ogg")
    moved_in = copy(TRUMPET, music / "artist" / "album" / "song.ogg")
    later = datetime.now(UTC) + timedelta(hours=1)  # every file's times are before this
    future = (later + timedelta(minutes=1)).timestamp()
    os.utime(touched, (future, future))
    os.utime(music / "artist", (future, future))  # as if a folder had just been moved in
    source = folder_source_for(music)
    pages = list(source.scan(ScanRequest(later, lambda ids: {})))
    listed = {sid for page in pages for sid in page.seen}
    assert listed == {str(touched), str(moved_in)}
    assert all(page.cursor is None for page in pages)


# --------------------------------------------------------------------------- paths


def test_paths_limited_sync_lists_only_under_the_paths(music: Path, store: Store) -> None:
    first = copy(TRUMPET, music / "A" / "one.ogg", title="One")
    copy(TRUMPET, music / "B" / "two.ogg", title="Two")
    source, clock = folder_source_for(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)
    states = {k: state.get(store, state_key("folder", k)) for k in ("last", "last_full")}

    new_a = copy(TRUMPET, music / "A" / "deeper" / "three.ogg", title="Three")
    new_b = copy(TRUMPET, music / "B" / "four.ogg", title="Four")
    clock.now += timedelta(hours=1)
    result = sync(store, "folder", source, paths=[str(music / "A")], clock=clock)

    assert (result.full, result.seen, result.added, result.unchanged) == (False, 2, 1, 1)
    stored = track_rows(store)
    assert str(new_a) in stored and str(new_b) not in stored
    assert stored[str(first)]["synced_at"] == clock.now.isoformat(timespec="microseconds")
    assert {k: state.get(store, state_key("folder", k)) for k in states} == states
    assert state.get(store, state_key("folder", "pending_full")) is None

    result = sync(store, "folder", source, paths=[str(new_b)], clock=clock)  # one file
    assert (result.seen, result.added) == (1, 1) and str(new_b) in track_rows(store)


def test_paths_limited_sync_marks_deleted_files_removed(music: Path, store: Store) -> None:
    gone_a = copy(TRUMPET, music / "A" / "gone.ogg", title="Gone A")
    kept_a = copy(TRUMPET, music / "A" / "kept.ogg", title="Kept A")
    gone_file = copy(TRUMPET, music / "AB" / "file.ogg", title="Sibling prefix")
    gone_b = copy(TRUMPET, music / "B" / "gone.ogg", title="Gone B")
    source, clock = folder_source_for(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)
    for path in (gone_a, gone_file, gone_b):
        path.unlink()

    clock.now += timedelta(hours=1)
    result = sync(store, "folder", source, paths=[str(music / "A") + "/"], clock=clock)
    stored = track_rows(store)
    assert result.removed == 1
    assert stored[str(gone_a)]["removed"] == 1
    assert stored[str(kept_a)]["removed"] == 0
    assert stored[str(gone_file)]["removed"] == 0  # music/AB is not under music/A
    assert stored[str(gone_b)]["removed"] == 0

    result = sync(store, "folder", source, paths=[str(gone_file)], clock=clock)
    assert result.removed == 1 and track_rows(store)[str(gone_file)]["removed"] == 1

    shutil.rmtree(music / "B")  # the deleted folder itself is the path
    result = sync(store, "folder", source, paths=[str(music / "B")], clock=clock)
    assert result.removed == 1 and track_rows(store)[str(gone_b)]["removed"] == 1


def test_path_outside_the_configured_folders_is_ignored(music: Path, tmp_path: Path) -> None:
    stray = copy(TRUMPET, tmp_path / "elsewhere" / "stray.ogg")
    source = folder_source_for(music)
    with structlog.testing.capture_logs() as logs:
        pages = list(source.scan(ScanRequest(None, lambda ids: {}, paths=(str(stray),))))
    assert pages == []
    assert [e["path"] for e in logs if "outside every configured folder" in e["event"]] == [
        str(stray)
    ]
    assert source.gone([str(stray)]) == {str(stray)}  # no configured folder has it any more


def test_non_recursive_folder_lists_only_its_own_files(music: Path) -> None:
    top = copy(TRUMPET, music / "top.ogg")
    copy(TRUMPET, music / "sub" / "deep.ogg")
    config = parse_config(
        json.dumps({"folders": [{"path": str(music), "recursive": False}]}), env={}
    )
    source = FolderSource(FolderSourceConfig(), PluginContext(config))
    listed = [sid for page in source.scan(ScanRequest(None, lambda ids: {})) for sid in page.seen]
    assert listed == [str(top)]
    by_path = source.scan(ScanRequest(None, lambda ids: {}, paths=(str(music / "sub"),)))
    assert list(by_path) == []


def test_gone_confirms_only_missing_files_of_mounted_folders(music: Path, tmp_path: Path) -> None:
    here = copy(TRUMPET, music / "here.ogg")
    source = folder_source_for(music, tmp_path / "unmounted")
    missing = str(music / "deleted.ogg")
    on_unmounted = str(tmp_path / "unmounted" / "x.ogg")
    assert source.gone([str(here), missing, on_unmounted]) == {missing}


def test_unmounted_folder_removes_nothing(music: Path, store: Store, tmp_path: Path) -> None:
    track = copy(TRUMPET, music / "track.ogg")
    source, clock = folder_source_for(music), Clock()
    sync(store, "folder", source, full=True, clock=clock)
    music.rename(tmp_path / "unplugged")
    clock.now += timedelta(hours=1)
    with structlog.testing.capture_logs() as logs:
        result = sync(store, "folder", source, full=True, clock=clock)
    assert (result.seen, result.removed) == (0, 0)
    assert track_rows(store)[str(track)]["removed"] == 0
    assert any(e["event"].startswith("music folder not found") for e in logs)


# --------------------------------------------------------------------------- config


def test_folder_source_needs_folders() -> None:
    config = parse_config("{}", env={})
    with pytest.raises(GenredError, match="the folder source needs `folders:` in the config"):
        FolderSource(FolderSourceConfig(), PluginContext(config))


def test_folder_source_is_registered_and_loads_from_the_config(music: Path) -> None:
    (info,) = [i for i in discover(["sources"]) if i.name == "folder"]
    assert info.cls is FolderSource and info.error is None
    text = json.dumps(
        {
            "folders": [str(music)],
            "plugins": {"sources": {"folder": {"page_size": 50, "extensions": ["mp3", ".FLAC"]}}},
        }
    )
    loaded = load_plugins(PluginContext(parse_config(text, env={})))
    plugin = loaded.get("sources", "folder")
    assert plugin.settings.page_size == 50
    assert plugin.extensions == {".mp3", ".flac"}
    assert plugin.folders[0].path == str(music)
    assert FolderSource.supports_paths is True


def test_a_folder_taken_out_of_the_config_has_its_tracks_removed(tmp_path: Path) -> None:
    from genred.testing import Harness

    keep, drop = tmp_path / "keep", tmp_path / "drop"
    for folder in (keep, drop):
        folder.mkdir()
        shutil.copy(AUDIO / "debian" / "wesnoth_revelation.ogg", folder / "one.ogg")
    both = f"folders: ['{keep}', '{drop}']\nplugins: {{sources: [folder]}}\n"
    with Harness(tmp_path, both) as lib:
        assert lib.run("sync")["added"] == 2
    one = f"folders: ['{keep}']\nplugins: {{sources: [folder]}}\n"
    with Harness(tmp_path, one) as lib:
        counts = lib.run("sync")  # incremental by default; the changed scope makes it full
        assert counts["full"] == 1 and counts["removed"] == 1
        rows = lib.store.conn.execute("SELECT path, removed FROM tracks ORDER BY path").fetchall()
        assert rows == [(str(drop / "one.ogg"), 1), (str(keep / "one.ogg"), 0)]
