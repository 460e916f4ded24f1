"""pytest fixtures: a small freemusi.cc library (built once) and a running emulator per test.

Use them from a test module with `pytest_plugins = ["tests.emulators.plex.fixtures"]` in the
root conftest.py, or import them by name.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from .library import PlexLibrary
from .server import PlexEmulator

PLEX_LIBRARY_TRACKS = 2000  # CSV rows; the 15 fixture audio files come on top


@pytest.fixture(scope="session")
def plex_library() -> PlexLibrary:
    """The first 2000 freemusi.cc tracks plus the fixture audio (treat as read-only)."""
    return PlexLibrary.from_freemusicc(limit=PLEX_LIBRARY_TRACKS)


@pytest.fixture
def plex_emulator(plex_library: PlexLibrary, tmp_path: Path) -> Iterator[PlexEmulator]:
    """A running emulator over a private copy of `plex_library`.

    Its music root (`/data/music`) is scanned from `emu.scan_roots["/data/music"]`, an empty
    folder under tmp_path: drop audio there and call `section.update(path=…)`.
    """
    library = copy.deepcopy(plex_library)
    scan_root = tmp_path / "plex-music"
    scan_root.mkdir()
    with PlexEmulator(library, scan_roots={library.root: scan_root}) as emulator:
        yield emulator
