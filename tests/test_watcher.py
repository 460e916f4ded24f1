"""The folder watcher (genred.watcher) with real inotify on temporary folders.

Batches are collected through a queue; every wait polls with a deadline, so a slow machine
makes the tests slower, never wrong.
"""

from __future__ import annotations

import errno
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import watchdog.observers
from watchdog.observers.inotify import InotifyEmitter, InotifyObserver

from genred import watcher as watcher_module
from genred.config import FolderConfig, WatchConfig
from genred.watcher import Changes, FolderWatcher, is_audio, watch_file, watch_problem

# watchdog's own noise when a new folder's watch is added twice (events and its walk)
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

SETTLE = "0.3s"
QUICK_DELAY = 0.4  # BATCH_DELAY_S for these tests (2 s in the daemon)


class Batches:
    """What the watcher handed over, in order, with when it arrived."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[float, Changes]] = queue.Queue()
        self.got: list[tuple[float, Changes]] = []

    def __call__(self, changes: Changes) -> None:
        self.queue.put((time.monotonic(), changes))

    def _drain(self, timeout: float) -> bool:
        try:
            self.got.append(self.queue.get(timeout=timeout))
        except queue.Empty:
            return False
        return True

    def until(self, done: Callable[[list[Changes]], bool], timeout: float = 5.0) -> list[Changes]:
        """Collect batches until `done(batches)`; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not done(self.batches):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; batches so far: {self.batches}")
            self._drain(min(left, 0.1))
        return self.batches

    def first(self, timeout: float = 5.0) -> Changes:
        return self.until(lambda b: len(b) >= 1, timeout)[0]

    def quiet(self, seconds: float) -> list[Changes]:
        """Whatever else arrives within `seconds` (expected: nothing)."""
        before = len(self.got)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._drain(min(left, 0.1))
        return [c for _, c in self.got[before:]]

    @property
    def batches(self) -> list[Changes]:
        return [c for _, c in self.got]

    def changed(self) -> list[str]:
        return [p for c in self.batches for p in c.changed]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path.resolve()


@pytest.fixture
def music(root: Path) -> Path:
    path = root / "music"
    path.mkdir()
    return path


@pytest.fixture
def start_watcher(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., tuple[FolderWatcher, Batches]]]:
    monkeypatch.setattr(watcher_module, "BATCH_DELAY_S", QUICK_DELAY)
    started: list[FolderWatcher] = []

    def start(
        *folders: Path | FolderConfig, settle: str = SETTLE, on_changes: Any = None
    ) -> tuple[FolderWatcher, Batches]:
        batches = Batches()
        configs = [f if isinstance(f, FolderConfig) else FolderConfig(path=f) for f in folders]
        w = FolderWatcher(configs, WatchConfig(settle=settle), on_changes or batches)
        started.append(w)
        w.start()
        return w, batches

    yield start
    for w in started:
        w.stop()


def write(path: Path, data: bytes = b"\x00" * 256) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def only_changed(*paths: Path) -> Changes:
    return Changes(changed=sorted(str(p) for p in paths))


# --------------------------------------------------------------------------- plain helpers


def test_changes_paths_and_truth() -> None:
    assert not Changes()
    c = Changes(changed=["/m/b.mp3"], moved=[("/m/a.mp3", "/m/z.mp3")], deleted=["/m/b.mp3"])
    assert c
    assert c.paths() == ["/m/a.mp3", "/m/b.mp3", "/m/z.mp3"]
    assert Changes(deleted=["/m/x"]).paths() == ["/m/x"]


@pytest.mark.parametrize(
    ("path", "audio"),
    [
        ("/m/a.mp3", True),
        ("/m/a.FLAC", True),
        ("/m/a.Opus", True),
        ("/m/a.mp3.part", False),
        ("/m/cover.jpg", False),
        ("/m/notes.txt", False),
        ("/m/mp3", False),
        ("/m/.mp3", False),
    ],
)
def test_is_audio(path: str, audio: bool) -> None:
    assert is_audio(path) is audio


def test_watch_problem_messages() -> None:
    p = Path("/srv/music")
    assert watch_problem(p, OSError(errno.ENOSPC, "x")) == (
        "cannot watch /srv/music: the inotify watch limit is reached; raise it with "
        "`sysctl fs.inotify.max_user_watches=524288` (and in /etc/sysctl.d/) or set "
        "watch.polling: true"
    )
    assert watch_problem(p, OSError(errno.EMFILE, "x")) == (
        "cannot watch /srv/music: the inotify instance limit is reached; raise "
        "fs.inotify.max_user_instances or set watch.polling: true"
    )
    denied = f"cannot watch /srv/music: permission denied (genred runs as uid {os.getuid()})"
    assert watch_problem(p, OSError(errno.EACCES, "x")) == denied
    assert watch_problem(p, OSError(errno.EPERM, "x")) == denied
    assert watch_problem(p, OSError(errno.ENOENT, "x")) == "cannot watch /srv/music: no such folder"
    assert watch_problem(p, OSError(errno.EIO, "Input/output error")) == (
        "cannot watch /srv/music: Input/output error"
    )
    assert watch_problem(p, OSError("odd")) == "cannot watch /srv/music: odd"


