"""Track queries shared by the stages and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from . import Store


@dataclass(frozen=True)
class TrackCounts:
    total: int
    removed: int
    with_predictions: int
    decided: int
    needs_review: int
    written: int

    @property
    def active(self) -> int:
        return self.total - self.removed


def counts(store: Store) -> TrackCounts:
    """How many tracks are in each state, for `genred status` and the dashboard."""
    one = store.conn.execute
    total, removed = one("SELECT COUNT(*), COALESCE(SUM(removed), 0) FROM tracks").fetchone()
    predicted = one(
        "SELECT COUNT(DISTINCT track_id) FROM predictions p JOIN tracks t ON t.id = p.track_id "
        "WHERE t.removed = 0 AND p.labels != '[]'"
    ).fetchone()[0]
    decided, review = one(
        "SELECT COALESCE(SUM(status = 'decided'), 0), COALESCE(SUM(status = 'review'), 0) "
        "FROM decisions d JOIN tracks t ON t.id = d.track_id WHERE t.removed = 0"
    ).fetchone()
    written = one(
        "SELECT COUNT(*) FROM writebacks WHERE item_kind = 'track' AND written IS NOT NULL "
        "AND reverted_at IS NULL"
    ).fetchone()[0]
    return TrackCounts(total, removed, predicted, decided, review, written)
