"""Classify stage: run each enabled classifier over the tracks it has not seen yet.

A track is pending for a classifier when it has no prediction from it, the classifier's
version changed, or the track changed since. A track the classifier has nothing to say
about gets an empty prediction row, so it is not asked again until it changes; one it
yields `Unclassified` for gets a failure instead, and is asked again after a backoff, or,
when the failure is permanent (too short, not audio), once its file changes.
`Cancelled` and `LLMBudgetExhausted` stop the stage (the batch in hand is not stored).

A classifier that listens to the files (`ClassifiesFiles`: the tagger, audio-llm) is not
called with tracks: its file work runs on the executor `extract.executor` names (as the
extract stage's does), and its `classify_files` turns each completed group of outcomes
into predictions, committed here as they come.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from threading import Event
from typing import Any

from ..config import Config, DecideConfig
from ..errors import (
    Cancelled,
    GenredError,
    LLMBudgetExhausted,
    is_permanent,
    raise_if_cancelled,
)
from ..hookspecs import ClassifierPlugin, ClassifiesFiles, ExecutorPlugin, HintsFiles
from ..logs import get_logger
from ..paths import track_fingerprints
from ..progress import NullProgress, Progress
from ..records import FileItem, FileJob, Prediction, TrackRecord, Unclassified
from ..store import Store, failures, utcnow
from .cascade import reaches_step, step_index, steps_of
from .decide import overrides_of, votes_of
from .executors import executor_for, outcomes, warm_up
from .locate import Locator, load_tracks

log = get_logger("genred.classify")
STAGE = "classify"


def pending_ids(store: Store, name: str, version: str) -> list[int]:
    blocked = failures.blocked(store, f"{STAGE}:{name}")
    rows = store.conn.execute(
        """
        SELECT t.id FROM tracks t
        WHERE t.removed = 0 AND NOT EXISTS (
            SELECT 1 FROM predictions p
            WHERE p.track_id = t.id AND p.classifier = ? AND p.version = ?
              AND p.created_at >= t.changed_at)
        ORDER BY t.id
        """,
        (name, version),
    )
    return [r[0] for r in rows if str(r[0]) not in blocked]


@dataclass
class FileStage:
    """What the classifiers that listen to files need: where files are, where work runs."""

    config: Config
    sources: Mapping[str, Any] = field(default_factory=dict)
    executors: Mapping[str, Any] = field(default_factory=dict)
    _executor: ExecutorPlugin | None = None

    def executor(self) -> ExecutorPlugin:
        if self._executor is None:
            self._executor = executor_for(self.config, self.executors)
        return self._executor

    def release(self) -> None:
        if self._executor is not None:
            self._executor.release()


def cascade_gate(store: Store, config: DecideConfig) -> Callable[[str, list[int]], list[int]]:
    """Which of the given pending tracks a classifier is asked about under the decide
    cascade: all, for the first step's and for classifiers no step names (custom labels);
    for a later step's, those the earlier steps left below their `accept` (and without a
    manual genre override)."""
    steps = steps_of(config)
    named = {c for s in steps if s.classifiers for c in s.classifiers}

    def gate(name: str, ids: list[int]) -> list[int]:
        step = step_index(name, steps)
        if step == 0 or name not in named or not ids:
            return ids
        kept: list[int] = []
        for start in range(0, len(ids), 2000):
            chunk = ids[start : start + 2000]
            votes, overrides = votes_of(store, chunk), overrides_of(store, chunk)
            kept += [
                i
                for i in chunk
                if "genre" not in overrides[i]
                and reaches_step(
                    votes[i]["genre"],
                    step,
                    steps,
                    config.weights,
                    config.min_confidence,
                    config.max_genres,
                )
            ]
        return kept

    return gate


def cascade_order(names: list[str], config: DecideConfig) -> list[str]:
    """Classifiers by cascade step (stable), so earlier steps' predictions exist first."""
    steps = steps_of(config)
    return sorted(names, key=lambda name: step_index(name, steps))


