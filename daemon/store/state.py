"""Small persistent key/value state (sync cursors and the like), JSON values."""

from __future__ import annotations

import json
from typing import Any

from . import Store, utcnow


def get(store: Store, key: str, default: Any = None) -> Any:
    row = store.conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def put(store: Store, key: str, value: Any) -> None:
    with store.transaction() as conn:
        conn.execute(
            """INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET value = excluded.value,
               updated_at = excluded.updated_at""",
            (key, json.dumps(value), utcnow()),
        )
