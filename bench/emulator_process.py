"""The Plex emulator in a child process, so its CPU does not share the client's interpreter.

Both benchmarks use it; the child answers small commands over a pipe.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

TOKEN = "bench-token"
FORK = mp.get_context("fork")


def _serve(n_tracks: int, seed: int, warm: bool, conn: Connection) -> None:
    from tests.emulators.plex import PlexEmulator, PlexLibrary

    library = PlexLibrary.generate(n_tracks=n_tracks, seed=seed)
    emulator = PlexEmulator(library, token=TOKEN).start()
    if warm:
        # Render every item once (listing and detail form), as a warmed-up PMS would answer,
        # so no measured run pays the emulator's first-render cost that a later run skips.
        for item in [*library.tracks.values(), *library.albums.values(), *library.artists.values()]:
            emulator.renderer.item(item, full=False)
            emulator.renderer.item(item, full=True)
    conn.send(emulator.url)
    while True:
        command = conn.recv()
        if command == "requests":
            conn.send(len(emulator.requests))
        elif command == "counts":
            conn.send(dict(Counter(r.method for r in emulator.requests)))
        elif command == "clear":
            emulator.clear_requests()
            conn.send(None)
        elif command == "genres":
            conn.send({key: track.genres for key, track in library.tracks.items()})
        elif command == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(usage.ru_utime + usage.ru_stime)
        elif command == "stop":
            emulator.stop()
            conn.send(None)
            return


class EmulatorProcess:
    """A PlexEmulator over a generated library, in a child process."""

    def __init__(self, n_tracks: int, seed: int = 1, warm: bool = False) -> None:
        self.conn, child = FORK.Pipe()
        self.process = FORK.Process(target=_serve, args=(n_tracks, seed, warm, child), daemon=True)
        self.process.start()
        self.url: str = self.conn.recv()

    def ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def genres(self) -> dict[int, list[str]]:
        result: dict[int, list[str]] = self.ask("genres")
        return result

    def stop(self) -> None:
        self.ask("stop")
        self.process.join(10)


@contextmanager
def emulator_process(n_tracks: int, seed: int = 1, warm: bool = False) -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess(n_tracks, seed, warm)
    try:
        yield emulator
    finally:
        emulator.stop()