def classify(
    store: Store,
    classifiers: Mapping[str, ClassifierPlugin],
    progress: Progress | None = None,
    batch_size: int = 500,
    cancel: Event | None = None,
    decide_config: DecideConfig | None = None,
    files: FileStage | None = None,
) -> dict[str, int]:
    """Run every classifier over its pending tracks; returns counts per classifier.

    `cancel` is checked after each committed batch (what is stored stays stored), and
    passed to the classifiers with the store (`ClassifierPlugin.classify`). A classifier's `batch_size` overrides `batch_size`.
    With `decide_config`, classifiers run in cascade order and a later step's classifiers
    only see the tracks the earlier steps could not decide (`cascade_gate`). With `files`,
    a classifier that listens to files runs on the executor (else in this process);
    its sources also locate the files whose permanent failures wait for them to change.
    """
    progress = progress or NullProgress()
    fingerprint_of = track_fingerprints(store, files.sources if files is not None else {})
    counts: dict[str, int] = {}
    gate = cascade_gate(store, decide_config) if decide_config else None
    order = cascade_order(list(classifiers), decide_config) if decide_config else classifiers
    try:
        for name in order:
            plugin = classifiers[name]
            version = str(plugin.version)
            failures.release_changed(store, f"{STAGE}:{name}", fingerprint_of)
            pending = pending_ids(store, name, version)
            if gate is not None:
                considered = len(pending)
                pending = gate(name, pending)
                if len(pending) < considered:
                    counts[f"{name}.decided_earlier"] = considered - len(pending)
            size = int(getattr(plugin, "batch_size", None) or batch_size)
            if files is not None and isinstance(plugin, ClassifiesFiles) and pending:
                job = _file_job(name, plugin, files.config)
                warm_up(plugin, progress, cancel)
                raise_if_cancelled(cancel, f"classify ({name})")
                progress.start(f"classify ({name})", total=len(pending))
                groups = _file_groups(store, plugin, job, pending, size, files, cancel)
            else:
                progress.start(f"classify ({name})", total=len(pending))
                groups = _track_groups(store, plugin, pending, size, cancel)
            predicted = failed = 0
            for ids, results in groups:
                if isinstance(results, Exception):  # one bad batch (or a broken plugin)
                    log.error(
                        "classifier failed on a batch",
                        classifier=name,
                        error=str(results),
                        error_type=type(results).__name__,
                        tracks=len(ids),
                    )
                    for track_id in ids:
                        _record(store, name, track_id, results, fingerprint_of)
                    failed += len(ids)
                else:
                    got, lost = _commit(store, name, version, ids, results, fingerprint_of)
                    predicted += got
                    failed += lost
                progress.advance(len(ids))
                raise_if_cancelled(cancel, f"classify ({name})")
            counts[f"{name}.considered"] = len(pending)
            counts[f"{name}.predicted"] = predicted
            counts[f"{name}.failed"] = failed
            progress.finish(
                f"{name}: {predicted} of {len(pending)} pending tracks got a prediction"
                + (f", {failed} failed" if failed else "")
            )
    finally:
        if files is not None:
            files.release()
    return counts


Group = tuple[list[int], "list[Prediction | Unclassified] | Exception"]


def _track_groups(
    store: Store, plugin: ClassifierPlugin, pending: list[int], size: int, cancel: Event | None
) -> Iterator[Group]:
    """Batches of `size` tracks, each with what the classifier said (or why it failed)."""
    for start in range(0, len(pending), size):
        ids = pending[start : start + size]
        tracks = load_tracks(store, ids)
        try:
            yield ids, _answers(plugin, tracks, store, cancel)
        except (Cancelled, LLMBudgetExhausted):
            raise  # stop the stage; the next run takes it from here
        except Exception as exc:
            yield ids, exc


def _file_job(name: str, plugin: ClassifiesFiles, config: Config) -> FileJob:
    return FileJob(
        name=f"{STAGE}:{name}",
        version=str(getattr(plugin, "version", "")),
        plugin=plugin,
        work=plugin.file_work(),
        timeout=config.extract.timeout.total_seconds(),
        workers=config.extract.worker_count(),
    )


def _file_groups(
    store: Store,
    plugin: ClassifiesFiles,
    job: FileJob,
    pending: list[int],
    size: int,
    files: FileStage,
    cancel: Event | None,
) -> Iterator[Group]:
    """Groups of `size` tracks whose file work is done, in the order it completes, each
    with what the classifier made of the outcomes. On cancel, the group in hand is
    still answered (its work is done), then the stage stops."""
    in_hand: dict[int, TrackRecord] = {}
    hinted = job.work.with_hint and isinstance(plugin, HintsFiles)

    def located() -> Iterator[tuple[TrackRecord, FileItem | Exception]]:
        chunk: list[tuple[TrackRecord, FileItem | Exception]] = []
        for track, where in Locator(store, files.sources).tracks(pending):
            assert track.id is not None
            in_hand[track.id] = track
            chunk.append((track, where))
            if len(chunk) >= HINT_CHUNK:
                yield from _with_hints(plugin, chunk, store) if hinted else chunk
                chunk = []
        yield from _with_hints(plugin, chunk, store) if hinted else chunk

    group: dict[int, Any] = {}

    def answer() -> Group:
        ids = list(group)
        tracks = [in_hand.pop(i) for i in ids]
        try:
            results: list[Prediction | Unclassified] | Exception = _checked(
                plugin, plugin.classify_files(tracks, dict(group), store=store, cancel=cancel)
            )
        except (Cancelled, LLMBudgetExhausted):
            raise
        except Exception as exc:
            results = exc
        group.clear()
        return ids, results

    for track_id, outcome in outcomes(files.executor(), job, located(), cancel):
        group[track_id] = outcome
        if len(group) >= size:
            yield answer()
    if group:
        yield answer()


