"""The folder watcher: watchdog events on the music folders → settled batches of changes.

A created or modified audio file counts only once its size and mtime have stayed the same
for `watch.settle` (a copy over SMB can take minutes and fires hundreds of events). Moves
and deletions need no settling; they are batched for a moment and handed over with the
next batch. Watching is best effort: a folder that cannot be watched (missing, unreadable,
inotify limits) is reported with what to do, and the scheduled sync stays the backstop.

genred's own writes (the `tags` writeback replacing a file) are not changes: a settled
file that `own_writes` says still has exactly the size and mtime genred's write left is
dropped from the batch, so writing tags never sets off a sync (and another write).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from .config import FolderConfig, WatchConfig

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver
from .logs import get_logger

log = get_logger("genred.watcher")

AUDIO_EXTENSIONS = frozenset(
    [
        ".mp3",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".mp4",
        ".aac",
        ".wav",
        ".aif",
        ".aiff",
        ".wma",
        ".ape",
        ".wv",
    ]
)
BATCH_DELAY_S = 2.0  # moves and deletions wait this long for company
# Of settled files and their (size, mtime_ns), those genred itself wrote just so.
OwnWrites = Callable[[Mapping[str, tuple[int, int]]], Collection[str]]


@dataclass
class Changes:
    """One batch for the sync: settled files, moves (files or folders), deletions."""

    changed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.moved or self.deleted)

    def paths(self) -> list[str]:
        """Every path this batch touches (for a source that rescans by path)."""
        return sorted({*self.changed, *self.deleted, *(p for m in self.moved for p in m)})


@dataclass
class _Pending:
    stat: tuple[int, int] | None
    changed_at: float


def is_audio(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in AUDIO_EXTENSIONS


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def watch_problem(path: Path, exc: OSError) -> str:
    """What went wrong watching `path`, and what to do about it."""
    if exc.errno == errno.ENOSPC:
        return (
            f"cannot watch {path}: the inotify watch limit is reached; raise it with "
            "`sysctl fs.inotify.max_user_watches=524288` (and in /etc/sysctl.d/) or set "
            "watch.polling: true"
        )
    if exc.errno == errno.EMFILE:
        return (
            f"cannot watch {path}: the inotify instance limit is reached; raise "
            "fs.inotify.max_user_instances or set watch.polling: true"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot watch {path}: permission denied (genred runs as uid {os.getuid()})"
    if exc.errno == errno.ENOENT:
        return f"cannot watch {path}: no such folder"
    return f"cannot watch {path}: {exc.strerror or exc}"


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher.event(event)


class FolderWatcher:
    """Watches `folders`; calls `on_changes(Changes)` from its own thread, one batch at a time."""

    def __init__(
        self,
        folders: Sequence[FolderConfig],
        settings: WatchConfig,
        on_changes: Callable[[Changes], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        own_writes: OwnWrites | None = None,
    ) -> None:
        self.folders = list(folders)
        self.settings = settings
        self.on_changes = on_changes
        self.clock = clock
        self.own_writes = own_writes
        self.problems: list[str] = []
        self._settle = settings.settle.total_seconds()
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self._moved: list[tuple[str, str]] = []
        self._deleted: set[str] = set()
        self._first_quick: float | None = None  # when the oldest unsent move/deletion came
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> list[str]:
        """Start watching; returns the problems (also logged). Never raises for one folder."""
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        try:  # watchdog 7 creates the inotify instance in Observer() itself
            observer: BaseObserver
            if self.settings.polling:
                observer = PollingObserver(timeout=self.settings.poll_interval.total_seconds())
            else:
                observer = Observer()
            observer.daemon = True
            observer.start()  # watches added after start are set up (and fail) one by one
        except OSError as exc:
            self._report(watch_problem(Path("the music folders"), exc))
            return self.problems
        handler = _Handler(self)
        watched = 0
        for folder in self.folders:
            problem = self._check_readable(folder.path)
            if problem is None:
                try:
                    observer.schedule(handler, str(folder.path), recursive=folder.recursive)
                    watched += 1
                except OSError as exc:
                    problem = watch_problem(folder.path, exc)
            if problem:
                self._report(problem)
        self._observer = observer
        self._thread = threading.Thread(
            target=self._settle_loop, name="genred-watcher", daemon=True
        )
        self._thread.start()
        log.info(
            "watching folders",
            folders=watched,
            settle_s=self._settle,
            mode="polling" if self.settings.polling else "inotify",
        )
        threading.Thread(
            target=self._check_subfolders, name="genred-watch-check", daemon=True
        ).start()
        return self.problems

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        observer = self._observer
        if observer is not None:
            observer.stop()
            observer.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def _report(self, problem: str) -> None:
        self.problems.append(problem)
        log.error(problem + "; the scheduled sync still finds new files there")

    @staticmethod
    def _check_readable(path: Path) -> str | None:
        if not path.is_dir():
            return f"cannot watch {path}: no such folder"
        if not os.access(path, os.R_OK | os.X_OK):
            return f"cannot watch {path}: permission denied (genred runs as uid {os.getuid()})"
        return None

    def _check_subfolders(self) -> None:
        """Unreadable subfolders get no inotify watch (silently): say which, once."""
        unreadable: list[str] = []
        for folder in self.folders:
            if not folder.recursive or not folder.path.is_dir():
                continue
            for _ in os.walk(folder.path, onerror=lambda e: unreadable.append(str(e.filename))):
                if self._stopping:
                    return
        if unreadable:
            self._report(
                f"{len(unreadable)} subfolders cannot be read and are not watched, e.g. "
                + ", ".join(unreadable[:3])
            )

    # ------------------------------------------------------------------ events

    def event(self, event: FileSystemEvent) -> None:
        """Called from watchdog's thread for every event; only bookkeeping here."""
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        # A new folder's files (copied in before its watch existed): walked before taking
        # the lock, which a slow mount would otherwise hold up.
        inside = list(_audio_files(src)) if isinstance(event, DirCreatedEvent) else []
        now = self.clock()
        with self._cond:
            if isinstance(event, FileCreatedEvent | FileModifiedEvent):
                if is_audio(src):
                    self._touch(src, now)
            elif isinstance(event, DirCreatedEvent):
                for path in inside:
                    self._touch(path, now)
            elif isinstance(event, FileMovedEvent):
                self._file_moved(src, dest, now)
            elif isinstance(event, DirMovedEvent):
                self._moved.append((src, dest))
                self._quick(now)
            elif isinstance(event, FileDeletedEvent | DirDeletedEvent):
                if isinstance(event, DirDeletedEvent) or is_audio(src):
                    self._pending.pop(src, None)
                    self._deleted.add(src)
                    self._quick(now)
            else:
                return
            self._cond.notify_all()

    def _touch(self, path: str, now: float) -> None:
        self._deleted.discard(path)
        entry = self._pending.get(path)
        if entry is None:
            self._pending[path] = _Pending(None, now)
        else:
            entry.changed_at = now

    def _file_moved(self, src: str, dest: str, now: float) -> None:
        if is_audio(src) and is_audio(dest):
            if src in self._pending:  # moved before it settled: it is simply a new file there
                self._pending[dest] = self._pending.pop(src)
            else:
                self._moved.append((src, dest))
                self._quick(now)
        elif is_audio(dest):  # "song.mp3.part" → "song.mp3": a new file
            self._touch(dest, now)
        elif is_audio(src):  # renamed away from audio: gone as a track
            self._pending.pop(src, None)
            self._deleted.add(src)
            self._quick(now)

    def _quick(self, now: float) -> None:
        if self._first_quick is None:
            self._first_quick = now

    # ------------------------------------------------------------------ settling

    def _settle_loop(self) -> None:
        tick = max(0.05, min(1.0, self._settle / 5))
        while True:
            with self._cond:
                while not (self._stopping or self._pending or self._moved or self._deleted):
                    self._cond.wait()  # idle: no timer, no CPU
                if self._stopping:
                    return
            time.sleep(tick)
            batch = self._take_ready(self.clock())
            if batch:
                try:
                    self.on_changes(batch)
                except Exception:  # a failing consumer must not kill the watcher
                    log.exception("handling watched changes failed")

    def _take_ready(self, now: float) -> Changes:
        """Settled files, plus moves and deletions once they waited BATCH_DELAY_S."""
        with self._cond:
            paths = list(self._pending.items())
        ready: dict[str, tuple[int, int]] = {}
        for path, entry in paths:
            current = _stat(path)  # stat outside the lock: network mounts can be slow
            with self._cond:
                if self._pending.get(path) is not entry:
                    continue
                if current is None:
                    del self._pending[path]  # vanished (a deletion event follows, if it was ours)
                elif current != entry.stat:
                    entry.stat, entry.changed_at = current, now
                elif now - entry.changed_at >= self._settle:
                    ready[path] = current
                    del self._pending[path]
        ours = self._own(ready)
        with self._cond:
            quick_due = self._first_quick is not None and (
                ready or now - self._first_quick >= BATCH_DELAY_S
            )
            changes = Changes(changed=sorted(p for p in ready if p not in ours))
            if quick_due:
                changes.moved, self._moved = self._moved, []
                changes.deleted, self._deleted = sorted(self._deleted), set()
                self._first_quick = None
        return changes

    def _own(self, ready: Mapping[str, tuple[int, int]]) -> Collection[str]:
        """Those of the settled files genred wrote itself (asked outside the lock)."""
        if not ready or self.own_writes is None:
            return ()
        try:
            ours = self.own_writes(ready)
        except Exception:  # the store busy or gone: sync them, the sync knows them anyway
            log.exception("cannot tell genred's own writes; syncing the files")
            return ()
        if ours:
            log.debug("genred's own writes, not synced", files=len(ours))
        return ours


def _audio_files(folder: str) -> Iterable[str]:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if is_audio(name):
                yield os.path.join(root, name)


class _FileHandler(FileSystemEventHandler):
    """Events about one file in a folder; editors save by rename, so watch the folder."""

    def __init__(self, path: str, on_change: Callable[[], None], delay: float) -> None:
        self.path = path
        self.on_change = on_change
        self.delay = delay
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = {os.fsdecode(event.src_path), os.fsdecode(event.dest_path or b"")}
        if self.path not in paths or event.event_type in ("opened", "closed_no_write"):
            return
        with self._lock:  # a save is several events: act once they stop
            if self._stopped:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self.on_change)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()


def watch_file(
    path: Path, on_change: Callable[[], None], *, delay: float = 0.5
) -> Callable[[], None]:
    """Call `on_change` (debounced) when `path` is written, replaced or removed; returns a stopper."""
    from watchdog.observers import Observer

    target = os.path.abspath(path)
    handler = _FileHandler(target, on_change, delay)
    observer = Observer()
    observer.schedule(handler, os.path.dirname(target), recursive=False)
    observer.daemon = True
    observer.start()

    def stop() -> None:
        observer.stop()
        observer.join(5)
        handler.cancel()

    return stop
