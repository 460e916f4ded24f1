"""Shared set-up of the LLM classifier tests: the real groq plugin on the LLM emulator,
its limiter on the emulator's fake clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from genred_plugins.llm.groq_llm import GroqLLM
from genred_plugins.llm.limits import RateLimiter
from tests.emulators.llm import FakeClock, LLMEmulator
from tests.emulators.llm.fixtures import LLM_KEY

FAST_RETRIES = {"attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.02}


def groq(emu: LLMEmulator, clock: FakeClock, **settings: Any) -> GroqLLM:
    """The real groq plugin on the emulator; its limiter sleeps by moving the fake clock."""
    settings.setdefault("limits", {"max_wait": 120})
    config = GroqLLM.Config.model_validate(
        {"api_key": LLM_KEY, "base_url": emu.url, "retries": FAST_RETRIES, **settings}
    )
    limiter = RateLimiter(
        config.limits,
        name="groq-test",
        clock=clock,
        sleep=clock.advance,
        wall=lambda: datetime.fromtimestamp(clock(), UTC),
    )
    return GroqLLM(config, None, limiter=limiter)
