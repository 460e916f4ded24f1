"""Writeback `tags`: decided genres (and moods) written into the music files themselves.

For libraries without Plex: the items are the `folder` source's tracks (source id = the
file's absolute path), the fields the files' own genre and mood tags (`tagfields`: ID3
TCON/TMOO, Vorbis GENRE/MOOD, MP4 ©gen, ASF, APEv2). The writeback stage plans the edits
(modes append/replace/fill, the value found before the first write kept for `genred
revert`); this plugin reads the fields raw, so a revert writes back exactly what was there.

Each file is replaced whole (`filewrite.replace_file`: a checked copy renamed over it,
mode and owner kept), so a kill at any moment leaves the original or the new file. A file
that changed since `read` (size, mtime or inode) is left alone, and the stage records it
as failed; the next run reads it again. Every file written is reported with its new stat
(`take_written`), so neither the folder watcher nor the next sync takes the write for a
change. Album and artist levels and custom labels have no place in a file and are skipped
(`writeback.labels_as: mood` writes labels as moods); `writeback.lock` means nothing here.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from genred.api import (
    Edit,
    EditPartlyFailed,
    FileChangedSinceRead,
    FileNotWritable,
    GenredError,
    Key,
    PluginContext,
    Values,
    WrittenFile,
    get_logger,
)

from . import tagfields
from .filewrite import FileState, replace_file
from .source import SOURCE, stamp_of

log = get_logger("genred.folder.tags")

LENGTH_TOLERANCE_S = 0.5  # the new file's duration must match the original's this closely


class TagsWritebackConfig(BaseModel):
    """Settings of the `tags` writeback (what is written, and how, is `writeback:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    split_hard_links: bool = Field(
        False,
        description="write files that have other hard links too (those keep the old file)",
    )
    fsync: bool = Field(True, description="flush each new file to disk before it replaces the old")


@dataclass(frozen=True)
class Seen:
    """A file as `read` found it: its identity, its fields, its duration."""

    state: FileState
    values: Mapping[str, Values]
    length: float | None


class TagsWriteback:
    """Reads and writes the genre and mood tags of the folder source's files, by path."""

    Config = TagsWritebackConfig
    uses_config = ("folders",)  # rebuilt on reload only when these sections change
    name = "tags"
    source = SOURCE
    batch_size = 1  # one file per edit: progress, stops and kills wait for one file only

    def __init__(self, settings: TagsWritebackConfig, context: PluginContext) -> None:
        if not context.config.folders:
            raise GenredError(
                "the tags writeback writes into the files of the folder source: it needs "
                "`folders:` in the config"
            )
        self.settings = settings
        self.config = context.config
        self._seen: dict[str, Seen] = {}
        self._written: list[WrittenFile] = []
        self._unwritable: dict[str, str] = {}  # path → why it cannot carry tags

    def check(self) -> list[str]:
        sources = {e.name for e in self.config.plugins.enabled("sources")}
        if SOURCE not in sources:
            return [
                "the tags writeback writes into the folder source's files, but "
                "plugins.sources.folder is not enabled: nothing will be written"
            ]
        return []

    # -- the WritebackPlugin protocol ----------------------------------------------------

    def read(self, keys: Sequence[Key]) -> dict[Key, Values]:
        """Current raw values of (track, path, genre|mood) keys; other keys, and files that
        are missing, unreadable or of a format without tags (raw AAC) are absent: the stage
        leaves those alone."""
        by_path: dict[str, list[Key]] = defaultdict(list)
        for key in keys:
            kind, path, field = key
            if kind == "track" and field in tagfields.FIELDS:
                by_path[path].append(key)
        found: dict[Key, Values] = {}
        for path, wanted in by_path.items():
            seen = self._look(path)
            if seen is not None:
                found.update((key, seen.values[key[2]]) for key in wanted)
        return found

    def apply(self, edit: Edit, *, lock: bool) -> None:
        """Write each item's complete new list into its file, one file at a time."""
        failed: dict[str, GenredError] = {}
        for path in edit.ids:
            try:
                self._write(
                    edit.kind, path, edit.field, edit.before.get(path, ()), edit.after[path]
                )
            except GenredError as exc:
                failed[path] = exc
            except OSError as exc:  # an I/O error, a full disk, a folder that went away
                failed[path] = FileNotWritable(f"{path}: {exc.strerror or exc}")
        if failed:
            raise EditPartlyFailed(
                f"{len(failed)} of {len(edit.ids)} files not written "
                f"(first: {next(iter(failed.values()))})",
                failed,
            )

    def take_written(self) -> list[WrittenFile]:
        written, self._written = self._written, []
        return written

    # -- one file ------------------------------------------------------------------------

    def _look(self, path: str) -> Seen | None:
        """Read the file's fields now (and remember how it was); None when it is not
        there, mutagen cannot read it or it cannot carry tags (logged)."""
        try:
            info = os.stat(path)
            audio = tagfields.load(path)
        except FileNotFoundError:
            return None
        except Exception as exc:  # untrusted bytes: mutagen raises many kinds of errors
            log.warning("cannot read tags; left alone", path=path, reason=_reason(exc))
            return None
        if audio is None:
            log.warning("not a recognised audio format; left alone", path=path)
            return None
        try:
            tagfields.family(audio)
        except FileNotWritable as exc:
            if path not in self._unwritable:  # said once per file, not on every run
                log.warning("file cannot carry tags; left alone", path=path, reason=str(exc))
            self._unwritable[path] = f"{path}: {exc}"
            return None
        seen = Seen(
            FileState.of(info),
            {field: tagfields.read(audio, field) for field in tagfields.FIELDS},
            getattr(audio.info, "length", None),
        )
        self._seen[path] = seen
        return seen

    def _write(self, kind: str, path: str, field: str, before: Values, after: Values) -> None:
        if kind != "track" or field not in tagfields.FIELDS:
            raise FileNotWritable(f"music files have no {kind} {field} field")
        seen = self._seen.get(path) or self._look(path)
        if seen is None:
            if path in self._unwritable:
                raise FileNotWritable(self._unwritable[path])
            raise FileChangedSinceRead(f"{path} is gone or unreadable since genred read it")
        if seen.values[field] != tuple(before):
            raise FileChangedSinceRead(
                f"{path}: its {field} is {list(seen.values[field])}, not {list(before)} as "
                "planned: changed since genred read it; left alone"
            )

        def change(copy: str) -> None:
            audio = tagfields.load(copy)
            tagfields.write(audio, field, after)
            tagfields.save(audio)
            _verify(path, copy, seen, {**seen.values, field: tuple(after)})

        info = replace_file(
            path,
            seen.state,
            change,
            fsync=self.settings.fsync,
            split_hard_links=self.settings.split_hard_links,
        )
        self._seen[path] = Seen(
            FileState.of(info), {**seen.values, field: tuple(after)}, seen.length
        )
        names = tuple(dict.fromkeys([path, os.path.realpath(path)]))
        self._written.append(
            WrittenFile(path, names, info.st_size, info.st_mtime_ns, stamp_of(info))
        )
        log.debug("tags written", path=path, field=field, values=list(after))


def _verify(path: str, copy: str, seen: Seen, wanted: Mapping[str, Values]) -> None:
    """The new file reads back as meant: the fields exactly, the audio as long as before."""
    try:
        audio = tagfields.load(copy)
    except Exception as exc:
        raise FileNotWritable(f"{path}: the new file does not read back ({_reason(exc)})") from None
    if audio is None:
        raise FileNotWritable(f"{path}: the new file is not recognised as audio")
    got = {field: tagfields.read(audio, field) for field in tagfields.FIELDS}
    if got != dict(wanted):
        raise FileNotWritable(f"{path}: the new file reads back {got}, not {dict(wanted)}")
    length = getattr(audio.info, "length", None)
    if seen.length is not None and (
        length is None or abs(length - seen.length) > LENGTH_TOLERANCE_S
    ):
        raise FileNotWritable(
            f"{path}: the new file plays {length} s, the original {seen.length} s; left alone"
        )


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
