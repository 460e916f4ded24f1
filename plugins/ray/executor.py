"""Executor `ray`: genred's file jobs on a Ray cluster (or a Ray instance of its own).

genred's side of it. The first `run` of a stage starts the driver (`driver.py`) in a
child process and waits for it to be ready; each job's files go to it as it asks for
them, and the outcomes come back as they complete, for the stage to commit (the store
has one writer: this process). `release` (the stage is done) stops the driver: Ray shut
down, its processes gone; the idle daemon keeps nothing of Ray.

One stage at a time uses the driver: a second stage that wants it meanwhile waits (a
daemon chains its stages one after the other anyway).
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from genred.api import (
    Cancelled,
    Duration,
    FileItem,
    FileJob,
    GenredError,
    PluginContext,
    get_logger,
)

log = get_logger("genred.ray")

if importlib.util.find_spec("ray") is None:  # `genred plugins` names the extra; ray itself
    raise ImportError("No module named 'ray'", name="ray")  # is imported by the driver only

POLL_S = 0.25
STOP_WAIT_S = 20.0  # ray.shutdown takes 1.5 s; a cluster's driver may take longer
SOCKET_PATH_MAX = 60  # Ray's sockets live under the temp dir; a long path breaks them
KEEP_SESSIONS = 2  # session folders Ray leaves in the temp dir, kept for their logs
LOG_ROTATE_BYTES = 10 * 1024 * 1024  # the driver's log (Ray's notes) is rotated past this


class RayUnavailable(GenredError):
    """The Ray driver cannot start or died; the message says why."""


class RaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(
        None,
        description="null: a Ray instance of genred's own on this machine, started for each "
        "stage; auto: the cluster `ray start` joined this machine to; ray://host:10001: a "
        "remote cluster through Ray Client",
    )
    num_cpus: int | None = Field(
        None, ge=1, description="own instance: CPUs it may use (null: extract.workers)"
    )
    num_gpus: int | None = Field(None, ge=0, description="own instance: GPUs (null: Ray's count)")
    cpus_per_file: float = Field(1.0, gt=0, le=64, description="CPUs one file's work takes")
    model_workers: int = Field(
        1,
        ge=1,
        le=256,
        description="model workers (actors) for a job with a model, each loading it once",
    )
    gpus_per_model_worker: float = Field(
        0.0, ge=0, le=16, description="GPUs each model worker takes (1 on a GPU node)"
    )
    cpus_per_model_worker: float = Field(1.0, ge=0, le=64)
    max_retries: int = Field(
        1, ge=0, le=10, description="a file whose Ray worker died is tried again this often"
    )
    in_flight: int | None = Field(
        None, ge=1, description="files submitted at once (null: twice the cluster's slots)"
    )
    object_store_mb: int = Field(256, ge=80, description="own instance: shared object memory")
    temp_dir: Path | None = Field(
        None, description="own instance: Ray's session files (null: the data dir's ray/)"
    )
    start_timeout: Duration = Field(
        timedelta(minutes=2), description="how long the driver may take to connect"
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="environment variables for Ray's workers"
    )


class RayExecutor:
    """`extract.executor: ray`."""

    Config = RaySettings
    uses_config = ("data_dir",)

    def __init__(self, settings: RaySettings, context: PluginContext) -> None:
        self.settings = settings
        self.data_dir = context.data_dir
        self._driver: Driver | None = None
        self._owner: threading.Lock = threading.Lock()
        self._owned_by: int | None = None
        self._jobs = itertools.count(1)

    # ------------------------------------------------------------------ the contract

    def run(
        self, job: FileJob, items: Iterable[FileItem], *, cancel: threading.Event | None = None
    ) -> Iterator[tuple[int, Any]]:
        self._take(cancel)
        driver = self._driver_for(job, cancel)
        job_id = next(self._jobs)
        todo = iter(items)
        driver.send(("job", job_id, pickle.dumps(job)))
        finished = False
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    return
                message = driver.receive(POLL_S)
                if message is None:
                    continue
                kind = message[0]
                if kind == "want" and message[1] == job_id:
                    chunk = list(itertools.islice(todo, max(1, int(message[2]))))
                    last = len(chunk) < int(message[2])
                    driver.send(("items", job_id, chunk, last))
                elif kind == "result" and message[1] == job_id:
                    yield message[2], message[3]
                elif kind == "done" and message[1] == job_id:
                    finished = True
                    log.info("ray job done", job=job.name, **message[2])
                    return
                elif kind == "fatal":
                    finished = True
                    self.release()
                    raise RayUnavailable(f"Ray: {message[2]}")
        finally:
            if not finished and self._driver is driver and driver.alive():
                driver.send(("cancel", job_id))  # files in hand are dropped on the cluster

    def release(self) -> None:
        """Stop the driver (Ray shut down, its processes gone) and let another stage in."""
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.stop()
        if self._owned_by is not None:
            self._owned_by = None
            self._owner.release()

    def close(self) -> None:
        """A reload or the shutdown drops this instance: stop the driver, unless a stage is
        using it right now (that stage's `release` stops it when the stage ends)."""
        owner = self._owned_by
        if owner is not None and owner != threading.get_ident():
            return
        self.release()

    def check(self) -> list[str]:
        """`ChecksConfig`: what will not work as configured."""
        out = []
        if self.settings.address and self.settings.num_cpus is not None:
            out.append("ray: num_cpus applies only to genred's own instance (address: null)")
        if self.settings.gpus_per_model_worker == 0 and self.settings.model_workers > 1:
            out.append("ray: several model workers without GPUs each load the model into RAM")
        return out

    # ------------------------------------------------------------------ the driver

    def _take(self, cancel: threading.Event | None) -> None:
        me = threading.get_ident()
        if self._owned_by == me:
            return
        waited = False
        while not self._owner.acquire(timeout=POLL_S):
            if not waited:
                log.info("waiting for another stage to finish with Ray")
                waited = True
            if cancel is not None and cancel.is_set():
                raise Cancelled("ray: stopped for shutdown while waiting for another stage")
        self._owned_by = me

    def _driver_for(self, job: FileJob, cancel: threading.Event | None) -> Driver:
        if self._driver is not None and self._driver.alive():
            return self._driver
        if self._driver is not None:
            self._driver.stop()
        options = self._options(job)
        self._driver = Driver(options, self.settings.start_timeout.total_seconds(), cancel)
        return self._driver

    def _options(self, job: FileJob) -> dict[str, Any]:
        s = self.settings
        temp_dir = None
        env = dict(s.env)
        logs = self.data_dir / "logs"
        if not s.address:
            temp_dir = str(self._temp_dir())
            env.setdefault("RAY_AUTH_MODE", "disabled")  # nothing written to ~/.ray
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_file = logs / "ray-driver.log"
        with contextlib.suppress(OSError):
            if log_file.stat().st_size > LOG_ROTATE_BYTES:
                log_file.replace(log_file.with_suffix(".log.1"))
        return {
            "address": s.address,
            "num_cpus": s.num_cpus or (None if s.address else job.workers),
            "num_gpus": s.num_gpus,
            "object_store_bytes": s.object_store_mb * 1024 * 1024,
            "temp_dir": temp_dir,
            "cpus_per_file": s.cpus_per_file,
            "model_workers": s.model_workers,
            "gpus_per_model_worker": s.gpus_per_model_worker,
            "cpus_per_model_worker": s.cpus_per_model_worker,
            "max_retries": s.max_retries,
            "in_flight": s.in_flight,
            "env": env,
            "log_file": str(log_file),
        }

    def _temp_dir(self) -> Path:
        """Where the own instance keeps its session files: short enough for its sockets,
        old sessions pruned."""
        wanted = self.settings.temp_dir or self.data_dir / "ray"
        if len(str(wanted)) > SOCKET_PATH_MAX:
            wanted = Path(tempfile.gettempdir()) / f"genred-ray-{os.getuid()}"
        wanted.mkdir(parents=True, exist_ok=True, mode=0o700)
        sessions = sorted(
            (p for p in wanted.glob("session_2*") if p.is_dir()), key=lambda p: p.stat().st_mtime
        )
        for old in sessions[:-KEEP_SESSIONS]:
            if not _driver_alive(old):  # another genred's Ray may be running in the same dir
                shutil.rmtree(old, ignore_errors=True)
        return wanted


def _driver_alive(session: Path) -> bool:
    """Is the process that started this Ray session (its name ends with its pid) alive?"""
    try:
        pid = int(session.name.rsplit("_", 1)[1])
        os.kill(pid, 0)
    except (IndexError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


class Driver:
    """The driver child process and its two pipes."""

    def __init__(self, options: dict[str, Any], timeout: float, cancel: threading.Event | None):
        from . import driver as child

        context = multiprocessing.get_context("spawn")  # never fork the daemon
        commands_rx, self.commands = context.Pipe(duplex=False)
        self.results, results_tx = context.Pipe(duplex=False)
        self.process = context.Process(
            target=child.main, args=(commands_rx, results_tx, options), name="genred-ray-driver"
        )
        self.lock = threading.Lock()
        started = time.monotonic()
        self.process.start()
        commands_rx.close()
        results_tx.close()  # ours closed: the driver's death reads as EOF
        self.info: dict[str, Any] = {}
        while True:
            if cancel is not None and cancel.is_set():
                self.stop()
                raise Cancelled("ray: stopped for shutdown while the driver started")
            if time.monotonic() - started > timeout:
                self.stop()
                raise RayUnavailable(
                    f"Ray did not start within {timeout:g} s (ray.start_timeout; is the "
                    "address right and the cluster up?)"
                )
            message = self.receive(POLL_S)
            if message is None:
                continue
            if message[0] == "ready":
                self.info = message[1]
                log.info("ray driver ready", pid=self.process.pid, **self.info)
                return
            if message[0] == "fatal":
                self.stop()
                raise RayUnavailable(f"Ray cannot start: {message[2]}")

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, message: tuple[Any, ...]) -> None:
        with self.lock:
            try:
                self.commands.send(message)
            except (BrokenPipeError, OSError):
                raise RayUnavailable(self._died()) from None

    def receive(self, timeout: float) -> tuple[Any, ...] | None:
        try:
            if not self.results.poll(timeout):
                return None
            message: tuple[Any, ...] = self.results.recv()
        except (EOFError, OSError):
            raise RayUnavailable(self._died()) from None
        return message

    def _died(self) -> str:
        self.process.join(1.0)
        code = self.process.exitcode
        self._reap()
        return (
            f"the Ray driver process died (exit code {code}); what was committed is kept, "
            "the next run goes on from there"
        )

    def stop(self) -> None:
        """Ask it to stop; then SIGTERM, then SIGKILL; then end its whole process group."""
        if self.process.is_alive():
            with contextlib.suppress(RayUnavailable):
                self.send(("stop",))
            self.process.join(STOP_WAIT_S)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5.0)
        self._reap()
        for end in (self.commands, self.results):
            with contextlib.suppress(OSError):
                end.close()

    def _reap(self) -> None:
        """Ray's helpers that outlive a killed driver (its agents linger ~30 s) go with it."""
        if self.process.pid is not None and self.process.exitcode is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
