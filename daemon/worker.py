"""What the daemon's jobs do: run a stage under its lock as a recorded job, chain the stages.

Each run opens its own store connection (jobs run on scheduler threads) and reads the
current `Runtime` (config and plugins) when it starts, so a reload never changes the
plugins under a running stage. When a sync brings new, changed or moved tracks, the
enabled downstream stages (extract → classify → decide → writeback) run right after it. Sync
requests from the folder watcher, the Plex webhook and Plex alerts are gathered in
`SyncRequests` and served by one coalesced run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .config import Config
from .errors import Cancelled, GenredError, LLMBudgetExhausted, StageBusy
from .logs import get_logger
from .pipeline.jobs import run_job
from .plugins import LoadedPlugins
from .progress import LogProgress
from .store import Store

log = get_logger("genred.worker")

DOWNSTREAM = ("extract", "classify", "decide", "writeback")
RETRY_S = 60.0  # a requested sync that failed (Plex down) is tried again after this


@dataclass(frozen=True)
class Runtime:
    """The config and the plugins built from it; replaced as a whole on reload."""

    config: Config
    plugins: LoadedPlugins


@dataclass
class SourceRequest:
    """What was asked of one source since the last requested sync."""

    reasons: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    moved: list[tuple[str, str]] = field(default_factory=list)


class SyncRequests:
    """Sync requests from triggers, per source (None: every source); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_source: dict[str | None, SourceRequest] = {}

    def add(
        self,
        source: str | None,
        reason: str,
        paths: Sequence[str] = (),
        moved: Sequence[tuple[str, str]] = (),
    ) -> None:
        with self._lock:
            request = self._by_source.setdefault(source, SourceRequest())
            request.reasons.add(reason)
            request.paths.update(paths)
            request.moved.extend(moved)

    def take(self) -> dict[str | None, SourceRequest]:
        with self._lock:
            taken, self._by_source = self._by_source, {}
        return taken

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._by_source)


