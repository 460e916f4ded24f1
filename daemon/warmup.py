"""The plugins' one-time preparation (`WarmsUp`), done when the daemon starts, in the background.

Compiling the audio kernels costs the first extraction 20 s to 2 minutes; the daemon's
first sync usually takes longer than that, so starting the warm-up with the daemon means
the first extraction waits for nothing (a stage that needs it before it is done waits
for the one under way, saying so, instead of compiling twice). It runs at a lower CPU
priority and stops with the daemon.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from .hookspecs import WarmsUp
from .logs import get_logger

log = get_logger("genred.warmup")


def warm_up_in_background(
    plugins: Iterable[Any], cancel: threading.Event
) -> threading.Thread | None:
    """Start a thread preparing every plugin of `plugins` that needs it; None if none does."""
    needed = [(p, text) for p in plugins if isinstance(p, WarmsUp) and (text := p.warm_up_needed())]
    if not needed:
        return None

    def warm() -> None:
        for plugin, text in needed:
            if cancel.is_set():
                return
            log.info("preparing in the background", what=text, plugin=type(plugin).__name__)
            try:
                plugin.warm_up(cancel)
            except Exception as exc:  # the stage does it (or the workers) if this fails
                log.warning("background preparation failed", what=text, error=str(exc))

    thread = threading.Thread(target=warm, name="genred-warm-up", daemon=True)
    thread.start()
    return thread
