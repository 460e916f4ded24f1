"""Custom labels: prompt presets asked through the real groq SDK against the LLM emulator
(whose oracle knows which tracks are "Focus"), decided, and written to the Plex emulator
as labels and moods; LLM processors; one rate budget per model."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from genred.cli import cli
from genred.config import parse_config
from genred.hookspecs import PluginContext
from genred.loader import LoadedPlugins
from genred.pipeline.classify import classify
from genred.pipeline.decide import Vote, decide, decide_custom_labels
from genred.records import TrackRecord
from genred.store import Store
from genred_plugins.llm import cache as llm_cache
from genred_plugins.llm.labels import LLMLabelsClassifier, check_label_answer
from tests.emulators.llm import UNLIMITED, FakeClock, GroundTruth, LLMEmulator
from tests.emulators.llm.fixtures import LLM_KEY
from tests.emulators.plex import PlexEmulator, PlexLibrary
from tests.llm_setup import groq
from tests.stored import stored
from tests.test_plugins import make_dist

FOCUS = """\
target_label: Focus
kind: label
role: You pick music for deep work.
characteristics: [mostly instrumental, steady pulse]
"""
HAPPY = """\
target_label: Happy Vocal
kind: mood
characteristics: [a cheerful sung lead vocal]
"""


@pytest.fixture(scope="module")
def library() -> PlexLibrary:
    return PlexLibrary.from_freemusicc(limit=300, audio_map=False)


@pytest.fixture
def truth(llm_truth: GroundTruth) -> Iterator[GroundTruth]:
    """The session's ground truth, with the labels a test sets removed afterwards."""
    before = dict(llm_truth.labels)
    yield llm_truth
    llm_truth.labels.clear()
    llm_truth.labels.update(before)


def members(records: list[TrackRecord]) -> list[dict[str, Any]]:
    """Item-like mappings matching these tracks whichever artist an entry names."""
    out = []
    for r in records:
        for artist in {r.artist, r.album_artist or r.artist}:
            out.append({"artist": artist, "album": r.album, "title": r.title})
    return out


def by_album(records: list[TrackRecord]) -> dict[str | None, list[TrackRecord]]:
    albums: dict[str | None, list[TrackRecord]] = {}
    for r in records:
        albums.setdefault(r.album_source_id, []).append(r)
    return albums


def labels_classifier(llm: Any, folder: Path, **settings: Any) -> LLMLabelsClassifier:
    config = parse_config(f"presets_dir: {folder}\n", env={})
    context = PluginContext(config)
    context.plugins = LoadedPlugins()
    context.plugins.by_kind["llm"]["groq"] = llm
    return LLMLabelsClassifier(LLMLabelsClassifier.Config(**settings), context)


def preset_rows(store: Store) -> dict[tuple[int, str], float]:
    rows = store.conn.execute(
        "SELECT track_id, label_set, labels FROM predictions WHERE classifier = 'llm-labels'"
    )
    out = {}
    for track_id, label_set, labels in rows:
        [[name, p]] = json.loads(labels)
        assert label_set.endswith(":" + name)
        out[(track_id, label_set)] = p
    return out


# --------------------------------------------------------------------------- pure parts


def test_answers_are_read_as_the_probability_that_the_label_applies() -> None:
    items = check_label_answer(
        {
            "items": [
                {"id": "1", "match": True, "confidence": 0.9},
                {"id": "2", "match": False, "confidence": 0.1},  # probability reading
                {"id": "3", "match": False, "confidence": 0.8},  # certainty of the verdict
                {"id": 4, "match": True, "confidence": 1},
            ]
        }
    )
    assert [(i.id, i.probability) for i in items] == [
        ("1", 0.9),
        ("2", 0.1),
        ("3", 0.2),
        ("4", 1.0),
    ]
    for bad in ({"items": [{"id": "1", "match": "yes", "confidence": 1}]}, {"items": {}}, []):
        with pytest.raises(ValueError):
            check_label_answer(bad)


