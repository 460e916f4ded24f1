"""Variety rules: one version of each recording, caps per artist and album, an order that flows.

Two tracks are the same song when their artists and titles match once normalised (case,
accents, punctuation, and "feat. …", "remastered 2011", "live", "radio edit", "mono"…
stripped), or when they share an ISRC. Of one song the studio original is kept (no
version words in its title, not on a live album or a compilation), unless the intent
asks for versions; then versions whose lengths differ by more than a few seconds are
different recordings and may both appear.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TypeVar

from .library import Candidate, fold

T = TypeVar("T")

_BRACKETS = re.compile(r"[\(\[]([^\)\]]*)[\)\]]")
_FEAT = re.compile(r"\s+(?:feat\.?|ft\.?|featuring|with)\s+.*$", re.I)
_DASH_SUFFIX = re.compile(r"\s+[-–—]\s+([^-–—]+)$")
VERSION_WORDS = re.compile(
    r"\b(remaster(?:ed)?|live|radio edit|edit|single version|album version|mono|stereo|"
    r"version|demo|acoustic|unplugged|extended|mix|deluxe|bonus|instrumental|reprise|"
    r"\d{4} remaster(?:ed)?|re-?recorded)\b",
    re.I,
)
_ALBUM_NOT_ORIGINAL = re.compile(
    r"\b(live|greatest hits|best of|anthology|collection|essential|hits|compilation)\b", re.I
)
SAME_RECORDING_MS = 4000  # versions within this length of each other are one recording


@lru_cache(maxsize=262_144)
def song_title(title: str) -> str:
    """The title without its version words: "So What (Remastered 2009)" → "so what"."""
    text = _FEAT.sub("", title or "")

    def keep(match: re.Match[str]) -> str:
        inner = match.group(1)
        return (
            "" if VERSION_WORDS.search(inner) or re.match(r"\s*(feat|ft)\b", inner, re.I) else inner
        )

    text = _BRACKETS.sub(keep, text)
    suffix = _DASH_SUFFIX.search(text)
    if suffix and VERSION_WORDS.search(suffix.group(1)):
        text = text[: suffix.start()]
    return fold(text)


@lru_cache(maxsize=65_536)
def song_artist(artist: str) -> str:
    return fold(_FEAT.sub("", artist or ""))


def is_version(track: Candidate) -> bool:
    """A live take, a remaster, an edit, or a track of a live album or compilation."""
    if VERSION_WORDS.search(track.title or ""):
        return True
    return bool(_ALBUM_NOT_ORIGINAL.search(track.album or ""))


def one_per_recording(
    tracks: Sequence[Candidate], *, versions: bool = False, rank: Callable[[Candidate], float]
) -> list[Candidate]:
    """`tracks` with each recording once (its best version), order kept.

    `rank` breaks ties between versions of one song (higher first) after the studio
    original; with `versions`, different recordings of a song (lengths apart) all stay.
    """
    groups: dict[tuple[str, str], list[Candidate]] = {}
    by_isrc: dict[str, tuple[str, str]] = {}
    for track in tracks:
        key = (song_artist(track.artist), song_title(track.title))
        if track.isrc:
            key = by_isrc.setdefault(track.isrc, key)
        groups.setdefault(key, []).append(track)
    keep: set[int] = set()
    for group in groups.values():
        if len(group) == 1:
            keep.add(group[0].id)
            continue
        ordered = sorted(group, key=lambda t: (is_version(t), -rank(t), t.id))
        if not versions:
            keep.add(ordered[0].id)
            continue
        chosen: list[Candidate] = []
        for track in ordered:
            if all(not _same_length(track, other) for other in chosen):
                chosen.append(track)
        keep.update(t.id for t in chosen)
    return [t for t in tracks if t.id in keep]


def _same_length(a: Candidate, b: Candidate) -> bool:
    if a.isrc and a.isrc == b.isrc:
        return True
    if a.duration_ms is None or b.duration_ms is None:
        return True
    return abs(a.duration_ms - b.duration_ms) <= SAME_RECORDING_MS


class Caps:
    """Per-artist and per-album counts while a playlist fills up."""

    def __init__(self, per_artist: int, per_album: int) -> None:
        self.per_artist, self.per_album = per_artist, per_album
        self.artists: dict[str, int] = {}
        self.albums: dict[str, int] = {}

    def allows(self, track: Candidate) -> bool:
        return (
            self.artists.get(track.artist_key, 0) < self.per_artist
            and self.albums.get(track.album_key, 0) < self.per_album
        )

    def take(self, track: Candidate) -> None:
        self.artists[track.artist_key] = self.artists.get(track.artist_key, 0) + 1
        self.albums[track.album_key] = self.albums.get(track.album_key, 0) + 1


# --------------------------------------------------------------------------- order


def arrange(tracks: Sequence[Candidate], order: str, seed: int) -> list[Candidate]:
    """The playlist's order: `flow` (an arc of energy, when most tracks have one), `score`
    (as ranked), `shuffle` (seeded), `year`, `added` (newest first); no artist twice in a
    row where another order allows it."""
    items = list(tracks)
    if order == "shuffle":
        random.Random(seed).shuffle(items)
    elif order == "year":
        items.sort(key=lambda t: (t.year or 9999, t.album, t.id))
    elif order == "added":
        items.sort(key=lambda t: t.added_at or "", reverse=True)
    elif order == "flow":
        known = [t for t in items if t.energy is not None]
        if len(known) >= max(3, 0.6 * len(items)):
            items = _energy_arc(items)
    return spread_artists(items)


def _energy_arc(items: list[Candidate]) -> list[Candidate]:
    """Rising to a peak two thirds in, then easing off: every other track of the sorted
    list on the way up, the rest on the way down."""
    ranked = sorted(items, key=lambda t: (t.energy if t.energy is not None else 0.5, t.id))
    rising = ranked[0::2]
    falling = ranked[1::2][::-1]
    return rising + falling


def spread_artists(items: list[Candidate]) -> list[Candidate]:
    """Move a track that follows one of the same artist to the next place that does not."""
    out = list(items)
    for i in range(1, len(out)):
        if out[i].artist_key != out[i - 1].artist_key:
            continue
        for j in range(i + 1, len(out)):
            if out[j].artist_key != out[i - 1].artist_key:
                out.insert(i, out.pop(j))
                break
    return out


def weighted_draw(items: Sequence[T], weights: Sequence[float], k: int, seed: int) -> list[T]:
    """`k` of `items` without replacement, each with a chance by its weight (seeded:
    Efraimidis–Spirakis keys), in order of their keys."""
    rng = random.Random(seed)
    keyed = [(rng.random() ** (1.0 / max(w, 1e-6)), i) for i, w in enumerate(weights)]
    keyed.sort(reverse=True)
    return [items[i] for _, i in keyed[:k]]
