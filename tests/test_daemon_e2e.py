"""End to end: `genred run` as a subprocess against the Plex emulator and real folders.

Each test owns the daemon's NOTIFY_SOCKET (see tests/daemon_process.py), reads its JSON
log and its database from outside, and checks what crossed the wire in the emulator's
request log.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import textwrap
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES
from tests.daemon_process import GENRED, DaemonProcess, query, runs, wait_until
from tests.emulators.plex import Faults, PlexEmulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]  # real `genred run` processes

AUDIO = FIXTURES / "audio" / "debian" / "wesnoth_revelation.ogg"
SECRET = "hook-secret-4f9a"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    path.chmod(0o600)
    return path


def tagged_copy(
    dest: Path, staging_dir: Path, *, title: str, artist: str, album: str, genre: str
) -> Path:
    """A real Ogg Vorbis file with the given tags, written in `staging_dir`, moved in whole."""
    from mutagen.oggvorbis import OggVorbis

    staging = staging_dir / f"staging-{dest.name}"
    shutil.copyfile(AUDIO, staging)
    audio = OggVorbis(staging)
    audio.update({"title": title, "artist": artist, "album": album, "genre": genre})
    audio.save()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staging, dest)
    return dest


def plex_config(
    tmp_path: Path,
    emu: PlexEmulator,
    *,
    web_port: int | None = None,
    writeback: str = "",
    schedule: str = "",
) -> Path:
    music = tmp_path / "plex-music"
    web = (
        f"web: {{enabled: true, port: {web_port}, webhook_secret: {SECRET}, webhook_delay: 0.2s}}"
        if web_port
        else "web: {enabled: false}"
    )
    return write(
        tmp_path / "genred.yaml",
        f"""
        data_dir: {tmp_path / "data"}
        plex:
          url: {emu.url}
          token: {emu.token}
          path_map: {{/data/music: {music}}}
        folders: [{music}]
        plugins:
          sources:
            plex: {{scan_wait: 20s, retries: {{attempts: 2, backoff_initial: 0.1}}}}
          classifiers: [taxonomy]
          writeback:
            plex: {{retries: {{attempts: 2, backoff_initial: 0.1}}}}
        schedule:
          first_sync_after: 0.2s
          {schedule or "sync: {every: 1h}"}
        watch: {{settle: 0.5s}}
        writeback: {{mode: replace, levels: [track]{writeback}}}
        {web}
        """,
    )


def chain_done(db: Path) -> bool:
    """The first sync and its downstream stages (ending with writeback) finished."""
    return any(r[1] == "writeback" and r[3] == "ok" for r in runs(db))


def put_ids(emu: PlexEmulator) -> list[str]:
    """Every item id named by an edit PUT the emulator received, in order."""
    ids: list[str] = []
    for record in emu.puts():
        for value in record.query.get("id", []):
            ids.extend(value.split(","))
    return [i for i in ids if i]


# --------------------------------------------------------------------------- notify, stop


def test_ready_watchdog_status_and_sigterm(tmp_path: Path) -> None:
    (tmp_path / "music").mkdir()
    config = write(
        tmp_path / "genred.yaml",
        f"""
        data_dir: {tmp_path / "data"}
        folders: [{tmp_path / "music"}]
        web: {{enabled: false}}
        """,
    )
    with DaemonProcess(config, watchdog_usec=1_000_000) as daemon:
        daemon.wait_ready()
        ready_at = next(t for t, m in daemon.notifications if "READY=1" in m.split("\n"))
        wait_until(lambda: daemon.count_notify("WATCHDOG=1") >= 4, 10, "four WATCHDOG=1 pings")
        pings = [t for t, m in daemon.notifications if m == "WATCHDOG=1"]
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        # Every 0.5 s (half of WATCHDOG_USEC); generous bound for a loaded CI machine.
        assert max(gaps) < 2.0, f"pings must keep coming: {gaps}"
        ready = next(m for _t, m in daemon.notifications if "READY=1" in m.split("\n"))
        assert "STATUS=idle" in ready
        assert all(t >= ready_at for t in pings)
        began = time.monotonic()
        assert daemon.stop(timeout=15) == 0
        assert time.monotonic() - began < 10
        stopping = [m for m in daemon.messages() if "STOPPING=1" in m.split("\n")]
        assert stopping and "STATUS=stopping (SIGTERM)" in stopping[0]


def test_second_instance_is_refused(tmp_path: Path) -> None:
    config = write(
        tmp_path / "genred.yaml",
        f"""
        data_dir: {tmp_path / "data"}
        web: {{enabled: false}}
        """,
    )
    with DaemonProcess(config) as first:
        first.wait_ready()
        second = subprocess.run(
            [*GENRED, "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        out = second.stdout + second.stderr
        assert "already running" in out and f"pid {first.proc.pid}" in out
        status = subprocess.run(
            [*GENRED, "status", "--config", str(config)], capture_output=True, text=True
        )
        assert f"daemon: running (pid {first.proc.pid})" in status.stdout
        assert first.stop() == 0
    status = subprocess.run(
        [*GENRED, "status", "--config", str(config)], capture_output=True, text=True
    )
    assert "daemon: not running" in status.stdout


# --------------------------------------------------------------------------- reload


def test_config_edits_reschedule_without_restart_and_bad_edits_are_refused(
    tmp_path: Path,
) -> None:
    def text(every: str, extra: str = "") -> str:
        return (
            f"data_dir: {tmp_path / 'data'}\n"
            "web: {enabled: false}\n"
            "schedule:\n"
            f"  decide: {{every: {every}}}\n" + extra
        )

    config = tmp_path / "genred.yaml"

    def save(content: str) -> None:
        """As an editor saves: a new file renamed over the old one (never half-written)."""
        staged = tmp_path / ".genred.yaml.new"
        staged.write_text(content)
        staged.chmod(0o600)
        os.replace(staged, config)

    save(text("1h"))
    db = tmp_path / "data" / "genred.db"
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        pid = daemon.proc.pid
        assert runs(db, "decide") == []

        save(text("1s"))  # a plain edit of the file: no signal
        wait_until(lambda: daemon.events("config reloaded"), 15, "the reload after the edit")
        reloaded = daemon.events("config reloaded")[0]
        assert reloaded["rescheduled"] == ["decide: every 1h → every 1s"]
        assert reloaded["plugins_rebuilt"] == []
        wait_until(lambda: len(runs(db, "decide")) >= 2, 15, "decide runs every second")
        assert all(r[2] == "schedule" and r[3] == "ok" for r in runs(db, "decide"))
        messages = daemon.messages()
        reloading = next(i for i, m in enumerate(messages) if "RELOADING=1" in m)
        assert any("READY=1" in m for m in messages[reloading + 1 :])

        save(text("1s", "writeback:\n  mode: sideways\n"))
        wait_until(
            lambda: daemon.events("config edit refused; the running config stays"),
            15,
            "the refusal of the bad edit",
        )
        problem = daemon.events("config edit refused; the running config stays")[0]["problem"]
        assert problem.startswith(f"{config}:6 writeback.mode:"), problem
        assert "'append', 'replace' or 'fill'" in problem
        before = len(runs(db, "decide"))
        wait_until(lambda: len(runs(db, "decide")) > before + 1, 15, "decide still running")
        assert not daemon.exited() and daemon.proc.pid == pid

        save(text("1h"))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: len(daemon.events("config reloaded")) >= 2, 15, "the second reload")
        assert daemon.events("config reloaded")[-1]["rescheduled"] == [
            "decide: every 1s → every 1h"
        ]
        assert daemon.stop() == 0


# --------------------------------------------------------------------------- Plex


def test_new_file_in_watched_folder_reaches_plex(
    tmp_path: Path, plex_emulator: PlexEmulator
) -> None:
    emu = plex_emulator
    config = plex_config(tmp_path, emu)
    db = tmp_path / "data" / "genred.db"
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(lambda: chain_done(db), 90, "the first sync → classify → decide → writeback")
        emu.clear_requests()
        dropped_at = time.monotonic()
        tagged_copy(
            tmp_path / "plex-music" / "New Arrivals" / "revelation.ogg",
            tmp_path,
            title="Revelation (dropped in)",
            artist="Wesnoth Ensemble",
            album="New Arrivals",
            genre="electronica",
        )

        def written() -> list[str] | None:
            rows = query(
                db,
                "SELECT source_id FROM tracks WHERE title = 'Revelation (dropped in)' AND removed = 0",
            )
            if not rows:
                return None
            track = emu.library.track(int(rows[0][0]))
            return track.genres if "Electronic" in track.genres else None

        genres = wait_until(written, 30, "the new track's genres in Plex")
        took = time.monotonic() - dropped_at
        assert genres == ["Electronic"]
        refreshes = [r for r in emu.requests if r.path.endswith("/refresh")]
        assert [r.query.get("path") for r in refreshes] == [["/data/music/New Arrivals"]]
        key = query(db, "SELECT source_id FROM tracks WHERE title = 'Revelation (dropped in)'")[0][
            0
        ]
        assert key in put_ids(emu)
        triggers = {r[2] for r in runs(db)}
        assert "watch" in triggers and "chain" in triggers
        assert took < 20, f"settle 0.5 s plus one job cycle took {took:.1f} s"
        assert daemon.stop() == 0


def test_plex_webhook_triggers_a_sync_and_a_wrong_secret_does_not(
    tmp_path: Path, plex_emulator: PlexEmulator
) -> None:
    emu = plex_emulator
    port = free_port()
    config = plex_config(tmp_path, emu, web_port=port)
    db = tmp_path / "data" / "genred.db"
    payload = {
        "event": "library.new",
        "user": True,
        "owner": True,
        "Server": {"title": "emulator", "uuid": "x"},
        "Metadata": {"librarySectionType": "artist", "librarySectionID": 3, "type": "track"},
    }
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(lambda: chain_done(db), 90, "the first sync and its downstream stages")
        syncs = len(runs(db, "sync"))
        base = f"http://127.0.0.1:{port}/webhooks/plex"

        wrong = httpx.post(f"{base}/not-the-secret", files={"payload": (None, json.dumps(payload))})
        assert wrong.status_code == 404
        time.sleep(1.5)  # longer than webhook_delay: a sync would have started
        assert len(runs(db, "sync")) == syncs

        right = httpx.post(f"{base}/{SECRET}", files={"payload": (None, json.dumps(payload))})
        assert right.status_code == 200
        wait_until(lambda: len(runs(db, "sync")) > syncs, 15, "the sync the webhook asked for")
        new = runs(db, "sync")[syncs:]
        assert [r[2] for r in new] == ["webhook"], new
        wait_until(lambda: runs(db, "sync")[-1][3] == "ok", 15, "the requested sync to finish")
        assert SECRET not in daemon.output()
        assert daemon.stop() == 0


def test_stop_and_kill_during_writeback_never_repeat_a_write(
    tmp_path: Path, plex_emulator: PlexEmulator
) -> None:
    emu = plex_emulator
    emu.faults = Faults(latency_ms=150, methods=frozenset({"PUT"}))
    config = plex_config(tmp_path, emu, writeback=", batch_size: 5")
    db = tmp_path / "data" / "genred.db"

    # 1. SIGTERM in the middle of writeback: the request in hand finishes, exit 0 promptly.
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(lambda: len(emu.puts()) >= 3, 90, "writeback under way")
        began = time.monotonic()
        assert daemon.stop(timeout=30) == 0
        assert time.monotonic() - began < 10
    assert runs(db, "writeback")[-1][3] == "interrupted"
    after_term = len(emu.puts())

    # 2. kill -9 in the middle of the resumed writeback.
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(lambda: len(emu.puts()) >= after_term + 3, 60, "the writeback resumed")
        daemon.kill()
    assert runs(db, "writeback")[-1][3] == "running"  # what a killed process leaves

    # 3. Restart: the stale run is closed, writeback resumes and finishes.
    emu.faults = Faults()
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(
            lambda: runs(db, "writeback")[-1][3] == "ok", 90, "writeback finished after restart"
        )
        assert daemon.stop() == 0

    statuses = [r[3] for r in runs(db, "writeback")]
    assert statuses[:2] == ["interrupted", "interrupted"] and statuses[-1] == "ok"
    ids = put_ids(emu)
    repeated = {i: n for i, n in Counter(ids).items() if n > 1}
    assert not repeated, f"items written more than once: {repeated}"
    pending = query(db, "SELECT COUNT(*) FROM writebacks WHERE pending IS NOT NULL")[0][0]
    assert pending == 0
    written = query(db, "SELECT COUNT(*) FROM writebacks WHERE written IS NOT NULL")[0][0]
    assert written == len(ids)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


# --------------------------------------------------------------------------- folder source


def test_folder_source_move_keeps_identity_and_delete_marks_removed(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    config = write(
        tmp_path / "genred.yaml",
        f"""
        data_dir: {tmp_path / "data"}
        folders: [{music}]
        plugins:
          sources: [folder]
          classifiers: [taxonomy]
        schedule: {{first_sync_after: 0.2s}}
        watch: {{settle: 0.5s}}
        web: {{enabled: false}}
        """,
    )
    db = tmp_path / "data" / "genred.db"
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(lambda: runs(db, "sync"), 30, "the first sync")
        first = tagged_copy(
            music / "Inbox" / "revelation.ogg",
            tmp_path,
            title="Revelation",
            artist="Wesnoth Ensemble",
            album="Battle for Wesnoth",
            genre="hip hop",
        )

        def decided() -> list[tuple]:
            return query(
                db,
                "SELECT t.id, t.path, d.genres FROM tracks t JOIN decisions d ON d.track_id = t.id "
                "WHERE t.removed = 0",
            )

        rows = wait_until(decided, 30, "the dropped file synced and decided")
        track_id, path, genres = rows[0]
        assert path == str(first) and json.loads(genres) == ["Hip-Hop"]

        moved = music / "Hip-Hop" / "Wesnoth" / "revelation.ogg"
        moved.parent.mkdir(parents=True)
        first.rename(moved)
        wait_until(
            lambda: (
                query(db, "SELECT path FROM tracks WHERE id = ?", (track_id,))[0][0] == str(moved)
            ),
            30,
            "the move to reach the store",
        )
        assert query(db, "SELECT COUNT(*) FROM tracks")[0][0] == 1  # no duplicate
        assert decided() == [(track_id, str(moved), genres)]  # the decision stayed with it

        moved.unlink()
        wait_until(
            lambda: query(db, "SELECT removed FROM tracks WHERE id = ?", (track_id,))[0][0] == 1,
            30,
            "the deletion to mark the track removed",
        )
        assert daemon.stop() == 0


def test_tags_writeback_in_the_daemon_does_not_set_off_the_watcher(tmp_path: Path) -> None:
    """The daemon writes genres into the files; its watcher sees the writes and must not
    take them for changes (else: sync → classify → decide → writeback, again and again)."""
    from mutagen.flac import FLAC

    from tests.audio_files import stereo_tones, write_lossless

    music = tmp_path / "music"
    music.mkdir()
    files = []
    for i in range(3):
        path = write_lossless(music / f"{i}.flac", stereo_tones(1.0, seed=i), 44100)
        audio = FLAC(path)
        audio["genre"] = ["hip hop"]
        audio["title"] = [f"Track {i}"]
        audio.save()
        files.append(path)
    config = write(
        tmp_path / "genred.yaml",
        f"""
        data_dir: {tmp_path / "data"}
        folders: [{music}]
        plugins:
          sources: [folder]
          classifiers: [taxonomy]
          writeback: [tags]
        writeback: {{mode: replace}}
        schedule: {{first_sync_after: 0.2s}}
        watch: {{settle: 0.5s}}
        web: {{enabled: false}}
        """,
    )
    db = tmp_path / "data" / "genred.db"

    def written() -> list[tuple]:
        return [r for r in runs(db, "writeback") if json.loads(r[4] or "{}").get("written")]

    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        wait_until(written, 30, "the chained writeback into the files")
        assert json.loads(written()[0][4])["written"] == 3
        assert all(FLAC(p)["genre"] == ["Hip-Hop"] for p in files)
        # a person's edit now: the watcher must report it, and it alone
        audio = FLAC(files[1])
        audio["title"] = ["Renamed"]
        audio.save()
        watched = wait_until(
            # the run is recorded when it starts: wait for it to end (its counts come then)
            lambda: [r for r in runs(db, "sync") if "watch" in r[2] and r[3] != "running"],
            30,
            "the edit's sync",
        )
        assert json.loads(watched[0][4])["seen"] == 1, watched  # not genred's three writes
        assert json.loads(watched[0][4])["changed"] == 1
        assert len(written()) == 1  # and nothing was written again
        assert daemon.stop() == 0


# --------------------------------------------------------------------------- saved playlists


def test_a_saved_playlist_is_made_soon_after_the_first_sync_then_on_its_schedule(
    tmp_path: Path,
) -> None:
    music = tmp_path / "music"
    for n, genre in enumerate(["Ambient", "Ambient", "Ambient", "Rock"]):
        tagged_copy(
            music / f"a{n}" / f"t{n}.ogg", tmp_path, title=f"Song {n}", artist=f"Artist {n}",
            album=f"Album {n}", genre=genre,
        )  # fmt: skip
    config = write(
        tmp_path / "genred.yaml",
        f"""
        data_dir: {tmp_path / "data"}
        folders: [{music}]
        plugins:
          sources: [folder]
          classifiers: [taxonomy]
        schedule: {{first_sync_after: 0.2s}}
        playlists:
          first_run_after: 0.5s
          saved:
            Calm: {{prompt: "ambient, 10 songs", every: 1d}}
        web: {{enabled: false}}
        """,
    )
    db = tmp_path / "data" / "genred.db"
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        done = wait_until(
            lambda: [r for r in runs(db, "playlists:Calm") if r[3] == "ok"], 60, "the playlist job"
        )
        assert done[0][2] == "first"
        counts = json.loads(done[0][4])
        assert counts["playlists"] == 1 and counts["tracks"] == 3
        assert query(db, "SELECT name, saved FROM playlists") == [("Calm", 1)]
        assert daemon.has_notify("STATUS=playlists:Calm starting (first)")
        assert daemon.stop() == 0