def test_custom_labels_are_decided_each_on_its_own() -> None:
    votes = {
        "genre": [Vote("taxonomy", [("Rock", 1.0)])],
        "label:Focus": [Vote("llm-labels", [("Focus", 0.9)]), Vote("audio", [("Focus", 0.3)])],
        "mood:Happy Vocal": [Vote("llm-labels", [("Happy Vocal", 0.2)])],
        "genre:Sea Shanty": [Vote("llm-labels", [("Sea Shanty", 0.7)])],
    }
    chosen, why = decide_custom_labels(votes, {"audio": 3.0}, 0.5)
    # Focus: (0.9 + 3 × 0.3) / 4 = 0.45 → not; heavier weight on the doubter wins.
    assert chosen == {"genre": ("Sea Shanty",), "mood": (), "label": ()}
    assert why["label:Focus"] == {"llm-labels": 0.9, "audio": 0.3, "score": 0.45}
    chosen, _ = decide_custom_labels(votes, {}, 0.5)
    assert chosen["label"] == ("Focus",)  # (0.9 + 0.3) / 2 = 0.6


def test_decide_adds_custom_labels_and_an_override_wins() -> None:
    store = stored([TrackRecord("plex", "1", title="a"), TrackRecord("plex", "2", title="b")])
    now = "2026-01-01T00:00:00+00:00"
    rows = [
        (1, "taxonomy", "genre", [["Rock", 1.0]]),
        (1, "llm-labels", "label:Focus", [["Focus", 0.9]]),
        (1, "llm-labels", "mood:Happy Vocal", [["Happy Vocal", 0.8]]),
        (1, "llm-labels", "genre:Sea Shanty", [["Sea Shanty", 0.7]]),
        (2, "llm-labels", "label:Focus", [["Focus", 0.9]]),
        (2, "llm-labels", "mood:Happy Vocal", [["Happy Vocal", 0.9]]),
    ]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO predictions VALUES (?, ?, ?, '1', ?, ?)",
            [(t, c, s, json.dumps(v), now) for t, c, s, v in rows],
        )
        conn.executemany(
            "INSERT INTO overrides VALUES (2, ?, ?, 'cli', NULL, ?)",
            [("label", '["Reading"]', now), ("mood", '["Calm"]', now)],
        )
    from genred.config import DecideConfig

    decide(store, DecideConfig())
    got = {
        tid: (json.loads(g), json.loads(m), json.loads(lab), status)
        for tid, g, m, lab, status in store.conn.execute(
            "SELECT track_id, genres, moods, labels, status FROM decisions"
        )
    }
    assert got[1] == (["Rock", "Sea Shanty"], ["Happy Vocal"], ["Focus"], "decided")
    assert got[2][1:3] == (["Calm"], ["Reading"])  # manual overrides always win


# --------------------------------------------------------------------------- through the SDK


def test_presets_label_tracks_through_the_llm_and_cache_spares_the_rerun(
    tmp_path: Path, library: PlexLibrary, truth: GroundTruth, llm_clock: FakeClock
) -> None:
    records = library.track_records()
    albums = list(by_album(records).values())
    focus_tracks = [r for album in albums[::3] for r in album]
    truth.set_label("Focus", members(focus_tracks))
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "focus.yaml").write_text(FOCUS)
    (folder / "happy.yaml").write_text(HAPPY)
    store = stored(records)
    ids = dict(store.conn.execute("SELECT source_id, id FROM tracks"))
    with LLMEmulator(truth, key=LLM_KEY, clock=llm_clock) as emu:
        plugin = labels_classifier(groq(emu, llm_clock), folder)
        counts = classify(store, {"llm-labels": plugin})
        assert counts["llm-labels.predicted"] == len(records)
        asked = [r for r in emu.requests if r.kind == "label"]
        assert {r.label for r in asked} == {"Focus", "Happy Vocal"}
        assert all(r.status == 200 for r in emu.requests)
        per_preset = len(asked) / 2
        assert per_preset <= len(albums) / 20  # albums packed many to a request
        rows = preset_rows(store)
        focus_ids = {ids[r.source_id] for r in focus_tracks}
        for source_id, track_id in ids.items():
            expected = 0.9 if track_id in focus_ids else 0.1
            assert rows[(track_id, "label:Focus")] == expected, source_id
            assert rows[(track_id, "mood:Happy Vocal")] == 0.1  # nobody is Happy Vocal

        # Everything again (a new version): all from the cache.
        store.conn.execute("DELETE FROM predictions")
        before = len(emu.requests)
        classify(store, {"llm-labels": plugin})
        assert len(emu.requests) == before
        assert preset_rows(store) == rows

        # One preset edited: only its questions are asked again.
        (folder / "happy.yaml").write_text(HAPPY + "examples: {positive: [Pharrell - Happy]}\n")
        classify(store, {"llm-labels": plugin})
        again = [r for r in emu.requests[before:] if r.kind == "label"]
        assert again and {r.label for r in again} == {"Happy Vocal"}
        system = again[0].body["messages"][0]["content"]
        assert "Examples of Happy Vocal: Pharrell - Happy" in system


