"""A made-up library of N tracks written straight into a genred store, for the dashboard's
benchmarks: albums of 10 tracks, two classifiers' predictions, decisions with provenance
(a fifth under review), overrides, writebacks, runs and failures, as the stages leave them.
Straight SQL, so 100,000 tracks take seconds rather than a real sync's minutes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from genred.store import Store, utcnow
from genred.taxonomy import default_taxonomy

MOODS = ["calm", "happy", "dark", "energetic", "sad", "dreamy", "aggressive"]
MESSY = ["electronica", "Hip-Hop/Rap", "d&b", "Rock, Pop", "alt rock", "Indie", "jazz"]


def build_library(path: Path, tracks: int, seed: int = 7) -> Store:
    rng = random.Random(seed)
    genres = sorted(default_taxonomy().names)
    store = Store.open(path)
    now = utcnow()
    track_rows, predictions, decisions, overrides, writebacks = [], [], [], [], []
    for i in range(1, tracks + 1):
        album = (i - 1) // 10
        artist = album // 3
        genre = genres[(album * 7) % len(genres)]
        other = rng.choice(genres)
        raw = [rng.choice(MESSY), genre.lower()] if i % 3 else [genre]
        track_rows.append(
            (
                i,
                "plex",
                str(100000 + i),
                str(500000 + album),
                str(900000 + artist),
                f"/music/Artist {artist}/Album {album}/{i % 10 + 1:02d}.flac",
                f"Track {i} of album {album}" + (" (live)" if i % 17 == 0 else ""),
                f"Artist {artist}" if i % 101 else "Motörhead",
                f"Album {album}",
                f"Artist {artist}",
                i % 10 + 1,
                1,
                1960 + album % 60,
                200000,
                json.dumps(raw),
                json.dumps([rng.choice(MOODS)]),
                json.dumps([genre]),
                "[]",
                now,
                now,
                now,
                now,
            )
        )
        confidence = round(rng.uniform(0.2, 0.99), 4)
        review = confidence < 0.36
        predictions.append(
            (i, "taxonomy", "genre", "1", json.dumps([[genre, 1.0]]), now)
        )  # fmt: skip
        predictions.append(
            (i, "llm-metadata", "genre", "2", json.dumps([[genre, confidence], [other, 0.3]]), now)
        )
        predictions.append((i, "llm-metadata", "mood", "2", json.dumps([["calm", 0.6]]), now))
        provenance = {
            "genre": {genre: {"taxonomy": 1.0, "llm-metadata": confidence}, other: {"x": 0.3}},
            "mood": {"calm": {"llm-metadata": 0.6}},
            "step": 1,
        }
        decisions.append(
            (
                i,
                json.dumps([] if review else [genre]),
                json.dumps(["calm"]),
                "[]",
                confidence,
                json.dumps(provenance),
                "review" if review else "decided",
                now,
                "llm-metadata,taxonomy",
            )
        )
        if i % 97 == 0:
            overrides.append((i, "genre", json.dumps([other]), "web", "bench", now))
        if i % 5 < 3:
            writebacks.append(
                ("plex", "track", str(100000 + i), "genre", json.dumps(raw), json.dumps([genre]))
            )
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO tracks (id, source, source_id, album_source_id, artist_source_id, path,"
            " title, artist, album, album_artist, track_no, disc_no, year, duration_ms, genres,"
            " moods, album_genres, artist_genres, first_seen_at, changed_at, synced_at,"
            " source_updated_at) VALUES (" + ",".join("?" * 22) + ")",
            track_rows,
        )
        conn.executemany(
            "INSERT INTO predictions (track_id, classifier, label_set, version, labels,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            predictions,
        )
        conn.executemany(
            "INSERT INTO decisions (track_id, genres, moods, labels, confidence, provenance,"
            " status, decided_at, decided_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            decisions,
        )
        conn.executemany(
            "INSERT INTO overrides (track_id, field, value, origin, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            overrides,
        )
        conn.executemany(
            "INSERT INTO writebacks (target, item_kind, item_id, field, original, written,"
            f" first_written_at, written_at) VALUES (?, ?, ?, ?, ?, ?, '{now}', '{now}')",
            writebacks,
        )
        for job in ("sync", "classify", "decide", "writeback"):
            conn.execute(
                "INSERT INTO runs (job, trigger, started_at, ended_at, status, counts)"
                " VALUES (?, 'schedule', ?, ?, 'ok', '{}')",
                (job, now, now),
            )
        conn.executemany(
            "INSERT INTO failures (stage, item, error_type, message, attempts, first_failed_at,"
            " last_failed_at, next_retry_at) VALUES ('extract:handcrafted', ?, 'AudioUnreadable',"
            " 'cannot decode', 2, ?, ?, ?)",
            [(str(i), now, now, now) for i in range(1, tracks, max(1, tracks // 100))],
        )
    store.conn.execute("ANALYZE")
    return store
