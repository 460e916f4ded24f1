"""The `tags` writeback (genres and moods into the files themselves) on real files of every
format genred decodes: WAV, FLAC, AIFF, Ogg Vorbis (libsndfile), MP3, M4A, Opus, WMA,
WavPack (FFmpeg's encoders through PyAV) and the fixture clips; raw AAC, which has no
tags, is left alone. Checked on the files themselves (mutagen reads them back, PyAV
decodes the very same audio) and in the store, end to end: folder source → classify →
decide → writeback → revert.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import mutagen
import numpy as np
import pytest
from mutagen.apev2 import APEv2
from mutagen.asf import ASFTags
from mutagen.id3 import ID3, TCON, TIT2, TMOO
from mutagen.mp4 import AtomDataType, MP4FreeForm, MP4Tags

from genred.config import FolderConfig, WatchConfig, parse_config
from genred.errors import EditPartlyFailed, FileChangedSinceRead, FileNotWritable
from genred.hookspecs import PluginContext, WritebackPlugin, WritesFiles
from genred.records import Edit
from genred.store import Store, file_writes
from genred.testing import Harness, check_plugin
from genred.watcher import Changes, FolderWatcher
from genred_plugins.folder.filewrite import TEMP_TAG
from genred_plugins.folder.source import FolderSource, FolderSourceConfig, stamp_of
from genred_plugins.folder.tags import TagsWriteback, TagsWritebackConfig
from tests.audio_files import REAL_AUDIO, stereo_tones, write_lossless, write_lossy
from tests.waiting import wait_for

LOSSLESS = ("wav", "flac", "aiff", "ogg")  # libsndfile; its .ogg is Vorbis
ENCODED = ("mp3", "m4a", "opus", "wma", "wv")
FORMATS = LOSSLESS + ENCODED


# --------------------------------------------------------------------------- making files


def make_audio(path: Path, seed: int = 0, seconds: float = 1.0) -> Path:
    samples = stereo_tones(seconds, seed=seed)
    kind = path.suffix[1:]
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind in LOSSLESS:
        return write_lossless(path, samples, 44100)
    return write_lossy(path, samples, 44100, kind)


def set_tags(
    path: Path, genres: list[str], moods: tuple[str, ...] = (), title: str | None = None
) -> None:
    """Tag a file with mutagen's own interface for its format (not the plugin's code)."""
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    if isinstance(tags, ID3):
        tags.delall("TCON")
        tags.delall("TMOO")
        if genres:
            tags.add(TCON(encoding=3, text=list(genres)))
        if moods:
            tags.add(TMOO(encoding=3, text=list(moods)))
        if title:
            tags.add(TIT2(encoding=3, text=title))
    elif isinstance(tags, MP4Tags):
        tags["\xa9gen"] = list(genres)
        if moods:
            tags["----:com.apple.iTunes:MOOD"] = [
                MP4FreeForm(m.encode(), AtomDataType.UTF8) for m in moods
            ]
        if title:
            tags["\xa9nam"] = [title]
    elif isinstance(tags, ASFTags):
        tags["WM/Genre"] = list(genres)
        if moods:
            tags["WM/Mood"] = list(moods)
        if title:
            tags["Title"] = [title]
    elif isinstance(tags, APEv2):
        tags["Genre"] = list(genres)
        if moods:
            tags["Mood"] = list(moods)
        if title:
            tags["Title"] = title
    else:  # Vorbis comments
        tags["GENRE"] = list(genres)
        if moods:
            tags["MOOD"] = list(moods)
        if title:
            tags["TITLE"] = [title]
    audio.save()


def pcm(path: Path) -> np.ndarray:
    """Every decoded sample, to compare audio exactly: libsndfile where it reads the
    format (PyAV refuses one of the fixture Vorbis files), else PyAV."""
    import soundfile

    try:
        return soundfile.read(str(path), dtype="float32")[0]
    except soundfile.LibsndfileError:
        pass
    with av.open(str(path)) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    return np.concatenate(frames, axis=1)


def raw_genres(path: Path) -> list[str]:
    """The genre field as stored, read by mutagen directly."""
    tags = mutagen.File(path).tags
    if tags is None:
        return []
    if isinstance(tags, ID3):
        return [v for f in tags.getall("TCON") for v in f.text]
    if isinstance(tags, MP4Tags):
        return list(tags.get("\xa9gen", []))
    if isinstance(tags, ASFTags):
        return [str(v) for v in tags.get("WM/Genre", [])]
    if isinstance(tags, APEv2):
        return list(tags["Genre"]) if "Genre" in tags else []
    return list(tags.get("genre", []))


def no_leftovers(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if TEMP_TAG in p.name]


@pytest.fixture
def music(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    root.mkdir()
    return root


def writeback_for(music: Path, **settings: Any) -> TagsWriteback:
    config = parse_config(json.dumps({"folders": [str(music)]}), env={})
    return TagsWriteback(TagsWritebackConfig(**settings), PluginContext(config))


def edit_of(path: Path, field: str, before: tuple[str, ...], after: tuple[str, ...]) -> Edit:
    sid = str(path)
    return Edit("track", field, (sid,), (), (), {sid: before}, {sid: after})


# --------------------------------------------------------------------------- every format


def test_the_plugin_keeps_the_contract(music: Path) -> None:
    assert check_plugin(TagsWriteback, "writeback") == []
    plugin = writeback_for(music)
    assert isinstance(plugin, WritebackPlugin) and isinstance(plugin, WritesFiles)
    assert check_plugin(plugin, "writeback") == []


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_takes_genres_and_moods_and_gives_them_back(music: Path, kind: str) -> None:
    path = make_audio(music / f"song.{kind}")
    set_tags(path, ["electronica", " chill out", "electronica"], ["Dreamy"])
    os.chmod(path, 0o640)
    os.chown(path, 1234, 5678)  # the tests run as root: any owner can be given back
    before = path.stat()
    audio_before = pcm(path)
    plugin = writeback_for(music)
    sid = str(path)
    keys = [("track", sid, "genre"), ("track", sid, "mood"), ("track", sid, "label")]
    read = plugin.read(keys)
    # raw, as stored: order, spacing and the duplicate kept; no label field in a file
    assert read == {keys[0]: ("electronica", " chill out", "electronica"), keys[1]: ("Dreamy",)}

    plugin.apply(edit_of(path, "genre", read[keys[0]], ("Electronic", "Downtempo")), lock=True)
    assert path.stat().st_ino != before.st_ino  # replaced whole, not rewritten in place
    plugin.apply(edit_of(path, "mood", read[keys[1]], ("Calm", "Warm")), lock=True)
    after = path.stat()
    assert stat.S_IMODE(after.st_mode) == 0o640 and (after.st_uid, after.st_gid) == (1234, 5678)
    assert no_leftovers(music)
    np.testing.assert_array_equal(pcm(path), audio_before)  # the very same audio
    # the folder source (another reader, the one the store trusts) sees the new tags
    record = FolderSource(FolderSourceConfig(), plugin_context(music))._record(sid, "stamp")
    assert record is not None
    assert record.genres == ("Electronic", "Downtempo") and record.moods == ("Calm", "Warm")
    written = plugin.take_written()
    assert [w.item_id for w in written] == [sid, sid] and plugin.take_written() == []
    assert (written[-1].size, written[-1].mtime_ns) == (after.st_size, after.st_mtime_ns)
    assert written[-1].source_stamp == stamp_of(after)

    # back exactly as it was: a fresh instance (another run) reads, then puts back the raw
    again = writeback_for(music)
    now = again.read(keys[:2])
    again.apply(edit_of(path, "genre", now[keys[0]], read[keys[0]]), lock=False)
    again.apply(edit_of(path, "mood", now[keys[1]], read[keys[1]]), lock=False)
    assert raw_genres(path) == ["electronica", " chill out", "electronica"]
    assert writeback_for(music).read(keys[:2]) == {k: read[k] for k in keys[:2]}
    np.testing.assert_array_equal(pcm(path), audio_before)


def plugin_context(music: Path) -> PluginContext:
    return PluginContext(parse_config(json.dumps({"folders": [str(music)]}), env={}))


@pytest.mark.parametrize("fixture", REAL_AUDIO[:6], ids=lambda p: p.name[:30])
def test_real_files_round_trip(music: Path, fixture: Path) -> None:
    path = music / fixture.name
    shutil.copyfile(fixture, path)
    audio_before = pcm(path)
    plugin = writeback_for(music)
    key = ("track", str(path), "genre")
    original = plugin.read([key])[key]
    plugin.apply(edit_of(path, "genre", original, (*original, "Soundtrack")), lock=True)
    assert raw_genres(path) == [*original, "Soundtrack"]
    np.testing.assert_array_equal(pcm(path), audio_before)
    plugin.apply(edit_of(path, "genre", (*original, "Soundtrack"), original), lock=True)
    assert tuple(raw_genres(path)) == original


def test_a_genre_field_is_removed_when_there_was_none(music: Path) -> None:
    path = make_audio(music / "plain.flac")
    plugin = writeback_for(music)
    plugin.apply(edit_of(path, "genre", (), ("Jazz",)), lock=True)
    plugin.apply(edit_of(path, "genre", ("Jazz",), ()), lock=True)
    assert raw_genres(path) == [] and "genre" not in mutagen.File(path).tags


def test_id3_keeps_its_version_and_legacy_genres_come_back_exactly(music: Path) -> None:
    path = make_audio(music / "old.mp3")
    tags = ID3()
    tags.add(TCON(encoding=1, text=["(17)"]))  # an ID3v1 reference, as old taggers wrote
    tags.save(path, v2_version=3)
    plugin = writeback_for(music)
    key = ("track", str(path), "genre")
    assert plugin.read([key]) == {key: ("(17)",)}
    plugin.apply(edit_of(path, "genre", ("(17)",), ("(17)", "Hard Rock", "Blues")), lock=True)
    written = ID3(path, translate=False)  # as stored (a plain load would say "Rock")
    assert written.version[:2] == (2, 3)  # not upgraded to 2.4 behind the user's back
    # several values in 2.3 are NUL-separated, so they read back as several
    assert written.getall("TCON")[0].text == ["(17)", "Hard Rock", "Blues"]
    plugin.apply(edit_of(path, "genre", ("(17)", "Hard Rock", "Blues"), ("(17)",)), lock=True)
    restored = ID3(path, translate=False)
    assert restored.getall("TCON")[0].text == ["(17)"] and restored.version[:2] == (2, 3)


def test_raw_aac_has_no_tags_and_is_left_alone(music: Path) -> None:
    path = make_audio(music / "raw.aac")
    data = path.read_bytes()
    plugin = writeback_for(music)
    key = ("track", str(path), "genre")
    assert plugin.read([key]) == {}  # absent: the stage plans nothing for it
    with pytest.raises(EditPartlyFailed) as caught:
        plugin.apply(edit_of(path, "genre", (), ("Jazz",)), lock=True)
    assert isinstance(caught.value.failed[str(path)], FileNotWritable)
    assert "cannot write tags into AAC files" in str(caught.value.failed[str(path)])
    assert path.read_bytes() == data


# --------------------------------------------------------------------------- left alone


def test_a_file_changed_since_it_was_read_is_left_alone(music: Path) -> None:
    one, two = make_audio(music / "one.flac"), make_audio(music / "two.flac", seed=1)
    for path in (one, two):
        set_tags(path, ["Rock"])
    plugin = writeback_for(music)
    keys = [("track", str(p), "genre") for p in (one, two)]
    plugin.read(keys)
    set_tags(one, ["Rock"], title="Retitled by a person")  # another tagger, meanwhile
    theirs = one.read_bytes()
    edit = Edit(
        "track",
        "genre",
        (str(one), str(two)),
        ("Blues",),
        (),
        {str(one): ("Rock",), str(two): ("Rock",)},
        {str(one): ("Rock", "Blues"), str(two): ("Rock", "Blues")},
    )
    with pytest.raises(EditPartlyFailed) as caught:
        plugin.apply(edit, lock=True)
    assert list(caught.value.failed) == [str(one)]  # the other file was written
    assert isinstance(caught.value.failed[str(one)], FileChangedSinceRead)
    assert "changed since genred read it" in str(caught.value.failed[str(one)])
    assert one.read_bytes() == theirs and raw_genres(two) == ["Rock", "Blues"]
    assert [w.item_id for w in plugin.take_written()] == [str(two)]


def test_a_change_between_the_copy_and_the_rename_is_caught(music: Path) -> None:
    path = make_audio(music / "busy.ogg")
    set_tags(path, ["Folk"])
    plugin = writeback_for(music)
    plugin.read([("track", str(path), "genre")])
    real_verify = __import__("genred_plugins.folder.tags", fromlist=["_verify"])._verify

    def edited_meanwhile(*args: Any) -> None:
        real_verify(*args)
        set_tags(path, ["Folk", "Mine"])  # lands while genred's copy is being checked

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("genred_plugins.folder.tags._verify", edited_meanwhile)
        with pytest.raises(EditPartlyFailed) as caught:
            plugin.apply(edit_of(path, "genre", ("Folk",), ("Folk", "Celtic")), lock=True)
    assert "changed while genred wrote its copy" in str(caught.value.failed[str(path)])
    assert raw_genres(path) == ["Folk", "Mine"] and no_leftovers(music)


def refusal(plugin: TagsWriteback, path: Path) -> str:
    key = ("track", str(path), "genre")
    before = plugin.read([key])[key]
    with pytest.raises(EditPartlyFailed) as caught:
        plugin.apply(edit_of(path, "genre", before, (*before, "Jazz")), lock=True)
    return str(caught.value.failed[str(path)])


def test_files_genred_must_not_replace_are_refused_with_the_reason(
    music: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_only = make_audio(music / "ro.wav")
    os.chmod(read_only, 0o444)
    assert "is read-only for genred" in refusal(writeback_for(music), read_only)
    assert read_only.stat().st_mode & 0o777 == 0o444

    linked = make_audio(music / "seeding.flac")
    os.link(linked, music / "downloads-copy.flac")
    assert "has 2 hard links" in refusal(writeback_for(music), linked)
    assert raw_genres(music / "downloads-copy.flac") == []
    writeback_for(music, split_hard_links=True).apply(
        edit_of(linked, "genre", (), ("Jazz",)), lock=True
    )
    assert raw_genres(linked) == ["Jazz"] and raw_genres(music / "downloads-copy.flac") == []

    foreign = make_audio(music / "alice.mp3")
    os.chown(foreign, 1000, 1000)

    def not_root(*_args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chown", not_root)  # as a user who is not root and not alice
    data = foreign.read_bytes()
    reason = refusal(writeback_for(music), foreign)
    assert "cannot keep its owner 1000:1000" in reason and foreign.read_bytes() == data
    assert no_leftovers(music)


def test_a_symlinked_file_is_written_through_its_link(music: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = make_audio(elsewhere / "real.opus")
    link = music / "link.opus"
    link.symlink_to(target)
    plugin = writeback_for(music)
    plugin.apply(edit_of(link, "genre", (), ("Ambient",)), lock=True)
    assert link.is_symlink() and raw_genres(target) == ["Ambient"]
    assert plugin.take_written()[0].paths == (str(link), str(target))


# --------------------------------------------------------------------------- end to end


def library(music: Path) -> dict[str, Path]:
    """One file per format, each with a raw genre the taxonomy cleans up."""
    genres = {
        "wav": ["electronica"],
        "flac": ["hip hop", "jazz"],
        "aiff": ["synthpop"],
        "ogg": ["Rock & Roll"],
        "mp3": ["drum n bass"],
        "m4a": ["r&b"],
        "opus": ["trip hop"],
        "wma": ["bossanova"],
        "wv": ["classical"],
    }
    made = {}
    for i, (kind, values) in enumerate(genres.items()):
        path = make_audio(music / f"Artist {i}" / "Album" / f"{i:02} track.{kind}", seed=i)
        set_tags(path, values, title=f"Track {kind}")
        made[kind] = path
    make_audio(music / "no tags.aac")  # listed, never written
    return made


def harness(tmp: Path, music: Path, mode: str = "append") -> Harness:
    return Harness(
        tmp,
        f"""
        folders: [{json.dumps(str(music))}]
        plugins:
          sources: {{folder: {{}}}}
          writeback: {{tags: {{}}}}
        writeback: {{mode: {mode}}}
        """,
    )


def stored_genres(lib: Harness) -> dict[str, list[str]]:
    rows = lib.store.conn.execute("SELECT path, genres FROM tracks WHERE removed = 0")
    return {Path(p).suffix[1:]: json.loads(g) for p, g in rows}


def counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file whose tags the folder source reads."""
    calls: list[str] = []
    real = FolderSource._record

    def counting(self: FolderSource, path: str, stamp: str) -> Any:
        calls.append(path)
        return real(self, path, stamp)

    monkeypatch.setattr(FolderSource, "_record", counting)
    return calls


