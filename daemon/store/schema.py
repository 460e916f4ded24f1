"""The schema as a list of forward migrations; `PRAGMA user_version` is the index reached.

Never edit a released migration: append a new one. Each runs in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: sqlite3's executescript would COMMIT the open transaction."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            db.execute(pending)
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:60]}")


def _v1_core(db: sqlite3.Connection) -> None:
    """Tracks and everything derived from them, plus job bookkeeping."""
    run_script(
        db,
        """
        CREATE TABLE tracks (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,              -- plugin name: plex, folder
            source_id TEXT NOT NULL,           -- e.g. Plex ratingKey, or a path-derived id
            album_source_id TEXT,
            artist_source_id TEXT,
            path TEXT,                         -- as the source reports it
            title TEXT,
            artist TEXT,
            album TEXT,
            album_artist TEXT,
            track_no INTEGER,
            disc_no INTEGER,
            year INTEGER,
            duration_ms INTEGER,
            genres TEXT NOT NULL DEFAULT '[]', -- JSON list, as found at the source
            moods TEXT NOT NULL DEFAULT '[]',
            album_genres TEXT NOT NULL DEFAULT '[]',
            artist_genres TEXT NOT NULL DEFAULT '[]',
            source_added_at TEXT,
            source_updated_at TEXT,
            first_seen_at TEXT NOT NULL,
            changed_at TEXT NOT NULL,          -- last time a synced field actually changed
            synced_at TEXT NOT NULL,           -- last time a sync saw this track
            removed INTEGER NOT NULL DEFAULT 0,
            removed_at TEXT,
            UNIQUE (source, source_id)
        );
        CREATE INDEX tracks_path ON tracks(path);
        CREATE INDEX tracks_album ON tracks(source, album_source_id);
        CREATE INDEX tracks_synced ON tracks(synced_at);
        CREATE INDEX tracks_changed ON tracks(changed_at);

        CREATE TABLE features (
            track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
            extractor TEXT NOT NULL,
            version TEXT NOT NULL,
            dims INTEGER NOT NULL,
            vector BLOB NOT NULL,              -- little-endian float32 × dims
            created_at TEXT NOT NULL,
            PRIMARY KEY (track_id, extractor, version)
        );

        CREATE TABLE predictions (
            track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
            classifier TEXT NOT NULL,
            label_set TEXT NOT NULL,           -- genre, mood, or a custom label's name
            version TEXT NOT NULL,
            labels TEXT NOT NULL,              -- JSON [[name, confidence], ...], best first
            created_at TEXT NOT NULL,
            PRIMARY KEY (track_id, classifier, label_set)
        );

        CREATE TABLE decisions (
            track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
            genres TEXT NOT NULL DEFAULT '[]',
            moods TEXT NOT NULL DEFAULT '[]',
            labels TEXT NOT NULL DEFAULT '[]',
            confidence REAL,
            provenance TEXT NOT NULL DEFAULT '{}', -- JSON: which classifier/override gave what
            status TEXT NOT NULL,              -- decided | review
            decided_at TEXT NOT NULL
        );
        CREATE INDEX decisions_status ON decisions(status);

        CREATE TABLE overrides (
            track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
            field TEXT NOT NULL,               -- genre | mood | label
            value TEXT NOT NULL,               -- JSON list
            origin TEXT NOT NULL,              -- cli | web | plex-edit
            created_by TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (track_id, field)
        );

        CREATE TABLE writebacks (
            target TEXT NOT NULL,              -- plex, tags, ...
            item_kind TEXT NOT NULL,           -- track | album | artist
            item_id TEXT NOT NULL,             -- the target's id (Plex ratingKey)
            field TEXT NOT NULL,               -- genre | mood | label
            original TEXT NOT NULL,            -- JSON list found before genred's first write
            written TEXT,                      -- JSON list exactly as last confirmed written
            pending TEXT,                      -- JSON list being written (intent, unconfirmed)
            first_written_at TEXT NOT NULL,
            written_at TEXT,
            manual_at TEXT,                    -- a person edited it after us: hands off
            reverted_at TEXT,
            PRIMARY KEY (target, item_kind, item_id, field)
        );

        CREATE TABLE failures (
            stage TEXT NOT NULL,
            item TEXT NOT NULL,                -- track id, or another stage-specific key
            error_type TEXT NOT NULL,
            message TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1,
            first_failed_at TEXT NOT NULL,
            last_failed_at TEXT NOT NULL,
            next_retry_at TEXT,
            PRIMARY KEY (stage, item)
        );

        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            trigger TEXT NOT NULL,             -- cli | schedule | webhook | watcher
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL,              -- running | ok | failed | interrupted
            counts TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE INDEX runs_job ON runs(job, started_at);
        """,
    )


def _v2_cache_playlists_state(db: sqlite3.Connection) -> None:
    """LLM answer cache, playlists, and per-source sync state."""
    run_script(
        db,
        """
        CREATE TABLE llm_cache (
            key TEXT PRIMARY KEY,              -- hash of normalized input + model + prompt version
            model TEXT NOT NULL,
            prompt_version TEXT NOT NULL,
            response TEXT NOT NULL,            -- validated JSON
            created_at TEXT NOT NULL
        );

        CREATE TABLE playlists (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            prompt TEXT NOT NULL,
            target TEXT NOT NULL,              -- spotify | plex
            remote_id TEXT,
            track_ids TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (name, target)
        );

        CREATE TABLE state (
            key TEXT PRIMARY KEY,              -- e.g. sync.plex.last_full
            value TEXT NOT NULL,               -- JSON
            updated_at TEXT NOT NULL
        );
        """,
    )


def _v3_cache_used_at(db: sqlite3.Connection) -> None:
    """When a cached LLM answer was last read, so answers nobody asks for any more expire."""
    run_script(
        db,
        """
        ALTER TABLE llm_cache ADD COLUMN used_at TEXT;
        UPDATE llm_cache SET used_at = created_at;
        """,
    )


def _captions(db: sqlite3.Connection) -> None:
    """What an audio-language model said a track sounds like, one sentence per classifier."""
    run_script(
        db,
        """
        CREATE TABLE captions (
            track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
            classifier TEXT NOT NULL,          -- audio-llm
            version TEXT NOT NULL,
            text TEXT NOT NULL,
            listened_seconds REAL,             -- how much of the track the model heard
            cut INTEGER NOT NULL DEFAULT 0,    -- 1: the file was longer than the model takes
            created_at TEXT NOT NULL,
            PRIMARY KEY (track_id, classifier)
        );
        """,
    )


MIGRATIONS: list[Migration] = [
    _v1_core,
    _v2_cache_playlists_state,
    _v3_cache_used_at,
    _captions,
]
LATEST = len(MIGRATIONS)