def test_a_preset_model_is_asked_with_its_own_rate_budget(
    tmp_path: Path, library: PlexLibrary, truth: GroundTruth, llm_clock: FakeClock
) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "focus.yaml").write_text(FOCUS + "model: llama-3.3-70b-versatile\n")
    store = stored(library.track_records()[:60])
    with LLMEmulator(truth, key=LLM_KEY, clock=llm_clock) as emu:
        llm = groq(emu, llm_clock)
        classify(store, {"llm-labels": labels_classifier(llm, folder, group="track")})
        models = {r.model for r in emu.requests if r.kind == "label"}
        assert models == {"llama-3.3-70b-versatile"}
        other = llm.limiter_for("llama-3.3-70b-versatile")
        assert other is not llm.limiter
        assert other.budgets[("requests", "minute")].used(llm_clock()) >= 1
        assert llm.limiter.budgets[("requests", "minute")].used(llm_clock()) == 0


def test_cache_rows_nobody_reads_expire(library: PlexLibrary) -> None:
    store = Store.memory()
    llm_cache.put(store, {"old": {"p": 1}, "fresh": {"p": 0}}, "m", "1")
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    store.conn.execute("UPDATE llm_cache SET used_at = ? WHERE key = 'old'", (long_ago,))
    assert llm_cache.get(store, ["fresh"]) == {"fresh": {"p": 0}}
    assert llm_cache.expire(store, days=180) == 1
    assert [k for (k,) in store.conn.execute("SELECT key FROM llm_cache")] == ["fresh"]


# --------------------------------------------------------------------------- processors


PROCESSOR = '''
from pydantic import BaseModel


class Settings(BaseModel):
    note: str = "Prefer broad genres."


class Shouting:
    """Exercises every hook of genred.loader.LLMProcessor."""

    Config = Settings

    def __init__(self, settings):
        self.settings = settings

    def system_extension(self):
        return self.settings.note

    def process_prompt(self, text):
        return text.replace('"items"', '"items"', 1) + "\\n(answer in JSON)"

    def process_response(self, text):
        return text.replace("Jazz", "Blues")
'''


@pytest.fixture
def processor_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    make_dist(
        site,
        "genred-shouting",
        "genred_shouting",
        PROCESSOR,
        "[genred.llm_processors]\nshouting = genred_shouting:Shouting\n",
    )
    monkeypatch.syspath_prepend(str(site))


