"""`genred doctor llm` on the LLM emulator through the real groq SDK: a model that answers
the three test questions validates them (with the mode and genres shown); one whose
answers never validate is reported, with why, and the command exits 1."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from genred.cli import cli
from genred_plugins.llm.doctor import SAMPLES
from tests.emulators.llm import GroundTruth, LLMEmulator
from tests.emulators.llm.fixtures import LLM_KEY
from tests.emulators.llm.noise import Noise

TRUTH = (("Jazz",), ("Grunge", "Rock"), ("IDM", "Electronic"))


def sample_truth() -> GroundTruth:
    truth = GroundTruth()
    for track, genres in zip(SAMPLES, TRUTH, strict=True):
        truth.add(genres, artist=track.artist, album=track.album, title=track.title)
    return truth


def doctor(tmp_path: Path, emu: LLMEmulator) -> tuple[int, str]:
    config = tmp_path / "genred.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "plugins:\n"
        "  classifiers: [llm-metadata]\n"
        f"  llm: {{groq: {{api_key: {LLM_KEY}, base_url: {emu.url},"
        " retries: {attempts: 1}, answer_retries: 1}}\n"
        "logging: {level: error}\n"
    )
    config.chmod(0o600)
    result = CliRunner().invoke(cli, ["doctor", "llm", "--config", str(config)])
    return result.exit_code, result.output


def test_a_model_whose_answers_validate(tmp_path: Path) -> None:
    with LLMEmulator(sample_truth(), key=LLM_KEY) as emu:
        code, out = doctor(tmp_path, emu)
        asked = [r for r in emu.requests if r.kind == "classify"]
    assert code == 0, out
    assert "3 of 3 answers validated" in out
    assert len(asked) == 3  # one question per sample, nothing re-asked
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "Jazz" in lines["Miles Davis – So What"]
    assert "Rock" in lines["Nirvana – Smells Like Teen Spirit"]
    assert "json_object" in lines["Aphex Twin – Windowlicker"]  # the mode the server took
    assert LLM_KEY not in out


def test_a_model_whose_answers_never_validate(tmp_path: Path) -> None:
    with LLMEmulator(sample_truth(), key=LLM_KEY, noise=Noise(non_json_rate=1.0)) as emu:
        code, out = doctor(tmp_path, emu)
    assert code == 1, out
    assert "0 of 3 answers validated" in out
    assert out.count(" no ") >= 3 and "JSON" in out
    assert "classify would fail every track" in out
