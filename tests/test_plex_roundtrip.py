"""The Plex round trip through the real CLI and plexapi against the emulator:
sync → classify (taxonomy) → decide → writeback, idempotence, hand edits, dry run, revert,
and faults. Every test checks the emulated server's state and what crossed the wire."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from genred.store import Store
from genred.taxonomy import default_taxonomy, normalize_key
from tests.emulators.plex import Faults, PlexEmulator

FAST_RETRIES = "retries: {attempts: 6, backoff_initial: 0.01, backoff_max: 0.05}"


def write_config(
    tmp_path: Path,
    emu: PlexEmulator,
    mode: str = "append",
    levels: str = "[track]",
    dry_run: bool = False,
) -> Path:
    path = tmp_path / "genred.yaml"
    path.write_text(
        f"""
data_dir: {tmp_path / "data"}
plex:
  url: {emu.url}
  token: {emu.token}
  sections: [Music]
plugins:
  sources:
    plex: {{{FAST_RETRIES}}}
  classifiers: [taxonomy]
  writeback:
    plex: {{{FAST_RETRIES}}}
writeback:
  mode: {mode}
  levels: {levels}
  dry_run: {str(dry_run).lower()}
logging:
  level: error
"""
    )
    return path


def genred(config: Path, *args: str) -> Result:
    from genred.cli import cli

    result = CliRunner().invoke(cli, [*args, "--config", str(config)], catch_exceptions=False)
    return result


def pipeline(config: Path) -> None:
    for step in ("sync", "classify", "decide", "writeback"):
        result = genred(config, step)
        assert result.exit_code == 0, f"{step}: {result.output}"


def snapshot(emu: PlexEmulator) -> dict[tuple[str, int], tuple[str, ...]]:
    """Every item's genres in the emulated server (tracks, albums, artists)."""
    lib = emu.library
    out = {}
    for kind, items in (("track", lib.tracks), ("album", lib.albums), ("artist", lib.artists)):
        for key, item in items.items():
            out[(kind, key)] = tuple(item.tags.get("genre", []))
    return out


def folded(values: Any) -> set[str]:
    return {v.casefold() for v in values}


def decisions(config_dir: Path) -> dict[str, list[str]]:
    with Store.open(config_dir / "data" / "genred.db") as store:
        rows = store.conn.execute(
            "SELECT t.source_id, d.genres FROM decisions d JOIN tracks t ON t.id = d.track_id "
            "WHERE d.status = 'decided'"
        )
        return {rk: json.loads(genres) for rk, genres in rows}


@pytest.fixture
def run(tmp_path: Path, plex_emulator: PlexEmulator) -> Callable[..., Path]:
    def make(**kwargs: Any) -> Path:
        return write_config(tmp_path, plex_emulator, **kwargs)

    return make


def test_append_cleans_genres_then_second_run_sends_no_put(
    run: Callable[..., Path], plex_emulator: PlexEmulator
) -> None:
    emu = plex_emulator
    before = snapshot(emu)
    config = run(mode="append")
    pipeline(config)
    decided = decisions(config.parent)
    assert len(decided) > 1500  # most of the 2,015 tracks carry a usable genre
    taxonomy = default_taxonomy()
    for rk, genres in decided.items():
        now = emu.library.track(int(rk)).tags.get("genre", [])
        # canonical genres added (an equivalent spelling already there counts) ...
        assert {normalize_key(g) for g in genres} <= {normalize_key(g) for g in now}, rk
        assert folded(before[("track", int(rk))]) <= folded(now)  # ... nothing lost
        assert set(genres) <= taxonomy.names
    undecided = [k for (kind, k) in before if kind == "track" and str(k) not in decided]
    assert all(snapshot(emu)[("track", k)] == before[("track", k)] for k in undecided)
    puts = emu.puts()
    assert puts, "writeback sent nothing"
    assert all(len(p.query["id"][0].split(",")) <= 100 for p in puts)
    assert len(puts) < len(decided) / 5  # grouped, not one request per track
    assert all(p.query.get("genre.locked") == ["1"] for p in puts)

    emu.clear_requests()
    for step in ("sync", "classify", "decide", "writeback"):
        assert genred(config, step).exit_code == 0
    assert emu.puts() == []  # idempotent: the second round writes nothing


