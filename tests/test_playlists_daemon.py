"""Saved prompts as daemon jobs: the `playlists` stage, a job per saved playlist on its own
schedule (locked, recorded in `runs`, deferred on a long 429), and `genred playlist …`."""

from __future__ import annotations

import json
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from genred.cli import cli
from genred.config import ConfigError, parse_config
from genred.pipeline.playlists import saved_jobs
from genred.scheduler import JobScheduler
from genred.stages import item_jobs, lock_of
from genred.store import Store
from genred.testing import Harness
from genred.worker import Runtime, Worker
from tests.emulators.plex import PlexLibrary
from tests.emulators.spotify import Catalogue, FaultRule, SpotifyEmulator
from tests.playlist_setup import catalogue_records, decided, spotify_target

SAVED = """
playlists:
  saved:
    Focus: {prompt: "calm electronic, 10 songs", every: 1d}
    Night: {prompt: "ambient", cron: "0 22 * * *", size: 12}
    Adhoc: {prompt: "rock"}
"""


@pytest.fixture(scope="module")
def records() -> list[Any]:
    return PlexLibrary.from_freemusicc(limit=1200, audio_map=False).track_records()


def test_saved_playlists_with_a_schedule_become_jobs(tmp_path: Path) -> None:
    config = parse_config(f"data_dir: {tmp_path}\n{SAVED}", env={})
    jobs = saved_jobs(config)
    assert sorted(jobs) == ["playlists:Focus", "playlists:Night"]
    assert (
        jobs["playlists:Focus"][0].every is not None
        and jobs["playlists:Night"][0].cron == "0 22 * * *"
    )
    assert jobs["playlists:Night"][1] == {"name": "Night"}
    assert lock_of("playlists:Focus") == "playlists" and lock_of("playlists") == "playlists"
    scheduler = JobScheduler(lambda stage, trigger: None, run_item=lambda job, trigger: None)
    items = {job: schedule for job, (_stage, schedule, _opts) in item_jobs(config).items()}
    scheduler.start(config.schedule, first_sync_in=None, items=items)
    try:
        assert {"playlists:Focus", "playlists:Night"} <= set(scheduler.next_runs())
        changed = scheduler.apply_items({"playlists:Focus": items["playlists:Focus"]})
        assert changed == ["playlists:Night: cron 0 22 * * * → none"]
        assert "playlists:Night" not in scheduler.next_runs()
    finally:
        scheduler.shutdown()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("playlists: {saved: {X: {prompt: ''}}}", "at least 1 character"),
        (
            "playlists: {saved: {X: {prompt: a, every: 1d, cron: '0 6 * * *'}}}",
            "give 'every' or 'cron', not both",
        ),
        ("playlists: {saved: {X: {prompt: a, cron: 'at six'}}}", "not a valid crontab line"),
        ("playlists: {saved: {Focus: {prompt: a}, focus: {prompt: b}}}", "are the same name"),
        ("playlists: {rank: best}", "'score' or 'llm'"),
    ],
)
def test_playlist_config_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(f"data_dir: {tmp_path}\n{text}", str(tmp_path / "genred.yaml"), env={})
    assert "playlists" in str(info.value.issues[0])


def test_the_stage_creates_then_refreshes_then_rereads_an_edited_prompt(
    tmp_path: Path, records: list[Any]
) -> None:
    with Harness(tmp_path, SAVED) as h:
        h.add_tracks(records, source="plex")
        decided(h)
        counts = h.run("playlists", name="Focus")
        assert counts["playlists"] == 1 and counts["tracks"] == 10 and counts["failed"] == 0
        row = h.store.conn.execute("SELECT name, saved, head FROM playlists").fetchall()
        assert row == [("Focus", 1, 1)]
        h.run("playlists", name="Focus")  # the refresh (a draw)
        h.run("playlists", name="Focus")  # the same day again: the same draw, no new version
        reasons = [r[0] for r in h.store.conn.execute("SELECT reason FROM playlist_versions")]
        assert reasons == ["create", f"refresh {datetime.now().astimezone().date().isoformat()}"]
        edited = parse_config(
            f"data_dir: {h.config.data_dir}\n"
            + SAVED.replace("calm electronic, 10 songs", "upbeat rock, 10 songs"),
            env={},
        )
        h.config = edited
        h.run("playlists", name="Focus")
        reasons = [
            r[0]
            for r in h.store.conn.execute("SELECT reason FROM playlist_versions ORDER BY number")
        ]
        assert reasons[-1] == "prompt edited" and len(reasons) == 3
        prompt = h.store.conn.execute("SELECT prompt FROM playlists").fetchone()[0]
        assert prompt == "upbeat rock, 10 songs"


def test_a_saved_playlist_that_fails_is_recorded_and_the_others_go_on(
    tmp_path: Path, records: list[Any]
) -> None:
    config = SAVED.replace('Adhoc: {prompt: "rock"}', 'Adhoc: {prompt: "rock", targets: [nowhere]}')
    with Harness(tmp_path, config) as h:
        h.add_tracks(records, source="plex")
        decided(h)
        counts = h.run("playlists")
        assert counts["playlists"] == 2 and counts["failed"] == 1
        assert h.failures("playlists") == {
            "Adhoc": "PlaylistError: plugin 'nowhere' (playlists) is not available: it is not enabled "
            "in the config (enabled playlist targets: none)"
        }


