"""Every built-in plugin, built from the config through its entry point, run through the real
stage it belongs to (the registry's, as the daemon runs it), against the emulators or real
fixture audio; and its built instance keeps the contract of its kind (`check_plugin`).

`SCENARIOS` must name every plugin the genred distribution registers: a new built-in
plugin without a scenario here fails `test_every_builtin_plugin_has_a_scenario`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genred.loader import discover
from genred.store import features
from genred.testing import Harness, check_plugin, track
from tests.conftest import FIXTURES
from tests.emulators.llm import GroundTruth, LLMEmulator
from tests.emulators.llm.fixtures import LLM_KEY
from tests.emulators.plex import PlexEmulator
from tests.tiny_models import HIDDEN, save_tiny_model

pytestmark = pytest.mark.slow

TRUMPET = FIXTURES / "audio" / "librosa-data" / "sorohanro_-_solo-trumpet-06.ogg"
VIBE_ACE = FIXTURES / "audio" / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.ogg"
FAST = "retries: {attempts: 2, backoff_initial: 0.01, backoff_max: 0.02}"


def built(lib: Harness, kind: str, name: str) -> Any:
    """The instance the harness built from the config, checked against its kind."""
    assert name in lib.plugins.of(kind), lib.plugins.unavailable
    instance = lib.plugins.get(kind, name)
    assert check_plugin(instance, kind) == []
    return instance


def music_folder(root: Path, *files: Path) -> Path:
    folder = root / "music"
    folder.mkdir()
    for file in files:
        shutil.copy(file, folder / file.name)
    return folder


def stored_vectors(lib: Harness, extractor: str) -> dict[int, np.ndarray]:
    rows = lib.store.conn.execute(
        "SELECT track_id, dims, vector FROM features WHERE extractor = ?", (extractor,)
    )
    return {t: features.from_blob(blob, dims) for t, dims, blob in rows}


# --------------------------------------------------------------------------- scenarios


def plex_source(root: Path, env: dict[str, Any]) -> None:
    emu: PlexEmulator = env["plex"]
    config = f"plex: {{url: '{emu.url}', token: {emu.token}}}\nplugins:\n  sources:\n    plex: {{{FAST}}}\n"
    with Harness(root, config) as lib:
        built(lib, "sources", "plex")
        counts = lib.run("sync")
        listed = len(emu.library.tracks)
        assert counts["added"] == listed > 2000
        assert lib.run("sync", full=True)["unchanged"] == listed  # a second full sync adds nothing


def folder_source(root: Path, env: dict[str, Any]) -> None:
    folder = music_folder(
        root, FIXTURES / "audio" / "debian" / "singularity-music_March_Thee_to_Dis.ogg"
    )
    config = f"folders: ['{folder}']\nplugins: {{sources: [folder]}}\n"
    with Harness(root, config) as lib:
        built(lib, "sources", "folder")
        assert lib.run("sync")["added"] == 1
        [(title, artist)] = lib.store.conn.execute("SELECT title, artist FROM tracks").fetchall()
        assert (title, artist) == ("March Thee to Dis", "Maxstack")


def handcrafted_extractor(root: Path, env: dict[str, Any]) -> None:
    folder = music_folder(root, TRUMPET)
    config = f"folders: ['{folder}']\nplugins: {{sources: [folder], extractors: {{handcrafted: {{}}}}}}\n"
    with Harness(root, config) as lib:
        built(lib, "extractors", "handcrafted")
        lib.run("sync")
        counts = lib.run("extract")
        assert counts["handcrafted.extracted"] == 1 and counts["handcrafted.failed"] == 0
        [vector] = stored_vectors(lib, "handcrafted").values()
        assert vector.shape == (518,) and np.isfinite(vector).all()


def embedding_extractor(root: Path, env: dict[str, Any]) -> None:
    model = save_tiny_model(root / "tiny-model")
    folder = music_folder(root, TRUMPET)
    config = (
        f"folders: ['{folder}']\nplugins:\n  sources: [folder]\n  extractors:\n"
        f"    embedding: {{model: '{model}', device: cpu, excerpts: 1, excerpt_seconds: 2}}\n"
    )
    with Harness(root, config) as lib:
        built(lib, "extractors", "embedding")
        lib.run("sync")
        assert lib.run("extract")["embedding.extracted"] == 1
        [vector] = stored_vectors(lib, "embedding").values()
        assert vector.shape == (HIDDEN,) and np.isfinite(vector).all()


def taxonomy_classifier(root: Path, env: dict[str, Any]) -> None:
    with Harness(root, "plugins: {classifiers: [taxonomy]}\n") as lib:
        built(lib, "classifiers", "taxonomy")
        lib.add_tracks([track("A", genres=["hip hop; drum n bass"])])
        lib.run("classify")
        labels = lib.predictions("taxonomy")["A"]["genre"]
        assert [name for name, _ in labels] == ["Hip-Hop", "Drum & Bass"]


def _llm_library(env: dict[str, Any]) -> list[Any]:
    truth: GroundTruth = env["truth"]
    truth.add(["Jazz"], artist="Miles Davis", album="Kind of Blue", title="So What")
    truth.add(["Electronic"], artist="Boards of Canada", album="Geogaddi", title="Dawn Chorus")
    return [
        track("So What", artist="Miles Davis", album="Kind of Blue", album_source_id="kob"),
        track("Dawn Chorus", artist="Boards of Canada", album="Geogaddi", album_source_id="geo"),
    ]


def _llm_config(env: dict[str, Any], llm: str, classifiers: str) -> str:
    emu: LLMEmulator = env["llm"]
    base = emu.url if llm == "groq" else emu.openai_base_url  # the groq SDK adds /openai/v1
    return (
        "plugins:\n"
        f"  llm:\n    {llm}: {{api_key: {LLM_KEY}, base_url: '{base}', model: llama-3.1-8b-instant, {FAST}}}\n"
        f"  classifiers:\n{classifiers}"
    )


def llm_metadata_with(llm: str) -> Callable[[Path, dict[str, Any]], None]:
    def scenario(root: Path, env: dict[str, Any]) -> None:
        emu: LLMEmulator = env["llm"]
        config = _llm_config(env, llm, f"    llm-metadata: {{llm: {llm}}}\n")
        with Harness(root, config) as lib:
            built(lib, "llm", llm)
            built(lib, "classifiers", "llm-metadata")
            lib.add_tracks(_llm_library(env))
            counts = lib.run("classify")
            assert counts["llm-metadata.predicted"] == 2
            genres = {t: p["genre"][0][0] for t, p in lib.predictions("llm-metadata").items()}
            assert genres == {"So What": "Jazz", "Dawn Chorus": "Electronic"}
            statuses = [r.status for r in emu.completions()]
            # both albums in one request, through the real SDK; the openai plugin's `server:
            # auto` first probes json_schema, which this model refuses (400) once
            assert statuses == ([400, 200] if llm == "openai" else [200]), statuses
            assert lib.run("classify")["llm-metadata.considered"] == 0  # answered: nothing pending

    return scenario


def llm_labels_classifier(root: Path, env: dict[str, Any]) -> None:
    presets = root / "prompts"
    presets.mkdir()
    (presets / "focus.yaml").write_text(
        "target_label: Focus\nkind: label\ncharacteristics: [mostly instrumental]\n"
    )
    config = (
        _llm_config(env, "groq", "    llm-labels: {llm: groq}\n") + f"presets_dir: '{presets}'\n"
    )
    with Harness(root, config) as lib:
        classifier = built(lib, "classifiers", "llm-labels")
        assert classifier.check() == []
        lib.add_tracks(_llm_library(env))
        assert lib.run("classify")["llm-labels.predicted"] == 2
        answered = lib.predictions("llm-labels")
        assert {set(p) == {"label:Focus"} for p in answered.values()} == {True}
        assert all(0.0 <= p["label:Focus"][0][1] <= 1.0 for p in answered.values())


def tagger_classifier(root: Path, env: dict[str, Any]) -> None:
    folder = music_folder(root, VIBE_ACE)
    config = (
        f"folders: ['{folder}']\nplugins: {{sources: [folder], classifiers: {{tagger: {{}}}}}}\n"
    )
    with Harness(root, config) as lib:
        built(lib, "classifiers", "tagger")
        lib.run("sync")
        assert lib.run("classify")["tagger.predicted"] == 1
        [labels] = lib.predictions("tagger").values()
        assert labels["genre"] and "Jazz" in [name for name, _ in labels["genre"]]


def audio_model_classifier(root: Path, env: dict[str, Any]) -> None:
    genres = ("Rock", "Jazz", "Classical")
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 8, (len(genres), 8))  # well apart: an easy, honest task
    config = (
        "plugins: {classifiers: {audio-model: {}}}\n"
        "train: {features: [blobs], min_examples: 8, epochs: 60, patience: 10, hidden: [16]}\n"
    )
    with Harness(root, config) as lib:
        records = [
            track(f"{g}-{a}-{t}", album=f"{g} {a}", album_artist=f"{g} band", genres=[g])
            for g in genres
            for a in range(5)
            for t in range(4)
        ]
        ids = lib.add_tracks(records)
        vectors = [(i, centres[n // 20] + rng.normal(0, 1, 8)) for n, i in enumerate(ids)]
        features.write(lib.store, "blobs", "v1", vectors)
        assert lib.run("train")["classes"] == 3
        lib.plugins = Harness(root, config).plugins  # built again: the model now exists
        built(lib, "classifiers", "audio-model")
        assert lib.run("classify")["audio-model.predicted"] == len(ids)
        right = sum(
            p["genre"][0][0] == title.split("-")[0]
            for title, p in lib.predictions("audio-model").items()
        )
        assert right >= 0.9 * len(ids)


def plex_writeback(root: Path, env: dict[str, Any]) -> None:
    emu: PlexEmulator = env["plex"]
    config = (
        f"plex: {{url: '{emu.url}', token: {emu.token}}}\n"
        f"plugins:\n  sources:\n    plex: {{{FAST}}}\n  classifiers: [taxonomy]\n"
        f"  writeback:\n    plex: {{{FAST}}}\n"
    )
    with Harness(root, config) as lib:
        built(lib, "writeback", "plex")
        lib.run("sync")
        lib.run("classify")
        lib.run("decide")
        emu.clear_requests()
        counts = lib.run("writeback")
        assert counts["written"] > 0 and counts["failed"] == 0
        assert emu.puts()  # multi-edits reached Plex
        emu.clear_requests()
        assert lib.run("writeback")["written"] == 0 and emu.puts() == []  # idempotent


def tags_writeback(root: Path, env: dict[str, Any]) -> None:
    import mutagen

    music = music_folder(root, TRUMPET, VIBE_ACE)
    for path in music.iterdir():
        audio = mutagen.File(path)
        audio["genre"] = ["hip hop"]
        audio.save()
    config = (
        f"folders: ['{music}']\nplugins:\n  sources: [folder]\n  classifiers: [taxonomy]\n"
        "  writeback: [tags]\nwriteback: {mode: replace}\n"
    )
    with Harness(root, config) as lib:
        built(lib, "writeback", "tags")
        lib.run("sync")
        lib.run("classify")
        lib.run("decide")
        counts = lib.run("writeback")
        assert counts["written"] == 2 and counts["failed"] == 0
        assert all(mutagen.File(p)["genre"] == ["Hip-Hop"] for p in music.iterdir())
        assert lib.run("writeback")["written"] == 0
        assert lib.run("revert")["reverted"] == 2
        assert all(mutagen.File(p)["genre"] == ["hip hop"] for p in music.iterdir())


def plex_playlists(root: Path, env: dict[str, Any]) -> None:
    emu: PlexEmulator = env["plex"]
    config = (
        f"plex: {{url: '{emu.url}', token: {emu.token}}}\n"
        f"plugins:\n  sources:\n    plex: {{{FAST}}}\n  classifiers: [taxonomy]\n"
        "  playlists: {plex: {}}\n"
        "playlists:\n  saved:\n    Volts: {prompt: 'electronic, 20 songs', targets: [plex]}\n"
    )
    with Harness(root, config) as lib:
        built(lib, "playlists", "plex")
        for stage in ("sync", "classify", "decide"):
            lib.run(stage)
        counts = lib.run("playlists")
        assert (counts["playlists"], counts["tracks"], counts["pushed"]) == (1, 20, 1)
        [playlist] = emu.library.playlists.values()
        assert playlist.title == "Volts" and len(playlist.items) == 20
        lib.run("playlists")  # the first refresh: keeps its share, redraws the rest, same day
        assert list(emu.library.playlists.values()) == [playlist]  # edited in place
        emu.clear_requests()
        again = lib.run("playlists")  # the same day again: the same draw, nothing to send
        assert again["unchanged"] == 1 and emu.puts() == []


def spotify_playlists(root: Path, env: dict[str, Any]) -> None:
    from tests.emulators.spotify.clients import authorization_code
    from tests.playlist_setup import catalogue_records, spotify_settings

    emu = env["spotify"]
    settings = json.dumps(spotify_settings(emu))
    config = (
        f"plugins:\n  classifiers: [taxonomy]\n  playlists:\n    spotify: {settings}\n"
        "playlists:\n  saved:\n    Volts: {prompt: 'electronic, 20 songs', targets: [spotify]}\n"
    )
    with Harness(root, config) as lib:
        target = built(lib, "playlists", "spotify")
        target.tokens.log_in(authorization_code(target.tokens.manager))  # `genred spotify login`
        lib.add_tracks(catalogue_records(env["catalogue"], 300), source="folder")
        lib.run("classify")
        lib.run("decide")
        emu.clear_requests()
        counts = lib.run("playlists")
        assert (counts["playlists"], counts["pushed"]) == (1, 1)
        [playlist] = emu.playlists.values()
        assert playlist.name == "Volts" and len(playlist.track_ids) == counts["tracks"] == 20
        assert emu.violations() == []
        lib.run("playlists")  # the first refresh: keeps its share, redraws the rest, same day
        assert len(emu.playlists) == 1  # edited in place
        emu.clear_requests()
        again = lib.run("playlists")  # the same day again: the same draw, nothing to send
        assert again["unchanged"] == 1 and emu.api_requests() == []


def audio_llm_classifier(root: Path, env: dict[str, Any]) -> None:
    import transformers

    from genred_plugins.audio.flamingo.classifier import AudioLLMClassifier
    from tests.test_audio_llm import Scripted, reply
    from tests.tiny_models import IM_END, save_tiny_flamingo

    model = save_tiny_flamingo(root / "tiny-flamingo", "mf")

    def scripted(self: Any, listenings: list[Any], attempt: int) -> dict[str, Any]:
        tokenizer = self._model.tokenizer
        text = reply([{"name": "jazz", "confidence": 0.9}], [], "A brisk jazz tune.")
        ids = [tokenizer.encode(text, add_special_tokens=False) for _ in listenings]
        eos = tokenizer.convert_tokens_to_ids(IM_END)
        return {"logits_processor": transformers.LogitsProcessorList([Scripted(ids, eos)])}

    env["monkeypatch"].setattr(AudioLLMClassifier, "generation_extras", scripted)
    folder = music_folder(root, VIBE_ACE)
    section = {"model": str(model), "device": "cpu", "allow_cpu": True, "every_track": True}
    config = (
        f"folders: ['{folder}']\nextract: {{workers: 1}}\n"
        f"plugins:\n  sources: [folder]\n  classifiers:\n    audio-llm: {json.dumps(section)}\n"
    )
    with Harness(root, config) as lib:
        built(lib, "classifiers", "audio-llm")
        lib.run("sync")
        assert lib.run("classify")["audio-llm.predicted"] == 1
        [labels] = lib.predictions("audio-llm").values()
        assert labels["genre"] == [("Jazz", 0.9)]
        [(caption,)] = lib.store.conn.execute("SELECT text FROM captions").fetchall()
        assert caption == "A brisk jazz tune."


def ray_executor(root: Path, env: dict[str, Any]) -> None:
    folder = music_folder(root, TRUMPET, VIBE_ACE)
    config = (
        f"folders: ['{folder}']\nextract: {{executor: ray, workers: 2}}\n"
        "plugins: {sources: [folder], extractors: {handcrafted: {}}}\n"
    )
    with Harness(root, config) as lib:
        built(lib, "executors", "ray")
        lib.run("sync")
        counts = lib.run("extract")  # every file through the Ray driver's tasks
        assert counts["handcrafted.extracted"] == 2 and counts["handcrafted.failed"] == 0
        assert all(v.shape == (518,) for v in stored_vectors(lib, "handcrafted").values())


SCENARIOS: dict[tuple[str, str], Callable[[Path, dict[str, Any]], None]] = {
    ("sources", "plex"): plex_source,
    ("sources", "folder"): folder_source,
    ("extractors", "handcrafted"): handcrafted_extractor,
    ("extractors", "embedding"): embedding_extractor,
    ("classifiers", "taxonomy"): taxonomy_classifier,
    ("classifiers", "llm-metadata"): llm_metadata_with("groq"),
    ("classifiers", "llm-labels"): llm_labels_classifier,
    ("classifiers", "tagger"): tagger_classifier,
    ("classifiers", "audio-model"): audio_model_classifier,
    ("llm", "groq"): llm_metadata_with("groq"),
    ("llm", "openai"): llm_metadata_with("openai"),
    ("writeback", "plex"): plex_writeback,
    ("writeback", "tags"): tags_writeback,
    ("playlists", "plex"): plex_playlists,
    ("playlists", "spotify"): spotify_playlists,
    ("classifiers", "audio-llm"): audio_llm_classifier,
    ("executors", "ray"): ray_executor,
}


def test_every_builtin_plugin_has_a_scenario() -> None:
    builtin = {(i.kind, i.name) for i in discover() if i.distribution == "genred"}
    assert builtin == set(SCENARIOS)


@pytest.fixture
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The emulators a scenario needs, running."""
    kind, name = request.node.callspec.params["plugin"]
    out: dict[str, Any] = {"monkeypatch": monkeypatch}
    if "plex" in name:
        out["plex"] = request.getfixturevalue("plex_emulator")
    if name == "spotify":
        out["catalogue"] = request.getfixturevalue("spotify_catalogue")
        out["spotify"] = request.getfixturevalue("spotify_emulator")
    if name.startswith("llm") or kind == "llm":
        truth = GroundTruth()
        with LLMEmulator(truth, key=LLM_KEY) as emu:
            out.update(llm=emu, truth=truth)
            yield out
        return
    yield out


@pytest.mark.parametrize("plugin", sorted(SCENARIOS), ids=lambda p: f"{p[0]}-{p[1]}")
def test_builtin_plugin_through_its_stage(
    plugin: tuple[str, str], env: dict[str, Any], tmp_path: Path
) -> None:
    SCENARIOS[plugin](tmp_path, env)
