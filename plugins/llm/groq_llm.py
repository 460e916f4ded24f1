"""LLM plugin `groq`: Groq's chat completions through the `groq` SDK (extra `llm`).

Groq's `x-ratelimit-*-requests` headers count requests per DAY and `*-tokens` tokens per
MINUTE; the limits default to the free tier of llama-3.1-8b-instant (see genred_plugins.llm.limits).
`base_url` is the server root (the SDK adds /openai/v1/chat/completions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import groq
from pydantic import Field

from .formats import ServerKind
from .provider import ChatCompletionsLLM, ChatSettings, require_key


class GroqSettings(ChatSettings):
    """Settings of the `groq` LLM plugin."""

    model: str = "llama-3.1-8b-instant"
    # Models that take response_format json_schema with strict: true (Groq's docs).
    json_schema_models: list[str] = Field(
        default_factory=lambda: ["openai/gpt-oss-20b", "openai/gpt-oss-120b"]
    )
    server: ServerKind = "groq"


class GroqLLM(ChatCompletionsLLM):
    """Chat with a Groq model; JSON answers, Groq's rate limits honoured."""

    Config = GroqSettings
    provider = "groq"
    api_key_env = "GROQ_API_KEY"
    header_windows: ClassVar[Mapping[str, str]] = {"requests": "day", "tokens": "minute"}
    max_tokens_field = "max_completion_tokens"
    status_error = groq.APIStatusError
    connection_error = groq.APIConnectionError

    def make_client(self, api_key: str | None) -> Any:
        base_url = self.settings.base_url
        return groq.Groq(
            api_key=require_key(self.provider, self.api_key_env, api_key),
            base_url=str(base_url) if base_url else None,
            timeout=self.settings.timeout,
            max_retries=0,  # retries are genred's, once (genred_plugins.llm.provider)
        )
