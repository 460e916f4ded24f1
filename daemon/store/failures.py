"""Per-item failures of a stage: transient ones retried with a backoff, permanent ones kept.

A transient failure (a file missing for now, a timeout, a 5xx) counts its attempts and
sets the time of the next retry: 5 min, 10 min, … up to a day. A permanent one (too
short, not audio, an unsupported codec: `genred.errors.is_permanent`) is recorded once
and its item is skipped until its file changes: the stage gives the file's fingerprint
(size and mtime) when it records it, and `release_changed` frees it once the file differs.
One recorded without a fingerprint (no file known) is freed when the track changes in the
store. `genred retry` clears either kind by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import is_permanent
from . import Store, utcnow

BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_MAX = timedelta(days=1)
PERMANENT, TRANSIENT = "permanent", "transient"


@dataclass(frozen=True)
class Failure:
    """One recorded failure, as `genred status` and the stage commands show it."""

    stage: str
    item: str
    error_type: str
    message: str
    attempts: int
    permanent: bool
    last_failed_at: str
    next_retry_at: str | None

    @property
    def kind(self) -> str:
        return PERMANENT if self.permanent else TRANSIENT


def retry_delay(attempts: int) -> timedelta:
    """5 min, 10 min, 20 min, … capped at one day."""
    doublings = min(max(attempts - 1, 0), 20)  # 2**20 × 5 min is far past the cap
    return min(BACKOFF_BASE * (2**doublings), BACKOFF_MAX)


def record(
    store: Store,
    stage: str,
    item: str,
    error: BaseException,
    *,
    fingerprint: str | None = None,
) -> int:
    """Record (or count again) a failure; returns the number of attempts so far.

    A permanent error gets no retry time, and the same permanent failure seen again on
    the same file (fingerprint) is not counted again: it was recorded once.
    """
    now = datetime.now(UTC)
    permanent = is_permanent(error)
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT attempts, permanent, error_type, fingerprint FROM failures "
            "WHERE stage = ? AND item = ?",
            (stage, item),
        ).fetchone()
        same = (
            row is not None
            and permanent
            and tuple(row[1:])
            == (
                1,
                type(error).__name__,
                fingerprint,
            )
        )
        attempts = (row[0] if row else 0) + (0 if same else 1)
        next_retry = (
            None if permanent else (now + retry_delay(attempts)).isoformat(timespec="microseconds")
        )
        conn.execute(
            """
            INSERT INTO failures (stage, item, error_type, message, attempts,
                                  first_failed_at, last_failed_at, next_retry_at,
                                  permanent, fingerprint)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (stage, item) DO UPDATE SET
                error_type = excluded.error_type, message = excluded.message,
                attempts = excluded.attempts, last_failed_at = excluded.last_failed_at,
                next_retry_at = excluded.next_retry_at, permanent = excluded.permanent,
                fingerprint = excluded.fingerprint
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
                int(permanent),
                fingerprint,
            ),
        )
    return attempts


def clear(store: Store, stage: str, items: list[str]) -> None:
    with store.transaction() as conn:
        conn.executemany(
            "DELETE FROM failures WHERE stage = ? AND item = ?", [(stage, i) for i in items]
        )


def blocked(store: Store, stage: str, now: str | None = None) -> set[str]:
    """Items of `stage` not to try now: transient ones still backing off, permanent ones
    (those recorded without a fingerprint until their track changes in the store)."""
    rows = store.conn.execute(
        """
        SELECT f.item FROM failures f
        WHERE f.stage = ? AND (
            (f.permanent = 0 AND f.next_retry_at > ?)
            OR (f.permanent = 1 AND (f.fingerprint IS NOT NULL OR NOT EXISTS (
                SELECT 1 FROM tracks t
                WHERE t.id = CAST(f.item AS INTEGER) AND t.changed_at > f.last_failed_at))))
        """,
        (stage, now or utcnow()),
    )
    return {r[0] for r in rows}


