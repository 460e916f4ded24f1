"""LLM plugin `openai`: OpenAI, or any OpenAI-compatible server, through the `openai` SDK.

For a local server set `base_url` with its /v1 (Ollama http://127.0.0.1:11434/v1,
llama.cpp's llama-server http://127.0.0.1:8080/v1, vLLM http://127.0.0.1:8000/v1, LM Studio
http://127.0.0.1:1234/v1) and `model` to a name it serves; no API key is needed there. No
rate limits apply unless configured: OpenAI's own `x-ratelimit-*` headers (requests and
tokens per minute) are honoured when the server sends them. `max_tokens` is sent under its
classic name, the one every compatible server understands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import openai

from .limits import RateLimits
from .provider import ChatCompletionsLLM, ChatSettings, require_key

UNLIMITED = RateLimits(
    requests_per_minute=None, requests_per_day=None, tokens_per_minute=None, tokens_per_day=None
)


class OpenAISettings(ChatSettings):
    """Settings of the `openai` LLM plugin; `model` is required."""

    limits: RateLimits = UNLIMITED


class OpenAILLM(ChatCompletionsLLM):
    """Chat with an OpenAI-compatible server; JSON answers."""

    Config = OpenAISettings
    provider = "openai"
    api_key_env = "OPENAI_API_KEY"
    header_windows: ClassVar[Mapping[str, str]] = {"requests": "minute", "tokens": "minute"}
    max_tokens_field = "max_tokens"
    status_error = openai.APIStatusError
    connection_error = openai.APIConnectionError

    def api_key(self) -> str | None:
        if self.settings.base_url is not None and self.settings.api_key is None:
            return None  # never send $OPENAI_API_KEY to another server unasked
        return super().api_key()

    def make_client(self, api_key: str | None) -> Any:
        base_url = self.settings.base_url
        if base_url is None:
            api_key = require_key(self.provider, self.api_key_env, api_key)
        options: dict[str, Any] = {"base_url": str(base_url)} if base_url else {}
        return openai.OpenAI(
            api_key=api_key or "no-key",  # local servers ignore it; the SDK wants one
            timeout=self.settings.timeout,
            max_retries=0,  # retries are genred's, once (genred_plugins.llm.provider)
            **options,
        )
