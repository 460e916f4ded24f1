"""Loading an Audio Flamingo 3 / Music Flamingo checkpoint and asking it, in batches.

- The class comes from the checkpoint's config.json (`architectures`, else `model_type`),
  from an allow-list: `nvidia/music-flamingo-hf` (tagged audioflamingo3) loads with
  `AudioFlamingo3ForConditionalGeneration` (transformers ≥ 5.0),
  `nvidia/music-flamingo-2601-hf` with `MusicFlamingoForConditionalGeneration` (≥ 5.5);
  no Auto class maps them for generation. The processor is `AutoProcessor`'s.
- bf16 on a GPU (float32 on the CPU); the log-mel features are cast to the model's dtype
  (the processor gives float32, and conv1 of a bf16 model refuses it: transformers #42259).
  Attention: flash-attention 2 when installed (GPU, half precision), else SDPA.
  `device_map` (sharding over GPUs) needs accelerate; else the model goes `.to(device)`.
- Generation is greedy and always bounded by `max_new_tokens` (Music Flamingo's config
  sets max_position_embeddings to its RoTE constant 1200, and generate() would raise on
  any prompt longer than that without it). Prompts are left-padded, so only the new
  tokens of each row are decoded. CUDA out of memory halves the batch and tries again;
  at one track, that track fails alone.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genred.api import GenredError, get_logger

from .listening import SAMPLE_RATE, Listening

log = get_logger("genred.classify")

CLASS_BY_MODEL_TYPE = {
    "musicflamingo": "MusicFlamingoForConditionalGeneration",
    "audioflamingo3": "AudioFlamingo3ForConditionalGeneration",
}
ALLOWED = frozenset(CLASS_BY_MODEL_TYPE.values())
NEEDS = {
    "MusicFlamingoForConditionalGeneration": "5.5",
    "AudioFlamingo3ForConditionalGeneration": "5.0",
}
LIMIT_BY_MODEL_TYPE = {"musicflamingo": 1200.0, "audioflamingo3": 600.0}  # seconds
DEFAULT_LIMIT = 600.0
SYSTEM = "You are a music expert. You listen carefully and answer with JSON only."


class AudioLLMModelError(GenredError):
    """The configured model cannot be loaded or run; the message says what to change."""


class AudioLLMOutOfMemory(GenredError):
    """The GPU ran out of memory for this one track, even alone."""


def checkpoint_file(source: str, name: str, revision: str | None, cache_dir: Path) -> Path | None:
    """A file of the checkpoint on this machine (a local folder, or the hub cache), or None;
    nothing is downloaded and no model library is imported."""
    local = Path(source).expanduser()
    if local.is_dir():
        path = local / name
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(source, name, cache_dir=str(cache_dir), revision=revision)
    return Path(found) if isinstance(found, str) else None


def audio_limit(source: str, revision: str | None, cache_dir: Path) -> float:
    """How many seconds of audio the model takes (its processor's max_audio_len)."""
    for name, read in (
        ("processor_config.json", lambda d: d.get("max_audio_len")),
        ("config.json", lambda d: LIMIT_BY_MODEL_TYPE.get(str(d.get("model_type")))),
    ):
        path = checkpoint_file(source, name, revision, cache_dir)
        if path is None:
            continue
        try:
            value = read(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return DEFAULT_LIMIT


def model_class(source: str, revision: str | None, cache_dir: Path) -> Any:
    """The transformers class the checkpoint's config.json names, from the allow-list."""
    import transformers

    try:
        config, _ = transformers.PretrainedConfig.get_config_dict(
            source, revision=revision, cache_dir=str(cache_dir)
        )
    except OSError as exc:
        raise AudioLLMModelError(
            f"cannot read the config of model {source!r}: {exc} (a model id needs network "
            f"access or a copy in {cache_dir}; a local path must be a saved model directory)"
        ) from None
    architectures = config.get("architectures") or []
    name = (
        architectures[0]
        if architectures
        else CLASS_BY_MODEL_TYPE.get(str(config.get("model_type")))
    )
    if name not in ALLOWED:
        raise AudioLLMModelError(
            f"model {source!r} is a {config.get('model_type')!r} ({architectures}); audio-llm "
            f"runs {', '.join(sorted(ALLOWED))}"
        )
    cls = getattr(transformers, name, None)
    if cls is None:
        raise AudioLLMModelError(
            f"model {source!r} needs {name}, which transformers {transformers.__version__} "
            f"lacks: install transformers>={NEEDS[name]}"
        )
    return cls


class FlamingoModel:
    """A loaded checkpoint and its processor, on one device."""

    def __init__(
        self,
        source: str,
        *,
        revision: str | None,
        cache_dir: Path,
        device: str,
        dtype: str,
        attention: str,
        device_map: str | None,
    ) -> None:
        import torch
        import transformers

        transformers.utils.logging.disable_progress_bar()
        # Music Flamingo's max_position_embeddings (1200) is a RoTE constant, not its
        # context: generate() says every longer prompt "exceeded the maximum length"
        logging.getLogger("transformers.generation.stopping_criteria").setLevel(logging.ERROR)
        cls = model_class(source, revision, cache_dir)
        options: dict[str, Any] = {"revision": revision, "cache_dir": str(cache_dir)}
        torch_dtype = _dtype(torch, dtype, device)
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(source, **options)
            kwargs: dict[str, Any] = {
                **options,
                "dtype": torch_dtype,
                "attn_implementation": _attention(attention, device, torch_dtype, torch),
            }
            if device_map:
                if importlib.util.find_spec("accelerate") is None:
                    raise AudioLLMModelError(
                        f"device_map: {device_map} needs accelerate: pip install accelerate "
                        "(or leave device_map unset to use one device)"
                    )
                kwargs["device_map"] = device_map
            model = cls.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise AudioLLMModelError(f"cannot load model {source!r}: {exc}") from None
        if not device_map:
            model = model.to(device)
        self.model = model.eval()
        self.tokenizer = self.processor.tokenizer
        self.limit = float(getattr(self.processor, "max_audio_len", DEFAULT_LIMIT))

    @property
    def dtype(self) -> Any:
        return self.model.dtype

    def inputs(self, listenings: Sequence[Listening], prompts: Sequence[str]) -> Any:
        """The batch's tensors on the model's device, log-mels in the model's dtype."""
        conversations = [
            [
                {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": p}]},
            ]
            for p in prompts
        ]
        texts = self.processor.apply_chat_template(
            conversations, tokenize=False, add_generation_prompt=True
        )
        batch = self.processor(
            text=texts,
            audio=[listening.samples for listening in listenings],
            sampling_rate=SAMPLE_RATE,
        ).to(self.model.device)
        # the processor's features are float32; a bf16 model's conv1 refuses them
        batch["input_features"] = batch["input_features"].to(self.model.dtype)
        return batch

    def generate(
        self,
        listenings: Sequence[Listening],
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        sample: bool = False,
        extras: dict[str, Any] | None = None,
    ) -> list[str]:
        """One reply per listening (greedy; `sample`: a re-ask, with some temperature)."""
        import torch

        batch = self.inputs(listenings, prompts)
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": sample}
        if sample:
            options.update(temperature=0.7, top_p=0.95)
        with torch.inference_mode():
            out = self.model.generate(**batch, **options, **(extras or {}))
        new = out[:, batch["input_ids"].shape[1] :]  # left padding: every prompt ends here
        texts: list[str] = self.processor.batch_decode(new, skip_special_tokens=True)
        return texts

    def release(self) -> None:
        import torch

        on_gpu = (
            getattr(self.model, "device", None) is not None and self.model.device.type == "cuda"
        )
        self.model = self.processor = self.tokenizer = None
        if on_gpu:
            torch.cuda.empty_cache()


def in_batches(
    run: Callable[[list[int]], list[str]],
    count: int,
    size: int,
    on_smaller: Callable[[int], None],
) -> list[str | BaseException]:
    """`run(indices)` over 0..count-1, `size` at a time; CUDA out of memory halves the size
    (and says so through `on_smaller`, so later batches start there), and at one item
    fails that item alone."""
    out: list[str | BaseException] = [""] * count
    at = 0
    while at < count:
        chunk = list(range(at, min(at + size, count)))
        try:
            for index, text in zip(chunk, run(chunk), strict=True):
                out[index] = text
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            _free_gpu()
            if size == 1:
                out[at] = AudioLLMOutOfMemory(
                    "the GPU ran out of memory for this track alone (whole-track mode on a "
                    "long file? try mode: excerpts, or a GPU with more memory)"
                )
                at += 1
                continue
            size = max(1, size // 2)
            on_smaller(size)
            log.warning("GPU out of memory; halving the batch", batch=size)
            continue
        at += len(chunk)
    return out


def is_out_of_memory(exc: BaseException) -> bool:
    try:
        import torch
    except ImportError:
        return False
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _dtype(torch: Any, name: str, device: str) -> Any:
    if name == "auto":
        if not device.startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, name)


def _attention(name: str, device: str, dtype: Any, torch: Any) -> str:
    if name != "auto":
        return name
    half = dtype in (torch.bfloat16, torch.float16)
    if device.startswith("cuda") and half and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"
