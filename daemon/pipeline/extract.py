"""Extract stage: every enabled extractor's vector for each track that lacks a current one.

A track is pending for an extractor when it has no vector of the extractor's version or
it changed since (`genred.store.features.pending_ids`). Its file is found on this machine
(`genred.paths.local_audio_path`: the source's `local_path` hook, e.g. Plex's `path_map`) and handed to a
`FilePool` of worker processes, so one file that hangs (`extract.timeout`) or crashes its
decoder fails alone. Vectors are committed `extract.batch` at a time (and at least every
COMMIT_EVERY_S seconds): a kill loses at most the batch in hand, and the next run starts
after what was stored. Failures go to `failures` under `extract:<name>`: transient ones
(a file missing for now, a timeout) are retried with a backoff, permanent ones (not
audio, too short, an unsupported codec) are skipped until the file changes.

Extractors come in two shapes:

- per file (the default): `extract(path) -> vector` runs in the workers;
- `parallel = False` (a model that must be loaded once, maybe on a GPU): `prepare(path)`
  decodes in the workers, and `extract_batch(prepared) -> vectors` runs here, in this
  process, on a batch of tracks at a time.

Either may have `load()` (called here before any file: a model that cannot be loaded
fails the stage at once, not every track) and `unload()` (called when the stage is done).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from threading import Event
from typing import Any

from ..config import Config
from ..errors import (
    AudioFileMissing,
    Cancelled,
    GenredError,
    InvalidFeatures,
    is_permanent,
    raise_if_cancelled,
)
from ..hookspecs import ExtractorPlugin, ExtractsInBatches, LoadsModel, LocatesFiles
from ..logs import get_logger
from ..memory import release_memory
from ..paths import local_audio_path, track_fingerprints
from ..progress import NullProgress, Progress
from ..records import TrackRecord
from ..store import Store, failures, features
from .filepool import FilePool

log = get_logger("genred.extract")
STAGE = "extract"
COMMIT_EVERY_S = 30.0  # a slow extractor still commits this often
TRACK_CHUNK = 500  # tracks read from the store at a time
RELEASE_EVERY_BATCHES = 10


def extract(
    store: Store,
    extractors: Mapping[str, ExtractorPlugin],
    config: Config,
    *,
    sources: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    cancel: Event | None = None,
    limit: int | None = None,
) -> dict[str, int]:
    """Run each extractor over its pending tracks (at most `limit` each); counts per name.

    `cancel` is checked between files: the vectors in hand are committed, the workers
    are stopped, and Cancelled is raised. `sources` (the enabled source plugins) say where
    their tracks' files are on this machine.
    """
    progress = progress or NullProgress()
    counts: dict[str, int] = {}
    for name, plugin in extractors.items():
        located = _Locator(store, config, sources or {})
        counts.update(_run_extractor(store, name, plugin, located, config, progress, cancel, limit))
    return counts


def _run_extractor(
    store: Store,
    name: str,
    plugin: ExtractorPlugin,
    locator: _Locator,
    config: Config,
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
    progress.start(f"extract ({name})", total=len(pending))
    batch = Batch(store, name, version, config.extract.batch)
    failed = 0
    if pending:
        if isinstance(plugin, LoadsModel):
            plugin.load()
        dims = getattr(plugin, "dims", None)  # known once loaded; else the first vector's
        batch.dims = dims if isinstance(dims, int) and dims > 0 else None
        try:
            outcomes = _outcomes(plugin, locator.files(pending), config, cancel)
            for track_id, outcome in outcomes:
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
            if isinstance(plugin, LoadsModel):
                plugin.unload()
        raise_if_cancelled(cancel, f"extract ({name})")
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


# --------------------------------------------------------------------------- the work


class _Locator:
    """Each pending track's local file, or why there is none, reading the store in chunks."""

    def __init__(self, store: Store, config: Config, sources: Mapping[str, Any]) -> None:
        self.store, self.config, self.sources = store, config, sources

    def files(self, ids: Sequence[int]) -> Iterator[tuple[int, Path | BaseException]]:
        for start in range(0, len(ids), TRACK_CHUNK):
            for track in _load_tracks(self.store, ids[start : start + TRACK_CHUNK]):
                assert track.id is not None
                yield track.id, self._local_file(track)

    def _local_file(self, track: TrackRecord) -> Path | BaseException:
        path = local_audio_path(track, self.sources)
        if path is None:
            return AudioFileMissing(f"track {track.id} has no file path at its source")
        if not path.is_file():
            hint = ""
            source = self.sources.get(track.source)
            if isinstance(source, LocatesFiles) and str(path) == track.path:
                hint = (
                    f" (if that is {track.source}'s path, map it to this machine with "
                    f"{source.path_setting})"
                )
            return AudioFileMissing(f"{path}: no such file on this machine{hint}")
        return path