def release_changed(store: Store, stage: str, fingerprint_of: Callable[[str], str | None]) -> int:
    """Forget the permanent failures of `stage` whose file changed since (its fingerprint
    differs, or the file is gone); returns how many. Their items are tried again."""
    rows = store.conn.execute(
        "SELECT item, fingerprint FROM failures "
        "WHERE stage = ? AND permanent = 1 AND fingerprint IS NOT NULL",
        (stage,),
    ).fetchall()
    changed = [item for item, fingerprint in rows if fingerprint_of(item) != fingerprint]
    if changed:
        clear(store, stage, changed)
    return len(changed)


def permanent(store: Store, stages: Iterable[str], items: Iterable[str]) -> dict[str, str]:
    """For those of `items` with a permanent failure in one of `stages`: its reason."""
    found: dict[str, str] = {}
    wanted = list(dict.fromkeys(items))
    for stage in stages:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = store.conn.execute(
                f"SELECT item, error_type, message FROM failures WHERE stage = ? "
                f"AND permanent = 1 AND item IN ({marks})",
                [stage, *chunk],
            )
            for item, error_type, message in rows:
                found.setdefault(item, f"{error_type}: {message}")
    return found


def _of_stage(stage: str | None) -> tuple[str, list[str | int]]:
    """SQL condition for `stage` itself and its sub-stages (`extract` → `extract:tagger`)."""
    if stage is None:
        return "1", []
    return "(stage = ? OR substr(stage, 1, ?) = ?)", [stage, len(stage) + 1, f"{stage}:"]


def listed(
    store: Store, stage: str | None = None, *, since: str | None = None, limit: int | None = None
) -> list[Failure]:
    """The failures of `stage` (and its sub-stages; None: all), newest first; `since`: only
    those recorded at or after it (one run's)."""
    where, params = _of_stage(stage)
    if since is not None:
        where += " AND last_failed_at >= ?"
        params.append(since)
    rows = store.conn.execute(
        "SELECT stage, item, error_type, message, attempts, permanent, last_failed_at, "
        f"next_retry_at FROM failures WHERE {where} ORDER BY last_failed_at DESC, stage, item"
        + (" LIMIT ?" if limit is not None else ""),
        [*params, *([limit] if limit is not None else [])],
    )
    return [Failure(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7]) for r in rows]


def count(store: Store, stage: str | None = None, *, since: str | None = None) -> int:
    where, params = _of_stage(stage)
    if since is not None:
        where += " AND last_failed_at >= ?"
        params.append(since)
    row = store.conn.execute(f"SELECT COUNT(*) FROM failures WHERE {where}", params).fetchone()
    return int(row[0])


@dataclass(frozen=True)
class FailureGroup:
    """Failures of one stage, kind and error type: how many, when retried, one example."""

    stage: str
    kind: str
    error_type: str
    items: int
    next_retry_at: str | None
    example_item: str
    example: str


def summary(store: Store) -> list[FailureGroup]:
    """Every failure grouped by stage, kind (permanent, transient) and error type."""
    rows = store.conn.execute(
        """
        SELECT stage, permanent, error_type, COUNT(*), MIN(next_retry_at), MAX(item), message
        FROM failures GROUP BY stage, permanent, error_type
        ORDER BY stage, permanent DESC, COUNT(*) DESC, error_type
        """
    )
    return [
        FailureGroup(r[0], PERMANENT if r[1] else TRANSIENT, r[2], r[3], r[4], r[5], r[6])
        for r in rows
    ]


def remove(store: Store, stage: str | None = None, kind: str | None = None) -> dict[str, int]:
    """Forget the failures of `stage` (and its sub-stages; None: every stage), of one
    `kind` or both, so their items are tried on the next run; how many per stage."""
    where, params = _of_stage(stage)
    if kind is not None:
        where += " AND permanent = ?"
        params.append(int(kind == PERMANENT))
    with store.transaction() as conn:
        counted = dict(
            conn.execute(
                f"SELECT stage, COUNT(*) FROM failures WHERE {where} GROUP BY stage", params
            )
        )
        conn.execute(f"DELETE FROM failures WHERE {where}", params)
    return counted


def counts_by_stage(store: Store) -> dict[str, int]:
    rows = store.conn.execute("SELECT stage, COUNT(*) FROM failures GROUP BY stage")
    return {stage: n for stage, n in rows}
