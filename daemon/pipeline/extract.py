"""Extract stage: every enabled extractor's vector for each track that lacks a current one.

A track is pending for an extractor when it has no vector of the extractor's version or
it changed since (`genred.store.features.pending_ids`). Its file is found on this machine
(`genred.pipeline.locate`: the source's `local_path` hook, e.g. Plex's `path_map`) and
handed to the executor `extract.executor` names (`genred.pipeline.executors`: the local
worker processes by default, where one file that hangs (`extract.timeout`) or crashes
its decoder fails alone; or a plugin such as `ray`). Vectors are committed
`extract.batch` at a time (and at least every COMMIT_EVERY_S seconds), here, by this
process only: a kill loses at most the batch in hand, and the next run starts after what
was stored. Failures go to `failures` under `extract:<name>`: transient ones (a file
missing for now, a timeout) are retried with a backoff, permanent ones (not audio, too
short, an unsupported codec) are skipped until the file changes.

Extractors come in two shapes:

- per file (the default): `extract(path) -> vector` runs in the workers;
- `parallel = False` (a model that must be loaded once, maybe on a GPU): `prepare(path)`
  decodes in the workers, and `extract_batch(prepared) -> vectors` runs where the model
  is (this process for the local executor), on a batch of tracks at a time.

Either may have `load()` (called by the executor before any file: a model that cannot
be loaded fails the stage at once, not every track) and `unload()` (when the stage is
done), and `warm_up()` (`WarmsUp`: kernels compiled once, in a process of their own,
before the workers start, and said in the progress).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from threading import Event
from typing import Any

from ..config import Config
from ..errors import GenredError, InvalidFeatures, is_permanent, raise_if_cancelled
from ..hookspecs import ExecutorPlugin, ExtractorPlugin, ExtractsInBatches, LoadsModel
from ..logs import get_logger
from ..paths import track_fingerprints
from ..progress import NullProgress, Progress
from ..records import FileJob, FileWork
from ..store import Store, failures, features
from .executors import executor_for, outcomes, warm_up
from .locate import Locator

log = get_logger("genred.extract")
STAGE = "extract"
COMMIT_EVERY_S = 30.0  # a slow extractor still commits this often


def extract(
    store: Store,
    extractors: Mapping[str, ExtractorPlugin],
    config: Config,
    *,
    sources: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    cancel: Event | None = None,
    limit: int | None = None,
    executors: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Run each extractor over its pending tracks (at most `limit` each); counts per name.

    `cancel` is checked between files: the vectors in hand are committed, the workers
    are stopped, and Cancelled is raised. `sources` (the enabled source plugins) say where
    their tracks' files are on this machine; `executors` are the enabled executor
    plugins, one of which `extract.executor` may name.
    """
    progress = progress or NullProgress()
    counts: dict[str, int] = {}
    executor = executor_for(config, executors or {})
    try:
        for name, plugin in extractors.items():
            locator = Locator(store, sources or {})
            counts.update(
                _run_extractor(
                    store, name, plugin, locator, config, executor, progress, cancel, limit
                )
            )
    finally:
        executor.release()
    return counts


def extractor_work(plugin: Any) -> FileWork:
    """The extractor's file work: `extract` per file, or `prepare` + `extract_batch`."""
    if getattr(plugin, "parallel", True):
        return FileWork("extract")
    if not isinstance(plugin, ExtractsInBatches):
        raise GenredError(
            f"extractor {type(plugin).__name__} sets parallel = False but lacks "
            "batch_size, prepare() and extract_batch()"
        )
    return FileWork("prepare", "extract_batch", max(1, int(plugin.batch_size)))


