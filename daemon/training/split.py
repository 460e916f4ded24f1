"""The held-out split, by album (or artist), never by track: plain functions.

Tracks of one album share a recording, a mix and a master, so a model tested on tracks
whose album-mates it trained on looks far better than it is. Every track belongs to a
group (its album; with `split_by: artist`, every track linked to it by a shared artist or a
shared album); a group lies wholly on one side.

The split is stratified as far as the groups allow: per class (a group counts for the
label most of its tracks have), whole groups are held out until about `fraction` of that
class's tracks are; a class with one group stays in training. It is deterministic: the
same items and seed give the same split, whatever order the items come in.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Split:
    train: tuple[int, ...]  # indices into the items, ascending
    test: tuple[int, ...]


@dataclass(frozen=True)
class GroupedTrack:
    """What grouping needs to know of a track."""

    id: int
    source: str = ""
    album_source_id: str | None = None
    album: str | None = None
    album_artist: str | None = None
    artist: str | None = None
    artist_source_id: str | None = None


def _fold(text: str | None) -> str:
    return " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())


def album_key(track: GroupedTrack) -> str:
    """The album's id at its source; else album name + album artist (or artist); a track
    with neither is a group of its own."""
    if track.album_source_id:
        return f"id:{track.source}:{track.album_source_id}"
    name = _fold(track.album)
    if name:
        return f"name:{_fold(track.album_artist or track.artist)}\x1f{name}"
    return f"track:{track.id}"


def artist_key(track: GroupedTrack) -> str:
    """The artist's (else the album artist's) folded name; else the artist's id at its
    source; a track with neither is a group of its own."""
    name = _fold(track.artist or track.album_artist)
    if name:
        return f"name:{name}"
    if track.artist_source_id:
        return f"id:{track.source}:{track.artist_source_id}"
    return f"track:{track.id}"


def group_keys(tracks: Sequence[GroupedTrack], by: str) -> list[str]:
    """Each track's group. By artist, tracks sharing an artist or an album are one group
    (connected through either), so neither an artist nor an album straddles the split."""
    if by == "album":
        return [album_key(t) for t in tracks]
    if by != "artist":
        raise ValueError(f"split by 'album' or 'artist', not {by!r}")
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    pairs = [("artist:" + artist_key(t), "album:" + album_key(t)) for t in tracks]
    for artist, album in pairs:
        a, b = root(artist), root(album)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [root(artist) for artist, _ in pairs]


def split_groups(labels: Sequence[str], groups: Sequence[str], fraction: float, seed: int) -> Split:
    """Hold out whole groups: about `fraction` of each class's tracks (see module doc)."""
    if len(labels) != len(groups):
        raise ValueError("one group per label")
    if not 0 < fraction < 1:
        raise ValueError("the held-out fraction must be between 0 and 1")
    members, by_class = _groups_by_class(labels, groups)
    rng = random.Random(seed)
    held: set[str] = set()
    for label in sorted(by_class):
        candidates = by_class[label]
        rng.shuffle(candidates)
        held.update(_held_out(candidates, members, fraction))
    test = sorted(i for g in held for i in members[g])
    taken = set(test)
    return Split(tuple(i for i in range(len(labels)) if i not in taken), tuple(test))


def groups_per_class(labels: Sequence[str], groups: Sequence[str]) -> dict[str, int]:
    """How many groups each label has to offer the split (a group counts for the label
    most of its tracks have); a label with fewer than 2 can be trained on or held out,
    not both. Labels that lead no group count 0."""
    _members, by_class = _groups_by_class(labels, groups)
    return {label: len(by_class.get(label, [])) for label in sorted(set(labels))}


def _groups_by_class(
    labels: Sequence[str], groups: Sequence[str]
) -> tuple[dict[str, list[int]], dict[str, list[str]]]:
    """Track indices per group, and the groups (sorted) per majority label."""
    members: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    by_class: dict[str, list[str]] = defaultdict(list)
    for group in sorted(members):
        votes = Counter(labels[i] for i in members[group])
        majority = min(votes, key=lambda label: (-votes[label], label))
        by_class[majority].append(group)
    return members, by_class


def _held_out(candidates: list[str], members: dict[str, list[int]], fraction: float) -> list[str]:
    """Groups of one class to hold out: closest to the target, at least one, never all."""
    if len(candidates) < 2:
        return []
    target = fraction * sum(len(members[g]) for g in candidates)
    chosen: list[str] = []
    count = 0
    for group in candidates:
        if len(chosen) == len(candidates) - 1:
            break
        size = len(members[group])
        if not chosen or abs(count + size - target) < abs(count - target):
            chosen.append(group)
            count += size
    return chosen
