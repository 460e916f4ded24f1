"""The whole story of one track: what its source says, what every classifier said, what
was decided and why, what was written where (and the before-value kept for revert), its
overrides and failures. `genred show`, the dashboard's track page and `GET /api/tracks/{id}`
all tell it from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import Store
from .overrides import Override, of_tracks

TRACK_FIELDS = (
    "id",
    "source",
    "source_id",
    "title",
    "artist",
    "album",
    "album_artist",
    "album_source_id",
    "artist_source_id",
    "path",
    "track_no",
    "disc_no",
    "year",
    "duration_ms",
    "genres",
    "moods",
    "album_genres",
    "artist_genres",
    "first_seen_at",
    "changed_at",
    "synced_at",
    "removed",
)
LIST_COLUMNS = {"genres", "moods", "album_genres", "artist_genres"}


@dataclass(frozen=True)
class Said:
    """One classifier's answer for one label set."""

    classifier: str
    label_set: str
    version: str
    labels: tuple[tuple[str, float], ...]
    created_at: str


@dataclass(frozen=True)
class Decision:
    genres: tuple[str, ...]
    moods: tuple[str, ...]
    labels: tuple[str, ...]
    confidence: float | None
    status: str
    decided_at: str
    decided_by: str
    provenance: dict[str, Any]

    @property
    def step(self) -> int | None:
        """The cascade step it was taken at (None: one vote of everyone)."""
        step = self.provenance.get("step")
        return step if isinstance(step, int) else None

    @property
    def genre_voters(self) -> dict[str, dict[str, float]]:
        """Per genre (decided, or the best candidates under review): classifier → confidence."""
        genre = self.provenance.get("genre")
        if not isinstance(genre, dict):
            return {}
        return {
            name: {str(c): float(v) for c, v in said.items() if isinstance(v, int | float)}
            for name, said in genre.items()
            if name not in ("album", "override") and isinstance(said, dict)
        }

    @property
    def mood_voters(self) -> dict[str, dict[str, float]]:
        mood = self.provenance.get("mood")
        if not isinstance(mood, dict):
            return {}
        return {
            name: {str(c): float(v) for c, v in said.items() if isinstance(v, int | float)}
            for name, said in mood.items()
            if name != "override" and isinstance(said, dict)
        }

    @property
    def album(self) -> dict[str, Any] | None:
        """Album smoothing: the album's genres, their share, what the track had (`was`)."""
        genre = self.provenance.get("genre")
        album = genre.get("album") if isinstance(genre, dict) else None
        return album if isinstance(album, dict) else None

    @property
    def overridden(self) -> bool:
        genre = self.provenance.get("genre")
        return isinstance(genre, dict) and "override" in genre

    @property
    def candidates(self) -> tuple[str, ...]:
        """Its genres, or under review the best guesses (highest weighted vote first)."""
        if self.genres:
            return self.genres
        voters = self.genre_voters
        return tuple(sorted(voters, key=lambda g: -sum(voters[g].values())))


@dataclass(frozen=True)
class Write:
    """One writebacks row: an item's field at a target."""

    target: str
    kind: str
    item_id: str
    field: str
    original: tuple[str, ...]
    written: tuple[str, ...] | None
    pending: tuple[str, ...] | None
    first_written_at: str
    written_at: str | None
    manual_at: str | None
    reverted_at: str | None


@dataclass(frozen=True)
class Failure:
    stage: str
    error_type: str
    message: str
    attempts: int
    last_failed_at: str
    next_retry_at: str | None


@dataclass(frozen=True)
class TrackStory:
    track: dict[str, Any]
    predictions: tuple[Said, ...] = ()
    decision: Decision | None = None
    overrides: dict[str, Override] = field(default_factory=dict)
    writes: tuple[Write, ...] = ()
    failures: tuple[Failure, ...] = ()

    @property
    def id(self) -> int:
        return int(self.track["id"])

    @property
    def album_key(self) -> str | None:
        """`source:album id`, the key `genred override --album` takes."""
        album = self.track.get("album_source_id")
        return f"{self.track['source']}:{album}" if album else None


def _list(text: str | None) -> tuple[str, ...]:
    return tuple(str(v) for v in json.loads(text)) if text else ()


