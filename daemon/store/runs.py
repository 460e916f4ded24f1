"""Job runs: start, finish, and the latest ones for `genred status`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import Store, utcnow


@dataclass(frozen=True)
class Run:
    id: int
    job: str
    trigger: str
    started_at: str
    ended_at: str | None
    status: str
    counts: dict[str, int]
    error: str | None


def start(store: Store, job: str, trigger: str) -> int:
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO runs (job, trigger, started_at, status) VALUES (?, ?, ?, 'running')",
            (job, trigger, utcnow()),
        )
    return int(cur.lastrowid or 0)


def finish(
    store: Store, run_id: int, status: str, counts: dict[str, Any], error: str | None = None
) -> None:
    with store.transaction() as conn:
        conn.execute(
            "UPDATE runs SET ended_at = ?, status = ?, counts = ?, error = ? WHERE id = ?",
            (utcnow(), status, json.dumps(counts, sort_keys=True), error, run_id),
        )


def mark_interrupted(store: Store, jobs: list[str] | None = None) -> int:
    """Runs left 'running' (of `jobs`, or all) by a process that died become interrupted."""
    where = "status = 'running'"
    params: list[Any] = [utcnow()]
    if jobs is not None:
        where += " AND job IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(jobs))
    with store.transaction() as conn:
        cur = conn.execute(
            f"UPDATE runs SET status = 'interrupted', ended_at = ?, "
            f"error = 'the process running it stopped' WHERE {where}",
            params,
        )
    return cur.rowcount


def latest(store: Store, limit: int = 10) -> list[Run]:
    """The most recent run of each job, newest first, at most `limit` jobs."""
    rows = store.conn.execute(
        """
        SELECT id, job, trigger, started_at, ended_at, status, counts, error FROM runs
        WHERE id IN (SELECT MAX(id) FROM runs GROUP BY job)
        ORDER BY started_at DESC LIMIT ?
        """,
        (limit,),
    ).fetchall()
    return [Run(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows]