def _run_extractor(
    store: Store,
    name: str,
    plugin: ExtractorPlugin,
    locator: Locator,
    config: Config,
    executor: ExecutorPlugin,
    progress: Progress,
    cancel: Event | None,
    limit: int | None,
) -> dict[str, int]:
    version = str(plugin.version)
    fingerprint_of = track_fingerprints(store, locator.sources)
    failures.release_changed(store, features.failure_stage(name), fingerprint_of)
    pending = features.pending_ids(store, name, version)
    if limit is not None:
        pending = pending[:limit]
    batch = Batch(store, name, version, config.extract.batch)
    failed = 0
    if pending:
        job = FileJob(
            name=features.failure_stage(name),
            version=version,
            plugin=plugin,
            work=extractor_work(plugin),
            timeout=config.extract.timeout.total_seconds(),
            workers=config.extract.worker_count(),
        )
        warm_up(plugin, progress, cancel)
        raise_if_cancelled(cancel, f"extract ({name})")
        progress.start(f"extract ({name})", total=len(pending))
        # A model's width is known without loading it only for a fixed-size extractor;
        # else the first vector sets it (loading a model here would defeat a cluster).
        dims = None if isinstance(plugin, LoadsModel) else getattr(plugin, "dims", None)
        batch.dims = dims if isinstance(dims, int) and dims > 0 else None
        try:
            for track_id, outcome in outcomes(executor, job, locator.tracks(pending), cancel):
                try:
                    if isinstance(outcome, BaseException):
                        raise outcome
                    vector = batch.check(outcome)
                except Exception as exc:  # this file's failure alone
                    _record(store, name, track_id, exc, fingerprint_of)
                    failed += 1
                else:
                    batch.add(track_id, vector)
                progress.advance()
                if cancel is not None and cancel.is_set():
                    break
        finally:
            batch.commit()
        raise_if_cancelled(cancel, f"extract ({name})")
    else:
        progress.start(f"extract ({name})", total=0)
    progress.finish(
        f"{name}: {batch.written} of {len(pending)} pending tracks got features"
        + (f", {failed} failed" if failed else "")
    )
    return {
        f"{name}.considered": len(pending),
        f"{name}.extracted": batch.written,
        f"{name}.failed": failed,
    }


class Batch:
    """Vectors waiting to be committed; one transaction per `size` (or per COMMIT_EVERY_S)."""

    def __init__(self, store: Store, name: str, version: str, size: int) -> None:
        self.store, self.name, self.version, self.size = store, name, version, size
        self.rows: list[tuple[int, Any]] = []
        self.written = 0
        self.dims: int | None = None
        self._since = time.monotonic()

    def check(self, vector: Any) -> Any:
        """The vector as float32, or InvalidFeatures: not 1-D, empty, NaN/inf, other length."""
        import numpy as np

        try:
            array = np.asarray(vector, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidFeatures(f"the extractor returned no vector of numbers: {exc}") from None
        if array.ndim != 1 or array.size == 0:
            raise InvalidFeatures(f"the extractor returned shape {array.shape}, not a vector")
        if not np.isfinite(array).all():
            raise InvalidFeatures("the extractor returned NaN or infinite values")
        if self.dims is not None and array.size != self.dims:
            raise InvalidFeatures(f"the extractor returned {array.size} values, not {self.dims}")
        self.dims = array.size
        return array

    def add(self, track_id: int, vector: Any) -> None:
        self.rows.append((track_id, vector))
        if len(self.rows) >= self.size or time.monotonic() - self._since >= COMMIT_EVERY_S:
            self.commit()

    def commit(self) -> None:
        if self.rows:
            self.written += features.write(self.store, self.name, self.version, self.rows)
            self.rows = []
        self._since = time.monotonic()


def _record(
    store: Store,
    name: str,
    track_id: int,
    error: BaseException,
    fingerprint_of: Callable[[str], str | None],
) -> None:
    permanent = is_permanent(error)
    attempts = failures.record(
        store,
        features.failure_stage(name),
        str(track_id),
        error,
        fingerprint=fingerprint_of(str(track_id)) if permanent else None,
    )
    log.warning(
        "extraction failed; skipped until the file changes"
        if permanent
        else "extraction failed; tried again later",
        extractor=name,
        track=track_id,
        error=str(error),
        error_type=type(error).__name__,
        attempts=attempts,
    )
