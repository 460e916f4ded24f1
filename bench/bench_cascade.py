"""How much of a library the decide cascade sends to the audio step.

freemusi.cc's 21.5k tracks through the real taxonomy and llm-metadata classifiers (the
real groq plugin against the LLM emulator, its oracle 10 % wrong, no rate limits: only
the answers matter here), then the classify stage's cascade gate with the cascade of
config/genred.example.yaml (library tags + LLM first, accept 0.7; audio after): how many
tracks would the audio classifiers be asked about, compared with the naive way (every
track through every classifier). Also: how many the first step decides, and the share
of those decisions that are right (the top genre among the track's true genres).

Run with `make bench` (or `pytest -m bench bench/bench_cascade.py -s`).
"""

from __future__ import annotations

import time

import pytest

from genred.config import DecideConfig, parse_config
from genred.hookspecs import PluginContext
from genred.loader import LoadedPlugins
from genred.pipeline.classify import cascade_gate, classify
from genred.pipeline.decide import decide
from genred.taxonomy import default_taxonomy
from genred_plugins.llm.metadata import LLMMetadataClassifier
from genred_plugins.taxonomy_classifier import TaxonomyClassifier
from tests.emulators.llm import UNLIMITED, FakeClock, GroundTruth, LLMEmulator, Noise
from tests.emulators.llm.fixtures import LLM_KEY
from tests.emulators.plex import PlexLibrary
from tests.llm_setup import groq
from tests.stored import stored

pytestmark = pytest.mark.bench

CASCADE = DecideConfig(
    cascade=[
        {"classifiers": ["taxonomy", "llm-metadata"], "accept": 0.7},
        {"classifiers": ["tagger", "audio-model"]},
    ]
)
NO_LIMITS = {
    "requests_per_minute": None,
    "requests_per_day": None,
    "tokens_per_minute": None,
    "tokens_per_day": None,
}


def test_cascade_sends_only_the_long_tail_to_audio() -> None:
    started = time.monotonic()
    library = PlexLibrary.from_freemusicc(audio_map=False)
    records = library.track_records()
    taxonomy = default_taxonomy()
    truth = GroundTruth.from_freemusicc()
    store = stored(records)
    config = parse_config("{}", env={})
    context = PluginContext(config)
    context.plugins = LoadedPlugins()
    clock = FakeClock()
    with LLMEmulator(
        truth, key=LLM_KEY, clock=clock, limits=UNLIMITED, noise=Noise(wrong_genre_rate=0.1)
    ) as emu:
        llm = groq(emu, clock, limits=NO_LIMITS)
        context.plugins.by_kind["llm"]["groq"] = llm
        classifiers = {
            "taxonomy": TaxonomyClassifier(TaxonomyClassifier.Config(), context),
            "llm-metadata": LLMMetadataClassifier(LLMMetadataClassifier.Config(), context),
        }
        classify(store, classifiers, decide_config=CASCADE)
        requests = len([r for r in emu.requests if r.kind == "classify"])
    ids = [i for (i,) in store.conn.execute("SELECT id FROM tracks ORDER BY id")]
    to_audio = cascade_gate(store, CASCADE)("tagger", ids)
    counts = decide(store, CASCADE)

    # Right = the decided top genre is among the track's true (canonical) genres.
    right = judged = 0
    by_id = {str(i): r for i, r in zip(ids, records, strict=True)}
    for track_id, genres_json, provenance in store.conn.execute(
        "SELECT track_id, genres, provenance FROM decisions WHERE status = 'decided'"
    ):
        if '"step": 1' not in provenance:
            continue
        record = by_id[str(track_id)]
        found = truth.lookup(
            {"artist": record.artist, "album": record.album, "title": record.title}
        )
        if not found:
            continue
        expected = set(taxonomy.canonicalize(list(found.genres)))
        top = genres_json.split('"')[1] if genres_json != "[]" else None
        judged += 1
        right += top in expected
    print()
    print(f"freemusi.cc: {len(ids):,} tracks, LLM oracle 10 % wrong, {requests} LLM requests")
    print(f"  naive (every track to every classifier): {len(ids):,} tracks to the audio step")
    print(
        f"  cascade (accept 0.7): {len(to_audio):,} tracks to the audio step "
        f"({len(to_audio) / len(ids):.1%}); step 1 decided {counts.get('step1', 0):,}"
    )
    print(f"  step-1 decisions right: {right:,} of {judged:,} ({right / max(judged, 1):.1%})")
    print(f"  (bench took {time.monotonic() - started:.0f} s)")
    assert len(to_audio) < len(ids) / 2
