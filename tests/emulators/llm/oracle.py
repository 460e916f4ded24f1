"""The oracle: answers genred's classification and label prompts from a ground-truth table.

Request convention (the last user message carries one JSON document: the whole content, or
the last ```json fenced block, or the text from its first "{" to its last "}"):

    {"items": [{"id": "1003", "artist": "…", "album": "…", "title": "…", …}],
     "labels": ["Electronic", "Rock", …]}                    (optional: allowed genre names)
    -> {"items": [{"id": "1003", "genres": [{"name": "Electronic", "confidence": 0.9}, …],
                   "moods": [{"name": "Calm", "confidence": 0.8}]}]}

    {"label": "Focus", "items": [...]}
    -> {"items": [{"id": "1003", "match": true, "confidence": 0.9}]}

See README.md ("The oracle") for the details.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .noise import NoiseInjector

# Genre names no genre taxonomy knows (genred's canonicalizes each of them to nothing).
OUT_OF_TAXONOMY = ("N/A", "Unknown", "Elevator Jazzcore", "Spacewave", "Sounds Good", "Misc")
# Wrong-genre candidates when the truth table has too few genres of its own.
FALLBACK_GENRES = (
    "Blues", "Classical", "Country", "Electronic", "Folk", "Hip-Hop", "Jazz", "Pop", "Reggae",
    "Rock", "Soul-RnB", "Metal",
)  # fmt: skip
ARTIST_FIELDS = ("artist", "album_artist", "albumartist", "track_artist", "grandparent_title")
_FENCED = re.compile(r"```(?:json|JSON)?[ \t]*\r?\n(.*?)```", re.DOTALL)

TrackKey = tuple[str, str, str]


def fold(text: object) -> str:
    """Case, accents and punctuation folded away: "Beyoncé - Halo!" -> "beyonce halo"."""
    decomposed = unicodedata.normalize("NFKD", str(text or ""))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


def track_key(artist: object, album: object, title: object) -> TrackKey:
    return fold(artist), fold(album), fold(title)


def _dedupe(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        key = fold(name)
        if key and key not in seen:
            seen.add(key)
            out.append(name)
    return out


@dataclass(frozen=True)
class Truth:
    """What one track really is."""

    genres: tuple[str, ...]
    moods: tuple[str, ...] = ()


@dataclass
class GroundTruth:
    """Track -> genres (and moods), by id or by normalized (artist, album, title); and
    label -> the ids/keys that match it. Build with `add`, `from_mapping`, `from_freemusicc`."""

    by_id: dict[str, Truth] = field(default_factory=dict)
    by_key: dict[TrackKey, Truth] = field(default_factory=dict)
    by_artist_title: dict[tuple[str, str], Truth] = field(default_factory=dict)
    labels: dict[str, set[str | TrackKey]] = field(default_factory=dict)
    tracks: int = 0  # how many `add` calls
    _pool: list[str] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return self.tracks

    def add(
        self,
        genres: Iterable[str],
        *,
        id: str | None = None,
        artist: str | Iterable[str] | None = None,
        album: str | None = None,
        title: str | None = None,
        moods: Iterable[str] = (),
    ) -> Truth:
        """Record one track; `artist` may list several names (track and album artist)."""
        truth = Truth(tuple(_dedupe(genres)), tuple(_dedupe(moods)))
        self._pool = None
        self.tracks += 1
        if id is not None:
            self.by_id[str(id)] = truth
        if title is not None:
            artists = [artist] if isinstance(artist, str) or artist is None else list(artist)
            for name in artists:
                self.by_key.setdefault(track_key(name, album, title), truth)
                self.by_artist_title.setdefault((fold(name), fold(title)), truth)
        return truth

    def lookup(self, item: Mapping[str, Any]) -> Truth | None:
        """By `id`, else (artist, album, title) with any of the artist fields, else
        (artist, title)."""
        if item.get("id") is not None and str(item["id"]) in self.by_id:
            return self.by_id[str(item["id"])]
        artists = [item[f] for f in ARTIST_FIELDS if item.get(f)]
        for artist in artists:
            found = self.by_key.get(track_key(artist, item.get("album"), item.get("title")))
            if found is not None:
                return found
        for artist in artists:
            found = self.by_artist_title.get((fold(artist), fold(item.get("title"))))
            if found is not None:
                return found
        return None

    def set_label(self, label: str, members: Iterable[str | TrackKey | Mapping[str, Any]]) -> None:
        """The tracks that match `label`: ids, `track_key` tuples, or item-like mappings."""
        keys: set[str | TrackKey] = set()
        for member in members:
            if isinstance(member, Mapping):
                if member.get("id") is not None:
                    keys.add(str(member["id"]))
                if member.get("title") is not None:
                    artist = next((member[f] for f in ARTIST_FIELDS if member.get(f)), None)
                    keys.add(track_key(artist, member.get("album"), member.get("title")))
            elif isinstance(member, tuple):
                keys.add(track_key(*member))
            else:
                keys.add(str(member))
        self.labels[fold(label)] = keys

    def label_match(self, label: str, item: Mapping[str, Any]) -> bool:
        members = self.labels.get(fold(label), set())
        if item.get("id") is not None and str(item["id"]) in members:
            return True
        return any(
            track_key(item[f], item.get("album"), item.get("title")) in members
            for f in ARTIST_FIELDS
            if item.get(f)
        )

    def genre_pool(self) -> list[str]:
        """Every genre in the table, once each, sorted (wrong-genre noise draws from it)."""
        if self._pool is None:
            names = {g for t in (*self.by_id.values(), *self.by_key.values()) for g in t.genres}
            self._pool = sorted(_dedupe(sorted(names)), key=fold)
        return self._pool

    @classmethod
    def from_mapping(cls, genres_by_id: Mapping[str, Iterable[str]]) -> GroundTruth:
        truth = cls()
        for track_id, genres in genres_by_id.items():
            truth.add(genres, id=track_id)
        return truth

    @classmethod
    def from_freemusicc(
        cls,
        csv_path: Path | str | None = None,
        limit: int | None = None,
        *,
        styles: bool = True,
        canonicalize: Callable[[list[str]], list[str]] | None = None,
    ) -> GroundTruth:
        """freemusi.cc's tracks_joined.csv: genres = the row's `genre` then its `style`s
        (comma-split, spelling kept, as the Plex emulator tags them), keyed by (track artist
        and album artist, album, title) and by id "release_id/disc/track". `canonicalize`
        maps each list (e.g. `genred.taxonomy.canonicalize`); a row left without genres is
        skipped."""
        from ..plex.sources import FREEMUSICC_CSV, read_freemusicc, split_tags

        rows = read_freemusicc(Path(csv_path) if csv_path else FREEMUSICC_CSV)
        truth = cls()
        for row in rows[:limit] if limit is not None else rows:
            genres = split_tags(row["genre"]) + (split_tags(row["style"]) if styles else [])
            if canonicalize is not None:
                genres = canonicalize(genres)
            if not genres:
                continue
            truth.add(
                genres,
                id=f"{row['release_id']}/{row['disc']}/{row['track']}",
                artist=_dedupe([row["track_artist"], row["album_artist"]]),
                album=row["album"],
                title=row["title"],
            )
        return truth


# -- reading the request -------------------------------------------------------------------


def find_document(text: str) -> dict[str, Any] | None:
    """The JSON object in a message: the whole text, else the last ```json block, else the
    span from the first "{" to the last "}". None when there is none with an `items` list."""
    candidates = [text.strip()]
    candidates += reversed(_FENCED.findall(text))
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            document = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(document, dict) and isinstance(document.get("items"), list):
            return document
    return None


def asked_items(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [item for item in document.get("items", []) if isinstance(item, dict)]


# -- answering -----------------------------------------------------------------------------


@dataclass
class OracleAnswer:
    """The answer document, and which item-level noise kinds it carries."""

    document: dict[str, Any]
    noise: list[str] = field(default_factory=list)
    unknown_ids: list[Any] = field(default_factory=list)  # asked, but not in the truth


def _confidences(names: Iterable[str], top: float) -> list[dict[str, Any]]:
    return [
        {"name": name, "confidence": round(max(0.5, top - 0.1 * i), 2)}
        for i, name in enumerate(names)
    ]


def _restrict(genres: Iterable[str], labels: list[str] | None) -> list[str]:
    if labels is None:
        return list(genres)
    allowed = {fold(label): label for label in labels}
    return _dedupe(allowed[fold(g)] for g in genres if fold(g) in allowed)


def answer(
    document: Mapping[str, Any], truth: GroundTruth, noise: NoiseInjector | None = None
) -> OracleAnswer:
    """The oracle's answer to one request document (classification or label)."""
    label = document.get("label")
    if isinstance(label, str):
        return _answer_label(label, document, truth, noise)
    return _answer_genres(document, truth, noise)


def _answer_genres(
    document: Mapping[str, Any], truth: GroundTruth, noise: NoiseInjector | None
) -> OracleAnswer:
    raw_labels = document.get("labels")
    labels = [str(x) for x in raw_labels] if isinstance(raw_labels, list) else None
    pool = labels or truth.genre_pool() or list(FALLBACK_GENRES)
    out = OracleAnswer({"items": []})
    for item in asked_items(document):
        found = truth.lookup(item)
        if found is None:
            out.unknown_ids.append(item.get("id"))
        genres = _restrict(found.genres, labels) if found else []
        if noise is not None and noise.hit("missing_id"):
            out.noise.append("missing_id")
            continue
        entry: dict[str, Any] = {"id": item.get("id"), "genres": _confidences(genres, 0.9)}
        if noise is not None and noise.hit("wrong_genre"):
            taken = {fold(g) for g in genres}
            wrong = [g for g in pool if fold(g) not in taken] or list(FALLBACK_GENRES)
            entry["genres"] = _confidences([noise.rng.choice(wrong)], 0.9)
            out.noise.append("wrong_genre")
        if noise is not None and noise.hit("unknown_genre"):
            junk = noise.rng.choice(OUT_OF_TAXONOMY)
            entry["genres"] = [{"name": junk, "confidence": 0.9}, *entry["genres"]]
            out.noise.append("unknown_genre")
        entry["moods"] = _confidences(found.moods, 0.8) if found else []
        if not entry["genres"]:  # as a model held to the schema says it: why none
            entry["reason"] = "I do not know this track"
        out.document["items"].append(entry)
    if noise is not None and noise.hit("extra_id"):
        extra = {
            "id": f"extra-{noise.rng.randrange(10**6)}",
            "genres": _confidences([noise.rng.choice(pool)], 0.9),
            "moods": [],
        }
        out.document["items"].append(extra)
        out.noise.append("extra_id")
    return out


def _answer_label(
    label: str, document: Mapping[str, Any], truth: GroundTruth, noise: NoiseInjector | None
) -> OracleAnswer:
    out = OracleAnswer({"items": []})
    for item in asked_items(document):
        match = truth.label_match(label, item)
        if noise is not None and noise.hit("missing_id"):
            out.noise.append("missing_id")
            continue
        if noise is not None and noise.hit("wrong_genre"):
            match = not match
            out.noise.append("wrong_genre")
        out.document["items"].append(
            {"id": item.get("id"), "match": match, "confidence": 0.9 if match else 0.1}
        )
    if noise is not None and noise.hit("extra_id"):
        extra_id = f"extra-{noise.rng.randrange(10**6)}"
        out.document["items"].append({"id": extra_id, "match": True, "confidence": 0.9})
        out.noise.append("extra_id")
    return out


def example_for_schema(schema: Any) -> Any:
    """A minimal instance of a JSON schema (required properties, empty values)."""
    if not isinstance(schema, Mapping):
        return {}
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {name: example_for_schema(props.get(name)) for name in required}
    return {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False}.get(str(kind))
