"""The `audio-llm` classifier with a tiny randomly initialised Music Flamingo / Audio
Flamingo 3 built here (save_pretrained → from_pretrained, as a hub checkpoint): the real
classify stage on the real fixture audio with scripted replies (so the JSON path runs:
parse, re-ask, canonicalize, captions), batching, truncation to the model's limit,
out-of-memory halving, the dtype cast, and the refusals (CPU, outside the cascade).

The model's own choices are scripted by a logits processor (every score but the scripted
token's set to -inf): processor → forward → generate → decode all run for real.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
sf = pytest.importorskip("soundfile")
pytest.importorskip("pebble")
if not hasattr(transformers, "MusicFlamingoForConditionalGeneration"):
    pytest.skip("transformers without Music Flamingo (needs >= 5.5)", allow_module_level=True)

from genred.api import InvalidAnswer, PluginUnavailable  # noqa: E402
from genred.testing import Harness, track  # noqa: E402
from genred_plugins.audio.flamingo import answers, model  # noqa: E402
from genred_plugins.audio.flamingo.classifier import (  # noqa: E402
    NOTICE,
    AudioLLMClassifier,
    AudioLLMRefused,
)
from genred_plugins.audio.flamingo.listening import Listening  # noqa: E402
from tests.conftest import FIXTURES  # noqa: E402
from tests.tiny_models import IM_END, save_tiny_flamingo, save_tiny_model  # noqa: E402

LIBROSA = FIXTURES / "audio" / "librosa-data"
VIBE_ACE = LIBROSA / "Kevin_MacLeod_-_Vibe_Ace.ogg"  # 61.5 s
FISHIN = LIBROSA / "Karissa_Hobbs_-_Lets_Go_Fishin.ogg"  # 133 s
SUGAR_PLUM = LIBROSA / "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg"  # 120 s
WALTZ = LIBROSA / "147793__setuniman__sweet-waltz-0i-22mi.ogg"
ROBIN = LIBROSA / "456440__inspectorj__bird-whistling-robin-single-13.ogg"  # 2.7 s


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("flamingo")
    return {kind: save_tiny_flamingo(root / kind, kind) for kind in ("mf", "af3")}


CASCADE = """
decide:
  cascade:
    - {classifiers: [taxonomy], accept: 0.9}
    - {classifiers: [audio-llm]}
"""


def config(model_dir: Path, **settings: Any) -> str:
    section = {"model": str(model_dir), "device": "cpu", "allow_cpu": True, **settings}
    return (
        f"extract: {{workers: 2}}\nplugins:\n  classifiers:\n    taxonomy: {{}}\n"
        f"    audio-llm: {json.dumps(section)}\n{CASCADE}"
    )


class Scripted(transformers.LogitsProcessor):
    """Row i emits `scripts[i]` (token ids), then the end of its turn."""

    def __init__(self, scripts: list[list[int]], eos: int) -> None:
        self.scripts, self.eos, self.start = scripts, eos, None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.start is None:
            self.start = input_ids.shape[1]  # left padded: every prompt ends here
        step = input_ids.shape[1] - self.start
        forced = torch.full_like(scores, float("-inf"))
        for row, script in enumerate(self.scripts):
            forced[row, script[step] if step < len(script) else self.eos] = 0.0
        return forced


class Script(dict[str, list[str]]):
    """Per file name, the reply to each attempt (the last one repeats); `calls`: the names
    of each batch the model was asked about, with the attempt."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list[str], int]] = []


@pytest.fixture
def replies(monkeypatch: pytest.MonkeyPatch) -> Script:
    script = Script()

    def extras(self: AudioLLMClassifier, listenings: list[Listening], attempt: int) -> Any:
        script.calls.append(([x.name for x in listenings], attempt))
        tokenizer = self._model.tokenizer
        texts = [script[x.name][min(attempt, len(script[x.name]) - 1)] for x in listenings]
        ids = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
        eos = tokenizer.convert_tokens_to_ids(IM_END)
        return {"logits_processor": transformers.LogitsProcessorList([Scripted(ids, eos)])}

    monkeypatch.setattr(AudioLLMClassifier, "generation_extras", extras)
    return script


def reply(genres: list[Any], moods: list[Any] | None = None, caption: str = "") -> str:
    return json.dumps({"genres": genres, "moods": moods or [], "caption": caption})


# --------------------------------------------------------------------------- end to end


