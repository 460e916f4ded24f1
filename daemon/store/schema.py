"""The schema as a list of forward migrations; `PRAGMA user_version` is the index reached.

Never edit a released migration: append a new one. Each runs in one transaction.
"""

from __future__ import annotations

import json
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


def _v4_file_writes(db: sqlite3.Connection) -> None:
    """Files a writeback replaced, with their stat after the write (the watcher's "ours")."""
    run_script(
        db,
        """
        CREATE TABLE file_writes (
            path TEXT PRIMARY KEY,             -- as the folder watcher reports it
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            written_at TEXT NOT NULL
        );
        CREATE INDEX file_writes_at ON file_writes(written_at);
        """,
    )


def _v5_permanent_failures(db: sqlite3.Connection) -> None:
    """Failures that retrying cannot help (too short, not audio) are kept apart, with the
    fingerprint (size, mtime) of the file they were found on: skipped until it changes."""
    run_script(
        db,
        """
        ALTER TABLE failures ADD COLUMN permanent INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE failures ADD COLUMN fingerprint TEXT;
        """,
    )


def _v6_playlists(db: sqlite3.Connection) -> None:
    """Playlists made from prompts: versions, where each is pushed, per-chunk push records,
    what each target matched; ISRCs of tracks; the year index selection filters on.

    Replaces the unused v2 `playlists` table (never written by any release)."""
    run_script(
        db,
        """
        DROP TABLE playlists;
        ALTER TABLE tracks ADD COLUMN isrc TEXT;
        CREATE INDEX tracks_year ON tracks(year);
        CREATE INDEX tracks_first_seen ON tracks(first_seen_at);

        CREATE TABLE playlists (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            prompt TEXT NOT NULL,
            targets TEXT NOT NULL DEFAULT '[]',  -- JSON list of playlist target names
            head INTEGER,                        -- the current version's number
            saved INTEGER NOT NULL DEFAULT 0,    -- from the config's `playlists.saved`
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE playlist_versions (
            playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            parent INTEGER,                      -- the version it was made from (undo goes there)
            reason TEXT NOT NULL,                -- create | refine: … | refresh … | edit | pin …
            intent TEXT NOT NULL,                -- JSON: the typed intent, with field sources
            tracks TEXT NOT NULL,                -- JSON [{track_id, why, pinned, score}], in order
            banned TEXT NOT NULL DEFAULT '[]',   -- JSON track ids the user removed (never back)
            report TEXT NOT NULL DEFAULT '{}',   -- JSON: asked, got, relaxed, shortfall, notes
            llm_requests INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            PRIMARY KEY (playlist_id, number)
        );

        CREATE TABLE playlist_remotes (
            playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
            target TEXT NOT NULL,                -- spotify | plex | …
            remote_id TEXT NOT NULL,
            items TEXT NOT NULL DEFAULT '[]',    -- JSON: the items as last pushed, in order
            description TEXT NOT NULL DEFAULT '',
            version INTEGER,                     -- the playlist version last pushed in full
            pushed_at TEXT,
            PRIMARY KEY (playlist_id, target)
        );

        CREATE TABLE playlist_pushes (
            id INTEGER PRIMARY KEY,
            playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
            target TEXT NOT NULL,
            version INTEGER NOT NULL,
            remote_id TEXT,
            status TEXT NOT NULL,                -- running | ok | failed
            started_at TEXT NOT NULL,
            ended_at TEXT,
            error TEXT
        );
        CREATE INDEX playlist_pushes_of ON playlist_pushes(playlist_id, target, id);

        CREATE TABLE playlist_push_chunks (
            push_id INTEGER NOT NULL REFERENCES playlist_pushes(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            edit TEXT NOT NULL,                  -- JSON: one request's edit
            status TEXT NOT NULL,                -- pending | sent
            sent_at TEXT,
            PRIMARY KEY (push_id, seq)
        );

        CREATE TABLE playlist_matches (
            target TEXT NOT NULL,
            track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
            fingerprint TEXT NOT NULL,           -- of the fields matched on: edits re-match
            item TEXT,                           -- the target's id (spotify:track:…); NULL: none
            how TEXT NOT NULL,                   -- isrc | search | source | none
            score REAL NOT NULL DEFAULT 0,
            note TEXT NOT NULL DEFAULT '',
            checked_at TEXT NOT NULL,
            PRIMARY KEY (target, track_id)
        );
        """,
    )


def _v7_library_views(db: sqlite3.Connection) -> None:
    """What the dashboard filters and sorts by, indexed for a 100k-track library; who
    decided each track's genre; and every decision made once more to fill that in."""
    run_script(
        db,
        """
        ALTER TABLE decisions ADD COLUMN decided_by TEXT NOT NULL DEFAULT '';
        CREATE INDEX decisions_review ON decisions(status, coalesce(confidence, -1.0), track_id);
        CREATE INDEX decisions_confidence ON decisions(confidence);
        CREATE INDEX decisions_decided_at ON decisions(decided_at);
        CREATE INDEX tracks_by_artist ON tracks(coalesce(artist, '') COLLATE NOCASE,
            coalesce(album, '') COLLATE NOCASE, coalesce(disc_no, 0), coalesce(track_no, 0), id)
            WHERE removed = 0;
        CREATE INDEX tracks_by_title ON tracks(coalesce(title, '') COLLATE NOCASE, id)
            WHERE removed = 0;
        CREATE INDEX tracks_by_album ON tracks(coalesce(album, '') COLLATE NOCASE,
            coalesce(disc_no, 0), coalesce(track_no, 0), id) WHERE removed = 0;
        CREATE INDEX tracks_by_year ON tracks(coalesce(year, 0), id) WHERE removed = 0;
        CREATE INDEX writebacks_item ON writebacks(item_kind, item_id);
        CREATE INDEX overrides_created ON overrides(created_at);
        DELETE FROM state WHERE key = 'decide.policy';
        """,
    )


