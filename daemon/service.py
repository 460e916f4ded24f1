"""The long-running process behind `genred run`: start, signals, reload, shutdown.

Start order (docs/architecture.md): config → single-instance lock → store → plugins → scheduler →
folder watcher → triggers (web server with the Plex webhook, source listeners) → READY=1.
SIGHUP, or an edit of the config file, reloads: the new file is validated first and a bad
edit keeps the running config (each problem logged with its line). SIGTERM/SIGINT stop new
work, let the item in hand finish, and exit 0 within STOP_WITHIN_S of the signal, in every
state: every wait (retry backoff, rate limits, lock and scan waits) ends on `cancel`, and
a request still in flight then is abandoned. Every write is committed per item, so that
loses nothing committed (as a kill -9 would not); writeback records its intent before it
writes and re-reads after a restart, so a write that landed is never repeated. A signal
before the handlers are in place is noted by `genred.early_stop` and honoured here.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .checks import check_config
from .config import Config, ConfigError, load_config
from .early_stop import stop_requested
from .errors import GenredError, StageBusy
from .hookspecs import Closes, Listens, PluginContext, ProvidesRoutes
from .loader import load_plugins, retired
from .locks import InstanceLock
from .logs import configure_logging, get_logger
from .notify import Notifier
from .scheduler import JobScheduler, describe
from .stages import CHAINED, SCHEDULED, item_jobs, lock_of
from .store import Store, StoreError
from .wakeup import Wakeup
from .warmup import warm_up_in_background
from .watcher import Changes, FolderWatcher
from .worker import Runtime, Worker

log = get_logger("genred.service")

# A stop ends this soon after the signal: the job in hand gets what is left of it to
# finish its request, then is abandoned (its item is not committed; nothing is lost).
STOP_WITHIN_S = 4.0
REQUESTED = "sync-requested"


class Service:
    """One daemon. `run()` blocks until a stop signal and returns the exit code."""

    def __init__(
        self,
        config_path: Path,
        config: Config,
        *,
        notifier: Notifier | None = None,
    ) -> None:
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.cancel = threading.Event()
        self._wake = Wakeup()
        self._stop_at: float | None = None
        self._reload_reasons: list[str] = []
        self._stop_reason: str | None = None
        self._runtime = Runtime(config, load_plugins(PluginContext(config, cancel=self.cancel)))
        self._config_digest = _digest(config_path)  # of the file the running config is from
        self._config_seen = self._config_digest  # of the file at the watch's last look
        self.worker = Worker(lambda: self._runtime, self.cancel, self._status)
        self.worker.retry_requested = lambda delay: self._schedule_requested(delay)
        self.worker.run_at = self._run_stage_at
        self.scheduler = JobScheduler(self.worker.scheduled, run_item=self.worker.item)
        self.instance = InstanceLock(config.data_dir)
        self.watcher: FolderWatcher | None = None
        self.web: Any = None
        self._dashboard_context: Any = None
        self._listeners: dict[str, Callable[[], None]] = {}
        self._config_watch: Any = None

    @property
    def config(self) -> Config:
        return self._runtime.config

    # ------------------------------------------------------------------ run

    def run(self) -> int:
        self._install_signals()  # first: from here on a stop signal is a clean stop
        early = stop_requested()
        if early is not None:  # it came while genred was loading
            self.stop(early)
            log.info("stopped before start-up finished", reason=early)
            self._close_plugins()
            self._wake.close()
            return 0
        try:
            self.instance.take()
        except StageBusy as exc:
            log.error(str(exc))
            self._wake.close()
            return 1
        try:
            for step in self._start_steps():
                if self._stop_reason is not None:
                    break  # a stop during start-up: what was started is stopped again
                step()
            else:
                self.notifier.ready(self._idle_status())
                log.info("genred is running", config=str(self.config_path), **self._summary())
                self._main_loop()
            return 0
        except GenredError as exc:
            log.error("genred cannot start", error=str(exc))
            return 1
        finally:
            self._shutdown()

    def _start_steps(self) -> list[Callable[[], None]]:
        interrupted: list[str] = []

        def store() -> None:
            interrupted.extend(self._prepare_store())
            self._report_unavailable()
            warm_up_in_background((p for *_, p in self._runtime.plugins.instances()), self.cancel)

        def scheduler() -> None:
            first_sync = self.config.schedule.first_sync_after.total_seconds()
            self.scheduler.start(
                self.config.schedule, first_sync_in=first_sync, items=_item_schedules(self.config)
            )
            self._resume(interrupted)
            self._first_runs(after=first_sync + self._first_item_delay())
            if self.notifier.watchdog_interval is not None:
                self.scheduler.heartbeat(self.notifier.watchdog, self.notifier.watchdog_interval)

        return [
            store,
            scheduler,
            self._start_watcher,
            self._start_web,
            self._start_listeners,
            self._watch_config,
        ]

    def _prepare_store(self) -> list[str]:
        """Open (and migrate) the store; close runs a dead process left; return their jobs."""
        from .pipeline.jobs import close_stale_runs, interrupted_last

        try:
            with Store.open(self.config.db_path) as store:
                stale = close_stale_runs(store, self.config.data_dir, lock_of)
                if stale:
                    log.info("runs left by a stopped process marked interrupted", runs=stale)
                return interrupted_last(store)
        except StoreError as exc:
            raise GenredError(str(exc)) from None

    def _resume(self, jobs: list[str]) -> None:
        """A stage whose last run was cut short (stop, crash, kill -9) runs again soon."""
        items = item_jobs(self.config)
        for job in jobs:
            if job in CHAINED and self.config.schedule.of(job).enabled:
                log.info("resuming an interrupted stage", job=job)
                self.scheduler.soon(f"resume-{job}", self.worker.scheduled, 1.0, job, "resume")
            elif job in items:  # a push cut short goes on (it reads the remote first)
                log.info("resuming an interrupted job", job=job)
                self.scheduler.soon(f"resume-{job}", self.worker.item, 1.0, job, "resume")

    def _first_item_delay(self) -> float:
        return self.config.playlists.first_run_after.total_seconds()

    def _first_runs(self, *, after: float) -> None:
        """A stage's own job that never ran (a saved playlist just added) runs soon, after
        the first sync, instead of a whole `every:` later."""
        jobs = item_jobs(self.config)
        if not jobs:
            return
        try:
            with Store.open(self.config.db_path) as store:
                ran = {r[0] for r in store.conn.execute("SELECT DISTINCT job FROM runs")}
        except StoreError as exc:
            log.warning("cannot tell which jobs ran before", error=str(exc))
            return
        for job in sorted(set(jobs) - ran):
            log.info("a new job runs soon", job=job, in_seconds=round(after))
            self.scheduler.soon(f"first-{job}", self.worker.item, after, job, "first")

    def _report_unavailable(self) -> None:
        for (kind, name), reason in self._runtime.plugins.unavailable.items():
            log.warning("plugin not available", kind=kind, plugin=name, reason=reason)

    def _main_loop(self) -> None:
        while self._stop_reason is None:
            self._wake.wait(60)
            while self._reload_reasons and self._stop_reason is None:
                reason = self._reload_reasons.pop(0)
                self.reload(reason)

    # ------------------------------------------------------------------ signals

    def _install_signals(self) -> None:
        self._wake.take_signals()  # a signal wakes the main loop, whichever thread it reached
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, lambda signum, frame: self.request_reload("SIGHUP"))

    def _on_stop_signal(self, signum: int, _frame: Any) -> None:
        self.stop(signal.Signals(signum).name)

    def stop(self, reason: str) -> None:
        """Ask the main loop to stop (thread- and signal-safe)."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self._stop_at = time.monotonic()
        self.cancel.set()
        self._wake.set()

    def request_reload(self, reason: str) -> None:
        self._reload_reasons.append(reason)
        self._wake.set()

    # ------------------------------------------------------------------ reload

    def reload(self, reason: str) -> bool:
        """Validate the config file, then apply it; a bad file keeps the running config.

        systemd hears RELOADING=1 first and READY=1 (with a STATUS=) once done, either way.
        """
        self.notifier.reloading()
        old = self.config
        try:
            new = load_config(self.config_path, allow_empty=False)
            check_config(new)
            if new.data_dir != old.data_dir:
                raise ConfigError(
                    [new.source.issue(("data_dir",), "changing data_dir needs a restart")]
                )
        except ConfigError as exc:
            for issue in exc.issues:
                log.error("config edit refused; the running config stays", problem=str(issue))
            self.notifier.ready(f"config edit refused ({len(exc.issues)} problems, see the log)")
            return False
        except Exception as exc:  # whatever else is wrong with the file, genred stays up
            log.exception(
                "config edit refused; the running config stays",
                problem=f"{self.config_path}: {type(exc).__name__}: {exc}",
            )
            self.notifier.ready("config edit refused (see the log)")
            return False
        self._config_digest = self._config_seen = _digest(self.config_path)
        try:
            if new == old:
                log.info("config reloaded: nothing changed", reason=reason)
            else:
                self._apply(old, new, reason)
        finally:
            self.notifier.ready(self._idle_status())
        return True

    def _apply(self, old: Config, new: Config, reason: str) -> None:
        if new.logging != old.logging:
            configure_logging(new.logging.level, new.logging.format, new.secrets())
        previous = self._runtime.plugins
        try:
            plugins = load_plugins(PluginContext(new, cancel=self.cancel), previous=previous)
        except ConfigError as exc:  # validated above; kept for safety
            for issue in exc.issues:
                log.error("config edit refused; the running config stays", problem=str(issue))
            return
        rebuilt = [
            f"{kind}/{name}"
            for kind, name, instance in plugins.instances()
            if previous.by_kind.get(kind, {}).get(name) is not instance
        ]
        dropped = retired(previous, plugins)
        routes_changed = any(
            isinstance(p, ProvidesRoutes)
            for p in [*dropped, *(plugins.get(*r.split("/", 1)) for r in rebuilt)]
        )
        self._runtime = Runtime(new, plugins)
        for instance in dropped:
            _close(instance)
        rescheduled = self.scheduler.apply(new.schedule)
        rescheduled += self.scheduler.apply_items(_item_schedules(new))
        self._first_runs(after=self._first_item_delay())
        if new.folders != old.folders or new.watch != old.watch:
            self._stop_watcher()
            self._start_watcher()
        if new.web != old.web or routes_changed:
            self._stop_web()
            self._start_web()
        self._start_listeners(restart=rebuilt)
        if new.watch.config_file != old.watch.config_file:
            self._stop_config_watch()
            self._watch_config()
        self._report_unavailable()
        log.info(
            "config reloaded",
            reason=reason,
            rescheduled=rescheduled,
            plugins_rebuilt=rebuilt,
        )

    # ------------------------------------------------------------------ triggers

    def request_sync(
        self,
        source: str | None,
        *,
        reason: str,
        paths: Sequence[str] = (),
        delay: float = 0.0,
        moved: Sequence[tuple[str, str]] = (),
    ) -> None:
        """SyncRequester for the webhook, the listeners and the watcher."""
        if self.cancel.is_set():
            return
        self.worker.requests.add(source, reason, paths, moved)
        self._schedule_requested(delay)

    def _schedule_requested(self, delay: float) -> None:
        if not self.cancel.is_set():
            self.scheduler.soon(REQUESTED, self.worker.requested, delay)

    def _run_stage_at(self, job: str, when: datetime) -> None:
        """Run `job` (a stage, or a saved playlist's job) once at `when` (a spent per-day
        budget returns, a long 429 is over), not before."""
        if self.cancel.is_set():
            return
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        delay = max(1.0, (when - datetime.now(UTC)).total_seconds())
        self.scheduler.soon(f"later-{job}", self.worker.named, delay, job, "budget")
        log.info("job rescheduled", job=job, at=when.isoformat(), in_seconds=round(delay))

    def _on_changes(self, changes: Changes) -> None:
        log.info(
            "folder changes",
            changed=len(changes.changed),
            moved=len(changes.moved),
            deleted=len(changes.deleted),
        )
        self.request_sync(None, reason="watch", paths=changes.paths(), moved=changes.moved)

    def _own_writes(self, stats: Mapping[str, tuple[int, int]]) -> set[str]:
        """The watcher's question: which of these settled files did genred write itself."""
        from .store import file_writes

        with Store.open(self.config.db_path) as store:
            return file_writes.ours(store, stats)

    def _start_watcher(self) -> None:
        config = self.config
        if not config.watch.enabled or not config.folders:
            return
        self.watcher = FolderWatcher(
            config.folders, config.watch, self._on_changes, own_writes=self._own_writes
        )
        self.watcher.start()

    def _stop_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def _start_web(self) -> None:
        web = self.config.web
        if not web.enabled:
            return
        try:
            from .web.app import create_app
            from .web.server import WebServer
        except ImportError as exc:
            log.warning(
                "web server not started (webhooks off)",
                reason=str(exc),
                hint="pip install 'genred[web]'",
            )
            return
        plugins = [instance for _kind, _name, instance in self._runtime.plugins.instances()]
        dashboard = self._dashboard()
        server = WebServer(
            create_app(plugins, self, self.state, web=dashboard),
            web.host,
            web.port,
            stopping=dashboard.stop,
            root_path=web.root_path,
        )
        try:
            server.start()
        except GenredError as exc:
            log.error("web server not started (webhooks off)", error=str(exc))
            dashboard.close()
            return
        dashboard.start()
        self.web, self._dashboard_context = server, dashboard

    def _dashboard(self) -> Any:
        """What the dashboard and API need of the daemon (genred.web.context)."""
        from .web.context import WebContext

        return WebContext(
            config=lambda: self.config,
            jobs=self.worker,
            corrections=self.request_corrections,
            status=self.state,
            plugins=lambda: self._runtime.plugins,
            config_path=self.config_path,
        )

    def request_corrections(self) -> None:
        """Overrides changed (dashboard, API): decide again and write back, soon."""
        if not self.cancel.is_set():
            self.scheduler.soon("corrections", self.worker.corrected, 0.5)

    def _stop_web(self) -> None:
        if self.web is not None:
            self.web.stop()
            self.web = None
        if self._dashboard_context is not None:
            self._dashboard_context.close()
            self._dashboard_context = None

    def _start_listeners(self, restart: Sequence[str] = ()) -> None:
        """Sources that can tell when they changed (Plex alerts) request syncs themselves."""
        delay = self.config.web.webhook_delay.total_seconds()
        sources = self._runtime.plugins.of("sources")
        for name in list(self._listeners):
            if name not in sources or f"sources/{name}" in restart:
                self._listeners.pop(name)()
        for name, plugin in sources.items():
            if name in self._listeners or not isinstance(plugin, Listens):
                continue

            def notify(reason: str, source: str = name) -> None:
                self.request_sync(source, reason=f"alerts: {reason}", delay=delay)

            stopper = plugin.listen(notify)
            if stopper is not None:
                self._listeners[name] = stopper

    def _watch_config(self) -> None:
        if not self.config.watch.config_file:
            return
        from .watcher import watch_file

        try:
            self._config_watch = watch_file(self.config_path, self._config_file_changed)
        except OSError as exc:
            log.warning("config file not watched; reload with SIGHUP", error=str(exc))

    def _stop_config_watch(self) -> None:
        if self._config_watch is not None:
            self._config_watch()
            self._config_watch = None

    def _config_file_changed(self) -> None:
        """An event on the config file: reload when its content differs from the running
        one's, and also when it cannot be read (a directory in its place, permissions
        taken away, deleted), so the refusal says why at once, not at the next SIGHUP."""
        digest = _digest(self.config_path)
        if digest == self._config_seen:
            return  # the same as the last look (a touch, an attribute change): nothing new
        self._config_seen = digest
        if digest != self._config_digest:
            self.request_reload("config file edited")

    # ------------------------------------------------------------------ status

    def _status(self, text: str) -> None:
        self.notifier.status(self._idle_status() if text == "idle" else text)

    def _idle_status(self) -> str:
        runs = self.scheduler.next_runs()
        nxt = [(when, job) for job, when in runs.items() if when is not None]
        if not nxt:
            return "idle"
        when, job = min(nxt)
        return f"idle; next {job} at {when:%H:%M:%S}"

    def _summary(self) -> dict[str, Any]:
        sched = self.config.schedule
        return {
            "sources": sorted(self._runtime.plugins.of("sources")),
            "schedule": {s: describe(sched.of(s)) for s in SCHEDULED},
            "folders": [str(f.path) for f in self.config.folders] if self.watcher else [],
            "web": f"{self.config.web.host}:{self.web.port}" if self.web else None,
        }

    def state(self) -> dict[str, Any]:
        """For /health and the dashboard: what the daemon is doing."""
        return {
            "busy": self.worker.busy,
            "next_runs": {
                job: when.isoformat() if when else None
                for job, when in self.scheduler.next_runs().items()
            },
            "watching": bool(self.watcher),
            "watch_problems": self.watcher.problems if self.watcher else [],
        }

    # ------------------------------------------------------------------ shutdown

    def _close_plugins(self) -> None:
        for kind in self._runtime.plugins.by_kind.values():
            for instance in kind.values():
                _close(instance)

    def _shutdown(self) -> None:
        reason = self._stop_reason or "exit"
        self.notifier.stopping(f"stopping ({reason})")
        log.info("stopping", reason=reason)
        self.cancel.set()
        self.scheduler.shutdown()
        self._stop_config_watch()
        self._stop_watcher()
        for stopper in self._listeners.values():
            stopper()
        self._listeners.clear()
        self._stop_web()
        asked = self._stop_at or time.monotonic()
        if not self.worker.wait_idle(max(0.5, STOP_WITHIN_S - (time.monotonic() - asked))):
            log.warning(
                "a job did not finish in time; its uncommitted item is dropped",
                seconds_since_stop=round(time.monotonic() - asked, 1),
            )
        self._close_plugins()
        self.instance.release()
        self._wake.close()
        log.info("stopped", reason=reason)


def _item_schedules(config: Config) -> dict[str, Any]:
    return {job: schedule for job, (_stage, schedule, _options) in item_jobs(config).items()}


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _close(instance: Any) -> None:
    if isinstance(instance, Closes):
        try:
            instance.close()
        except Exception:
            log.exception("closing a plugin failed", plugin=type(instance).__name__)
