"""kill -9 in the middle of a `tags` writeback (a real `genred writeback` process) loses no
file: after every kill each file is the original, byte for byte, or the complete new one
(its new genres, the very same audio), never a broken one; runs after the kills finish
the job and `genred revert` then restores every original genre exactly."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile
from mutagen.id3 import ID3, TCON

from genred.testing import Harness
from genred_plugins.folder.filewrite import TEMP_TAG
from tests.audio_files import stereo_tones, write_lossless

pytestmark = pytest.mark.slow

FILES = 24
KILLS = 10
SECONDS = 20.0


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def genres_of(path: Path) -> list[str]:
    tags = mutagen.File(path).tags
    if isinstance(tags, ID3):
        return [v for frame in tags.getall("TCON") for v in frame.text]
    return list(tags.get("genre", []))


def genred(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "genred", *args, "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def temp_files(music: Path) -> list[Path]:
    return [p for p in music.iterdir() if TEMP_TAG in p.name]


def test_kill_9_during_a_tags_writeback_loses_no_file(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    files = []
    for i in range(FILES):  # 20 s of stereo noise each: a copy takes a moment
        path = write_lossless(
            music / f"{i:02}.{'flac' if i % 2 else 'wav'}",
            stereo_tones(SECONDS, seed=i, noise=0.3),
            44100,
        )
        audio = mutagen.File(path)
        if audio.tags is None:
            audio.add_tags()
        if path.suffix == ".wav":
            audio.tags.add(TCON(encoding=3, text=["electronica", "hip hop"]))
        else:
            audio["GENRE"] = ["electronica", "hip hop"]
        audio.save(padding=lambda _info: 0)  # no padding: the new tag moves the audio
        files.append(path)
    text = (
        f"data_dir: {json.dumps(str(tmp_path / 'data'))}\n"
        f"folders: [{json.dumps(str(music))}]\n"
        "plugins: {sources: {folder: {}}, writeback: {tags: {}}}\n"
        "writeback: {mode: append}\n"
        "logging: {level: warning}\n"
    )
    config = tmp_path / "genred.yaml"
    config.write_text(text)
    with Harness(tmp_path, text) as lib:
        lib.run("sync")
        lib.run("classify")
        lib.run("decide")
    original = {p: digest(p) for p in files}
    audio = {p: soundfile.read(p, dtype="int16")[0] for p in files}
    new_genres = ["electronica", "hip hop", "Electronic"]  # Hip-Hop is there as "hip hop"

    def check_every_file() -> tuple[int, int]:
        old = new = 0
        for path in files:
            if digest(path) == original[path]:
                old += 1
                continue
            # not the original: then the complete new file
            assert genres_of(path) == new_genres, path
            np.testing.assert_array_equal(soundfile.read(path, dtype="int16")[0], audio[path])
            new += 1
        return old, new

    rng = random.Random(7)
    kills = mid_write = 0
    for _ in range(KILLS):
        stale = set(temp_files(music))  # copies a killed write left (the next write removes them)
        target = rng.randrange(4)  # freeze at the copy of the 1st…4th file this run writes
        seen: set[Path] = set()
        process = genred(config, "writeback")
        deadline = time.monotonic() + 60
        # Polled without sleeping, and frozen with SIGSTOP the moment the chosen copy shows:
        # how fast a machine writes decides nothing (a fast disk wrote a whole run between
        # two sleeps); the SIGKILL then lands on a process caught mid-write.
        while process.poll() is None:
            assert time.monotonic() < deadline, "the writeback neither wrote nor finished"
            seen |= set(temp_files(music)) - stale
            if len(seen) > target:
                os.kill(process.pid, signal.SIGSTOP)
                break
        if process.poll() is not None:
            break  # it finished before this kill: nothing was left to write
        caught = bool(set(temp_files(music)) - stale)  # a file's new copy was being made
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
        kills += 1
        mid_write += caught
        old, new = check_every_file()
        assert old + new == FILES
    print(f"{kills} kills, {mid_write} of them while a file was being written")
    assert kills == KILLS, f"the writeback finished after {kills} kills"
    assert mid_write >= 3, f"only {mid_write} kills landed mid-write"

    finished = genred(config, "writeback")
    _out, err = finished.communicate(timeout=120)
    assert finished.returncode == 0, err.decode()
    assert check_every_file() == (0, FILES)
    assert temp_files(music) == []  # each killed write's copy went with the next write

    reverted = genred(config, "revert")
    _out, err = reverted.communicate(timeout=120)
    assert reverted.returncode == 0, err.decode()
    for path in files:
        assert genres_of(path) == ["electronica", "hip hop"], path
        np.testing.assert_array_equal(soundfile.read(path, dtype="int16")[0], audio[path])
    with Harness(tmp_path, text) as lib:
        rows = lib.store.conn.execute(
            "SELECT COUNT(*), COUNT(reverted_at), COUNT(pending) FROM writebacks"
        ).fetchone()
        assert rows == (FILES, FILES, 0)
        assert lib.failures("writeback") == {}
