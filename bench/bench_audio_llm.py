"""`audio-llm` benchmark: tracks per hour and GPU memory at batch 1, 4 and 8.

- On a GPU with the weights present (a local checkpoint, or the Hugging Face cache:
  GENRED_BENCH_FLAMINGO_MODEL, default nvidia/music-flamingo-2601-hf; fetch it with
  `huggingface-cli download nvidia/music-flamingo-2601-hf` — NVIDIA's non-commercial
  licence): the real checkpoint in bf16 asked about GENRED_BENCH_FLAMINGO_TRACKS (16)
  real fixture tracks (three 30 s excerpts each) at each batch size, greedy, with the
  classifier's own question: tracks per hour, peak GPU memory (torch's max allocated),
  how many replies were the JSON asked for, and a few captions. Batch 1 is the naive way
  (one track per generate call). Skipped, saying why, without a GPU or the weights.
- Always: the same pipeline with a tiny random Music Flamingo on the CPU (decode,
  processor, generate 24 tokens): the pipeline's own cost per track, batched and not.

Run: `pytest -m bench bench/bench_audio_llm.py -s`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES

pytestmark = pytest.mark.bench

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("soundfile")

MODEL = os.environ.get("GENRED_BENCH_FLAMINGO_MODEL", "nvidia/music-flamingo-2601-hf")
TRACKS = int(os.environ.get("GENRED_BENCH_FLAMINGO_TRACKS", "16"))
BATCHES = (1, 4, 8)
FILES = [
    *sorted(
        p
        for p in (FIXTURES / "audio" / "debian").iterdir()
        if p.suffix in (".ogg", ".mp3", ".opus")
    ),
    *sorted(p for p in (FIXTURES / "audio" / "librosa-data").glob("*.ogg") if ".hq." not in p.name),
]


def classifier(model: str, data: Path, **settings: Any) -> Any:
    from genred.config import Config
    from genred.hookspecs import PluginContext
    from genred_plugins.audio.flamingo.classifier import AudioLLMClassifier

    config = Config(data_dir=data)
    valid = AudioLLMClassifier.Config(model=model, every_track=True, **settings)
    return AudioLLMClassifier(valid, PluginContext(config))


def listenings(plugin: Any, count: int) -> list[Any]:
    plugin.file_work()
    files = [FILES[i % len(FILES)] for i in range(count)]
    return [plugin.listen_file(path) for path in files]


def timed(plugin: Any, heard: list[Any], batch: int) -> dict[str, Any]:
    """Every listening asked, `batch` per generate call: time, GPU peak, answers."""
    plugin._batch_limit = batch
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    outcomes: list[Any] = []
    for start in range(0, len(heard), batch):
        outcomes += plugin.answer_batch(heard[start : start + batch])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    answered = [o for o in outcomes if type(o).__name__ == "Answer"]
    return {
        "seconds": seconds,
        "per_hour": len(heard) / seconds * 3600,
        "gpu_gb": torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else 0.0,
        "answered": len(answered),
        "captions": [a.caption for a in answered if a.caption][:3],
        "failed": [str(o)[:100] for o in outcomes if isinstance(o, BaseException)][:2],
    }


def test_tiny_model_pipeline_on_the_cpu(tmp_path: Path) -> None:
    from tests.tiny_models import save_tiny_flamingo

    checkpoint = save_tiny_flamingo(tmp_path / "tiny")
    plugin = classifier(
        str(checkpoint), tmp_path / "data", device="cpu", allow_cpu=True, retries=0,
        max_new_tokens=24,
    )  # fmt: skip
    began = time.perf_counter()
    heard = listenings(plugin, 8)
    decode = (time.perf_counter() - began) / len(heard)
    began = time.perf_counter()
    plugin.load()
    load = time.perf_counter() - began
    print(
        f"\naudio-llm, tiny Music Flamingo (69k parameters) on the CPU: decode {1000 * decode:.0f}"
        f" ms/track (3 × 30 s at 16 kHz, in this process), load {load:.1f} s"
    )
    for batch in BATCHES:
        r = timed(plugin, heard, batch)
        print(
            f"  batch {batch}: {1000 * r['seconds'] / len(heard):5.0f} ms/track "
            f"({r['per_hour']:,.0f} tracks/h; the pipeline's cost, not a model's)"
        )
    plugin.unload()


def test_real_checkpoint_on_a_gpu(tmp_path: Path) -> None:
    from genred_plugins.audio.flamingo.model import checkpoint_file

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here: run this on a machine with one (and the weights)")
    cache = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
    if checkpoint_file(MODEL, "config.json", None, cache) is None:
        pytest.skip(
            f"no weights for {MODEL} on this machine: huggingface-cli download {MODEL} "
            "(NVIDIA non-commercial licence), or set GENRED_BENCH_FLAMINGO_MODEL to a local "
            "checkpoint"
        )
    plugin = classifier(MODEL, tmp_path / "data", device="cuda", cache_dir=cache)
    heard = listenings(plugin, TRACKS)
    began = time.perf_counter()
    plugin.load()
    print(
        f"\naudio-llm, {MODEL} on {torch.cuda.get_device_name()}: loaded in "
        f"{time.perf_counter() - began:.0f} s ({plugin._model.dtype}, "
        f"{torch.cuda.memory_allocated() / 1e9:.1f} GB), {len(heard)} tracks of 3 × 30 s"
    )
    timed(plugin, heard[:1], 1)  # warm-up: CUDA kernels, caches
    rates = {}
    for batch in BATCHES:
        r = timed(plugin, heard, batch)
        rates[batch] = r["per_hour"]
        print(
            f"  batch {batch}: {r['per_hour']:7,.0f} tracks/h, peak GPU {r['gpu_gb']:5.1f} GB, "
            f"{r['answered']}/{len(heard)} replies were the JSON asked for"
            + (f"; failed: {r['failed']}" if r["failed"] else "")
        )
        for caption in r["captions"]:
            print(f"      caption: {caption}")
    print(f"  batch 8 / batch 1 (the naive way): {rates[8] / rates[1]:.1f}× the tracks per hour")
    plugin.unload()
