"""pytest fixtures: the freemusi.cc ground truth (built once), a fake clock and a running
emulator per test.

Load them with `pytest_plugins = ["tests.emulators.llm.fixtures"]` in the root conftest.py,
or import them by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .clock import FakeClock
from .oracle import GroundTruth
from .server import LLMEmulator

LLM_KEY = "test-groq-key"


@pytest.fixture(scope="session")
def llm_truth() -> GroundTruth:
    """Every freemusi.cc row's genres, keyed by (artist, album, title) (treat as read-only)."""
    return GroundTruth.from_freemusicc()


@pytest.fixture
def llm_clock() -> FakeClock:
    """The clock the `llm_emulator`'s rate limits run on: `llm_clock.advance(60)`."""
    return FakeClock()


@pytest.fixture
def llm_emulator(llm_truth: GroundTruth, llm_clock: FakeClock) -> Iterator[LLMEmulator]:
    """A running emulator: key `LLM_KEY`, the default models and their free-plan limits,
    no noise, the freemusi.cc truth, time from `llm_clock`."""
    with LLMEmulator(llm_truth, key=LLM_KEY, clock=llm_clock) as emulator:
        yield emulator
