"""Run one method of an extractor over many files in worker processes, safely.

Decoders are native code reading untrusted files: one file may hang forever, another may
crash its process (a segfault, an abort, the OOM killer). A plain
`concurrent.futures.ProcessPoolExecutor` cannot stop a hung task, and one dead worker
breaks the whole executor (BrokenProcessPool). `pebble.ProcessPool` (a small, well-kept
library built for exactly this) gives each task a timeout, after which it kills and
replaces the worker, and reports a dead worker as that one task's `ProcessExpired` while
the pool goes on. So each file's outcome is its own, and the job keeps going.

Workers start from a clean `forkserver` process, never by forking the daemon itself (its
threads, locks, a loaded model), and get the extractor once, pickled, through the pool's
initializer: a worker builds nothing per file.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from threading import Event
from typing import Any

from ..errors import ExtractorCrashed, ExtractTimedOut, GenredError
from ..logs import get_logger

log = get_logger("genred.extract")

POLL_S = 0.5  # how often a wait looks at the cancel event
IN_FLIGHT_PER_WORKER = 2  # tasks queued per worker: keeps workers busy, memory bounded


class WorkerSetupFailed(GenredError):
    """Worker processes cannot start or cannot take the extractor: every file would fail."""


RELEASE_EVERY = 20
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_extractor: Any = None
_setup_error: str | None = None
_files_done = 0


def _take_extractor(blob: bytes, threads: int) -> None:
    """Pool initializer: limit native threads, then unpickle the extractor, once per worker.

    Numeric libraries start a thread per core each; with a worker per core that is cores²
    threads fighting over the cores (measured: a third slower on 2 cores), so each worker
    gets its share, set before numpy is first imported (a value the user set is kept).
    It never raises (pebble would restart a failing worker forever); a failure is kept and
    reported by the first task instead.
    """
    global _extractor, _setup_error
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    try:
        _extractor = pickle.loads(blob)
    except Exception as exc:
        _setup_error = f"{type(exc).__name__}: {exc}"


def _call(method: str, path: str, *extra: Any) -> Any:
    if _setup_error is not None:
        raise WorkerSetupFailed(f"a worker process could not load the extractor: {_setup_error}")
    try:
        return getattr(_extractor, method)(Path(path), *extra)
    finally:
        _trim_heap()


def _trim_heap() -> None:
    """Every RELEASE_EVERY files, collect garbage and give freed heap back to the OS (a full
    collection costs ~0.1 s with librosa loaded: too much for every file)."""
    global _files_done
    _files_done += 1
    if _files_done % RELEASE_EVERY == 0:
        from ..memory import release_memory

        release_memory()


def describe_exit(code: int | None) -> str:
    """`-11` → "killed by signal 11 (SIGSEGV)", `1` → "exit code 1"."""
    if code is None:
        return "no exit code"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-code} ({name})"
    return f"exit code {code}"


class PoolBroke(Exception):
    """pebble's pool stopped working as a whole (see FilePool.run)."""


