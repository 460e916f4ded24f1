"""The store's cache of LLM answers (`llm_cache`), shared by the LLM classifiers.

Keys are hashes of what was asked (normalized metadata, model, prompt); values are the
validated answer as JSON. A read marks the rows used; rows nobody read for `expire_days`
(a model or prompt no longer in use, a track long gone) are deleted by `expire`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from genred.api import Store, utcnow

CHUNK = 500  # keys per IN (...) query


def get(store: Store, keys: Iterable[str]) -> dict[str, Any]:
    """The cached answers (parsed JSON) of those `keys` that have one; marks them used."""
    out: dict[str, Any] = {}
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = store.conn.execute(
            f"SELECT key, response FROM llm_cache WHERE key IN ({marks})", chunk
        ).fetchall()
        for key, response in rows:
            try:
                out[key] = json.loads(response)
            except ValueError:
                continue  # unreadable: asked again, and overwritten
    if out:
        now = utcnow()
        with store.transaction() as conn:
            found = sorted(out)
            for start in range(0, len(found), CHUNK):
                chunk = found[start : start + CHUNK]
                conn.execute(
                    f"UPDATE llm_cache SET used_at = ? WHERE key IN ({','.join('?' * len(chunk))})",
                    [now, *chunk],
                )
    return out


def put(store: Store, answers: Mapping[str, Any], model: str, prompt_version: str) -> None:
    """Store answers (JSON-able) in one transaction."""
    now = utcnow()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO llm_cache"
            " (key, model, prompt_version, response, created_at, used_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (key, model, prompt_version, json.dumps(answer, ensure_ascii=False), now, now)
                for key, answer in answers.items()
            ],
        )


def expire(store: Store, days: int, now: datetime | None = None) -> int:
    """Delete answers not read for `days` days; returns how many."""
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat(timespec="microseconds")
    with store.transaction() as conn:
        cursor = conn.execute(
            "DELETE FROM llm_cache WHERE coalesce(used_at, created_at) < ?", (cutoff,)
        )
    return cursor.rowcount
