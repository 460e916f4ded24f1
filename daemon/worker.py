"""What the daemon's jobs do: run a registered stage as a recorded job, chain the stages.

Each run opens its own store connection (jobs run on scheduler threads) and reads the
current `Runtime` (config and plugins) when it starts, so a reload never changes the
plugins under a running stage. When a sync brings new, changed or moved tracks, the
chained stages (`genred.stages.CHAINED`: extract → classify → decide → writeback) run
right after it. Sync requests from the folder watcher, the Plex webhook and Plex alerts
are gathered in `SyncRequests` and served by one coalesced run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .config import Config
from .errors import Cancelled, GenredError, RetryLater, StageBusy
from .loader import LoadedPlugins
from .locks import holder
from .logs import get_logger
from .memory import release_memory
from .pipeline.jobs import run_job
from .progress import LiveProgress, LogProgress
from .stages import CHAINED, STAGES, Stage, StageRun, item_jobs
from .store import Store
from .triggers import SyncRequests, TakenRequests

log = get_logger("genred.worker")

RETRY_S = 60.0  # a requested sync that failed (Plex down) is tried again after this


@dataclass(frozen=True)
class Runtime:
    """The config and the plugins built from it; replaced as a whole on reload."""

    config: Config
    plugins: LoadedPlugins


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
        self.live = LiveProgress()  # what runs now, for the dashboard
        self._active = 0
        self._idle = threading.Condition()

    # ------------------------------------------------------------------ entry points

    def scheduled(
        self, stage: str, trigger: str = "schedule", on_run: Callable[[int], Any] | None = None
    ) -> None:
        """A scheduler job: run `stage`; after a sync that changed tracks, the rest follow."""
        with self._running():
            rt = self.runtime()
            registered = STAGES[stage]
            if not registered.has_work(rt.plugins):
                log.debug("nothing to run: no plugin enabled for this stage", stage=stage)
                return
            counts = self._stage(rt, registered, trigger, on_run=on_run)
            if stage == "sync" and counts is not None and _changed(counts):
                self._downstream(rt, "chain")

    def item(self, job: str, trigger: str = "schedule") -> None:
        """A stage's own job (a saved playlist: `playlists:Focus`), with its options from the
        current config; one that left the config is skipped."""
        with self._running():
            rt = self.runtime()
            found = item_jobs(rt.config).get(job)
            if found is None:
                log.info("job no longer in the config; skipped", job=job)
                return
            stage, _schedule, options = found
            self._stage(rt, stage, trigger, options, job=job)

    def named(self, job: str, trigger: str) -> None:
        """Run a job by its recorded name: a stage, or a stage's own job."""
        if job in STAGES:
            self.scheduled(job, trigger)
        else:
            self.item(job, trigger)

    def start(self, stage: str, trigger: str = "web", timeout: float = 10.0) -> int:
        """Run `stage` now in a thread of its own (a sync that changes tracks is followed by
        the stages after it, as scheduled); returns the run id once it is recorded.

        StageBusy when the stage runs already (here, or in a CLI command); GenredError
        when it cannot run (no plugin for it, the daemon is stopping)."""
        registered = STAGES.get(stage)
        if registered is None or not registered.scheduled:
            raise GenredError(f"no stage {stage!r} to start")
        rt = self.runtime()
        if self.cancel.is_set():
            raise GenredError("the daemon is stopping")
        if not registered.has_work(rt.plugins):
            raise GenredError(registered.nothing_enabled or f"{stage} has nothing to do")
        _, running = self.live.snapshot()
        other = holder(rt.config.data_dir, registered.lock) if registered.lock else None
        if any(j.job == stage for j in running) or other is not None:
            who = other.describe() if other else "the daemon"
            raise StageBusy(f"{stage} is already running ({who})")
        recorded: list[int] = []
        ready = threading.Event()

        def heard(run_id: int) -> None:
            recorded.append(run_id)
            ready.set()

        thread = threading.Thread(
            target=self.scheduled, args=(stage, trigger, heard), name=f"genred-{stage}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if not thread.is_alive():
                raise GenredError(f"{stage} did not start: see the daemon's log")
            if time.monotonic() > deadline:
                raise StageBusy(f"{stage} is waiting for another run of it to finish")
        return recorded[0]

    def corrected(self) -> None:
        """Overrides were set or cleared: decide again at once, then write back."""
        with self._running():
            rt = self.runtime()
            for name in ("decide", "writeback"):
                stage = STAGES[name]
                if not stage.has_work(rt.plugins) or self.cancel.is_set():
                    continue
                if self._stage(rt, stage, "override") is None:
                    return

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
            counts = self._stage(rt, STAGES["sync"], trigger, {"requests": taken})
            if counts is None:
                if not self.cancel.is_set():  # failed: ask again later, nothing is lost
                    self._requeue(taken)
                    self.retry_requested(RETRY_S)
                return
            if _changed(counts):
                self._downstream(rt, "chain")

    def _requeue(self, taken: TakenRequests) -> None:
        for source, req in taken.items():
            for reason in req.reasons:
                self.requests.add(source, reason, sorted(req.paths), req.moved)
                req.paths, req.moved = set(), []

    def wait_idle(self, timeout: float) -> bool:
        """Wait for running jobs to finish (after cancel is set); False when time ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    @property
    def busy(self) -> bool:
        return self._active > 0

    # ------------------------------------------------------------------ stages

    def _stage(
        self,
        rt: Runtime,
        stage: Stage,
        trigger: str,
        options: dict[str, Any] | None = None,
        *,
        job: str | None = None,
        on_run: Callable[[int], Any] | None = None,
    ) -> dict[str, Any] | None:
        """Run one stage as a recorded, locked job (`job`: its name in `runs`, default the
        stage's); None when it failed or was skipped."""
        if self.cancel.is_set():
            return None
        job = job or stage.name
        live = self.live
        progress = LogProgress(
            on_status=self.on_status,
            on_progress=lambda step, done, total: live.update(job, step, done, total),
        )

        def recorded(run_id: int) -> None:
            live.recorded(job, run_id)
            if on_run is not None:
                on_run(run_id)

        self.on_status(f"{job} starting ({trigger})")
        live.begin(job, trigger)

        def waiting(holder: Any) -> None:
            who = holder.describe() if holder else "another process"
            log.info("stage busy elsewhere; waiting", job=job, holder=who)
            self.on_status(f"{job}: waiting for {who}")

        try:
            with Store.open(rt.config.db_path) as store:
                run = StageRun(
                    store, rt.config, rt.plugins, progress, trigger, self.cancel, options or {}
                )
                counts = run_job(
                    store,
                    job,
                    trigger,
                    lambda: stage.run(run),
                    lock=stage.lock,
                    data_dir=rt.config.data_dir,
                    by="daemon",
                    cancel=self.cancel,
                    on_wait=waiting,
                    on_run=recorded,
                )
        except (Cancelled, StageBusy):
            return None
        except RetryLater as exc:  # a spent budget, a long 429: recorded as failed by run_job
            log.warning(
                "deferred; the job runs again when it may",
                job=job,
                retry_at=exc.retry_at.isoformat(),
                reason=str(exc),
            )
            self.run_at(job, exc.retry_at)
            return None
        except GenredError:
            return None  # logged and recorded by run_job
        except Exception:
            log.exception("stage crashed", job=job)  # recorded by run_job when it ran
            return None
        finally:
            live.end(job)
            self.on_status("idle")
            release_memory()
        return counts

    def _downstream(self, rt: Runtime, trigger: str) -> None:
        for name in CHAINED:
            stage = STAGES[name]
            if (
                rt.config.schedule.of(name).enabled
                and stage.has_work(rt.plugins)
                and not self.cancel.is_set()
            ):
                self._stage(rt, stage, trigger)

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


def _changed(counts: dict[str, Any]) -> bool:
    return any(counts.get(k, 0) for k in ("added", "changed", "restored", "removed", "moved"))
