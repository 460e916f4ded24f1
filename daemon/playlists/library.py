"""The library as selection sees it: candidate tracks behind the hard constraints, and the
vocabulary (genres, moods, labels, artists) prompts are read against.

The hard constraints that SQL can check run in SQL (year range on the `tracks_year`
index, genres through `json_each` over the decisions), the rest in Python on the rows
that are left (artists and words compared folded: case, accents and punctuation aside).
A track without a decision yet counts with its source's tags, canonicalized, so a fresh
library still makes playlists (and the report says so).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from ..store import Store, state
from ..taxonomy import Taxonomy
from .energy import EnergyEstimator
from .intent import Intent

IDS = "SELECT value FROM json_each(?)"
VOCABULARY_KEY = "playlists.vocabulary"
VOCABULARY_VERSION = 1


def fold(text: object) -> str:
    """ "Beyoncé – Halo!" → "beyonce halo": what names and words are compared as."""
    return _fold(str(text or ""))


_PUNCTUATION = re.compile(r"[^\w]+")


@lru_cache(maxsize=262_144)  # artists, albums, moods and labels repeat over a library
def _fold(text: str) -> str:
    if text.isascii():
        plain = text.casefold()
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(_PUNCTUATION.sub(" ", plain).split())


@dataclass(slots=True)
class Candidate:
    """One library track with what selection needs of it."""

    id: int
    artist: str
    album_artist: str
    album: str
    album_key: str
    title: str
    year: int | None
    duration_ms: int | None
    added_at: str
    isrc: str | None
    genres: tuple[str, ...]
    moods: tuple[str, ...]
    labels: tuple[str, ...]
    confidence: float
    decided: bool
    energy: float | None = None
    artist_key: str = ""  # the artist, folded (caps and spacing compare these)

    def __post_init__(self) -> None:
        if not self.artist_key:
            self.artist_key = fold(self.artist or self.album_artist)


@dataclass(frozen=True)
class Vocabulary:
    """What the library holds, with counts (genres count every track of a sub-genre too)."""

    genres: Counter[str]  # as decided (or canonicalized from tags)
    moods: Counter[str]
    labels: Counter[str]
    artists: Counter[str]
    tracks: int
    decided: int
    _folded_artists: dict[str, str] = field(default_factory=dict, compare=False)

    def artist(self, name: str) -> str | None:
        """The library's spelling of an artist name, compared folded; None: not there."""
        return self._folded_artists.get(fold(name))

    def mood(self, name: str) -> str | None:
        return _spelled(self.moods, name)

    def label(self, name: str) -> str | None:
        return _spelled(self.labels, name)


def _vocabulary_json(vocab: Vocabulary) -> dict[str, Any]:
    return {
        "genres": dict(vocab.genres),
        "moods": dict(vocab.moods),
        "labels": dict(vocab.labels),
        "artists": dict(vocab.artists),
        "tracks": vocab.tracks,
        "decided": vocab.decided,
    }


def _vocabulary_from(data: dict[str, Any]) -> Vocabulary:
    artists = Counter({str(k): int(v) for k, v in data["artists"].items()})
    folded: dict[str, str] = {}
    for name, _n in artists.most_common():
        folded.setdefault(fold(name), name)
    return Vocabulary(
        Counter(data["genres"]),
        Counter(data["moods"]),
        Counter(data["labels"]),
        artists,
        int(data["tracks"]),
        int(data["decided"]),
        folded,
    )


def _spelled(counts: Counter[str], name: str) -> str | None:
    wanted = fold(name)
    return next((k for k in counts if fold(k) == wanted), None)