@pytest.mark.slow
def test_replace_mode_at_all_levels_and_revert_restores_everything(
    run: Callable[..., Path], plex_emulator: PlexEmulator
) -> None:
    emu = plex_emulator
    before = snapshot(emu)
    config = run(mode="replace", levels="[track, album, artist]")
    pipeline(config)
    decided = decisions(config.parent)
    after = snapshot(emu)
    for rk, genres in decided.items():
        assert folded(after[("track", int(rk))]) == folded(genres)
    album_puts = [p for p in emu.puts() if p.query["type"] == ["9"]]
    artist_puts = [p for p in emu.puts() if p.query["type"] == ["8"]]
    assert album_puts and artist_puts
    some_album = int(album_puts[0].query["id"][0].split(",")[0])
    assert after[("album", some_album)] != before[("album", some_album)]
    assert set(after[("album", some_album)]) <= default_taxonomy().names

    # Plex reads genred's writes back in its own order and tag case ("Synth-Pop" written onto
    # an existing "Synth-pop" tag): the next sync must not take that for a change, or every
    # write would send its tracks through classify and decide again.
    resync = genred(config, "sync", "--incremental")
    assert resync.exit_code == 0, resync.output
    assert " 0 changed" in resync.output and " 0 added" in resync.output, resync.output

    result = genred(config, "revert")
    assert result.exit_code == 0, result.output
    assert snapshot(emu) == before  # every original value, exactly, in order
    with Store.open(config.parent / "data" / "genred.db") as store:
        assert store.conn.execute(
            "SELECT COUNT(*) FROM writebacks WHERE reverted_at IS NULL"
        ).fetchone() == (0,)
        last = store.conn.execute("SELECT job, status FROM runs ORDER BY id DESC").fetchone()
        assert last == ("revert", "ok")
    emu.clear_requests()
    paused = genred(config, "writeback")
    assert paused.exit_code == 1 and "paused" in paused.output
    assert emu.puts() == []


def test_fill_mode_only_touches_items_without_genre(
    run: Callable[..., Path], plex_emulator: PlexEmulator
) -> None:
    emu = plex_emulator
    bare = sorted(emu.library.tracks)[100:120]
    for key in bare:  # tracks without a genre of their own; their albums still have one
        emu.library.track(key).tags.pop("genre", None)
    before = snapshot(emu)
    config = run(mode="fill", levels="[track, album]")
    pipeline(config)
    after = snapshot(emu)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {("track", k) for k in bare}
    for key in bare:  # each got its album's genres, canonicalized
        album_genres = before[("album", emu.library.track(key).album_key)]
        assert after[("track", key)]
        assert folded(after[("track", key)]) <= folded(
            default_taxonomy().canonicalize(list(album_genres))
        )


def test_dry_run_prints_and_sends_nothing(
    run: Callable[..., Path], plex_emulator: PlexEmulator
) -> None:
    emu = plex_emulator
    config = run(mode="replace")
    for step in ("sync", "classify", "decide"):
        assert genred(config, step).exit_code == 0
    before = snapshot(emu)
    emu.clear_requests()
    result = genred(config, "writeback", "--dry-run")
    assert result.exit_code == 0
    assert emu.puts() == [] and snapshot(emu) == before
    lines = [line for line in result.output.splitlines() if line.startswith("track ")]
    assert lines and " → " in lines[0]
    assert "items would change" in result.output.splitlines()[-1]


def test_hand_edit_in_plex_becomes_override_and_is_left_alone(
    run: Callable[..., Path], plex_emulator: PlexEmulator
) -> None:
    from plexapi.server import PlexServer

    emu = plex_emulator
    config = run(mode="replace")
    pipeline(config)
    rk = next(iter(decisions(config.parent)))
    plex = PlexServer(emu.url, emu.token)
    track = plex.fetchItem(int(rk))  # the full item, so addGenre keeps the others
    track.addGenre("My Own Genre")
    edited = tuple(emu.library.track(int(rk)).tags["genre"])
    emu.clear_requests()
    for step in ("sync", "classify", "decide", "writeback"):
        assert genred(config, step).exit_code == 0
    assert tuple(emu.library.track(int(rk)).tags["genre"]) == edited
    assert not [p for p in emu.puts() if rk in p.query["id"][0].split(",")]
    with Store.open(config.parent / "data" / "genred.db") as store:
        origin, value = store.conn.execute(
            "SELECT o.origin, o.value FROM overrides o JOIN tracks t ON t.id = o.track_id "
            "WHERE t.source_id = ?",
            (rk,),
        ).fetchone()
    assert origin == "plex-edit" and "My Own Genre" in json.loads(value)


