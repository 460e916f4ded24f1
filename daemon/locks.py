"""Advisory file locks in the data dir: one per stage, and one for the daemon itself.

flock(2) locks belong to an open file and vanish with the process, so a `kill -9` never
leaves a stale lock behind. The holder writes who it is into the file, so whoever finds
the lock taken can say by whom ("sync is running in the daemon, pid 812, since 03:30").
Locks are per open file: two threads of one process opening the same lock exclude each
other too, which is what keeps a CLI `genred sync` and the daemon's sync apart.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from threading import Event

from .errors import Cancelled, GenredError, StageBusy

INSTANCE = "daemon"
POLL_S = 0.5
PROBE_GRACE_S = 0.2  # `holder()` takes a lock for an instant: a no-wait acquire retries this long


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as it wrote into the lock file."""

    pid: int | None
    by: str
    since: str

    def describe(self) -> str:
        if self.pid is None:
            return "another process"
        where = "the daemon" if self.by == "daemon" else f"`genred {self.by}`"
        return f"{where}, pid {self.pid}, since {self.since[:19].replace('T', ' ')} UTC"


def lock_path(data_dir: Path, name: str) -> Path:
    return data_dir / "locks" / f"{name}.lock"


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_holder(fd: int) -> Holder | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
        return Holder(int(data["pid"]), str(data["by"]), str(data["since"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _retry(fd: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if _try_lock(fd):
            return True
    return False


def holder(data_dir: Path, name: str) -> Holder | None:
    """The current holder of lock `name`, or None when nobody holds it."""
    path = lock_path(data_dir, name)
    if not path.exists():
        return None
    fd = _open(path)
    try:
        if _try_lock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        return _read_holder(fd) or Holder(None, "unknown", "")
    finally:
        os.close(fd)


@contextmanager
def acquire(
    data_dir: Path,
    name: str,
    by: str,
    *,
    wait: bool = True,
    cancel: Event | None = None,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> Iterator[None]:
    """Hold lock `name` for the block.

    Taken: with `wait` False raise StageBusy at once; else call `on_wait(holder)` once and
    poll until it is free (or `cancel` is set, which raises Cancelled).
    """
    path = lock_path(data_dir, name)
    try:
        fd = _open(path)
    except OSError as exc:
        raise GenredError(f"cannot create the lock file {path}: {exc.strerror}") from None
    try:
        if not (_try_lock(fd) or _retry(fd, PROBE_GRACE_S)):
            current = _read_holder(fd)
            if not wait:
                who = current.describe() if current else "another process"
                raise StageBusy(f"{name} is already running ({who})")
            if on_wait is not None:
                on_wait(current)
            while not _try_lock(fd):
                if cancel is not None and cancel.wait(POLL_S):
                    raise Cancelled(f"{name}: gave up waiting for the lock")
                if cancel is None:
                    time.sleep(POLL_S)
        info = {"pid": os.getpid(), "by": by, "since": datetime.now(UTC).isoformat()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            with suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class InstanceLock:
    """Held for the daemon's whole life: a second `genred run` on the same data dir fails."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._stack = ExitStack()

    def take(self) -> None:
        try:
            self._stack.enter_context(acquire(self.data_dir, INSTANCE, INSTANCE, wait=False))
        except StageBusy:
            current = holder(self.data_dir, INSTANCE)
            pid = f" (pid {current.pid})" if current and current.pid else ""
            raise StageBusy(
                f"genred is already running on {self.data_dir}{pid}; "
                "stop it first (systemctl stop genred) or give this one another data_dir"
            ) from None

    def release(self) -> None:
        self._stack.close()
