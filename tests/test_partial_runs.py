"""A stage that finishes with failed items: exit 3, the items and why, `partial` in runs.

Every stage command goes through `commands.context.run_stage` and `pipeline.jobs.run_job`,
so each stage with per-item failures is checked here through the real CLI: extract (a
file that is not audio), classify (a classifier that cannot answer for some tracks) and
revert (Plex refusing the writes); writeback is in test_plex_roundtrip.py (504s).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner, Result

from genred.cli import cli
from genred.pipeline.jobs import failed_items, run_job
from genred.store import Store
from tests.emulators.plex import Faults, PlexEmulator
from tests.test_plugins import make_dist

PLUGINS = '''
from genred.api import Prediction, Unclassified, GenredError


class ShyClassifier:
    """Says "Jazz" for every track, except those whose title has "shy" in it."""

    version = "1"

    def __init__(self, settings, context):
        pass

    def classify(self, tracks, *, store=None, cancel=None):
        for t in tracks:
            if "shy" in (t.title or ""):
                yield Unclassified(t.id, GenredError(f"{t.title}: the model would not say"))
            else:
                yield Prediction(t.id, "genre", (("Jazz", 0.9),))
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    site = tmp_path / "site"
    site.mkdir()
    make_dist(
        site,
        "genred_partial_test",
        "genred_partial_test",
        PLUGINS,
        "[genred.classifiers]\nshy = genred_partial_test:ShyClassifier\n"
        "[genred.extractors]\nfake = tests.fake_extractors:PluginFakeExtractor\n",
    )
    monkeypatch.syspath_prepend(str(site))
    yield
    import sys

    sys.modules.pop("genred_partial_test", None)


def genred(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)], catch_exceptions=False)


def folder_config(tmp_path: Path, plugins: str) -> Path:
    music = tmp_path / "music"
    music.mkdir(exist_ok=True)
    t = np.arange(8000) / 8000
    for name in ("one", "two"):
        sf.write(music / f"{name}.wav", (0.3 * np.sin(2 * np.pi * 330 * t)).astype("f4"), 8000)
    (music / "readme.mp3").write_text("not audio at all\n" * 50)
    path = tmp_path / "genred.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            data_dir: {tmp_path / "data"}
            folders: [{music}]
            extract: {{workers: 1}}
            plugins:
              sources: [folder]
            {textwrap.indent(plugins, "  ")}
            logging: {{level: error}}
            """
        )
    )
    return path


def last_run(config: Path, job: str) -> tuple[str, dict[str, int]]:
    with Store.open(config.parent / "data" / "genred.db") as store:
        status, counts = store.conn.execute(
            "SELECT status, counts FROM runs WHERE job = ? ORDER BY id DESC", (job,)
        ).fetchone()
    return status, json.loads(counts)


def test_extract_with_a_file_that_is_not_audio_exits_3_and_names_it(
    tmp_path: Path, plugins: None
) -> None:
    config = folder_config(tmp_path, "extractors: [fake]")
    assert genred(config, "sync").exit_code == 0
    result = genred(config, "extract")
    assert result.exit_code == 3, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("  extract:fake")]
    assert len(failed) == 1
    assert "[permanent]: NotAudio: " in failed[0] and "readme.mp3" in failed[0]
    assert "1 item failed:" in result.output
    assert last_run(config, "extract") == (
        "partial",
        {"fake.considered": 3, "fake.extracted": 2, "fake.failed": 1},
    )
    # recorded once: the next run does not try it again (the file did not change)
    again = genred(config, "extract")
    assert again.exit_code == 0, again.output
    assert last_run(config, "extract") == (
        "ok",
        {"fake.considered": 0, "fake.extracted": 0, "fake.failed": 0},
    )


def test_classify_that_could_not_answer_for_a_track_exits_3(tmp_path: Path, plugins: None) -> None:
    config = folder_config(tmp_path, "classifiers: [shy]")
    (tmp_path / "music" / "shy.wav").write_bytes((tmp_path / "music" / "one.wav").read_bytes())
    assert genred(config, "sync").exit_code == 0
    result = genred(config, "classify")
    assert result.exit_code == 3, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("  classify:shy")]
    assert len(failed) == 1
    assert "[transient]: GenredError: shy: the model would not say" in failed[0]
    status, counts = last_run(config, "classify")
    assert status == "partial" and counts["shy.failed"] == 1 and counts["shy.predicted"] == 3


def test_revert_that_plex_refuses_exits_3(tmp_path: Path, plex_emulator: PlexEmulator) -> None:
    from tests.test_plex_roundtrip import write_config

    emu = plex_emulator
    config = write_config(tmp_path, emu, mode="replace")
    for step in ("sync", "classify", "decide", "writeback"):
        assert genred(config, step).exit_code == 0
    config.write_text(config.read_text().replace("attempts: 6", "attempts: 1"))
    emu.faults = Faults(error_5xx_rate=1.0, error_status=503, methods=frozenset({"PUT"}))
    result = genred(config, "revert")
    assert result.exit_code == 3, result.output
    listed = [line for line in result.output.splitlines() if line.startswith("  revert track ")]
    assert listed and all("PlexUnreachable" in line and "503" in line for line in listed)
    status, counts = last_run(config, "revert")
    assert status == "partial" and counts["failed"] > 0 and counts["reverted"] == 0
    emu.faults = Faults()
    assert genred(config, "revert").exit_code == 0
    with Store.open(config.parent / "data" / "genred.db") as store:
        assert store.conn.execute("SELECT COUNT(*) FROM failures").fetchone() == (0,)


def test_a_run_with_failed_items_is_recorded_partial_for_the_daemon_too() -> None:
    store = Store.memory()
    assert failed_items({"a.failed": 2, "b.failed": 0, "failed": 1, "written": 7}) == 3
    run_job(store, "classify", "schedule", lambda: {"x.considered": 3, "x.failed": 1})
    run_job(store, "decide", "schedule", lambda: {"decided": 3})
    rows = store.conn.execute("SELECT job, status FROM runs ORDER BY id").fetchall()
    assert rows == [("classify", "partial"), ("decide", "ok")]