def test_a_long_429_defers_the_job_to_the_time_spotify_names(tmp_path: Path) -> None:
    catalogue = Catalogue.from_freemusicc(limit=600)
    config = 'playlists: {saved: {Focus: {prompt: "electronic, 10 songs", every: 1d, targets: [spotify]}}}'
    with SpotifyEmulator(catalogue) as emu, Harness(tmp_path, config) as h:
        h.add_tracks(catalogue_records(catalogue, 300), source="folder")
        decided(h)
        spotify_target(h, emu)
        emu.faults.add(FaultRule.throttle("/v1/search", retry_after=7200, times=1, after=3))
        later: list[tuple[str, Any]] = []
        worker = Worker(lambda: Runtime(h.config, h.plugins), threading.Event())
        worker.run_at = lambda job, when: later.append((job, when))
        worker.item("playlists:Focus")
        ((job, when),) = later
        assert job == "playlists:Focus"
        with Store.open(h.config.db_path) as store:
            run = store.conn.execute("SELECT job, status, error FROM runs").fetchone()
        assert run[0] == "playlists:Focus" and run[1] == "failed"
        assert "Retry-After 7200 s" in run[2] and "deferred until" in run[2]
        seconds = (when - datetime.now(UTC)).total_seconds()
        assert 7100 < seconds <= 7200
        worker.item("playlists:Focus")  # the time came: the fault is spent, the push goes on
        assert later[1:] == []
        assert len(emu.playlists) == 1


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "genred.yaml"
    path.write_text(textwrap.dedent(text))
    path.chmod(0o600)
    return path


def test_the_playlist_commands(tmp_path: Path, records: list[Any]) -> None:
    config = write(tmp_path, f"data_dir: {tmp_path / 'data'}\n")
    with Harness(tmp_path) as h:
        h.add_tracks(records, source="plex")
        decided(h)
    runner = CliRunner()

    def genred(*args: str, input: str | None = None) -> Any:
        return runner.invoke(cli, [*args, "--config", str(config)], input=input)

    dry = genred("playlist", "create", "calm electronic, 12 songs", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("dry run: 12 tracks")
    assert (
        "note: no LLM is configured (plugins.llm): the rules parser read the prompt" in dry.output
    )
    assert "   1. " in dry.output and genred("playlist", "list").output.startswith(
        "no playlists yet"
    )
    made = genred("playlist", "create", "calm electronic, 12 songs", "--name", "Calm")
    assert made.exit_code == 0 and made.output.startswith("Calm: 12 tracks")
    shown = genred("playlist", "show", "Calm")
    assert "intent: Electronic · calm" in shown.output and " *  1 " in shown.output
    as_json = json.loads(genred("playlist", "show", "calm", "--json").output)
    assert as_json["name"] == "Calm" and len(as_json["tracks"]) == 12
    refined = genred("playlist", "refine", "Calm", "no ambient")
    assert refined.exit_code == 0, refined.output
    assert "changed exclude_genres: (any) → Ambient" in refined.output
    assert ("  + " in refined.output) == ("  − " in refined.output)
    assert genred("playlist", "undo", "Calm").exit_code == 0
    listed = genred("playlist", "list").output
    assert listed.splitlines()[1].split()[:4] == [
        "Calm",
        "12",
        listed.splitlines()[1].split()[2],
        "1/2",
    ]
    pushed = genred("playlist", "push", "Calm")
    assert "'Calm' has no targets" in pushed.output
    edited = genred("playlist", "edit", "Calm", "--set", "year_min=2010")
    assert edited.exit_code == 0 and "changed year_min: (any) → 2010" in edited.output
    bad = genred("playlist", "edit", "Calm", "--set", "tempo=fast")
    assert bad.exit_code == 2 and "unknown intent fields ['tempo']" in bad.output
    missing = genred("playlist", "refine", "Nope", "x")
    assert (
        missing.exit_code == 1
        and "error: no playlist named 'Nope' (there are: Calm)" in missing.output
    )
    empty = genred("playlist", "create", "")
    assert empty.exit_code == 1 and "the prompt is empty" in empty.output
    gone = genred("playlist", "delete", "Calm")
    assert gone.exit_code == 0 and "'Calm' deleted from genred" in gone.output
    with Store.open(tmp_path / "data" / "genred.db") as store:
        jobs = [r[0] for r in store.conn.execute("SELECT DISTINCT job FROM runs ORDER BY id")]
    assert "playlists:Calm" in jobs


def test_a_saved_playlist_before_the_first_sync_is_tried_again_soon(tmp_path: Path) -> None:
    from genred.errors import RetryLater

    with Harness(tmp_path, SAVED) as h:
        with pytest.raises(
            RetryLater, match="the library is empty: run `genred sync` first; tried again at"
        ) as info:
            h.run("playlists", name="Focus")
        seconds = (info.value.retry_at - datetime.now(UTC)).total_seconds()
        assert 500 < seconds <= 600
        assert h.store.conn.execute("SELECT COUNT(*) FROM playlists").fetchone()[0] == 0