@pytest.mark.parametrize(
    "faults",
    [
        Faults(error_5xx_rate=0.3, error_status=503, seed=3),
        Faults(drop_rate=0.2, seed=4),
        Faults(put_504_rate=0.5, methods=frozenset({"PUT"}), seed=5),
        Faults(put_504_rate=0.5, put_504_after_apply=True, methods=frozenset({"PUT"}), seed=6),
    ],
    ids=["5xx", "drops", "504-not-applied", "504-applied"],
)
def test_faults_are_retried_and_the_store_stays_consistent(
    run: Callable[..., Path], plex_emulator: PlexEmulator, faults: Faults
) -> None:
    emu = plex_emulator
    config = run(mode="replace")
    emu.faults = faults
    for step in ("sync", "classify", "decide", "writeback"):
        result = genred(config, step)
        assert result.exit_code == 0, f"{step}: {result.output}"
    assert any(r.fault for r in emu.requests), "no fault was injected"
    emu.faults = Faults()
    # Nothing is marked written that Plex does not have.
    with Store.open(config.parent / "data" / "genred.db") as store:
        rows = store.conn.execute(
            "SELECT item_id, written FROM writebacks WHERE written IS NOT NULL"
        ).fetchall()
        assert store.integrity_ok()
    assert rows
    for rk, written in rows:
        assert folded(emu.library.track(int(rk)).tags.get("genre", [])) == folded(
            json.loads(written)
        )
    # A clean second run finishes whatever the faults left, and then all is written.
    assert genred(config, "writeback").exit_code == 0
    for rk, genres in decisions(config.parent).items():
        assert folded(emu.library.track(int(rk)).tags.get("genre", [])) == folded(genres)
    emu.clear_requests()
    assert genred(config, "writeback").exit_code == 0
    assert emu.puts() == []


def test_504_after_apply_exits_3_then_the_store_agrees_with_what_it_read(
    run: Callable[..., Path], plex_emulator: PlexEmulator
) -> None:
    """Plex applies an edit and the proxy in front answers 504: the write failed as far as
    genred knows. The run says so (exit 3, the items and why, runs.status partial); the next
    run reads Plex, finds the writes landed, and then the store's view of every track,
    album and artist is what Plex has, and no failure of an item that is right is left."""
    emu = plex_emulator
    config = run(mode="replace", levels="[track, album, artist]")
    for step in ("sync", "classify", "decide"):
        assert genred(config, step).exit_code == 0
    config.write_text(config.read_text().replace("attempts: 6", "attempts: 1"))
    emu.faults = Faults(
        put_504_rate=0.3, put_504_after_apply=True, methods=frozenset({"PUT"}), seed=6
    )
    first = genred(config, "writeback")
    assert first.exit_code == 3, first.output
    assert sum(r.fault == "504" for r in emu.requests) > 0
    listed = [line for line in first.output.splitlines() if line.startswith("  writeback ")]
    assert listed and all("PlexUnreachable" in line and "504" in line for line in listed)
    assert "items failed:" in first.output
    db = config.parent / "data" / "genred.db"
    with Store.open(db) as store:
        failed = store.conn.execute(
            "SELECT COUNT(*) FROM failures WHERE stage = 'writeback'"
        ).fetchone()[0]
        assert failed > 0
        last = store.conn.execute("SELECT status FROM runs ORDER BY id DESC").fetchone()
        assert last == ("partial",)

    emu.faults = Faults()
    emu.clear_requests()
    second = genred(config, "writeback")
    assert second.exit_code == 0, second.output
    assert emu.puts() == []  # every 504 had been applied: nothing is sent twice
    with Store.open(db) as store:
        rows = store.conn.execute(
            "SELECT source_id, genres, album_source_id, album_genres, artist_source_id, "
            "artist_genres FROM tracks WHERE removed = 0"
        ).fetchall()
        left = store.conn.execute("SELECT stage, item FROM failures").fetchall()
        last = store.conn.execute("SELECT status FROM runs ORDER BY id DESC").fetchone()
    lib = emu.library
    stale = [
        (rk, kind)
        for rk, genres, album, album_genres, artist, artist_genres in rows
        for kind, value, now in (
            ("track", genres, lib.track(int(rk)).tags.get("genre", [])),
            ("album", album_genres, lib.album(int(album)).tags.get("genre", [])),
            ("artist", artist_genres, lib.artist(int(artist)).tags.get("genre", [])),
        )
        if folded(json.loads(value)) != folded(now)
    ]
    assert stale == []
    assert left == [] and last == ("ok",)
