"""Shared fixtures. Emulator fixtures come from their own packages under tests/emulators/."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.emulators.plex.fixtures",
    "tests.emulators.llm.fixtures",
    "tests.emulators.spotify.fixtures",
]

REPO = Path(__file__).resolve().parent.parent
# Third-party data the tests and the demo use, vendored with its SOURCES and licences.
FIXTURES = REPO / "tests" / "fixtures"
EXAMPLE_CONFIG = REPO / "config" / "genred.example.yaml"


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a YAML config (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "genred.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        path.chmod(0o600)
        return path

    return write