SEARCH_TEXT = """coalesce(t.title, '') || char(10) || coalesce(t.artist, '') || char(10)
    || coalesce(t.album, '') || char(10) || coalesce(t.album_artist, '') || char(10)
    || coalesce(d.genres, '') || char(10) || coalesce(d.moods, '') || char(10)
    || coalesce(d.labels, '')"""


def _v8_track_search(db: sqlite3.Connection) -> None:
    """A trigram full-text index over each active track's title, artist, album, decided
    genres, moods and labels, kept by triggers: the dashboard's search in milliseconds.
    Left out where SQLite has no FTS5 trigram tokenizer (before 3.34): search scans then."""
    try:
        db.execute("CREATE VIRTUAL TABLE track_search USING fts5(text, tokenize = 'trigram')")
    except sqlite3.OperationalError:
        return
    one = f"SELECT t.id, {SEARCH_TEXT} FROM tracks t LEFT JOIN decisions d ON d.track_id = t.id"
    run_script(
        db,
        f"""
        INSERT INTO track_search (rowid, text) {one} WHERE t.removed = 0;
        CREATE TRIGGER track_search_added AFTER INSERT ON tracks WHEN new.removed = 0 BEGIN
            INSERT INTO track_search (rowid, text) {one} WHERE t.id = new.id;
        END;
        CREATE TRIGGER track_search_changed AFTER UPDATE OF title, artist, album, album_artist,
            removed ON tracks
            WHEN old.title IS NOT new.title OR old.artist IS NOT new.artist
              OR old.album IS NOT new.album OR old.album_artist IS NOT new.album_artist
              OR old.removed IS NOT new.removed BEGIN
            DELETE FROM track_search WHERE rowid = old.id;
            INSERT INTO track_search (rowid, text) {one} WHERE t.id = new.id AND t.removed = 0;
        END;
        CREATE TRIGGER track_search_deleted AFTER DELETE ON tracks BEGIN
            DELETE FROM track_search WHERE rowid = old.id;
        END;
        CREATE TRIGGER track_search_decided AFTER INSERT ON decisions BEGIN
            DELETE FROM track_search WHERE rowid = new.track_id;
            INSERT INTO track_search (rowid, text) {one}
                WHERE t.id = new.track_id AND t.removed = 0;
        END;
        CREATE TRIGGER track_search_redecided AFTER UPDATE OF genres, moods, labels ON decisions
            WHEN old.genres IS NOT new.genres OR old.moods IS NOT new.moods
              OR old.labels IS NOT new.labels BEGIN
            DELETE FROM track_search WHERE rowid = new.track_id;
            INSERT INTO track_search (rowid, text) {one}
                WHERE t.id = new.track_id AND t.removed = 0;
        END;
        CREATE TRIGGER track_search_undecided AFTER DELETE ON decisions BEGIN
            DELETE FROM track_search WHERE rowid = old.track_id;
            INSERT INTO track_search (rowid, text) {one}
                WHERE t.id = old.track_id AND t.removed = 0;
        END;
        """,
    )


def _v9_captions(db: sqlite3.Connection) -> None:
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


def _v10_llm_cache_answers(db: sqlite3.Connection) -> None:
    """Cached LLM answers that are no answer: a genre answer (stored unvalidated before)
    with no `genres` list, or an empty one without a `reason`; a label answer without its
    probability `p`; unreadable JSON. Deleted, so their tracks are asked again."""
    poisoned = []
    for key, prompt_version, response in db.execute(
        "SELECT key, prompt_version, response FROM llm_cache"
    ):
        try:
            answer = json.loads(response)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            poisoned.append((key,))
        elif str(prompt_version).startswith("labels:"):
            p = answer.get("p")
            if isinstance(p, bool) or not isinstance(p, int | float):
                poisoned.append((key,))
        else:
            genres, reason = answer.get("genres"), answer.get("reason")
            explained = isinstance(reason, str) and bool(reason.strip())
            if not isinstance(genres, list) or not (genres or explained):
                poisoned.append((key,))
    db.executemany("DELETE FROM llm_cache WHERE key = ?", poisoned)


MIGRATIONS: list[Migration] = [
    _v1_core,
    _v2_cache_playlists_state,
    _v3_cache_used_at,
    _v4_file_writes,
    _v5_permanent_failures,
    _v6_playlists,
    _v7_library_views,
    _v8_track_search,
    _v9_captions,
    _v10_llm_cache_answers,
]
LATEST = len(MIGRATIONS)
