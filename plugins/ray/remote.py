"""What runs in Ray's worker processes: one file's work, and a model worker (an actor).

Every node of the cluster imports this module, so genred (with the extras the plugins
need) must be installed there. Errors are returned as values, never raised, so Ray's own
retries are only for a worker process that died (a crash, a lost node); an exception that
cannot be pickled travels as its type name and message.
"""

from __future__ import annotations

import pickle
from typing import Any

from genred.api import GenredError, LoadsModel, run_batch


class RemoteError(GenredError):
    """An error a worker raised that could not be sent back as it was."""


def sendable(exc: BaseException) -> BaseException:
    """`exc` itself when it pickles, else a RemoteError naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RemoteError(f"{type(exc).__name__}: {exc}")
    return exc


_loaded: dict[str, Any] = {}  # per worker process: plugins whose model is loaded, by job key


def _ready(plugin: Any, key: str) -> Any:
    """The plugin with its model loaded once per worker process (`LoadsModel`)."""
    if not isinstance(plugin, LoadsModel):
        return plugin
    if key not in _loaded:
        plugin.load()
        _loaded[key] = plugin
    return _loaded[key]


def run_file(
    plugin: Any, method: str, path: str, key: str, load: bool, *hint: Any
) -> tuple[BaseException | None, Any]:
    """(None, result) or (the error, None) of `plugin.<method>(path[, hint])` for one file.

    `load`: the plugin's model is needed here (a job without a batch step); a decoding
    task for a model worker never loads it."""
    from pathlib import Path

    try:
        ready = _ready(plugin, key) if load else plugin
        return None, getattr(ready, method)(Path(path), *hint)
    except Exception as exc:
        return sendable(exc), None


class ModelWorker:
    """Holds one plugin with its model loaded (once, when the actor starts) and runs its
    batch method on the per-file results it is handed (fetched from the object store)."""

    def __init__(self, plugin: Any) -> None:
        if isinstance(plugin, LoadsModel):
            plugin.load()
        self.plugin = plugin

    def run(self, method: str, *prepared: Any) -> list[Any]:
        outcomes = run_batch(self.plugin, method, list(prepared))
        return [sendable(o) if isinstance(o, BaseException) else o for o in outcomes]
