"""What the `tags` writeback's safe write costs: a checked copy renamed over each file
(`filewrite.replace_file`, flushed to disk, as genred writes) against the naive way,
mutagen's in-place save (fast, and a kill during it can leave a broken file).

40 FLAC files of 30 s stereo noise (~4 MB each) get a genre that outgrows their (zero)
padding, so the in-place save has to move the audio too. Prints files/s and MB/s for:
the plugin with fsync (the default), the plugin without fsync, and mutagen in place.

Run with `make bench` (or `pytest -m bench bench/bench_tags_writeback.py -s`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mutagen
import pytest

from genred.config import parse_config
from genred.hookspecs import PluginContext
from genred.records import Edit
from genred_plugins.folder.tags import TagsWriteback, TagsWritebackConfig
from tests.audio_files import stereo_tones, write_lossless

pytestmark = pytest.mark.bench

FILES = 40
SECONDS = 30.0
GENRES = ("Electronic", "Downtempo", "Trip-Hop", "Chillout")


def library(folder: Path) -> list[Path]:
    folder.mkdir()
    samples = stereo_tones(SECONDS, noise=0.3)
    paths = []
    for i in range(FILES):
        path = write_lossless(folder / f"{i:02}.flac", samples, 44100)
        audio = mutagen.File(path)
        audio["genre"] = ["x"]
        audio.save(padding=lambda _info: 0)
        paths.append(path)
    return paths


def with_plugin(folder: Path, paths: list[Path], fsync: bool) -> float:
    config = parse_config(json.dumps({"folders": [str(folder)]}), env={})
    plugin = TagsWriteback(TagsWritebackConfig(fsync=fsync), PluginContext(config))
    keys = [("track", str(p), "genre") for p in paths]
    before = plugin.read(keys)
    began = time.perf_counter()
    for path, key in zip(paths, keys, strict=True):
        sid = str(path)
        plugin.apply(
            Edit("track", "genre", (sid,), (), (), {sid: before[key]}, {sid: GENRES}), lock=True
        )
    return time.perf_counter() - began


def in_place(paths: list[Path]) -> float:
    began = time.perf_counter()
    for path in paths:
        audio = mutagen.File(path)
        audio["genre"] = list(GENRES)
        audio.save()
    return time.perf_counter() - began


def test_safe_tag_writes_against_mutagen_in_place(tmp_path: Path) -> None:
    results = {}
    for name in ("plugin, fsync", "plugin, no fsync", "mutagen in place"):
        folder = tmp_path / name.replace(" ", "").replace(",", "-")
        paths = library(folder)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        if name == "mutagen in place":
            seconds = in_place(paths)
        else:
            seconds = with_plugin(folder, paths, fsync=name == "plugin, fsync")
        assert all(mutagen.File(p)["genre"] == list(GENRES) for p in paths)
        results[name] = seconds
        print(
            f"{name:>18}: {FILES / seconds:7.1f} files/s, {megabytes / seconds:7.1f} MB/s "
            f"({seconds * 1000 / FILES:.1f} ms per {megabytes / FILES:.1f} MB file)"
        )
    print(
        f"the safe write costs {results['plugin, fsync'] / results['mutagen in place']:.1f}x "
        f"mutagen's in-place save ({results['plugin, no fsync'] / results['mutagen in place']:.1f}x "
        "without fsync)"
    )