class FilePool:
    """`run` yields `(key, result or exception)` for every `(key, path)`, as each finishes
    (an item `(key, path, hint)` calls the method with the hint too).

    A task past `timeout` seconds yields ExtractTimedOut (its worker is killed and
    replaced); a worker that dies yields ExtractorCrashed for the file it had; whatever the
    method raised is yielded as is.

    pebble has rare failure modes of its own: a worker that dies at the instant it takes a
    task can break the whole pool (or have its crash reported as that task's timeout), and
    one killed inside pebble's channel lock can leave it stuck. So a pool that breaks, or gives no outcome for `timeout` + STALL_GRACE_S while
    files are in hand, is replaced and the files in hand are tried once more (a file in
    hand twice is recorded as ExtractorCrashed). A pool that breaks before any file ever
    succeeded raises WorkerSetupFailed: the workers cannot start, every file would fail.
    """

    STALL_GRACE_S = 60.0

    def __init__(self, extractor: Any, method: str, *, workers: int, timeout: float | None) -> None:
        try:
            import pebble
        except ImportError:
            raise GenredError(
                "extraction needs pebble: install it with pip install 'genred[audio]'"
            ) from None
        try:
            self._blob = pickle.dumps(extractor)
        except Exception as exc:
            raise GenredError(
                f"extractor {type(extractor).__name__} cannot be sent to worker processes "
                f"({type(exc).__name__}: {exc}); it must be picklable"
            ) from None
        self.method = method
        self.workers = max(1, workers)
        self.timeout = timeout
        self.restarts = 0
        self._pebble = pebble
        self._succeeded = False
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        return self._pebble.ProcessPool(
            max_workers=self.workers,
            initializer=_take_extractor,
            initargs=(self._blob, max(1, (os.cpu_count() or 1) // self.workers)),
            context=multiprocessing.get_context("forkserver"),
        )

    def run(
        self, items: Iterable[tuple[Any, ...]], cancel: Event | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """Outcomes as they come; stops scheduling (and returns) once `cancel` is set."""
        todo = iter(items)
        again: list[tuple[Any, ...]] = []  # in hand when a pool broke: tried once more
        tries: dict[Any, int] = {}
        running: dict[Future[Any], tuple[Any, ...]] = {}
        limit = self.workers * IN_FLIGHT_PER_WORKER
        exhausted = False
        last_outcome = time.monotonic()
        while True:
            try:
                while (again or not exhausted) and len(running) < limit and not _set(cancel):
                    item = again.pop(0) if again else next(todo, None)
                    if item is None:
                        exhausted = True
                        break
                    running[self._schedule(item[1], item[2:])] = item
                if not running or _set(cancel):
                    return
                done, _ = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
                if not done and self._stalled(last_outcome):
                    raise PoolBroke(f"no outcome for {time.monotonic() - last_outcome:.0f} s")
                broke: PoolBroke | None = None
                for future in done:
                    key, path = running[future][:2]
                    try:
                        outcome = self._outcome(future, path)
                    except PoolBroke as exc:
                        broke = exc  # this file stays in hand; the finished ones are kept
                        continue
                    del running[future]
                    last_outcome = time.monotonic()
                    yield key, outcome
                if broke is not None:
                    raise broke
            except PoolBroke as exc:
                if not self._succeeded:
                    raise WorkerSetupFailed(
                        f"the worker processes stopped before any file was done ({exc}); "
                        "see the log for why they cannot start"
                    ) from None
                in_hand = list(running.values())
                running.clear()
                self._restart(str(exc), len(in_hand))
                last_outcome = time.monotonic()
                for item in in_hand:
                    key, path = item[:2]
                    tries[key] = tries.get(key, 0) + 1
                    if tries[key] > 1:
                        yield (
                            key,
                            ExtractorCrashed(
                                f"{path}: the worker pool broke twice while this file was in hand"
                            ),
                        )
                    else:
                        again.append(item)

    def _schedule(self, path: Path, extra: tuple[Any, ...] = ()) -> Future[Any]:
        try:
            return self._pool.schedule(
                _call, args=(self.method, str(path), *extra), timeout=self.timeout
            )
        except RuntimeError as exc:  # pebble refuses work once its pool broke
            raise PoolBroke(str(exc)) from None

    def _stalled(self, last_outcome: float) -> bool:
        if self.timeout is None:
            return False
        return time.monotonic() - last_outcome > self.timeout + self.STALL_GRACE_S

    def _restart(self, reason: str, in_hand: int) -> None:
        log.warning("worker pool broke; starting a new one", reason=reason, files_in_hand=in_hand)
        self._stop(self._pool)
        self._pool = self._new_pool()
        self.restarts += 1

    def _outcome(self, future: Future[Any], path: Path) -> Any:
        try:
            result = future.result()
        except WorkerSetupFailed:
            raise
        except BrokenProcessPool as exc:
            raise PoolBroke(str(exc) or type(exc).__name__) from None
        except TimeoutError:
            return ExtractTimedOut(
                f"{path}: no result after {self.timeout:g} s; the worker was stopped "
                "(raise extract.timeout if such files are fine)"
            )
        except self._pebble.ProcessExpired as exc:
            return ExtractorCrashed(
                f"{path}: the worker process died while reading it ({describe_exit(exc.exitcode)})"
            )
        except (CancelledError, Exception) as exc:
            return exc
        self._succeeded = True
        return result

    @staticmethod
    def _stop(pool: Any) -> None:
        pool.stop()
        pool.join(timeout=30)

    def close(self) -> None:
        """Stop the workers now (tasks in hand are dropped) and wait for them to exit."""
        self._stop(self._pool)

    def __enter__(self) -> FilePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _set(cancel: Event | None) -> bool:
    return cancel is not None and cancel.is_set()
