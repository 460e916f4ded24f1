"""Per-item failures of a stage, with attempts and the time of the next retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from . import Store, utcnow

BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_MAX = timedelta(days=1)


def retry_delay(attempts: int) -> timedelta:
    """5 min, 10 min, 20 min, … capped at one day."""
    doublings = min(max(attempts - 1, 0), 20)  # 2**20 × 5 min is far past the cap
    return min(BACKOFF_BASE * (2**doublings), BACKOFF_MAX)


def record(store: Store, stage: str, item: str, error: BaseException) -> int:
    """Record (or count again) a failure; returns the number of attempts so far."""
    now = datetime.now(UTC)
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT attempts FROM failures WHERE stage = ? AND item = ?", (stage, item)
        ).fetchone()
        attempts = (row[0] if row else 0) + 1
        next_retry = (now + retry_delay(attempts)).isoformat(timespec="microseconds")
        conn.execute(
            """
            INSERT INTO failures (stage, item, error_type, message, attempts,
                                  first_failed_at, last_failed_at, next_retry_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (stage, item) DO UPDATE SET
                error_type = excluded.error_type, message = excluded.message,
                attempts = excluded.attempts, last_failed_at = excluded.last_failed_at,
                next_retry_at = excluded.next_retry_at
            """,
            (
                stage,
                item,
                type(error).__name__,
                str(error),
                attempts,
                utcnow(),
                utcnow(),
                next_retry,
            ),
        )
    return attempts


def clear(store: Store, stage: str, items: list[str]) -> None:
    with store.transaction() as conn:
        conn.executemany(
            "DELETE FROM failures WHERE stage = ? AND item = ?", [(stage, i) for i in items]
        )


def blocked(store: Store, stage: str, now: str | None = None) -> set[str]:
    """Items of `stage` whose next retry is still in the future."""
    rows = store.conn.execute(
        "SELECT item FROM failures WHERE stage = ? AND next_retry_at > ?", (stage, now or utcnow())
    )
    return {r[0] for r in rows}


def counts_by_stage(store: Store) -> dict[str, int]:
    rows = store.conn.execute("SELECT stage, COUNT(*) FROM failures GROUP BY stage")
    return {stage: n for stage, n in rows}