def test_the_classify_stage_asks_only_the_undecided_tracks_and_stores_what_it_heard(
    tmp_path: Path, tiny: dict[str, Path], replies: Script
) -> None:
    replies[VIBE_ACE.name] = [
        reply(
            [{"name": "jazz", "confidence": 0.9}, {"name": "Space Yodel", "confidence": 0.8}],
            [{"name": "Upbeat", "confidence": 0.7}],
            "A brisk jazz tune with walking bass and brushed drums.",
        )
    ]
    replies[FISHIN.name] = [
        "Sure! I think it is folk.",
        reply(["Folk", "Country"], [], "A cheerful country song with a fiddle."),
    ]
    replies[WALTZ.name] = ["no idea"]  # never the JSON asked for
    with Harness(tmp_path, config(tiny["mf"], batch_size=2, retries=2)) as lib:
        ids = lib.add_tracks(
            [
                track("Vibe Ace", path=str(VIBE_ACE)),
                track("Fishin", path=str(FISHIN)),
                track("Waltz", path=str(WALTZ)),
                track("Tagged", path=str(ROBIN), genres=["Jazz"]),  # decided by its tag
                track("Gone", path=str(tmp_path / "gone.ogg")),
                track("No path"),
            ]
        )
        counts = lib.run("classify")
        got = lib.predictions("audio-llm")
        failed = lib.failures("classify:audio-llm")
        captions = {
            row[0]: row[1:]
            for row in lib.store.conn.execute(
                "SELECT track_id, text, listened_seconds, cut FROM captions"
            )
        }
    assert counts["audio-llm.decided_earlier"] == 1  # "Tagged": the taxonomy was sure
    assert counts["audio-llm.considered"] == 5
    assert counts["audio-llm.predicted"] == 2 and counts["audio-llm.failed"] == 2
    assert got["Vibe Ace"]["genre"] == [("Jazz", 0.9)]  # "Space Yodel" is no genre: dropped
    assert got["Vibe Ace"]["mood"] == [("Upbeat", 0.7)]
    assert got["Fishin"]["genre"] == [("Country", 0.5), ("Folk", 0.5)]  # asked again: JSON
    assert got["No path"]["genre"] == []  # nothing to listen to: not asked again
    assert "Tagged" not in got
    assert captions == {
        ids[0]: ("A brisk jazz tune with walking bass and brushed drums.", 61.46, 0),  # whole
        ids[1]: ("A cheerful country song with a fiddle.", 90.0, 0),  # three 30 s excerpts
    }
    assert failed[str(ids[2])].startswith("AudioLLMAnswerError: ")
    assert "after 3 tries" in failed[str(ids[2])]
    assert failed[str(ids[4])].startswith("AudioFileMissing")
    calls = replies.calls
    # batches of 2 (in the order decoding finished), each batch's non-JSON replies asked
    # again (sampled), at most `retries` times
    first = [names for names, attempt in calls if attempt == 0]
    assert sorted(len(names) for names in first) == [1, 2]
    assert sorted(n for names in first for n in names) == sorted(
        p.name for p in (VIBE_ACE, FISHIN, WALTZ)
    )
    assert sorted(n for names, attempt in calls if attempt == 1 for n in names) == sorted(
        [FISHIN.name, WALTZ.name]
    )
    assert [names for names, attempt in calls if attempt == 2] == [[WALTZ.name]]


