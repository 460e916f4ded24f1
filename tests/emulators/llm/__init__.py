"""An LLM emulator for tests: the real groq and openai SDKs talk to it over HTTP.

Groq's OpenAI-compatible chat API (and the plain /v1 paths of Ollama, vLLM, llama.cpp) on
127.0.0.1, with Groq's per-model rate limits on an injectable clock, its headers and error
bodies, and an oracle that answers genred's classification prompts from a ground truth.
See README.md.
"""

from .clock import FakeClock, ScaledClock
from .models import DEFAULT_MODEL, DEFAULT_MODELS, ModelSpec
from .noise import KINDS as NOISE_KINDS
from .noise import Noise
from .oracle import OUT_OF_TAXONOMY, GroundTruth, Truth, find_document, fold, track_key
from .ratelimits import UNLIMITED, Limits, estimate_tokens, go_duration, parse_go_duration
from .server import LLMEmulator, LLMRequestRecord

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODELS",
    "NOISE_KINDS",
    "OUT_OF_TAXONOMY",
    "UNLIMITED",
    "FakeClock",
    "GroundTruth",
    "LLMEmulator",
    "LLMRequestRecord",
    "Limits",
    "ModelSpec",
    "Noise",
    "ScaledClock",
    "Truth",
    "estimate_tokens",
    "find_document",
    "fold",
    "go_duration",
    "parse_go_duration",
    "track_key",
]
