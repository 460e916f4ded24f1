"""Filling a store through the real sync stage, and reading back what a test stored."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from genred.pipeline.sync import sync
from genred.records import LIST_FIELDS, ScanRequest, SourcePage, TrackRecord
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


class ListSource:
    """A source listing the given records in one page (the sync stage stores them)."""

    def __init__(self, records: Sequence[TrackRecord]) -> None:
        self.records = list(records)

    def scan(self, request: ScanRequest) -> Iterator[SourcePage]:
        yield SourcePage([r.source_id for r in self.records], self.records)

    def gone(self, source_ids: Sequence[str]) -> set[str]:
        return set()


def stored(records: Sequence[TrackRecord]) -> Store:
    store = Store.memory()
    sync(store, "plex", ListSource(records), full=True)
    return store
