"""Where file work runs: the built-in local executor, or an executor plugin (`extract.executor`).

A `FileJob` is a plugin's file work (`genred.records.FileWork`) over many files: a
per-file method that runs in worker processes, and optionally a batch method that runs
where the plugin's model is. The extract stage (every extractor) and the classify stage
(classifiers that listen to the files: `tagger`, `audio-llm`) hand their jobs to one
executor and commit what it yields; executors never write the store.

`LocalExecutor` is this machine: a `FilePool` of worker processes (a file that hangs or
crashes its decoder fails alone) and the batch method in the stage's own process, on
`batch_size` results at a time, with the model loaded once (`LoadsModel`) and released
when the stage is done. An executor plugin (group ``genred.executors``: `ray`) runs the
same jobs elsewhere; the stage picks it by name and never imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from threading import Event
from typing import Any

from ..config import Config
from ..config.pipeline import LOCAL_EXECUTOR
from ..errors import Cancelled, GenredError
from ..hookspecs import ExecutorPlugin, LoadsModel, WarmsUp
from ..logs import get_logger
from ..memory import release_memory
from ..progress import Progress
from ..records import FileItem, FileJob
from .filepool import FilePool

log = get_logger("genred.extract")
RELEASE_EVERY_BATCHES = 10


def outcomes(
    executor: ExecutorPlugin,
    job: FileJob,
    located: Iterable[tuple[Any, FileItem | Exception]],
    cancel: Event | None,
) -> Iterator[tuple[int, Any]]:
    """(track id, outcome or exception) for every located track, as they finish; the
    tracks without a file never reach the executor and are yielded between its outcomes."""
    unreachable: list[tuple[int, Exception]] = []

    def files() -> Iterator[FileItem]:
        for track, where in located:
            if isinstance(where, FileItem):
                yield where
            else:
                unreachable.append((track.id, where))

    for outcome in executor.run(job, files(), cancel=cancel):
        while unreachable:
            yield unreachable.pop(0)
        yield outcome
    yield from unreachable


def warm_up(plugin: Any, progress: Progress, cancel: Event | None) -> None:
    """A plugin's one-time preparation (`WarmsUp`), said in the progress while it runs."""
    if not isinstance(plugin, WarmsUp):
        return
    needed = plugin.warm_up_needed()
    if needed:
        progress.start(needed)
        log.info(needed)
        plugin.warm_up(cancel)


def executor_for(config: Config, executors: Mapping[str, Any]) -> ExecutorPlugin:
    """The executor `extract.executor` names: a new LocalExecutor, or the enabled plugin."""
    name = config.extract.executor
    if name == LOCAL_EXECUTOR:
        return LocalExecutor()
    plugin = executors.get(name)
    if plugin is None:
        raise GenredError(
            f"extract.executor is {name!r}, but no executor plugin {name!r} is available "
            f"(`genred plugins` says why; pip install 'genred[{name}]' for the built-in ones)"
        )
    if not isinstance(plugin, ExecutorPlugin):
        raise GenredError(f"executor plugin {name!r} lacks run() and release()")
    return plugin


class LocalExecutor:
    """File jobs on this machine: worker processes, and the batch method in this process.

    One pool of workers is kept for consecutive runs of the same job (a classify stage
    runs one per batch of tracks) and stopped when another job comes or at `release`;
    a model loaded for a job is unloaded then too.
    """

    name = LOCAL_EXECUTOR

    def __init__(self) -> None:
        self._pool: FilePool | None = None
        self._key: tuple[Any, ...] | None = None
        self._loaded: Any = None

    def run(
        self, job: FileJob, items: Iterable[FileItem], *, cancel: Event | None = None
    ) -> Iterator[tuple[int, Any]]:
        pool = self._pool_for(job)
        if job.work.with_hint:
            todo: Iterable[tuple[Any, ...]] = (
                (item.track_id, Path(item.path), item.hint) for item in items
            )
        else:
            todo = ((item.track_id, Path(item.path)) for item in items)
        results = pool.run(todo, cancel)
        work = job.work
        if work.batch_method is not None:
            results = in_batches(job.plugin, work.batch_method, work.batch_size, results, cancel)
        yield from results

    def _pool_for(self, job: FileJob) -> FilePool:
        key = (job.name, job.version, id(job.plugin), job.work, job.timeout, job.workers)
        if self._pool is not None and self._key == key:
            return self._pool
        self.release()
        if isinstance(job.plugin, LoadsModel):
            job.plugin.load()  # before any file: a model that cannot load fails the stage once
            self._loaded = job.plugin
        self._pool = FilePool(job.plugin, job.work.method, workers=job.workers, timeout=job.timeout)
        self._key = key
        return self._pool

    def release(self) -> None:
        """Stop the workers and unload the model of the last job."""
        pool, loaded = self._pool, self._loaded
        self._pool = self._key = self._loaded = None
        try:
            if pool is not None:
                pool.close()
        finally:
            if loaded is not None:
                loaded.unload()
                release_memory()


def in_batches(
    plugin: Any,
    method: str,
    size: int,
    results: Iterable[tuple[int, Any]],
    cancel: Event | None,
) -> Iterator[tuple[int, Any]]:
    """Run `plugin.<method>` here on `size` per-file results at a time, as they come.

    A failed per-file result (an exception) passes through. Every RELEASE_EVERY_BATCHES
    batches, freed memory is given back to the OS (a full garbage collection costs too
    much to do after each one).
    """
    size = max(1, int(size))
    ready: list[tuple[int, Any]] = []
    batches = 0

    def flush() -> list[tuple[int, Any]]:
        nonlocal batches
        outcomes = run_batch(plugin, method, [r for _, r in ready])
        done = list(zip([i for i, _ in ready], outcomes, strict=True))
        ready.clear()
        batches += 1
        if batches % RELEASE_EVERY_BATCHES == 0:
            release_memory()
        return done

    for track_id, outcome in results:
        if isinstance(outcome, BaseException):
            yield track_id, outcome
            continue
        ready.append((track_id, outcome))
        if len(ready) >= size:
            yield from flush()
            if cancel is not None and cancel.is_set():
                return
    if ready and not (cancel is not None and cancel.is_set()):
        yield from flush()


def run_batch(plugin: Any, method: str, prepared: Sequence[Any]) -> list[Any]:
    """`plugin.<method>(prepared)`, one outcome per input; a batch that fails is run again
    one input at a time, so one bad input fails alone (its outcome is the exception).

    Cancelled (the stage is stopping) is raised, not recorded. An answer of the wrong
    length is the plugin's bug: every input of that batch gets the error.
    """
    call = getattr(plugin, method)
    try:
        outcomes = list(call(list(prepared)))
    except Cancelled:
        raise
    except Exception as exc:
        if len(prepared) == 1:
            return [exc]
        return [_one(call, p) for p in prepared]
    if len(outcomes) != len(prepared):
        error = GenredError(
            f"{type(plugin).__name__}.{method} gave {len(outcomes)} outcomes "
            f"for {len(prepared)} inputs"
        )
        return [error] * len(prepared)
    return outcomes


def _one(call: Any, prepared: Any) -> Any:
    try:
        outcomes = list(call([prepared]))
    except Cancelled:
        raise
    except Exception as exc:
        return exc
    return outcomes[0] if len(outcomes) == 1 else GenredError("no outcome for this input")
