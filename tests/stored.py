"""Reading back what a test stored."""

from __future__ import annotations

import json
from typing import Any

from genred.records import LIST_FIELDS
from genred.store import Store


def track_rows(store: Store) -> dict[str, dict[str, Any]]:
    """Every stored track by source id, list columns decoded."""
    cur = store.conn.execute("SELECT * FROM tracks")
    names = [d[0] for d in cur.description]
    out = {}
    for values in cur:
        row = dict(zip(names, values, strict=True))
        for name in LIST_FIELDS:
            row[name] = json.loads(row[name])
        out[row["source_id"]] = row
    return out
