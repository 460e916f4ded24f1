"""Extractor `embedding`: a transformers audio encoder's hidden states, mean-pooled.

Any encoder AutoModel + AutoFeatureExtractor can load (a Hugging Face model id or a local
directory): MERT-v1-95M by default, wav2vec2, HuBERT, … Each track gives `excerpts`
windows of `excerpt_seconds` from the body of the track, decoded at the model's own
sampling rate (its feature extractor's `sampling_rate`: MERT 24 kHz, most others 16 kHz);
each window's hidden states (one layer, or the mean of all of them) are averaged over
time, and the windows' vectors averaged into the track's vector.

The extract stage runs this extractor in two halves (`parallel = False`): `prepare`
decodes a file into windows in its worker processes (where a hung or crashing decoder is
contained), and `extract_batch` runs the model in the stage's own process, on a batch of
tracks at a time, so the model is loaded once and never forked. torch and transformers are
imported only when the model is loaded: building this plugin or decoding costs neither.

Models whose code lives in their repository (MERT does) run that code only with
`trust_remote_code: true`. Downloads go to `cache_dir` (default: the data dir's
`cache/huggingface`); with HF_HUB_OFFLINE=1 only what is there is used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genred.api import GenredError, PluginContext, PluginUnavailable

MIN_SECONDS = 0.5  # shorter audio gives a model like wav2vec2 too few frames to mean anything
# Checked (not imported) when the plugin is built: extra → the modules it provides.
NEEDS = {"ml": ("torch", "transformers"), "audio": ("numpy", "soundfile", "soxr", "pebble")}


class EmbeddingModelError(GenredError):
    """The configured model cannot be loaded or run; the message says what to change."""


class AudioTooShort(GenredError):
    """The track is too short for the model."""


class EmbeddingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        "m-a-p/MERT-v1-95M", description="Hugging Face model id, or a local model directory"
    )
    revision: str | None = Field(None, description="branch, tag or commit of the model id")
    trust_remote_code: bool = Field(
        False, description="run Python code shipped with the model (MERT needs it)"
    )
    layer: int | Literal["mean"] = Field(
        "mean", description="hidden state to pool: 0 = input embeddings, -1 = last; mean = all"
    )
    excerpt_seconds: float = Field(10.0, gt=0, le=120, description="length of each window")
    excerpts: int = Field(3, ge=1, le=20, description="windows per track, spread over its body")
    batch_size: int = Field(16, ge=1, le=256, description="windows (excerpts) per model call")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="auto: bfloat16 (or float16) on a GPU, float32 on the CPU"
    )
    cache_dir: Path | None = Field(None, description="download cache (default: in the data dir)")


class EmbeddingExtractor:
    Config = EmbeddingSettings
    uses_config = ("data_dir",)
    parallel = False  # the model runs in the stage's process; only `prepare` is forked

    @property
    def batch_size(self) -> int:
        """Tracks per `extract_batch` call (`ExtractsInBatches`)."""
        return int(self.settings.batch_size)

    def __init__(self, settings: EmbeddingSettings, context: PluginContext) -> None:
        for extra, modules in NEEDS.items():
            missing = [m for m in modules if importlib.util.find_spec(m) is None]
            if missing:
                raise PluginUnavailable(
                    f"plugin 'embedding' (extractors) needs {', '.join(missing)}: "
                    f"install it with pip install 'genred[{extra}]'"
                )
        self.settings = settings
        self.cache_dir = settings.cache_dir or context.data_dir / "cache" / "huggingface"
        # What changes the vectors: the model and how its output is pooled (not the device
        # or dtype: those move values by rounding only).
        blob = json.dumps(
            settings.model_dump(
                mode="json",
                include={"model", "revision", "layer", "excerpt_seconds", "excerpts"},
            ),
            sort_keys=True,
        )
        self.version = "1-" + hashlib.sha256(blob.encode()).hexdigest()[:10]
        self.sampling_rate: int | None = None
        self._model: Any = None
        self._feature_extractor: Any = None
        self._device: Any = None
        self._dims: int | None = None

    # ------------------------------------------------------------------ the model

    @property
    def dims(self) -> int:
        """The vector length: the model's hidden size (loads the model)."""
        self.load()
        assert self._dims is not None
        return self._dims

    def load(self) -> None:
        """Load the feature extractor and the model (once); raises EmbeddingModelError."""
        if self._model is not None:
            return
        import torch
        import transformers

        source = self.settings.model
        options: dict[str, Any] = {
            "revision": self.settings.revision,
            "trust_remote_code": self.settings.trust_remote_code,
            "cache_dir": str(self.cache_dir),
        }
        try:
            config = transformers.AutoConfig.from_pretrained(source, **options)
            feature_extractor = transformers.AutoFeatureExtractor.from_pretrained(source, **options)
            model = transformers.AutoModel.from_pretrained(source, **options)
        except ValueError as exc:
            if "trust_remote_code" in str(exc):
                raise EmbeddingModelError(
                    f"model {source!r} ships its own Python code, which genred runs only when "
                    "you allow it: set `trust_remote_code: true` under "
                    "plugins.extractors.embedding (after checking where the model comes from)"
                ) from None
            raise EmbeddingModelError(f"cannot load model {source!r}: {exc}") from None
        except (OSError, ImportError) as exc:
            raise EmbeddingModelError(
                f"cannot load model {source!r}: {exc} (a model id needs network access or a "
                f"copy in {self.cache_dir}; a local path must be a saved model directory)"
            ) from None
        rate = getattr(feature_extractor, "sampling_rate", None)
        if not rate:
            raise EmbeddingModelError(
                f"model {source!r} has no audio feature extractor with a sampling_rate: "
                "is it an audio encoder?"
            )
        layers = int(getattr(config, "num_hidden_layers", 0)) + 1
        layer = self.settings.layer
        if layer != "mean" and not -layers <= layer < layers:
            raise EmbeddingModelError(
                f"layer {layer} does not exist: model {source!r} has hidden states 0..{layers - 1}"
            )
        device = self._pick_device(torch)
        model = model.to(device=device, dtype=self._pick_dtype(torch, device)).eval()
        self._feature_extractor = feature_extractor
        self._model = model
        self._device = device
        self.sampling_rate = int(rate)
        self._dims = int(config.hidden_size)

    def unload(self) -> None:
        """Drop the model (and the GPU memory it holds) until the next run."""
        on_gpu = self._device is not None and self._device.type == "cuda"
        self._model = self._feature_extractor = self._device = None
        if on_gpu:
            import torch

            torch.cuda.empty_cache()

    def _pick_device(self, torch: Any) -> Any:
        wanted = self.settings.device
        if wanted == "cuda" and not torch.cuda.is_available():
            raise EmbeddingModelError(
                "device: cuda, but torch sees no CUDA GPU (set device: auto or cpu, or install "
                "a CUDA build of torch)"
            )
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        return torch.device(wanted)

    def _pick_dtype(self, torch: Any, device: Any) -> Any:
        name = self.settings.dtype
        if name == "auto":
            if device.type != "cuda":
                return torch.float32
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return getattr(torch, name)

    def __getstate__(self) -> dict[str, Any]:
        """What a worker process gets for `prepare`: settings and rate, never the model."""
        state = dict(self.__dict__)
        state.update(_model=None, _feature_extractor=None, _device=None)
        return state

    # ------------------------------------------------------------------ extraction

    def prepare(self, path: Path) -> list[Any]:
        """Decode `path` into windows of `excerpt_seconds` at the model's rate; no torch.

        The excerpt plan is the handcrafted extractor's (`genred_plugins.audio.excerpts`); a track
        taken whole is cut into windows of `excerpt_seconds` (its last, shorter piece kept
        when it is at least MIN_SECONDS), so the model never sees more than one window's
        length at a time.
        """
        from .decode import probe_duration
        from .excerpts import excerpt_windows, load_windows

        if self.sampling_rate is None:
            self.sampling_rate = self._configured_rate()
        if self.sampling_rate is None:
            self.load()  # the rate is only known from the loaded feature extractor
        rate = self.sampling_rate
        assert rate is not None
        s = self.settings
        plan = excerpt_windows(probe_duration(path), s.excerpts, s.excerpt_seconds)
        parts, _ = load_windows(path, plan, sr=rate, max_seconds=s.excerpts * s.excerpt_seconds)
        full = round(s.excerpt_seconds * rate)  # a decoder may give a sample more
        shortest = MIN_SECONDS * rate
        windows = [w for part in parts for w in _pieces(part, full)]
        kept = [w for w in windows if len(w) >= shortest]
        if not kept:
            seconds = max(len(w) for w in windows) / rate
            raise AudioTooShort(
                f"{path}: only {seconds:.2f} s of audio; the model needs at least {MIN_SECONDS} s"
            )
        return kept[: s.excerpts]

    def _configured_rate(self) -> int | None:
        """The model's sampling rate from its preprocessor_config.json (a local folder or
        the download cache), without loading anything: a decoding worker that got this
        plugin unloaded (a Ray task) must not load the model to learn it."""
        import json

        source, name = Path(self.settings.model).expanduser(), "preprocessor_config.json"
        found: Path | None = source / name if source.is_dir() else None
        if found is None:
            try:
                from huggingface_hub import try_to_load_from_cache
            except ImportError:
                return None
            cached = try_to_load_from_cache(
                self.settings.model,
                name,
                cache_dir=str(self.cache_dir),
                revision=self.settings.revision,
            )
            found = Path(cached) if isinstance(cached, str) else None
        try:
            rate = (
                json.loads(found.read_text(encoding="utf-8")).get("sampling_rate")
                if found
                else None
            )
        except (OSError, ValueError, AttributeError):
            return None
        return int(rate) if isinstance(rate, int) and rate > 0 else None

    def extract_batch(self, prepared: Sequence[list[Any]]) -> list[Any]:
        """One float32 vector per prepared track, from as few model calls as it takes.

        Windows of equal length go through the model together (no padding, so a batch
        gives the same vectors as one track at a time); a track's vector is the mean of
        its windows' time-averaged hidden states.
        """
        import numpy as np

        self.load()
        by_length: dict[int, list[tuple[int, Any]]] = {}
        for track, windows in enumerate(prepared):
            for window in windows:
                by_length.setdefault(len(window), []).append((track, window))
        sums = np.zeros((len(prepared), self._dims or 0), dtype=np.float64)
        counts = np.zeros(len(prepared), dtype=np.int64)
        size = self.settings.batch_size
        for group in by_length.values():
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                pooled = self._pool([w for _, w in chunk])
                for (track, _), vector in zip(chunk, pooled, strict=True):
                    sums[track] += vector
                    counts[track] += 1
        return [(sums[i] / max(counts[i], 1)).astype(np.float32) for i in range(len(prepared))]

    def extract(self, path: Path) -> Any:
        return self.extract_batch([self.prepare(path)])[0]

    def _pool(self, windows: list[Any]) -> Any:
        """Time-averaged hidden states of equal-length windows: array [len(windows), dims]."""
        import torch

        inputs = self._feature_extractor(
            windows, sampling_rate=self.sampling_rate, return_tensors="pt"
        )
        values = inputs["input_values"].to(device=self._device, dtype=self._model.dtype)
        with torch.inference_mode():
            hidden = self._model(values, output_hidden_states=True).hidden_states
        layer = self.settings.layer
        if layer == "mean":
            chosen = torch.stack([h.float() for h in hidden]).mean(dim=0)
        else:
            chosen = hidden[layer].float()
        return chosen.mean(dim=1).cpu().numpy()


def _pieces(samples: Any, length: int) -> list[Any]:
    """`samples` cut into consecutive pieces of `length` (the last one may be shorter)."""
    if len(samples) <= length + 1:  # one window (a decoder may give a sample more)
        return [samples[:length]]
    return [samples[i : i + length] for i in range(0, len(samples), length)]
