"""The models the emulator serves, with their limits and what each supports."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .ratelimits import Limits


@dataclass(frozen=True)
class ModelSpec:
    """One served model. `json_schema`: accepts response_format json_schema (others: 400);
    `reasoning`: answers carry `message.reasoning`, as gpt-oss does in the recordings."""

    id: str
    limits: Limits = field(default_factory=Limits)
    json_schema: bool = False
    reasoning: bool = False
    context_window: int = 131_072
    max_completion_tokens: int = 32_768
    owned_by: str = "Meta"
    created: int = 1_693_721_698

    @property
    def system_fingerprint(self) -> str:
        return "fp_" + hashlib.sha1(self.id.encode()).hexdigest()[:10]

    def with_limits(self, limits: Limits) -> ModelSpec:
        return replace(self, limits=limits)


# Groq's free-plan limits (console.groq.com/docs/rate-limits, the table as stored in the
# search corpus): RPM, RPD, TPM, TPD. json_schema support per NOTES.md (gpt-oss: yes, cassette
# test_groq_native_output.yaml). Completion caps from Groq's model pages.
DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("llama-3.1-8b-instant", Limits(30, 14_400, 6_000, 500_000),
              max_completion_tokens=131_072),
    ModelSpec("llama-3.3-70b-versatile", Limits(30, 1_000, 12_000, 100_000),
              max_completion_tokens=32_768),
    ModelSpec("openai/gpt-oss-120b", Limits(30, 1_000, 8_000, 200_000), json_schema=True,
              reasoning=True, max_completion_tokens=65_536, owned_by="OpenAI",
              created=1_754_408_224),
    ModelSpec("openai/gpt-oss-20b", Limits(30, 1_000, 8_000, 200_000), json_schema=True,
              reasoning=True, max_completion_tokens=65_536, owned_by="OpenAI",
              created=1_754_407_957),
)  # fmt: skip
DEFAULT_MODEL = DEFAULT_MODELS[0].id


def model_table(models: Iterable[ModelSpec | str] | None) -> dict[str, ModelSpec]:
    """{id: spec}; a bare name becomes a spec with the default (llama-3.1-8b-instant) limits."""
    chosen = DEFAULT_MODELS if models is None else models
    table: dict[str, ModelSpec] = {}
    for model in chosen:
        spec = ModelSpec(model) if isinstance(model, str) else model
        table[spec.id] = spec
    if not table:
        raise ValueError("the emulator needs at least one model")
    return table