def test_the_earlier_steps_genres_are_in_the_question(
    tmp_path: Path, tiny: dict[str, Path], replies: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    real = model.FlamingoModel.generate

    def spy(self: Any, listenings: Any, prompts: Any, **kwargs: Any) -> Any:
        asked.extend(prompts)
        return real(self, listenings, prompts, **kwargs)

    monkeypatch.setattr(model.FlamingoModel, "generate", spy)
    replies[VIBE_ACE.name] = [reply(["Jazz"])]
    with Harness(tmp_path, config(tiny["af3"])) as lib:
        lib.add_tracks([track("Vibe Ace", path=str(VIBE_ACE), genres=["swingg"])])  # fuzzy: 0.8
        lib.run("classify")
    assert len(asked) == 1
    assert "Other listeners suggested: Swing" in asked[0]
    assert "Jazz" in asked[0] and "Rock" in asked[0]  # the top-level genres


# --------------------------------------------------------------------------- the model


@pytest.mark.parametrize("kind", ["mf", "af3"])
def test_loads_by_the_class_its_config_names(tiny: dict[str, Path], kind: str) -> None:
    expected = {
        "mf": "MusicFlamingoForConditionalGeneration",
        "af3": "AudioFlamingo3ForConditionalGeneration",
    }[kind]
    assert model.model_class(str(tiny[kind]), None, tiny[kind]).__name__ == expected
    loaded = model.FlamingoModel(
        str(tiny[kind]),
        revision=None,
        cache_dir=tiny[kind],
        device="cpu",
        dtype="auto",
        attention="auto",
        device_map=None,
    )
    assert type(loaded.model).__name__ == expected and loaded.dtype == torch.float32
    assert loaded.limit == {"mf": 1200.0, "af3": 600.0}[kind]
    assert model.audio_limit(str(tiny[kind]), None, tiny[kind]) == loaded.limit


def test_a_checkpoint_that_is_no_flamingo_is_refused(tmp_path: Path) -> None:
    other = save_tiny_model(tmp_path / "wav2vec2")
    with pytest.raises(model.AudioLLMModelError, match="audio-llm runs AudioFlamingo3"):
        model.model_class(str(other), None, tmp_path)
    with pytest.raises(model.AudioLLMModelError, match="cannot read the config"):
        model.model_class(str(tmp_path / "nothing-here"), None, tmp_path)


def excerpts_of(*paths: Path, kind: str = "mf") -> list[Listening]:
    from genred_plugins.audio.flamingo.listening import listen

    return [listen(p, mode="excerpts", excerpts=3, limit_seconds=1200) for p in paths]


def test_batching_gives_each_track_what_it_gets_alone(tiny: dict[str, Path]) -> None:
    loaded = model.FlamingoModel(
        str(tiny["mf"]), revision=None, cache_dir=tiny["mf"], device="cpu",
        dtype="float32", attention="sdpa", device_map=None,
    )  # fmt: skip
    heard = excerpts_of(SUGAR_PLUM, ROBIN, FISHIN)
    assert [round(x.seconds) for x in heard] == [90, 3, 90]
    prompts = ["What genre?"] * 3
    together = loaded.generate(heard, prompts, max_new_tokens=6)
    alone = [loaded.generate([x], prompts[:1], max_new_tokens=6)[0] for x in heard]
    assert together == alone
    batch = loaded.inputs(heard, prompts)
    sounds = (batch["input_ids"] == loaded.processor.audio_token_id).sum(dim=1).tolist()
    assert sounds[0] == sounds[2] == 3 * 750  # 25 audio tokens a second
    assert batch["input_features"].shape[0] == 3 + 1 + 3  # one 30 s window per excerpt


def test_bf16_features_are_cast_to_the_models_dtype(tiny: dict[str, Path]) -> None:
    loaded = model.FlamingoModel(
        str(tiny["af3"]), revision=None, cache_dir=tiny["af3"], device="cpu",
        dtype="bfloat16", attention="auto", device_map=None,
    )  # fmt: skip
    heard = excerpts_of(ROBIN)
    batch = loaded.inputs(heard, ["What genre?"])
    assert loaded.dtype == torch.bfloat16 and batch["input_features"].dtype == torch.bfloat16
    assert len(loaded.generate(heard, ["What genre?"], max_new_tokens=3)) == 1
    batch["input_features"] = batch["input_features"].float()  # as the processor gives them
    with pytest.raises(RuntimeError, match="should be the same"):
        loaded.model.generate(**batch, max_new_tokens=2)


def silent_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    """A WAV of `seconds` of silence, written sparse (no disk for the samples)."""
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as out:
        out.write(np.zeros(rate, dtype=np.int16))
    frames = int(seconds * rate)
    with path.open("r+b") as raw:
        data = frames * 2
        raw.seek(4)
        raw.write((36 + data).to_bytes(4, "little"))
        raw.seek(40)
        raw.write(data.to_bytes(4, "little"))
        raw.truncate(44 + data)
    return path


def test_a_file_longer_than_the_model_takes_is_cut_and_says_so(
    tmp_path: Path, tiny: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    long = silent_wav(tmp_path / "long-mix.wav", 700)
    with Harness(tmp_path, config(tiny["af3"], mode="whole")) as lib:
        plugin = lib.plugins.get("classifiers", "audio-llm")
        plugin.file_work()  # learns the model's limit from its checkpoint (600 s for AF3)
        with caplog.at_level(logging.INFO):
            heard = plugin.listen_file(long)
        assert (heard.seconds, heard.track_seconds, heard.cut) == (600.0, 700.0, True)
        short = plugin.listen_file(silent_wav(tmp_path / "short.wav", 42))
        assert (short.seconds, short.cut) == (42.0, False)
        plugin.load()
        batch = plugin._model.inputs([heard], ["What genre?"])
        # the processor cuts nothing more: every second reaches the model
        assert int((batch["input_ids"] == plugin._model.processor.audio_token_id).sum()) == 15000
    with Harness(tmp_path / "capped", config(tiny["af3"], mode="whole", max_seconds=60)) as lib:
        capped = lib.plugins.get("classifiers", "audio-llm")
        capped.file_work()
        assert capped.listen_file(long).seconds == 60.0


def test_out_of_memory_halves_the_batch_and_fails_one_track_alone(
    tmp_path: Path, tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []

    def generate(self: Any, listenings: Any, prompts: Any, **kwargs: Any) -> list[str]:
        sizes.append(len(listenings))
        if len(listenings) > 1 or listenings[0].name == "huge":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [reply(["Jazz"])]

    monkeypatch.setattr(model.FlamingoModel, "generate", generate)
    with Harness(tmp_path, config(tiny["mf"], batch_size=4)) as lib:
        plugin = lib.plugins.get("classifiers", "audio-llm")
        heard = [Listening(n, np.zeros(16000, np.float32), 1.0, 1.0, False) for n in "abc"]
        heard.append(Listening("huge", np.zeros(16000, np.float32), 1.0, 1.0, False))
        outcomes = plugin.answer_batch(heard)
        assert sizes == [4, 2, 1, 1, 1, 1]
        assert [type(o).__name__ for o in outcomes] == ["Answer"] * 3 + ["AudioLLMOutOfMemory"]
        sizes.clear()
        plugin.answer_batch(heard[:2])
        assert sizes == [1, 1]  # the GPU holds no more: later batches start small


# --------------------------------------------------------------------------- refusals


def test_it_refuses_a_cpu_unless_allowed(
    tmp_path: Path, tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    refused = config(tiny["mf"], device="auto", allow_cpu=False)
    with Harness(tmp_path, refused) as lib:
        plugin = lib.plugins.get("classifiers", "audio-llm")
        with pytest.raises(AudioLLMRefused, match="allow_cpu: true"):
            plugin.load()
        lib.add_tracks([track("Vibe Ace", path=str(VIBE_ACE))])
        with pytest.raises(AudioLLMRefused):  # the stage fails once, no track is blamed
            lib.run("classify")
        assert lib.failures("classify:audio-llm") == {}
    with Harness(tmp_path / "allowed", config(tiny["mf"], device="auto")) as lib:
        plugin = lib.plugins.get("classifiers", "audio-llm")
        plugin.load()
        assert plugin._model.model.device.type == "cpu"
        plugin.unload()
        assert plugin._model is None


def test_it_runs_only_as_a_later_cascade_step_unless_told(
    tmp_path: Path, tiny: dict[str, Path]
) -> None:
    alone = f"plugins:\n  classifiers:\n    audio-llm: {{model: {tiny['mf']}}}\n"
    with Harness(tmp_path, alone) as lib:
        reason = lib.plugins.unavailable[("classifiers", "audio-llm")]
    assert "later step of decide.cascade" in reason and "every_track: true" in reason
    told = f"plugins:\n  classifiers:\n    audio-llm: {{model: {tiny['mf']}, every_track: true}}\n"
    with Harness(tmp_path / "told", told) as lib:
        assert isinstance(lib.plugins.get("classifiers", "audio-llm"), AudioLLMClassifier)
    with pytest.raises(PluginUnavailable), Harness(tmp_path / "alone", alone) as lib:
        lib.plugins.get("classifiers", "audio-llm")


def test_genred_plugins_says_the_licence_is_non_commercial(
    tmp_path: Path, write_config: Any
) -> None:
    from click.testing import CliRunner

    from genred.cli import cli

    cfg = write_config(f"data_dir: {tmp_path / 'data'}\n")
    result = CliRunner().invoke(cli, ["plugins", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    line = next(row for row in result.output.splitlines() if "audio-llm" in row)
    assert " no " in line and "non-commercial" in line  # off by default, licence said
    assert "non-commercial" in NOTICE


# --------------------------------------------------------------------------- the answers


def test_replies_are_read_strictly_and_names_through_the_taxonomy() -> None:
    from collections import Counter

    from genred.api import default_taxonomy

    fenced = '```json\n{"genres": ["Hip Hop", {"name": "bebop", "confidence": 2}]}\n```'
    answer = answers.parse_answer(fenced)
    assert answer.genres == (("Hip Hop", 0.5), ("bebop", 1.0)) and answer.caption is None
    for bad, why in [
        ("It is jazz.", "no JSON object"),
        ('{"moods": []}', 'no "genres"'),
        ('{"genres": "jazz"}', "is not a list"),
        ('{"genres": [3]}', "is not"),
        ('{"genres": [], "caption": 5}', "caption"),
        ("[1, 2]", "no JSON object"),
    ]:
        with pytest.raises(InvalidAnswer, match=why):
            answers.parse_answer(bad)
    unknown: Counter[str] = Counter()
    labels = answers.genre_labels(
        default_taxonomy(), [("hip hop", 0.8), ("Space Yodel", 0.9), ("jazz", 0.2)], 0.3, unknown
    )
    assert labels == (("Hip-Hop", 0.8),) and unknown == Counter({"Space Yodel": 1})
    assert answers.mood_labels([("  dark ", 0.6), ("Dark", 0.4), ("!!", 0.9)], 0.3) == (
        ("dark", 0.6),
    )