def test_processors_extend_rewrite_and_post_process(
    processor_dist: None, truth: GroundTruth, llm_clock: FakeClock
) -> None:
    from genred_plugins.llm.prompt import ANSWER_SCHEMA, check_answer

    with LLMEmulator(truth, key=LLM_KEY, clock=llm_clock, limits=UNLIMITED) as emu:
        llm = groq(emu, llm_clock, processors={"shouting": {"note": "Think of Discogs styles."}})
        assert llm.name == "groq:llama-3.1-8b-instant+shouting"
        item = {"id": "1", "artist": "Miles Davis", "album": "Kind of Blue", "title": "So What"}
        truth.add(["Jazz"], artist="Miles Davis", album="Kind of Blue", title="So What")
        result = llm.chat(
            [
                {"role": "system", "content": "You are a librarian. Answer in JSON."},
                {"role": "user", "content": json.dumps({"items": [item]})},
            ],
            ANSWER_SCHEMA,
            validate=check_answer,
        )
        sent = emu.requests[-1].body["messages"]
        assert sent[0]["content"].endswith("Answer in JSON.\n\nThink of Discogs styles.")
        assert sent[1]["content"].endswith("\n(answer in JSON)")
        assert "Jazz" in emu.requests[-1].content  # what the model said …
        assert [g[0] for g in result.data[0].genres] == ["Blues"]  # … as the processor left it


def test_an_unknown_or_misconfigured_processor_is_a_clear_error(processor_dist: None) -> None:
    from genred.errors import ProcessorUnavailable
    from genred_plugins.llm.groq_llm import GroqLLM

    def build(processors: Any) -> Any:
        settings = GroqLLM.Config(api_key="k", processors=processors)
        return GroqLLM(settings)

    with pytest.raises(ProcessorUnavailable, match=r"plugins.llm.groq.processors.nope: no LLM"):
        build(["nope"])
    with pytest.raises(ProcessorUnavailable, match=r"processors.shouting: note: Input should be"):
        build({"shouting": {"note": 3}})


# --------------------------------------------------------------------------- to Plex


def test_preset_labels_reach_plex_as_labels_and_moods(
    tmp_path: Path,
    plex_emulator: PlexEmulator,
    truth: GroundTruth,
    write_config: Callable[..., Path],
) -> None:
    lib = plex_emulator.library
    records = lib.track_records()
    albums = list(by_album(records).values())
    focus = [r for album in albums[::4] for r in album]
    happy = [r for album in albums[1::4] for r in album]
    truth.set_label("Focus", members(focus))
    truth.set_label("Happy Vocal", members(happy))
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "focus.yaml").write_text(FOCUS)
    (prompts / "happy-vocal.yaml").write_text(HAPPY)
    with LLMEmulator(truth, key=LLM_KEY, limits=UNLIMITED) as llm:
        config = write_config(
            f"""
            data_dir: {tmp_path / "data"}
            plex: {{url: {plex_emulator.url}, token: {plex_emulator.token}, sections: [Music]}}
            plugins:
              classifiers: [taxonomy, llm-labels]
              llm:
                groq:
                  api_key: {LLM_KEY}
                  base_url: {llm.url}
                  limits: {{requests_per_minute: null, requests_per_day: null,
                            tokens_per_minute: null, tokens_per_day: null}}
            writeback: {{mode: append, levels: [track]}}
            logging: {{level: error}}
            """
        )
        run = CliRunner().invoke
        for step in ("sync", "classify", "decide", "writeback"):
            result = run(cli, [step, "--config", str(config)], catch_exceptions=False)
            assert result.exit_code == 0, f"{step}: {result.output}"
        assert {r.label for r in llm.requests if r.kind == "label"} == {"Focus", "Happy Vocal"}
    focus_ids = {r.source_id for r in focus}
    happy_ids = {r.source_id for r in happy}
    decided = 0
    for key, track in lib.tracks.items():
        if not track.genres:
            continue  # nothing decided for it: the writeback leaves it alone
        decided += 1
        assert ("Focus" in track.labels) == (str(key) in focus_ids), key
        assert ("Happy Vocal" in track.moods) == (str(key) in happy_ids), key
    assert decided > 100 and focus_ids and happy_ids


def test_config_check_warns_when_an_llm_classifier_has_no_llm(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    config = write_config(
        textwrap.dedent(
            f"""
            data_dir: {tmp_path / "data"}
            plugins:
              classifiers: [llm-metadata, llm-labels]
            """
        )
    )
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "classifiers plugin 'llm-metadata' asks the llm plugin 'groq', which is not enabled" in (
        result.output
    )
    assert "llm-labels has no presets in" in result.output