def _optional_list(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else _list(text)


def load(store: Store, track_id: int) -> TrackStory | None:
    """The story of track `track_id` (None: no such track)."""
    conn = store.conn
    columns = ", ".join(TRACK_FIELDS)
    row = conn.execute(f"SELECT {columns} FROM tracks WHERE id = ?", (track_id,)).fetchone()
    if row is None:
        return None
    track = dict(zip(TRACK_FIELDS, row, strict=True))
    for name in LIST_COLUMNS:
        track[name] = _list(track[name])
    predictions = tuple(
        Said(c, s, v, tuple((str(n), float(p)) for n, p in json.loads(labels)), created)
        for c, s, v, labels, created in conn.execute(
            "SELECT classifier, label_set, version, labels, created_at FROM predictions "
            "WHERE track_id = ? ORDER BY label_set != 'genre', label_set, classifier",
            (track_id,),
        )
    )
    found = conn.execute(
        "SELECT genres, moods, labels, confidence, status, decided_at, decided_by, provenance "
        "FROM decisions WHERE track_id = ?",
        (track_id,),
    ).fetchone()
    decision = None
    if found is not None:
        genres, moods, labels, confidence, status, decided_at, decided_by, provenance = found
        decision = Decision(
            _list(genres),
            _list(moods),
            _list(labels),
            confidence,
            status,
            decided_at,
            decided_by,
            json.loads(provenance or "{}"),
        )
    items = [("track", track["source_id"])]
    if track["album_source_id"]:
        items.append(("album", track["album_source_id"]))
    if track["artist_source_id"]:
        items.append(("artist", track["artist_source_id"]))
    writes: list[Write] = []
    for kind, item_id in items:
        for r in conn.execute(
            "SELECT target, item_kind, item_id, field, original, written, pending, "
            "first_written_at, written_at, manual_at, reverted_at FROM writebacks "
            "WHERE item_kind = ? AND item_id = ? ORDER BY target, field",
            (kind, item_id),
        ):
            writes.append(
                Write(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    _list(r[4]),
                    _optional_list(r[5]),
                    _optional_list(r[6]),
                    r[7],
                    r[8],
                    r[9],
                    r[10],
                )
            )
    failures = tuple(
        Failure(*r)
        for r in conn.execute(
            "SELECT stage, error_type, message, attempts, last_failed_at, next_retry_at "
            "FROM failures WHERE item IN (?, ?) ORDER BY stage",
            (str(track_id), f"track:{track['source_id']}"),
        )
    )
    return TrackStory(
        track,
        predictions,
        decision,
        of_tracks(store, [track_id])[track_id],
        tuple(writes),
        failures,
    )


def why(story: TrackStory) -> list[str]:
    """The decision in words: which step, who voted what, what the album changed."""
    decision = story.decision
    if decision is None:
        return ["not decided yet: run `genred decide` (or wait for the daemon's next run)"]
    lines: list[str] = []
    override = story.overrides.get("genre")
    if decision.overridden:
        who = f" by {override.created_by}" if override and override.created_by else ""
        at = override.created_at[:16].replace("T", " ") if override else ""
        origin = f" ({override.origin}{who}, {at} UTC)" if override else ""
        lines.append(f"genres set by hand{origin}: " + (", ".join(decision.genres) or "none"))
        return lines
    where = f" at cascade step {decision.step}" if decision.step else ""
    if decision.status == "review" and not decision.candidates:
        lines.append(f"needs review{where}: no classifier said anything about its genre")
    elif decision.status == "review":
        best = ", ".join(decision.candidates[:3])
        lines.append(f"needs review{where}: no genre reached the confidence needed; best {best}")
    else:
        confidence = f" (confidence {decision.confidence:.2f})" if decision.confidence else ""
        lines.append(f"decided{where}: {', '.join(decision.genres)}{confidence}")
    for genre, voters in decision.genre_voters.items():
        said = ", ".join(f"{c} {v:.2f}" for c, v in sorted(voters.items(), key=lambda kv: -kv[1]))
        lines.append(f"  {genre}: {said}")
    album = decision.album
    if album:
        share = float(album.get("share", 0))
        was = ", ".join(str(g) for g in album.get("was", [])) or "nothing"
        lines.append(
            f"album smoothing: {share:.0%} of its album is "
            f"{', '.join(str(g) for g in album.get('genres', []))}; the track had {was}"
        )
    return lines