# --------------------------------------------------------------------------- settling


def test_file_written_in_chunks_is_one_batch_after_the_last_write(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    _, batches = start_watcher(music)
    song = music / "song.flac"
    with song.open("wb") as fh:
        for _ in range(6):  # 0.48 s of writing, never a pause as long as the settle time
            fh.write(b"\x01" * 4096)
            fh.flush()
            last_write = time.monotonic()
            time.sleep(0.08)
    first = batches.first()
    assert first == only_changed(song)
    assert batches.got[0][0] > last_write
    assert batches.quiet(0.6) == []


def test_files_of_one_burst_can_share_a_batch_and_none_is_repeated(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    _, batches = start_watcher(music)
    paths = [write(music / f"{n}.mp3") for n in ("a", "b", "c")]
    expected = sorted(str(p) for p in paths)
    batches.until(lambda b: sorted(p for c in b for p in c.changed) == expected)
    assert batches.quiet(0.5) == []
    assert sorted(batches.changed()) == expected
    assert all(not c.moved and not c.deleted for c in batches.batches)


def test_move_of_a_settled_file(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    old = write(music / "a" / "one.mp3")
    new = music / "b" / "one.mp3"
    new.parent.mkdir()
    _, batches = start_watcher(music)
    os.rename(old, new)
    assert batches.first() == Changes(moved=[(str(old), str(new))])
    assert batches.quiet(0.5) == []


def test_deletion(music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]) -> None:
    song = write(music / "gone.ogg")
    _, batches = start_watcher(music)
    song.unlink()
    assert batches.first() == Changes(deleted=[str(song)])


def test_moves_and_deletions_close_together_are_one_batch(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    a, b = write(music / "a.mp3"), write(music / "b.mp3")
    _, batches = start_watcher(music)
    os.rename(a, music / "c.mp3")
    b.unlink()
    assert batches.first() == Changes(moved=[(str(a), str(music / "c.mp3"))], deleted=[str(b)])


def test_file_moved_before_it_settled_is_just_new_where_it_landed(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    _, batches = start_watcher(music)
    first = write(music / "tmp-name.mp3")
    final = music / "final.mp3"
    os.rename(first, final)
    assert batches.first() == only_changed(final)
    assert batches.quiet(QUICK_DELAY + 0.3) == []


def test_folder_created_with_files_reports_every_audio_file(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    _, batches = start_watcher(music)
    album = music / "Artist" / "Album"
    os.makedirs(album)
    files = [write(album / "01.mp3"), write(album / "02.flac"), write(album / "cd2" / "03.ogg")]
    write(album / "cover.jpg")
    expected = sorted(str(p) for p in files)
    batches.until(lambda b: sorted({p for c in b for p in c.changed}) == expected)
    assert batches.quiet(0.5) == []
    assert sorted(batches.changed()) == expected  # each once


def test_folder_copied_in_reports_every_audio_file(
    root: Path, music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    elsewhere = root / "elsewhere" / "Album"
    for name in ("01.mp3", "02.m4a", "disc 2/03.wav", "folder.jpg", "notes.txt"):
        write(elsewhere / name)
    _, batches = start_watcher(music)
    shutil.copytree(elsewhere, music / "Album")
    expected = sorted(str(music / "Album" / n) for n in ("01.mp3", "02.m4a", "disc 2/03.wav"))
    batches.until(lambda b: sorted({p for c in b for p in c.changed}) == expected)
    assert batches.quiet(0.5) == []
    assert sorted(batches.changed()) == expected


def test_folder_moved_in_from_outside_reports_its_audio_files(
    root: Path, music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    outside = root / "downloads" / "Album"
    write(outside / "01.mp3")
    write(outside / "sub" / "02.flac")
    write(outside / "info.nfo")
    _, batches = start_watcher(music)
    os.rename(outside, music / "Album")
    expected = sorted(str(music / "Album" / n) for n in ("01.mp3", "sub/02.flac"))
    batches.until(lambda b: sorted({p for c in b for p in c.changed}) == expected)
    assert all(not c.moved and not c.deleted for c in batches.batches)


def test_folder_moved_inside_the_tree_is_a_move(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    song = write(music / "old" / "a.mp3")
    _, batches = start_watcher(music)
    os.rename(music / "old", music / "new")
    first = batches.first()
    assert first.changed == [] and first.deleted == []
    assert first.moved[0] == (str(music / "old"), str(music / "new"))
    # watchdog also reports the files inside as moved; each pair is a real move
    assert set(first.moved[1:]) <= {(str(song), str(music / "new" / "a.mp3"))}


def test_part_file_renamed_to_audio_counts_as_new(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    _, batches = start_watcher(music)
    part = write(music / "x.mp3.part", b"\x02" * 1000)
    os.rename(part, music / "x.mp3")
    assert batches.first() == only_changed(music / "x.mp3")
    assert batches.quiet(QUICK_DELAY + 0.3) == []  # the .part itself never shows up


def test_audio_renamed_to_something_else_is_deleted(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    song = write(music / "x.mp3")
    _, batches = start_watcher(music)
    os.rename(song, music / "x.mp3.bak")
    assert batches.first() == Changes(deleted=[str(song)])


def test_non_audio_files_never_appear(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    old_notes = write(music / "old.txt")
    _, batches = start_watcher(music)
    write(music / "cover.jpg")
    write(music / "Album" / "notes.txt")
    os.rename(old_notes, music / "renamed.txt")
    (music / "renamed.txt").unlink()
    (music / "cover.jpg").write_bytes(b"changed")
    marker = write(music / "marker.mp3")  # events are handled in order: this comes last
    batches.until(lambda b: str(marker) in [p for c in b for p in c.changed])
    assert batches.quiet(QUICK_DELAY + 0.2) == []
    assert batches.batches == [only_changed(marker)]


def test_non_recursive_folder_ignores_subfolders(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    (music / "sub").mkdir()
    _, batches = start_watcher(FolderConfig(path=music, recursive=False))
    write(music / "sub" / "deep.mp3")
    top = write(music / "top.mp3")
    assert batches.first() == only_changed(top)
    assert batches.quiet(0.5) == []


def test_a_failing_consumer_does_not_stop_the_watcher(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    got = Batches()
    calls: list[int] = []

    def flaky(changes: Changes) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("consumer broke")
        got(changes)

    start_watcher(music, on_changes=flaky)
    write(music / "first.mp3")
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert calls, "the first batch never came"
    second = write(music / "second.mp3")
    assert got.first() == only_changed(second)


def test_stop_ends_delivery(
    music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    w, batches = start_watcher(music)
    w.stop()
    assert w._thread is not None and not w._thread.is_alive()
    write(music / "late.mp3")
    assert batches.quiet(0.8) == []


# --------------------------------------------------------------------------- problems


def test_missing_folder_is_a_problem_and_the_others_are_watched(
    root: Path, music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    missing = root / "not-there"
    w, batches = start_watcher(missing, music)
    assert w.problems == [f"cannot watch {missing}: no such folder"]
    song = write(music / "ok.mp3")
    assert batches.first() == only_changed(song)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_folder_is_a_problem(
    root: Path, music: Path, start_watcher: Callable[..., tuple[FolderWatcher, Batches]]
) -> None:
    locked = root / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        w, batches = start_watcher(locked, music)
        assert w.problems == [
            f"cannot watch {locked}: permission denied (genred runs as uid {os.getuid()})"
        ]
        song = write(music / "ok.mp3")
        assert batches.first() == only_changed(song)
    finally:
        locked.chmod(0o755)


def test_folder_without_access_is_a_problem(
    root: Path,
    music: Path,
    start_watcher: Callable[..., tuple[FolderWatcher, Batches]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As test_unreadable_folder_is_a_problem, for root too: os.access says no."""
    locked = root / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw)
    )
    w, batches = start_watcher(locked, music)
    assert w.problems == [
        f"cannot watch {locked}: permission denied (genred runs as uid {os.getuid()})"
    ]
    song = write(music / "ok.mp3")
    assert batches.first() == only_changed(song)


@pytest.fixture
def tracked_observers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[InotifyObserver]]:
    """Observers the watcher builds; ones that never started are cleaned up here."""
    created: list[InotifyObserver] = []

    class Tracking(InotifyObserver):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(watchdog.observers, "Observer", Tracking)
    yield created
    for observer in created:
        if not observer.is_alive():
            observer.on_thread_stop()  # stops its emitters and its inotify reader


def test_one_folder_over_the_watch_limit_leaves_the_others_watched(
    root: Path,
    music: Path,
    start_watcher: Callable[..., tuple[FolderWatcher, Batches]],
    monkeypatch: pytest.MonkeyPatch,
    tracked_observers: list[InotifyObserver],
) -> None:
    big = root / "big"
    big.mkdir()
    real_start = InotifyEmitter.on_thread_start

    def on_thread_start(self: InotifyEmitter) -> None:
        if Path(self.watch.path) == big:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        real_start(self)

    monkeypatch.setattr(InotifyEmitter, "on_thread_start", on_thread_start)
    w, batches = start_watcher(big, music)
    assert w.problems == [watch_problem(big, OSError(errno.ENOSPC, "x"))]
    song = write(music / "ok.mp3")
    assert batches.first(timeout=3) == only_changed(song)


def test_inotify_instance_limit_is_a_problem_not_a_crash(
    music: Path,
    start_watcher: Callable[..., tuple[FolderWatcher, Batches]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from watchdog.observers.inotify_c import InotifyFD

    def no_more(cls: type) -> int:
        raise OSError(errno.EMFILE, "inotify instance limit reached")

    monkeypatch.setattr(InotifyFD, "_create_inotify_fd", classmethod(no_more))
    w, _ = start_watcher(music)
    assert w.problems == [watch_problem(Path("the music folders"), OSError(errno.EMFILE, "x"))]


# --------------------------------------------------------------------------- watch_file


@pytest.fixture
def watched_file(root: Path) -> Iterator[tuple[Path, list[float], Callable[[], None]]]:
    cfg = root / "genred.yaml"
    cfg.write_text("data_dir: /tmp/x\n")
    calls: list[float] = []
    lock = threading.Lock()

    def on_change() -> None:
        with lock:
            calls.append(time.monotonic())

    stop = watch_file(cfg, on_change, delay=0.2)
    yield cfg, calls, stop
    stop()


def wait_calls(calls: list[float], n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(calls) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(calls)} calls, expected {n}")
        time.sleep(0.02)


def test_watch_file_write_calls_once_per_burst(
    watched_file: tuple[Path, list[float], Callable[[], None]],
) -> None:
    cfg, calls, _ = watched_file
    for n in range(4):  # one editor save, several events
        cfg.write_text(f"data_dir: /tmp/x{n}\n")
        time.sleep(0.02)
    last = time.monotonic()
    wait_calls(calls, 1)
    time.sleep(0.5)
    assert len(calls) == 1
    assert calls[0] > last  # debounced: after the burst ended
    cfg.write_text("data_dir: /tmp/again\n")  # a second save: a second call
    wait_calls(calls, 2)
    time.sleep(0.4)
    assert len(calls) == 2


def test_watch_file_atomic_replace_calls_once(
    watched_file: tuple[Path, list[float], Callable[[], None]],
) -> None:
    cfg, calls, _ = watched_file
    tmp = cfg.with_name(".genred.yaml.swp")
    tmp.write_text("data_dir: /tmp/y\n")
    os.replace(tmp, cfg)
    wait_calls(calls, 1)
    time.sleep(0.5)
    assert len(calls) == 1
    assert cfg.read_text() == "data_dir: /tmp/y\n"


def test_watch_file_removal_calls(
    watched_file: tuple[Path, list[float], Callable[[], None]],
) -> None:
    cfg, calls, _ = watched_file
    cfg.unlink()
    wait_calls(calls, 1)


def test_watch_file_ignores_other_files_in_the_folder(
    watched_file: tuple[Path, list[float], Callable[[], None]],
) -> None:
    cfg, calls, _ = watched_file
    other = cfg.with_name("other.yaml")
    other.write_text("x: 1\n")
    os.replace(other, cfg.with_name("third.yaml"))
    (cfg.parent / "sub").mkdir()
    cfg.read_text()  # reading is no change
    time.sleep(0.6)
    assert calls == []


def test_watch_file_stop_ends_calls(
    watched_file: tuple[Path, list[float], Callable[[], None]],
) -> None:
    cfg, calls, stop = watched_file
    stop()
    cfg.write_text("data_dir: /tmp/zz\n")
    time.sleep(0.5)
    assert calls == []


def test_watch_file_no_call_after_stop_returned(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = root / "genred.yaml"
    cfg.write_text("a: 1\n")
    cancelled = threading.Event()
    dispatching = threading.Event()
    real_event = watcher_module._FileHandler.on_any_event
    real_cancel = watcher_module._FileHandler.cancel

    def on_any_event(self: Any, event: Any) -> None:
        if event.event_type == "modified" and not dispatching.is_set():
            dispatching.set()
            cancelled.wait(1)  # the write's event is in hand while stop() runs
        real_event(self, event)

    def cancel(self: Any) -> None:
        real_cancel(self)
        cancelled.set()

    monkeypatch.setattr(watcher_module._FileHandler, "on_any_event", on_any_event)
    monkeypatch.setattr(watcher_module._FileHandler, "cancel", cancel)
    calls: list[float] = []
    stop = watch_file(cfg, lambda: calls.append(time.monotonic()), delay=0.2)
    cfg.write_text("a: 2\n")
    assert dispatching.wait(5)
    stop()
    time.sleep(0.5)
    assert calls == []