def test_folder_library_end_to_end_with_revert(
    tmp_path: Path, music: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = library(music)
    originals = {kind: raw_genres(p) for kind, p in files.items()}
    audio = {kind: pcm(p) for kind, p in files.items()}
    with harness(tmp_path, music, "replace") as lib:
        assert lib.run("sync")["added"] == 10
        lib.run("classify")
        lib.run("decide")
        decided = {Path(p).suffix[1:]: g for p, g in _decided(lib).items()}
        assert decided["flac"] == ["Hip-Hop", "Jazz"] and decided["mp3"] == ["Drum & Bass"]
        counts = lib.run("writeback")
        # a change of case only ("classical" → "Classical") is no change
        same_but_case = {"ogg", "m4a", "wv"}
        assert counts["written"] == 6 and counts["unchanged"] == 3 and counts["failed"] == 0
        assert counts["edits"] == 6  # one file per edit (the plugin's batch_size)
        for kind, path in files.items():
            expected = originals[kind] if kind in same_but_case else decided[kind]
            assert raw_genres(path) == expected, kind
            np.testing.assert_array_equal(pcm(path), audio[kind])
        # the store agrees with the files and knows their new stamps: nothing to sync
        view = stored_genres(lib)
        assert all(view[k] == raw_genres(p) for k, p in files.items())
        reads = counting_reads(monkeypatch)
        again = lib.run("sync", full=True)
        assert again["changed"] == 0 and again["added"] == 0 and again["unchanged"] == 10
        assert reads == []  # genred's own writes are known: not one file read again
        assert lib.run("writeback")["written"] == 0  # nothing left to do
        stats = {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files.values()}
        written = {str(p) for k, p in files.items() if k not in same_but_case}
        assert file_writes.ours(lib.store, stats) == written

        reverted = lib.run("revert")
        assert reverted["reverted"] == 6 and reverted["failed"] == 0
        assert {k: raw_genres(p) for k, p in files.items()} == originals
        for kind, path in files.items():
            np.testing.assert_array_equal(pcm(path), audio[kind])
        after_revert = lib.run("sync", full=True)
        assert after_revert["changed"] == 0 and after_revert["unchanged"] == 10
        assert reads == []
        set_tags(files["wav"], ["Trance"])  # a person's edit, though, is read
        assert lib.run("sync", full=True)["changed"] == 1 and reads == [str(files["wav"])]
        assert no_leftovers(music)


def _decided(lib: Harness) -> dict[str, list[str]]:
    rows = lib.store.conn.execute(
        "SELECT t.path, d.genres FROM decisions d JOIN tracks t ON t.id = d.track_id "
        "WHERE d.status = 'decided'"
    )
    return {p: json.loads(g) for p, g in rows}


@pytest.mark.parametrize("mode", ["replace", "fill"])
def test_replace_and_fill_modes(tmp_path: Path, music: Path, mode: str) -> None:
    tagged = make_audio(music / "tagged.flac")
    set_tags(tagged, ["electronica"])
    bare = make_audio(music / "bare.mp3", seed=1)
    set_tags(bare, [], title="x")
    with harness(tmp_path, music, mode) as lib:
        lib.run("sync")
        bare_id = lib.store.conn.execute(
            "SELECT id FROM tracks WHERE path = ?", (str(bare),)
        ).fetchone()[0]
        with lib.store.transaction() as conn:  # a person's decision for the bare file
            conn.execute(
                "INSERT INTO overrides (track_id, field, value, origin, created_at) "
                "VALUES (?, 'genre', '[\"Jazz\"]', 'cli', '2026-01-01T00:00:00+00:00')",
                (bare_id,),
            )
        lib.run("classify")
        lib.run("decide")
        lib.run("writeback")
        assert raw_genres(bare) == ["Jazz"]  # empty: filled in both modes
        if mode == "replace":
            assert raw_genres(tagged) == ["Electronic"]
        else:
            assert raw_genres(tagged) == ["electronica"]  # had one: fill leaves it
        lib.run("revert")
        assert raw_genres(tagged) == ["electronica"] and raw_genres(bare) == []


def test_a_file_changed_after_the_read_is_recorded_and_written_next_time(
    tmp_path: Path, music: Path
) -> None:
    path = make_audio(music / "song.ogg")
    set_tags(path, ["electronica"])
    with harness(tmp_path, music) as lib:
        lib.run("sync")
        lib.run("classify")
        lib.run("decide")
        plugin = lib.plugins.get("writeback", "tags")
        real_read = plugin.read

        def read_then_someone_edits(keys: Any) -> Any:
            found = real_read(keys)
            set_tags(path, ["electronica"], title="Renamed meanwhile")
            return found

        plugin.read = read_then_someone_edits
        counts = lib.run("writeback")
        assert counts["written"] == 0 and counts["failed"] == 1
        theirs = path.read_bytes()
        failures = lib.failures("writeback")
        assert list(failures) == [f"track:{path}"]
        assert failures[f"track:{path}"].startswith("FileChangedSinceRead: ")
        assert mutagen.File(path)["TITLE"] == ["Renamed meanwhile"] and path.read_bytes() == theirs
        plugin.read = real_read
        lib.run("sync")  # the person's edit (a title) reaches the store
        counts = lib.run("writeback")
        assert counts["written"] == 1 and lib.failures("writeback") == {}
        assert raw_genres(path) == ["electronica", "Electronic"]
        assert mutagen.File(path)["TITLE"] == ["Renamed meanwhile"]


# --------------------------------------------------------------------------- the watcher


class Batches:
    def __init__(self) -> None:
        self.got: list[Changes] = []

    def __call__(self, changes: Changes) -> None:
        self.got.append(changes)

    def changed(self) -> list[str]:
        return [p for c in self.got for p in c.changed]


@pytest.fixture
def watching(tmp_path: Path, music: Path) -> Iterator[Callable[..., tuple[Harness, Batches]]]:
    started: list[tuple[Harness, FolderWatcher]] = []

    def start() -> tuple[Harness, Batches]:
        lib = harness(tmp_path, music)
        batches = Batches()

        def own_writes(stats: Any) -> set[str]:  # as the daemon asks: its own connection
            with Store.open(lib.config.db_path) as store:
                return file_writes.ours(store, stats)

        watcher = FolderWatcher(
            [FolderConfig(path=music)],
            WatchConfig(settle="0.2s"),
            batches,
            own_writes=own_writes,
        )
        watcher.start()
        started.append((lib, watcher))
        return lib, batches

    yield start
    for lib, watcher in started:
        watcher.stop()
        lib.close()


def test_the_watcher_does_not_take_genreds_writes_for_changes(
    music: Path, watching: Callable[..., tuple[Harness, Batches]]
) -> None:
    files = [make_audio(music / f"{i}.flac", seed=i) for i in range(3)]
    for path in files:
        set_tags(path, ["electronica"])
    lib, batches = watching()
    lib.run("sync")
    lib.run("classify")
    lib.run("decide")
    assert lib.run("writeback")["written"] == 3
    # a person's edit after genred's: the watcher reports it, and only it
    set_tags(files[1], ["electronica", "Electronic", "Mine"])
    wait_for(lambda: str(files[1]) in batches.changed(), 10, "the person's edit")
    assert batches.changed() == [str(files[1])]


def test_a_write_the_watcher_cannot_check_is_synced_as_a_change(
    music: Path, tmp_path: Path
) -> None:
    """When the store cannot answer, files are synced (and the sync knows them)."""
    path = make_audio(music / "a.wav")
    batches = Batches()

    def broken(_stats: Any) -> set[str]:
        raise OSError("database is locked")

    watcher = FolderWatcher(
        [FolderConfig(path=music)], WatchConfig(settle="0.2s"), batches, own_writes=broken
    )
    watcher.start()
    try:
        set_tags(path, ["Jazz"])
        wait_for(lambda: batches.changed() == [str(path)], 10, "the change")
    finally:
        watcher.stop()


def test_config_check_warns_when_the_folder_source_is_off(music: Path) -> None:
    assert writeback_for(music).check() == [
        "the tags writeback writes into the folder source's files, but "
        "plugins.sources.folder is not enabled: nothing will be written"
    ]
    config = parse_config(
        json.dumps({"folders": [str(music)], "plugins": {"sources": ["folder"]}}), env={}
    )
    assert TagsWriteback(TagsWritebackConfig(), PluginContext(config)).check() == []
    with pytest.raises(Exception, match="needs `folders:`"):
        TagsWriteback(TagsWritebackConfig(), PluginContext(parse_config("{}", env={})))