HINT_CHUNK = 100  # tracks whose hints are read from the store at a time


def _with_hints(
    plugin: Any, chunk: list[tuple[TrackRecord, FileItem | Exception]], store: Store
) -> list[tuple[TrackRecord, FileItem | Exception]]:
    """The chunk's files with the plugin's hint for each track (`HintsFiles`)."""
    if not chunk:
        return chunk
    hints = plugin.file_hints([track for track, _ in chunk], store=store)
    return [
        (track, replace(where, hint=hints.get(where.track_id)))
        if isinstance(where, FileItem)
        else (track, where)
        for track, where in chunk
    ]


def _commit(
    store: Store,
    name: str,
    version: str,
    ids: list[int],
    results: list[Prediction | Unclassified],
    fingerprint_of: Callable[[str], str | None],
) -> tuple[int, int]:
    """Store one batch's answers: (tracks predicted, tracks failed)."""
    skipped = {r.track_id: r.error for r in results if isinstance(r, Unclassified)}
    for track_id, error in skipped.items():
        _record(store, name, track_id, error, fingerprint_of)
    done = [i for i in ids if i not in skipped]
    predictions = [r for r in results if isinstance(r, Prediction)]
    predicted = _store_batch(store, name, version, done, predictions) if done else 0
    failures.clear(store, f"{STAGE}:{name}", [str(i) for i in done])
    return predicted, len(ids) - len(done)


def _record(
    store: Store,
    name: str,
    track_id: int,
    error: BaseException,
    fingerprint_of: Callable[[str], str | None],
) -> None:
    """A track's failure; a permanent one with its file's fingerprint, so it waits for it."""
    item = str(track_id)
    fingerprint = fingerprint_of(item) if is_permanent(error) else None
    failures.record(store, f"{STAGE}:{name}", item, error, fingerprint=fingerprint)


class BadClassifierAnswer(GenredError):
    """A classifier yielded something that is not a Prediction or Unclassified."""


def _answers(
    plugin: ClassifierPlugin, tracks: list[TrackRecord], store: Store, cancel: Event | None
) -> list[Prediction | Unclassified]:
    """Everything the classifier says about one batch, checked against the contract."""
    return _checked(plugin, plugin.classify(tracks, store=store, cancel=cancel))


def _checked(plugin: Any, answers: Any) -> list[Prediction | Unclassified]:
    results = list(answers)
    for result in results:
        if not isinstance(result, Prediction | Unclassified):
            raise BadClassifierAnswer(
                f"{type(plugin).__name__}.classify yielded a {type(result).__name__}, "
                "not a Prediction or Unclassified"
            )
    return results


def _store_batch(
    store: Store, name: str, version: str, ids: list[int], predictions: list[Prediction]
) -> int:
    """Replace this classifier's predictions for the batch in one transaction."""
    now = utcnow()
    wanted = set(ids)
    rows = [
        (
            p.track_id,
            name,
            p.label_set,
            version,
            json.dumps([[label, round(conf, 4)] for label, conf in p.labels], ensure_ascii=False),
            now,
        )
        for p in predictions
        if p.track_id in wanted
    ]
    answered = {p.track_id for p in predictions if p.labels and p.track_id in wanted}
    silent = wanted - {r[0] for r in rows}
    rows += [(track_id, name, "genre", version, "[]", now) for track_id in sorted(silent)]
    marks = ",".join("?" * len(ids))
    with store.transaction() as conn:
        conn.execute(
            f"DELETE FROM predictions WHERE classifier = ? AND track_id IN ({marks})", [name, *ids]
        )
        conn.executemany(
            "INSERT OR REPLACE INTO predictions (track_id, classifier, label_set, version, labels,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(answered)
