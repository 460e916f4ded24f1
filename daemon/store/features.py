"""Feature vectors per (track, extractor, version): what is pending, writing, loading.

A vector is stored as little-endian float32 bytes with its length in `dims`. A track keeps
one vector per extractor: writing a new version replaces the track's older ones, while
tracks not yet extracted again keep theirs (a classifier trained on the old version can
still use them until the new one is everywhere).

numpy is imported by the functions that need it (it comes with the audio/ml extras), so
the core can import this module without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import Store, failures, utcnow

if TYPE_CHECKING:
    import numpy as np

# The failures of extractor NAME are recorded under this stage name.
STAGE_PREFIX = "extract:"


def failure_stage(extractor: str) -> str:
    return f"{STAGE_PREFIX}{extractor}"


def pending_ids(store: Store, extractor: str, version: str) -> list[int]:
    """Active tracks without a current vector of (extractor, version), oldest id first.

    Pending: no vector of this version, or one older than the track's last change
    (`tracks.changed_at`). Tracks whose last failure is still backing off are left out.
    """
    blocked = failures.blocked(store, failure_stage(extractor))
    rows = store.conn.execute(
        """
        SELECT t.id FROM tracks t
        WHERE t.removed = 0 AND NOT EXISTS (
            SELECT 1 FROM features f
            WHERE f.track_id = t.id AND f.extractor = ? AND f.version = ?
              AND f.created_at >= t.changed_at)
        ORDER BY t.id
        """,
        (extractor, version),
    )
    return [r[0] for r in rows if str(r[0]) not in blocked]


def to_blob(vector: Any) -> tuple[int, bytes]:
    """(dims, bytes) of a 1-D vector as little-endian float32."""
    import numpy as np

    array = np.asarray(vector, dtype="<f4")
    if array.ndim != 1:
        raise ValueError(f"a feature vector must be 1-D, got shape {array.shape}")
    return int(array.shape[0]), array.tobytes()


def from_blob(blob: bytes, dims: int) -> np.ndarray:
    import numpy as np

    array = np.frombuffer(blob, dtype="<f4")
    if array.shape[0] != dims:
        raise ValueError(f"stored vector has {array.shape[0]} values, expected {dims}")
    return array.astype(np.float32)


def write(store: Store, extractor: str, version: str, vectors: Iterable[tuple[int, Any]]) -> int:
    """Store (track_id, vector) pairs in one transaction; returns how many were written.

    Each track's vectors of other versions of this extractor are replaced; its failures
    for this extractor are cleared, and so are classifiers' FeaturesMissing failures.
    """
    now = utcnow()
    rows = []
    for track_id, vector in vectors:
        dims, blob = to_blob(vector)
        rows.append((track_id, extractor, version, dims, blob, now))
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    marks = ",".join("?" * len(ids))
    with store.transaction() as conn:
        conn.execute(
            f"DELETE FROM features WHERE extractor = ? AND track_id IN ({marks})",
            [extractor, *ids],
        )
        conn.executemany(
            "INSERT INTO features (track_id, extractor, version, dims, vector, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "DELETE FROM failures WHERE stage = ? AND item = ?",
            [(failure_stage(extractor), str(i)) for i in ids],
        )
        # A classifier that waited for these features (FeaturesMissing) tries again now.
        conn.executemany(
            "DELETE FROM failures WHERE error_type = 'FeaturesMissing' AND item = ? "
            "AND substr(stage, 1, 9) = 'classify:'",
            [(str(i),) for i in ids],
        )
    return len(rows)


def latest_version(store: Store, extractor: str) -> str | None:
    """The version of the most recently written vector of `extractor` (None: none stored)."""
    row = store.conn.execute(
        "SELECT version FROM features WHERE extractor = ? ORDER BY created_at DESC LIMIT 1",
        (extractor,),
    ).fetchone()
    return row[0] if row else None


def versions(store: Store, extractor: str) -> dict[str, int]:
    """How many vectors each stored version of `extractor` has."""
    rows = store.conn.execute(
        "SELECT version, COUNT(*) FROM features WHERE extractor = ? GROUP BY version",
        (extractor,),
    )
    return {version: n for version, n in rows}


def load_matrix(
    store: Store,
    extractor: str,
    version: str | None = None,
    ids: Sequence[int] | None = None,
) -> tuple[list[int], np.ndarray]:
    """The stored vectors of one extractor version as `(track_ids, matrix[n, dims])`.

    `version` None takes `latest_version`. `ids` None takes every active (not removed)
    track that has a vector; else only those of `ids` that have one, in the order of
    `ids`. Rows follow the returned ids. Raises ValueError if the version's vectors do
    not all have the same length (a broken extractor).
    """
    import numpy as np

    version = version if version is not None else latest_version(store, extractor)
    if version is None:
        return [], np.zeros((0, 0), dtype=np.float32)
    if ids is None:
        cursor = store.conn.execute(
            "SELECT f.track_id, f.dims, f.vector FROM features f JOIN tracks t ON t.id = f.track_id"
            " WHERE f.extractor = ? AND f.version = ? AND t.removed = 0 ORDER BY f.track_id",
            (extractor, version),
        )
        found = [(track_id, dims, blob) for track_id, dims, blob in cursor]
    else:
        by_id: dict[int, tuple[int, bytes]] = {}
        wanted = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            cursor = store.conn.execute(
                f"SELECT track_id, dims, vector FROM features WHERE extractor = ? AND version = ?"
                f" AND track_id IN ({marks})",
                [extractor, version, *chunk],
            )
            by_id.update({track_id: (dims, blob) for track_id, dims, blob in cursor})
        found = [(i, *by_id[i]) for i in wanted if i in by_id]
    if not found:
        return [], np.zeros((0, 0), dtype=np.float32)
    widths = {dims for _, dims, _ in found}
    if len(widths) != 1:
        raise ValueError(
            f"vectors of {extractor} version {version} have different lengths {sorted(widths)}"
        )
    dims = widths.pop()
    matrix = np.empty((len(found), dims), dtype=np.float32)
    for row, (_, _, blob) in enumerate(found):
        matrix[row] = from_blob(blob, dims)
    return [track_id for track_id, _, _ in found], matrix