class Library:
    """Read-only views of the store for one selection; `vocabulary` is computed once."""

    def __init__(self, store: Store, taxonomy: Taxonomy) -> None:
        self.store = store
        self.taxonomy = taxonomy
        self.energy = EnergyEstimator(taxonomy.ancestors)

    # ------------------------------------------------------------------ vocabulary

    @cached_property
    def vocabulary(self) -> Vocabulary:
        """What the library holds; kept in the store's `state` until the library changes
        (counting over 100k decisions is most of a selection's fixed cost)."""
        mark = self._fingerprint()
        kept = state.get(self.store, VOCABULARY_KEY)
        if isinstance(kept, dict) and kept.get("fingerprint") == mark:
            return _vocabulary_from(kept)
        vocab = self._count_vocabulary()
        state.put(self.store, VOCABULARY_KEY, {"fingerprint": mark, **_vocabulary_json(vocab)})
        return vocab

    def _fingerprint(self) -> list[Any]:
        conn = self.store.conn
        tracks = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(removed), 0), MAX(changed_at), MAX(removed_at), "
            "MAX(synced_at) FROM tracks"
        ).fetchone()
        decisions = conn.execute("SELECT COUNT(*), MAX(decided_at) FROM decisions").fetchone()
        return [VOCABULARY_VERSION, *tracks, *decisions]

    def _count_vocabulary(self) -> Vocabulary:
        conn = self.store.conn
        tracks, decided = conn.execute(
            "SELECT COUNT(*), COUNT(d.track_id) FROM tracks t "
            "LEFT JOIN decisions d ON d.track_id = t.id WHERE t.removed = 0"
        ).fetchone()
        counts: dict[str, Counter[str]] = {}
        for column in ("genres", "moods", "labels"):
            rows = conn.execute(
                f"SELECT j.value, COUNT(*) FROM decisions d JOIN tracks t ON t.id = d.track_id, "
                f"json_each(d.{column}) j WHERE t.removed = 0 GROUP BY j.value"
            )
            counts[column] = Counter({str(v): int(n) for v, n in rows})
        if decided < tracks:  # undecided tracks count with their tags, canonicalized
            rows = conn.execute(
                "SELECT t.genres, t.album_genres, t.moods FROM tracks t WHERE t.removed = 0 "
                "AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.track_id = t.id)"
            )
            for genres, album_genres, moods in rows:
                for name in self._tag_genres(genres, album_genres):
                    counts["genres"][name] += 1
                for mood in json.loads(moods):
                    counts["moods"][mood] += 1
        artists = Counter(
            {
                str(name): int(n)
                for name, n in conn.execute(
                    "SELECT COALESCE(artist, album_artist), COUNT(*) FROM tracks "
                    "WHERE removed = 0 AND COALESCE(artist, album_artist) IS NOT NULL GROUP BY 1"
                )
            }
        )
        folded: dict[str, str] = {}
        for name, _n in artists.most_common():
            folded.setdefault(fold(name), name)
        return Vocabulary(
            counts["genres"],
            counts["moods"],
            counts["labels"],
            artists,
            int(tracks),
            int(decided),
            folded,
        )

    def genre_count(self, genre: str) -> int:
        """Tracks of `genre` or any of its sub-genres."""
        names = self.expand([genre])
        return sum(n for g, n in self.vocabulary.genres.items() if g in names)

    def expand(self, genres: Iterable[str]) -> set[str]:
        """The genres with every sub-genre below them (Jazz → Bebop, Vocal Jazz, …)."""
        out: set[str] = set()
        todo = list(genres)
        while todo:
            name = todo.pop()
            if name in out:
                continue
            out.add(name)
            try:
                todo.extend(self.taxonomy.children(name))
            except KeyError:
                continue
        return out

    def closest_genres(self, genre: str, limit: int = 2) -> list[tuple[str, int]]:
        """The genres near `genre` (its siblings, its ancestors; its children for a top
        level) that have the most tracks, nearest first among equals."""
        try:
            ancestors = self.taxonomy.ancestors(genre)
        except KeyError:
            return []
        near: list[str] = []
        if ancestors:
            near += [g for g in self.taxonomy.children(ancestors[0]) if g != genre]
            near += ancestors[:1]
            if len(ancestors) > 1:  # the parent's siblings: Latin beside Brazilian
                near += [g for g in self.taxonomy.children(ancestors[1]) if g != ancestors[0]]
            near += ancestors[1:]
        else:
            near += self.taxonomy.children(genre)
        own = self.genre_count(genre)
        counted = [(g, self.genre_count(g)) for g in dict.fromkeys(near)]
        more = [c for c in counted if c[1] > own]
        return sorted(more, key=lambda c: -c[1])[:limit]

    def admitted_alone(self, intent: Intent) -> dict[str, int]:
        """How many tracks each hard constraint would admit on its own (for a shortfall)."""
        out: dict[str, int] = {}
        parts: list[tuple[str, Intent]] = []
        if intent.genres:
            parts.append((" or ".join(intent.genres), Intent(genres=intent.genres)))
        if intent.year_min is not None or intent.year_max is not None:
            from .intent import year_range_text

            parts.append(
                (
                    year_range_text(intent.year_min, intent.year_max),
                    Intent(year_min=intent.year_min, year_max=intent.year_max),
                )
            )
        if intent.artists:
            parts.append(("by " + ", ".join(intent.artists), Intent(artists=intent.artists)))
        for text, alone in parts:
            out[text] = len(self.candidates(alone))
        return out

    def _tag_genres(self, genres: str, album_genres: str) -> list[str]:
        found = self.taxonomy.canonicalize(json.loads(genres))
        return found or self.taxonomy.canonicalize(json.loads(album_genres))

    # ------------------------------------------------------------------ candidates

    def candidates(self, intent: Intent, *, ids: Sequence[int] | None = None) -> list[Candidate]:
        """Every active track the hard constraints admit (of `ids`, when given)."""
        where = ["t.removed = 0"]
        params: list[Any] = []
        if ids is not None:
            where.append(f"t.id IN ({IDS})")
            params.append(json.dumps(list(ids)))
        if intent.year_min is not None:
            where.append("t.year >= ?")
            params.append(intent.year_min)
        if intent.year_max is not None:
            where.append("t.year <= ?")
            params.append(intent.year_max)
        wanted = self.expand(intent.genres) if intent.genres else set()
        unwanted = self.expand(intent.exclude_genres) if intent.exclude_genres else set()
        if wanted:
            where.append(
                f"(d.track_id IS NULL OR EXISTS (SELECT 1 FROM json_each(d.genres) "
                f"WHERE value IN ({IDS})))"
            )
            params.append(json.dumps(sorted(wanted)))
        if unwanted:
            where.append(
                f"(d.track_id IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(d.genres) "
                f"WHERE value IN ({IDS})))"
            )
            params.append(json.dumps(sorted(unwanted)))
        for column, names in (("labels", intent.exclude_labels), ("moods", intent.exclude_moods)):
            if names:  # as decided (undecided tracks are checked below, folded)
                where.append(
                    f"(d.track_id IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(d.{column}) "
                    f"WHERE value IN ({IDS})))"
                )
                params.append(json.dumps(sorted(names)))
        rows = self.store.conn.execute(
            "SELECT t.id, t.artist, t.album_artist, t.album, t.album_source_id, t.title, t.year,"
            " t.duration_ms, t.first_seen_at, t.isrc, d.genres, d.moods, d.labels,"
            " d.confidence, t.genres, t.album_genres, t.moods "
            "FROM tracks t LEFT JOIN decisions d ON d.track_id = t.id "
            f"WHERE {' AND '.join(where)} ORDER BY t.id",
            params,
        )
        check = _PythonChecks(intent, wanted, unwanted)
        out: list[Candidate] = []
        energy_of: dict[tuple[str, str, str], float | None] = {}
        decoded: dict[str, tuple[str, ...]] = {}  # JSON lists repeat: decode each once

        def listed(text: str) -> tuple[str, ...]:
            found = decoded.get(text)
            if found is None:
                found = decoded[text] = tuple(json.loads(text))
            return found

        for row in rows:
            if not check.names(row[1], row[2], row[3], row[5]):
                continue
            decided = row[10] is not None
            if decided:
                genres, moods, labels = listed(row[10]), listed(row[11]), listed(row[12])
            else:
                genres = tuple(self._tag_genres(row[14], row[15]))
                moods = listed(row[16])
                labels = ()
                if (wanted and not wanted.intersection(genres)) or unwanted.intersection(genres):
                    continue
            if not check.tags(genres, moods, labels, checked_in_sql=decided):
                continue
            key = (row[10] or "", row[11] or row[16], row[12] or "")
            if key not in energy_of:
                energy_of[key] = self.energy.estimate(genres, moods, labels)
            out.append(
                Candidate(
                    id=row[0],
                    artist=row[1] or row[2] or "",
                    album_artist=row[2] or row[1] or "",
                    album=row[3] or "",
                    album_key=row[4] or fold(f"{row[2] or row[1]}/{row[3]}"),
                    title=row[5] or "",
                    year=row[6],
                    duration_ms=row[7],
                    added_at=row[8],
                    isrc=row[9],
                    genres=genres,
                    moods=moods,
                    labels=labels,
                    confidence=float(row[13] if row[13] is not None else 0.5),
                    decided=decided,
                    energy=energy_of[key],
                )
            )
        return out

    def find_tracks(self, texts: Iterable[str]) -> dict[str, list[int]]:
        """Library tracks a "like" text names: a title, an album or an artist (folded)."""
        wanted = {fold(t): t for t in texts if fold(t)}
        found: dict[str, list[int]] = {t: [] for t in wanted.values()}
        if not wanted:
            return found
        rows = self.store.conn.execute(
            "SELECT id, title, album, COALESCE(artist, album_artist) FROM tracks WHERE removed = 0"
        )
        for track_id, title, album, artist in rows:
            for key in {fold(title), fold(album), fold(artist)}:
                if key in wanted:
                    found[wanted[key]].append(track_id)
        return found

    def records(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Display fields of tracks by id (removed ones too)."""
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 900):
            chunk = list(ids[start : start + 900])
            cur = self.store.conn.execute(
                f"SELECT * FROM tracks WHERE id IN ({IDS})", (json.dumps(chunk),)
            )
            names = [d[0] for d in cur.description]
            for values in cur:
                row = dict(zip(names, values, strict=True))
                out[row["id"]] = row
        return out


class _PythonChecks:
    """The hard constraints SQL cannot check: artists and words, folded."""

    def __init__(self, intent: Intent, wanted: set[str], unwanted: set[str]) -> None:
        self.artists = {fold(a) for a in intent.artists}
        self.not_artists = {fold(a) for a in intent.exclude_artists}
        self.avoid = [fold(w) for w in intent.avoid if fold(w)]
        self.not_moods = {fold(m) for m in intent.exclude_moods}
        self.not_labels = {fold(label) for label in intent.exclude_labels}

    def names(self, artist: str | None, album_artist: str | None, album: str | None,
              title: str | None) -> bool:  # fmt: skip
        if self.artists or self.not_artists:
            people = {fold(artist), fold(album_artist)} - {""}
            if self.artists and not people & self.artists:
                return False
            if self.not_artists and people & self.not_artists:
                return False
        if self.avoid:
            text = f" {fold(title)} {fold(album)} "
            if any(f" {word} " in text for word in self.avoid):
                return False
        return True

    def tags(
        self,
        genres: Sequence[str],
        moods: Sequence[str],
        labels: Sequence[str],
        *,
        checked_in_sql: bool = False,
    ) -> bool:
        if self.avoid:
            text = " " + " ".join(fold(g) for g in genres) + " "
            if any(f" {word} " in text for word in self.avoid):
                return False
        if checked_in_sql:  # a decided track's moods and labels were excluded by the query
            return True
        if self.not_moods and {fold(m) for m in moods} & self.not_moods:
            return False
        return not (self.not_labels and {fold(label) for label in labels} & self.not_labels)
