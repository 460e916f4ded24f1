"""Replacing a music file whole: a copy beside it is changed, checked, flushed, renamed over.

At every moment the path holds the original or the finished new file, never a broken one:
a kill -9 before the rename leaves the original (and a dot-file copy, `.NAME.genred-…tmp`,
that the folder source and the watcher never list, removed by the next write of NAME);
after it, the new file, complete and flushed to disk first. The copy gets the original's
mode, owner and group, extended attributes (ACLs) and flags; what cannot be kept is not
written at all:

- the owner: only root (or CAP_CHOWN) can give a file to another user, so a file genred's
  user does not own is written only when it can be given back (else FileNotWritable);
- read-only files (no write bit, or not writable for genred's user) are left alone,
  though the folder would let the rename through;
- a file with other hard links (a download being seeded) is left alone unless
  `split_hard_links`: the rename would give this name a new file and leave the others on
  the old one.

Why not mutagen's in-place save: when a tag grows past its padding, mutagen moves the
audio data inside the file, and an interruption then leaves neither file; even within the
padding it writes in several steps. The copy costs one more read and write of the file.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass

from genred.api import FileChangedSinceRead, FileNotWritable

TEMP_TAG = ".genred-"
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileState:
    """What identifies a file's content as read: a change of any is a changed file."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileState:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def temp_pattern(name: str) -> str:
    return f".{glob.escape(name)}{TEMP_TAG}*.tmp"


def replace_file(
    path: str,
    expected: FileState,
    change: Callable[[str], None],
    *,
    fsync: bool = True,
    split_hard_links: bool = False,
) -> os.stat_result:
    """Replace the file at `path` (through symlinks) by a copy that `change(copy)` edited.

    FileChangedSinceRead when the file is not `expected` (before the copy and again right
    before the rename); FileNotWritable when it must be left as it is. Returns the new
    file's stat."""
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise FileChangedSinceRead(f"{path} is gone since genred read it") from None
    if FileState.of(info) != expected:
        raise FileChangedSinceRead(
            f"{path} changed since genred read it (size or modification time): left alone; "
            "the next writeback reads it again"
        )
    _check_writable(path, real, info, split_hard_links)
    directory, name = os.path.split(real)
    _remove_leftovers(directory, name)
    copy = os.path.join(directory, f".{name}{TEMP_TAG}{secrets.token_hex(4)}.tmp")
    try:
        handle = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise FileNotWritable(
            f"{path}: cannot create the new file in {directory} ({exc.strerror}); genred "
            f"replaces a file by writing a new one beside it (runs as uid {os.geteuid()})"
        ) from None
    try:
        with os.fdopen(handle, "wb") as out, open(real, "rb") as original:
            shutil.copyfileobj(original, out, COPY_CHUNK)
        shutil.copystat(real, copy)  # mode, times, flags, extended attributes
        change(copy)
        _keep_owner(path, copy, info)
        os.chmod(copy, stat.S_IMODE(info.st_mode))
        if fsync:
            _flush(copy)
        if FileState.of(os.stat(real)) != expected:
            raise FileChangedSinceRead(
                f"{path} changed while genred wrote its copy: left alone; the next "
                "writeback reads it again"
            )
        os.replace(copy, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(copy)
        raise
    if fsync:
        _flush(directory, directory=True)
    return os.stat(real)


def _check_writable(path: str, real: str, info: os.stat_result, split_hard_links: bool) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise FileNotWritable(f"{path} is not a regular file")
    if not os.access(real, os.W_OK) or not info.st_mode & 0o222:  # root too: no write bit
        raise FileNotWritable(
            f"{path} is read-only for genred (uid {os.geteuid()}): left alone; make it "
            "writable to have its tags written"
        )
    if info.st_nlink > 1 and not split_hard_links:
        raise FileNotWritable(
            f"{path} has {info.st_nlink} hard links (a download being seeded?): writing would "
            "leave the other names on the old file; left alone (set split_hard_links: true "
            "under plugins.writeback.tags to write it anyway)"
        )


def _keep_owner(path: str, copy: str, info: os.stat_result) -> None:
    mine = os.stat(copy)
    if (mine.st_uid, mine.st_gid) == (info.st_uid, info.st_gid):
        return
    try:
        os.chown(copy, info.st_uid, info.st_gid)
    except PermissionError:
        raise FileNotWritable(
            f"{path}: cannot keep its owner {info.st_uid}:{info.st_gid} (genred runs as "
            f"{os.geteuid()}:{os.getegid()}, and only root may give a file away): left alone; "
            "run genred as the user (and a group) that owns the music files"
        ) from None


def _flush(path: str, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        handle = os.open(path, flags)
    except OSError:
        if directory:
            return  # some file systems do not open folders; the rename stands
        raise
    try:
        os.fsync(handle)
    except OSError as exc:
        if not directory or exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(handle)


def _remove_leftovers(directory: str, name: str) -> None:
    """Copies of `name` a killed write left (one writeback runs at a time: none is live)."""
    for leftover in glob.glob(os.path.join(glob.escape(directory), temp_pattern(name))):
        with contextlib.suppress(OSError):
            os.unlink(leftover)
