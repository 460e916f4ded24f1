"""Spotify's search query syntax (`q`), parsed and matched against catalogue tracks.

What Spotify documents for `q` (the OpenAPI spec's description of the parameter, and the
search reference page): free keywords plus field filters `track:`, `artist:`, `album:`,
`year:` (one year or a range `1955-1960`), `isrc:`, `genre:`, `upc:`, `tag:new`,
`tag:hipster`. A filter's value is one word, or a quoted phrase (`artist:"Miles Davis"`).
Matching here is case- and accent-insensitive substring matching of every keyword and
filter (all must match; the real service ranks fuzzily, this one is exact and repeatable).
`upc:` and `tag:` apply to albums only, so they match no track.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

FIELDS = ("track", "artist", "album", "year", "isrc", "genre", "upc", "tag")
_TOKEN = re.compile(r'(?:(\w+):)?(?:"([^"]*)"|(\S+))')


def fold(text: str) -> str:
    """Lower case, accents removed, runs of punctuation and spaces as one space."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", stripped.casefold()).split())


@dataclass
class SearchQuery:
    keywords: list[str] = field(default_factory=list)
    filters: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.keywords and not self.filters


def parse_query(q: str) -> SearchQuery:
    """`remaster track:Doxy artist:"Miles Davis" year:1955-1960` → keywords and filters.

    An unknown `word:` prefix is kept as a keyword, as Spotify treats it as text.
    """
    query = SearchQuery()
    for name, quoted, bare in _TOKEN.findall(q):
        value = quoted if quoted else bare
        if name and name.casefold() in FIELDS:
            query.filters.setdefault(name.casefold(), []).append(value)
        elif name:
            query.keywords.append(f"{name}:{value}")
        elif value:
            query.keywords.append(value)
    return query


@dataclass(frozen=True)
class TrackIndex:
    """The folded text of one track, built once per catalogue change."""

    track_id: str
    name: str
    artists: str
    album: str
    year: int | None
    isrc: str
    genres: str

    text: str  # name, artists and album together: what free keywords match


def _year_matches(value: str, year: int | None) -> bool:
    if year is None:
        return False
    low, _, high = value.partition("-")
    if not low.strip().isdigit():
        return False
    if not high:
        return year == int(low)
    return high.strip().isdigit() and int(low) <= year <= int(high)


@dataclass(frozen=True)
class CompiledQuery:
    """A query with every value folded once (a search scans the whole catalogue)."""

    keywords: tuple[str, ...]
    names: tuple[str, ...]
    artists: tuple[str, ...]
    albums: tuple[str, ...]
    genres: tuple[str, ...]
    isrcs: tuple[str, ...]
    years: tuple[str, ...]
    impossible: bool  # an album-only filter (upc:, tag:) on a track search
    exact_title: tuple[str, ...]


def compile_query(query: SearchQuery) -> CompiledQuery:
    f = query.filters
    folded = lambda name: tuple(fold(v) for v in f.get(name, []))  # noqa: E731
    names = folded("track")
    keywords = tuple(k for k in (fold(w) for w in query.keywords) if k)
    return CompiledQuery(
        keywords=keywords,
        names=names,
        artists=folded("artist"),
        albums=folded("album"),
        genres=folded("genre"),
        isrcs=tuple(v.strip().upper() for v in f.get("isrc", [])),
        years=tuple(f.get("year", [])),
        impossible=bool(f.get("upc") or f.get("tag")),
        exact_title=names or ((" ".join(keywords),) if keywords else ()),
    )


def matches(query: CompiledQuery, entry: TrackIndex) -> bool:
    if query.impossible:
        return False
    text = entry.text
    return (
        all(k in text for k in query.keywords)
        and all(v in entry.name for v in query.names)
        and all(v in entry.artists for v in query.artists)
        and all(v in entry.album for v in query.albums)
        and all(v in entry.genres for v in query.genres)
        and all(v == entry.isrc for v in query.isrcs)
        and all(_year_matches(v, entry.year) for v in query.years)
    )


def rank_key(query: CompiledQuery, entry: TrackIndex, popularity: int) -> tuple[int, int, str]:
    """Exact title hits first, then popularity, then id: the same query, the same order."""
    exact = entry.name in query.exact_title
    return (0 if exact else 1, -popularity, entry.track_id)
