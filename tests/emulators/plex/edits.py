"""Metadata edits as PMS takes them: `genre[0].tag.tag=…`, `genre[].tag.tag-=…`, `genre.locked=1`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from .library import dedupe_tags
from .model import TAG_ELEMENTS, Item, Track


class EditError(ValueError):
    """An edit the emulator refuses (answered 400, nothing applied)."""


_INDEXED = re.compile(r"(\w+)\[(\d+)\]\.tag\.tag")
_REMOVE = re.compile(r"(\w+)\[\]\.tag\.tag-")
_CLEAR = re.compile(r"(\w+)\[\]\.tag")
_LOCK = re.compile(r"(\w+)\.locked")
_VALUE = re.compile(r"(\w+)\.value")
_PASSIVE = {"type", "id", "X-Plex-Token"}
_TRACK_VALUES = {"title", "summary"}


@dataclass
class Edit:
    """One PUT's worth of changes, applied to every targeted item in the same way."""

    add: dict[str, list[str]] = field(default_factory=dict)  # indexed tags, in index order
    remove: dict[str, list[str]] = field(default_factory=dict)
    clear: set[str] = field(default_factory=set)
    locks: dict[str, bool] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.add or self.remove or self.clear or self.locks or self.values)


def _tag_kind(kind: str) -> str:
    if kind not in TAG_ELEMENTS:
        raise EditError(f"tag type {kind!r} is not emulated (supported: {', '.join(TAG_ELEMENTS)})")
    return kind


def parse_edit(pairs: Sequence[tuple[str, str]]) -> Edit:
    """The edit in a PUT's query (already percent-decoded once, as a server decodes it).

    `tag[].tag.tag-` carries a comma-joined list whose items plexapi quoted once more, so
    each item is unquoted again after the split.
    """
    edit = Edit()
    indexed: dict[str, dict[int, str]] = {}
    for key, value in pairs:
        if key in _PASSIVE or key.startswith("X-Plex-"):
            continue
        if match := _INDEXED.fullmatch(key):
            indexed.setdefault(_tag_kind(match[1]), {})[int(match[2])] = value
        elif match := _REMOVE.fullmatch(key):
            items = [unquote(part) for part in value.split(",")]
            edit.remove.setdefault(_tag_kind(match[1]), []).extend(i for i in items if i)
        elif match := _CLEAR.fullmatch(key):
            edit.clear.add(_tag_kind(match[1]))
        elif match := _LOCK.fullmatch(key):
            if value not in ("0", "1"):
                raise EditError(f"{key} must be 0 or 1, got {value!r}")
            edit.locks[match[1]] = value == "1"
        elif match := _VALUE.fullmatch(key):
            edit.values[match[1]] = value
        else:
            raise EditError(f"edit parameter {key!r} is not emulated")
    edit.add = {kind: [by_index[i] for i in sorted(by_index)] for kind, by_index in indexed.items()}
    return edit


def check_values(edit: Edit, items: Iterable[Item]) -> None:
    """Refuse field edits the emulator does not model (album/artist renames merge in PMS)."""
    for name in edit.values:
        if name not in _TRACK_VALUES or not all(isinstance(i, Track) for i in items):
            raise EditError(f"editing {name!r} on these items is not emulated")


def apply_edit(items: Sequence[Item], edit: Edit, now: int, *, additive: bool) -> None:
    """Apply `edit` to every item and bump its updatedAt.

    Per item and tag type: `tag[]` clears, then `tag.tag-` removes (case-insensitively), then
    the indexed tags either replace the list (`additive=False`: one item edited, which is how
    plexapi's `addGenre` works, sending the old list plus the new tag) or are added to it
    (`additive=True`: a multi-item edit, as PMS's multi-edit adds a tag to each item).
    """
    for item in items:
        for kind in edit.clear:
            item.tags[kind] = []
        for kind, gone in edit.remove.items():
            drop = {tag.casefold() for tag in gone}
            item.tags[kind] = [t for t in item.tags.get(kind, []) if t.casefold() not in drop]
        for kind, new in edit.add.items():
            base = item.tags.get(kind, []) if additive else []
            item.tags[kind] = dedupe_tags([*base, *new])
        for name, locked in edit.locks.items():
            if locked:
                item.locked_fields.add(name)
            else:
                item.locked_fields.discard(name)
        for name, value in edit.values.items():
            if name == "title":
                item.title = value
            elif name == "summary":
                item.summary = value
        for kind in [k for k, v in item.tags.items() if not v]:
            del item.tags[kind]
        item.touch(now)