def _load_tracks(store: Store, ids: Sequence[int]) -> list[TrackRecord]:
    marks = ",".join("?" * len(ids))
    cursor = store.conn.execute(
        f"SELECT * FROM tracks WHERE id IN ({marks}) ORDER BY id", list(ids)
    )
    names = [d[0] for d in cursor.description]
    return [TrackRecord.from_row(dict(zip(names, row, strict=True))) for row in cursor]


def _outcomes(
    plugin: Any,
    located: Iterable[tuple[int, Path | BaseException]],
    config: Config,
    cancel: Event | None,
) -> Iterator[tuple[int, Any]]:
    """(track id, vector or exception) for every located track, as they finish."""
    unreachable: list[tuple[int, BaseException]] = []

    def files() -> Iterator[tuple[int, Path]]:
        for track_id, where in located:
            if isinstance(where, BaseException):
                unreachable.append((track_id, where))
            else:
                yield track_id, where

    batched = not getattr(plugin, "parallel", True)
    if batched and not isinstance(plugin, ExtractsInBatches):
        raise GenredError(
            f"extractor {type(plugin).__name__} sets parallel = False but lacks "
            "batch_size, prepare() and extract_batch()"
        )
    timeout = config.extract.timeout.total_seconds()
    pool = FilePool(
        plugin,
        "prepare" if batched else "extract",
        workers=config.extract.worker_count(),
        timeout=timeout,
    )
    with pool:
        results = pool.run(files(), cancel)
        if isinstance(plugin, ExtractsInBatches) and batched:
            results = _in_batches(plugin, results, cancel)
        for outcome in results:
            while unreachable:
                yield unreachable.pop(0)
            yield outcome
    yield from unreachable


def _in_batches(
    plugin: ExtractsInBatches, prepared: Iterable[tuple[int, Any]], cancel: Event | None
) -> Iterator[tuple[int, Any]]:
    """Run `extract_batch` here on `batch_size` prepared tracks at a time.

    A batch that fails is run again one track at a time, so one bad input fails alone.
    Every RELEASE_EVERY_BATCHES batches, freed memory is given back to the OS (a full
    garbage collection costs too much to do after each one).
    """
    size = max(1, int(plugin.batch_size))
    ready: list[tuple[int, Any]] = []
    batches = 0

    def run() -> Iterator[tuple[int, Any]]:
        nonlocal batches
        try:
            vectors = plugin.extract_batch([p for _, p in ready])
            outcomes = list(zip([i for i, _ in ready], vectors, strict=True))
        except Cancelled:
            raise
        except Exception:
            outcomes = [(track_id, _one(plugin, p)) for track_id, p in ready]
        ready.clear()
        batches += 1
        if batches % RELEASE_EVERY_BATCHES == 0:
            release_memory()
        return iter(outcomes)

    for track_id, outcome in prepared:
        if isinstance(outcome, BaseException):
            yield track_id, outcome
            continue
        ready.append((track_id, outcome))
        if len(ready) >= size:
            yield from run()
            if cancel is not None and cancel.is_set():
                return
    if ready and not (cancel is not None and cancel.is_set()):
        yield from run()


def _one(plugin: ExtractsInBatches, prepared: Any) -> Any:
    try:
        return plugin.extract_batch([prepared])[0]
    except Exception as exc:
        return exc
