""" "Like these tracks": closeness of candidates to seed tracks of the library.

From what every library has (same artist, same album, shared genres and moods), plus the
audio feature vectors where the extract stage stored some: the extractor with the most
vectors is used, each dimension standardised over the vectors loaded, cosine to the mean
of the seeds (text embeddings, `text:…`, are not audio). numpy comes with the audio and ml extras; without it the vectors are not used.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..store import Store, features
from .library import Candidate


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def tag_closeness(track: Candidate, seed: Candidate) -> float:
    """0..1 from artist, album, genres and moods."""
    score = 0.0
    if track.artist_key == seed.artist_key:
        score += 0.35
    if track.album_key == seed.album_key:
        score += 0.15
    score += 0.35 * jaccard(track.genres, seed.genres)
    score += 0.15 * jaccard(track.moods, seed.moods)
    return min(score, 1.0)


def audio_closeness(
    store: Store, seeds: Sequence[int], candidates: Sequence[int]
) -> dict[int, float]:
    """Cosine (0..1) of each candidate's audio vector to the seeds' mean; {} when there are
    no vectors, or numpy is missing."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with most extras
        return {}
    row = store.conn.execute(
        "SELECT extractor, version FROM features WHERE extractor NOT LIKE 'text:%' "
        "GROUP BY extractor, version ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()
    if row is None or not seeds:
        return {}
    extractor, version = row
    ids, matrix = features.load_matrix(store, extractor, version, [*seeds, *candidates])
    if not ids or matrix.shape[0] < 2:
        return {}
    index = {track_id: i for i, track_id in enumerate(ids)}
    seed_rows = [index[s] for s in seeds if s in index]
    if not seed_rows:
        return {}
    std = matrix.std(axis=0)
    std[std == 0] = 1.0
    z = (matrix - matrix.mean(axis=0)) / std
    norms = np.linalg.norm(z, axis=1)
    norms[norms == 0] = 1.0
    z /= norms[:, None]
    centre = z[seed_rows].mean(axis=0)
    length = float(np.linalg.norm(centre))
    if length == 0:
        return {}
    cosine = z @ (centre / length)
    return {
        track_id: float((cosine[i] + 1) / 2)
        for track_id, i in index.items()
        if track_id not in set(seeds)
    }
