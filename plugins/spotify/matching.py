"""A library track → its Spotify track, or "not on Spotify".

By ISRC first when the track has one (`isrc:…`, the recording's own code). Else a field
search, `track:"…" artist:"…"`, with the title normalised (no "feat.", "remastered",
"live", "radio edit" …) and the quotes taken out; when that finds nothing fit, the title
alone, hits then judged by their artists. Each hit is scored: title and artist
similarity (normalised, difflib ratio), the album, and the length (a hit more than half a
minute off is another recording); the best above `match_threshold` wins. At most
`search_limit` hits a search (10 in Development Mode: more is 400 "Invalid limit").
The core caches every answer (the "not on Spotify" ones too), so a refresh searches
only for tracks it has not asked about.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from genred.api import TrackMatch, TrackRecord, fold, song_artist, song_title

from .client import SpotifyCalls


def similarity(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def score_hit(record: TrackRecord, hit: dict[str, Any]) -> float:
    """0..1: how surely `hit` (a Spotify track object) is the library's track."""
    title = similarity(song_title(record.title or ""), song_title(str(hit.get("name") or "")))
    wanted_artist = _artist_key(record.artist or record.album_artist or "")
    names = [_artist_key(str(a.get("name") or "")) for a in hit.get("artists") or []]
    joined = _artist_key(" ".join(str(a.get("name") or "") for a in hit.get("artists") or []))
    artist = max([similarity(wanted_artist, n) for n in [*names, joined]] or [0.0])
    if wanted_artist and any(n and (n in wanted_artist or wanted_artist in n) for n in names):
        artist = max(artist, 0.9)
    album_name = fold(str((hit.get("album") or {}).get("name") or ""))
    album = similarity(fold(record.album or ""), album_name) if record.album else 0.5
    score = 0.6 * title + 0.3 * artist + 0.1 * album
    if record.duration_ms and hit.get("duration_ms"):
        off = abs(int(hit["duration_ms"]) - record.duration_ms) / 1000
        if off > 30:
            score -= 0.3
        elif off > 10:
            score -= 0.1
    return round(max(score, 0.0), 4)


def _artist_key(name: str) -> str:
    """The artist as compared; a name of punctuation only ("%", "!!!") as it is written."""
    return song_artist(name) or name.strip().casefold()


class Matcher:
    """Finds tracks on Spotify through `calls`."""

    def __init__(self, calls: SpotifyCalls, threshold: float, limit: int) -> None:
        self.calls = calls
        self.threshold = threshold
        self.limit = limit

    def match(
        self, records: Sequence[TrackRecord], cancel: threading.Event | None = None
    ) -> Iterator[TrackMatch]:
        for record in records:
            assert record.id is not None
            yield self.one(record, cancel)

    def one(self, record: TrackRecord, cancel: threading.Event | None = None) -> TrackMatch:
        assert record.id is not None
        if record.isrc:
            hits = self._search(f"isrc:{record.isrc}", cancel)
            if hits:
                best = max(hits, key=lambda h: score_hit(record, h))
                return TrackMatch(record.id, str(best["uri"]), "isrc", 1.0, "")
        title = _quoted(song_title(record.title or "") or fold(record.title or ""))
        artist = _quoted(fold(song_artist(record.artist or record.album_artist or "")))
        if not title:
            return TrackMatch(record.id, None, "none", 0.0, "the track has no title to search for")
        queries = [f"track:{title} artist:{artist}"] if artist else []
        queries.append(f"track:{title}")
        best_score, best_hit = 0.0, None
        for query in queries:
            for hit in self._search(query, cancel):
                score = score_hit(record, hit)
                if score > best_score:
                    best_score, best_hit = score, hit
            if best_score >= self.threshold:
                break
        if best_hit is not None and best_score >= self.threshold:
            return TrackMatch(record.id, str(best_hit["uri"]), "search", best_score, "")
        if best_hit is None:
            return TrackMatch(record.id, None, "search", 0.0, "not on Spotify (no search hit)")
        found = f"{_artists(best_hit)} – {best_hit.get('name')}"
        return TrackMatch(
            record.id,
            None,
            "search",
            best_score,
            f"not on Spotify (closest: {found}, {best_score:.2f} < {self.threshold:.2f})",
        )

    def _search(self, query: str, cancel: threading.Event | None) -> list[dict[str, Any]]:
        found = self.calls.call(
            lambda c: c.search(query, limit=self.limit, type="track"), f"searching {query}", cancel
        )
        tracks = (found or {}).get("tracks") or {}
        return [t for t in tracks.get("items") or [] if t and t.get("uri")]


def _quoted(text: str) -> str:
    clean = " ".join(text.replace('"', " ").split())
    return f'"{clean}"' if clean else ""


def _artists(hit: dict[str, Any]) -> str:
    return ", ".join(str(a.get("name") or "") for a in hit.get("artists") or [])