class Worker:
    """Runs stage jobs for the daemon. `runtime()` gives the current Runtime."""

    def __init__(
        self,
        runtime: Callable[[], Runtime],
        cancel: threading.Event,
        on_status: Callable[[str], Any] | None = None,
    ) -> None:
        self.runtime = runtime
        self.cancel = cancel
        self.on_status = on_status or (lambda text: None)
        self.requests = SyncRequests()
        self.retry_requested: Callable[[float], Any] = lambda delay: None  # set by the service
        # set by the service: run `stage` again at a moment (an LLM's daily budget returns)
        self.run_at: Callable[[str, datetime], Any] = lambda stage, when: None
        self._active = 0
        self._idle = threading.Condition()

    # ------------------------------------------------------------------ entry points

    def scheduled(self, stage: str, trigger: str = "schedule") -> None:
        """A scheduler job: run `stage`; after a sync that changed tracks, the rest follow."""
        with self._running():
            rt = self.runtime()
            if not _has_plugins(rt, stage):
                log.debug("nothing to run: no plugin enabled for this stage", stage=stage)
            elif stage == "sync":
                counts = self._stage(rt, "sync", trigger, lambda s, p: self._sync_all(rt, s, p))
                if counts is not None and _changed(counts):
                    self._downstream(rt, "chain")
            else:
                self._stage(rt, stage, trigger, self._body(rt, stage))

    def requested(self) -> None:
        """Serve every gathered sync request in one run (watcher, webhook, alerts)."""
        with self._running():
            taken = self.requests.take()
            if not taken:
                return
            rt = self.runtime()
            reasons = sorted({r for req in taken.values() for r in req.reasons})
            # "watch", "webhook: plex library.new", "alerts: …" → trigger "watch,webhook"
            kinds = {(r.split() or ["request"])[0].rstrip(":") or "request" for r in reasons}
            trigger = ",".join(sorted(kinds))[:40]
            log.info("sync requested", reasons=reasons)
            counts = self._stage(
                rt, "sync", trigger, lambda s, p: self._sync_requested(rt, taken, s, p)
            )
            if counts is None:
                if not self.cancel.is_set():  # failed: ask again later, nothing is lost
                    for source, req in taken.items():
                        for reason in req.reasons:
                            self.requests.add(source, reason, sorted(req.paths), req.moved)
                            req.paths, req.moved = set(), []
                    self.retry_requested(RETRY_S)
                return
            if _changed(counts):
                self._downstream(rt, "chain")

    def wait_idle(self, timeout: float) -> bool:
        """Wait for running jobs to finish (after cancel is set); False when time ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    @property
    def busy(self) -> bool:
        return self._active > 0

    # ------------------------------------------------------------------ stages

    def _stage(
        self, rt: Runtime, job: str, trigger: str, body: Callable[[Store, LogProgress], dict]
    ) -> dict[str, Any] | None:
        """Run one stage as a recorded, locked job; None when it failed or was skipped."""
        if self.cancel.is_set():
            return None
        progress = LogProgress(on_status=self.on_status)
        self.on_status(f"{job} starting ({trigger})")

        def waiting(holder: Any) -> None:
            who = holder.describe() if holder else "another process"
            log.info("stage busy elsewhere; waiting", job=job, holder=who)
            self.on_status(f"{job}: waiting for {who}")

        try:
            with Store.open(rt.config.db_path) as store:
                counts = run_job(
                    store,
                    job,
                    trigger,
                    lambda: body(store, progress),
                    data_dir=rt.config.data_dir,
                    by="daemon",
                    cancel=self.cancel,
                    on_wait=waiting,
                )
        except (Cancelled, StageBusy):
            return None
        except LLMBudgetExhausted as exc:  # recorded as failed by run_job, with the reason
            log.warning(
                "budget spent; the stage runs again when it returns",
                job=job,
                retry_at=exc.retry_at.isoformat(),
            )
            self.run_at(job, exc.retry_at)
            return None
        except GenredError:
            return None  # logged and recorded by run_job
        except Exception:
            log.exception("stage crashed", job=job)  # recorded by run_job when it ran
            return None
        finally:
            self.on_status("idle")
            release_memory()
        return counts

    def _downstream(self, rt: Runtime, trigger: str) -> None:
        for stage in DOWNSTREAM:
            if (
                getattr(rt.config.schedule, stage).enabled
                and _has_plugins(rt, stage)
                and not self.cancel.is_set()
            ):
                self._stage(rt, stage, trigger, self._body(rt, stage))

    def _body(self, rt: Runtime, stage: str) -> Callable[[Store, LogProgress], dict]:
        return {
            "sync": lambda s, p: self._sync_all(rt, s, p),
            "extract": lambda s, p: self._extract(rt, s, p),
            "classify": lambda s, p: self._classify(rt, s, p),
            "decide": lambda s, p: self._decide(rt, s, p),
            "writeback": lambda s, p: self._writeback(rt, s, p),
        }[stage]

    def _sync_all(self, rt: Runtime, store: Store, progress: LogProgress) -> dict[str, int]:
        from .pipeline.sync import sync

        totals: dict[str, int] = {}
        for name, plugin in rt.plugins.of("sources").items():
            result = sync(store, name, plugin, progress=progress, cancel=self.cancel)
            _add(totals, result.counts())
        return totals

    def _sync_requested(
        self,
        rt: Runtime,
        taken: dict[str | None, SourceRequest],
        store: Store,
        progress: LogProgress,
    ) -> dict[str, int]:
        """Each asked-for source: by path where it can, else ask it to rescan, then sync."""
        from .pipeline import moves
        from .pipeline.sync import sync

        totals: dict[str, int] = {}
        everyone = taken.get(None, SourceRequest())
        for name, plugin in rt.plugins.of("sources").items():
            mine = taken.get(name)
            if mine is None and None not in taken:
                continue
            paths = sorted(everyone.paths | (mine.paths if mine else set()))
            moved = everyone.moved + (mine.moved if mine else [])
            if getattr(plugin, "supports_paths", False) and (paths or moved):
                for old, new in moved:
                    count = moves.move(store, name, old, new)
                    totals["moved"] = totals.get("moved", 0) + count
                    log.info("moved", source=name, old=old, new=new, tracks=count)
                targets = sorted({*paths, *(new for _old, new in moved)})
                result = sync(
                    store, name, plugin, paths=targets, progress=progress, cancel=self.cancel
                )
            else:
                if paths and hasattr(plugin, "request_scan"):
                    plugin.request_scan(paths, cancel=self.cancel)
                result = sync(
                    store, name, plugin, full=False, progress=progress, cancel=self.cancel
                )
            _add(totals, result.counts())
        return totals

    def _extract(self, rt: Runtime, store: Store, progress: LogProgress) -> dict[str, int]:
        from .pipeline.extract import extract

        return extract(
            store, rt.plugins.of("extractors"), rt.config, progress=progress, cancel=self.cancel
        )

    def _classify(self, rt: Runtime, store: Store, progress: LogProgress) -> dict[str, int]:
        from .pipeline.classify import classify

        classifiers = rt.plugins.of("classifiers")
        if not classifiers:
            return {}
        return classify(
            store, classifiers, progress, cancel=self.cancel, decide_config=rt.config.decide
        )

    def _decide(self, rt: Runtime, store: Store, progress: LogProgress) -> dict[str, int]:
        from .pipeline.decide import decide

        return decide(store, rt.config.decide, progress, cancel=self.cancel)

    def _writeback(self, rt: Runtime, store: Store, progress: LogProgress) -> dict[str, int]:
        from .pipeline import writeback as wb

        totals: dict[str, int] = {}
        pause = wb.paused(store)
        if pause:
            log.info("writeback is paused by `genred revert`; skipped", since=pause["at"])
            return {"paused": 1}
        for plugin in rt.plugins.of("writeback").values():
            report = wb.writeback(
                store,
                plugin,
                rt.config.writeback,
                max_values=rt.config.decide.max_genres,
                progress=progress,
                cancel=self.cancel,
            )
            _add(totals, report.counts)
        return totals

    # ------------------------------------------------------------------ bookkeeping

    def _running(self) -> _Active:
        return _Active(self)


class _Active:
    """Counts a running job, so shutdown can wait for the ones in hand."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def __enter__(self) -> None:
        with self.worker._idle:
            self.worker._active += 1

    def __exit__(self, *exc: object) -> None:
        with self.worker._idle:
            self.worker._active -= 1
            self.worker._idle.notify_all()


# The plugin kind a stage needs; a stage with none enabled has nothing to do.
NEEDS = {
    "sync": "sources",
    "extract": "extractors",
    "classify": "classifiers",
    "writeback": "writeback",
}


def _has_plugins(rt: Runtime, stage: str) -> bool:
    kind = NEEDS.get(stage)
    return kind is None or bool(rt.plugins.of(kind))


def release_memory() -> None:
    """Give the heap a stage freed back to the OS: a 100k-track sync peaks far above what
    the idle daemon needs, and glibc keeps freed arenas otherwise."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_malloc_trim = _load_malloc_trim()


def _changed(counts: dict[str, Any]) -> bool:
    return any(counts.get(k, 0) for k in ("added", "changed", "restored", "removed", "moved"))


def _add(totals: dict[str, int], counts: dict[str, Any]) -> None:
    for key, value in counts.items():
        if isinstance(value, int):
            totals[key] = totals.get(key, 0) + value
