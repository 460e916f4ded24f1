"""The LLM side of genred: one chat interface over the provider plugins (groq, openai).

`chat.py` builds the request and turns answers into validated JSON (asking again when an
answer is unusable), `limits.py` keeps the provider's rate budgets, `provider.py` is the
base of the plugins: one request with retries, and the provider's errors as genred's.
"""

from genred.errors import (
    LLMAnswerError,
    LLMAuthFailed,
    LLMBudgetExhausted,
    LLMRequestFailed,
    LLMRequestTooLarge,
    LLMUnavailable,
)

from .chat import ChatResult, InvalidAnswer, Usage
from .limits import RateBudget, RateLimiter, RateLimits, estimate_tokens, parse_go_duration
from .provider import ChatCompletionsLLM, ChatSettings, RetrySettings

__all__ = [
    "ChatCompletionsLLM",
    "ChatResult",
    "ChatSettings",
    "InvalidAnswer",
    "LLMAnswerError",
    "LLMAuthFailed",
    "LLMBudgetExhausted",
    "LLMRequestFailed",
    "LLMRequestTooLarge",
    "LLMUnavailable",
    "RateBudget",
    "RateLimiter",
    "RateLimits",
    "RetrySettings",
    "Usage",
    "estimate_tokens",
    "parse_go_duration",
]
