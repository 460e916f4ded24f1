"""The Ray driver: a child process of genred that runs the file jobs on Ray, one at a time.

Why a child: `ray.init` replaces the process's SIGTERM handler (Ray #17308) and starts a
local cluster whose processes must not outlive genred. So the driver runs in a process
of its own, started by spawn (never forked from the daemon), in its own process group
(genred kills what is left with one signal), with a parent-death signal and an eye on
its command pipe (genred gone: it stops). A SIGTERM (systemd stops the unit, or genred
`release`s it) stops it after the message in hand: `ray.shutdown()`, then exit.

Messages, parent → driver: ("job", id, pickled FileJob), ("items", id, [FileItem], last),
("cancel", id), ("stop",). Driver → parent: ("ready", info), ("want", id, n),
("result", id, track_id, outcome), ("done", id, stats), ("fatal", id or None, text).
Items are asked for ("want") as the driver's queue empties, so neither side ever blocks
writing while the other does.

How a job runs (Ray tasks and actors, not Ray Data: Ray Data has no per-item timeout, fails
the whole dataset on one error once its retries are spent, and retries a worker crash
forever by default):

- each file is a task (`remote.run_file`, `cpus_per_file` CPUs, `max_retries` for a worker
  that died); at most `in_flight` at a time; one past its deadline is cancelled (its
  worker killed) and recorded as timed out;
- a job with a batch step (a model) hands the tasks' results, by reference (they go from
  the decoding worker to the model's, never through genred), to `model_workers` actors
  (`remote.ModelWorker`: the model loaded once each, `gpus_per_model_worker` GPUs), a
  batch of `batch_size` at a time; the actors are kept for the next job of the same work.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import math
import os
import pickle
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

POLL_S = 0.05
WANT_CHUNK = 64


class Stop(Exception):
    """SIGTERM, a stop command, or the parent gone: shut Ray down and exit."""


@dataclass
class Options:
    """The driver's settings, as the parent sends them (plain values)."""

    address: str | None
    num_cpus: int | None
    num_gpus: int | None
    object_store_bytes: int
    temp_dir: str | None
    cpus_per_file: float
    model_workers: int
    gpus_per_model_worker: float
    cpus_per_model_worker: float
    max_retries: int
    in_flight: int | None
    env: dict[str, str] = field(default_factory=dict)
    log_file: str | None = None  # where the driver's and Ray's own output goes


def main(commands: Any, results: Any, options: dict[str, Any]) -> None:
    """The child's entry point (spawn): serve jobs until told to stop."""
    opts = Options(**options)
    if opts.log_file:
        _output_to(opts.log_file)
    os.setpgid(0, 0)  # Ray's processes inherit the group: one killpg ends what is left
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is genred's to handle
    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__("now", True))
    for name, value in opts.env.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    channel = Channel(commands, results, stopping)
    ray: Any = None
    try:
        started = time.monotonic()
        ray = importlib.import_module("ray")
        _init(ray, opts)
        # ray.init installed its own SIGTERM handler (sys.exit): ours again, flag only
        signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__("now", True))
        resources = ray.cluster_resources()
        channel.send(
            (
                "ready",
                {
                    "ray": ray.__version__,
                    "cpus": resources.get("CPU", 0.0),
                    "gpus": resources.get("GPU", 0.0),
                    "nodes": len(ray.nodes()),
                    "start_s": round(time.monotonic() - started, 2),
                },
            )
        )
        Server(ray, opts, channel).serve()
    except Stop:
        pass
    except Exception as exc:
        channel.try_send(("fatal", None, f"{type(exc).__name__}: {_first_line(exc)}"))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut shutdown
        if ray is not None and ray.is_initialized():
            ray.shutdown()
        channel.close()


def _output_to(path: str) -> None:
    """This process's stdout and stderr, and so Ray's (its processes inherit them), into a
    file: the raylet's notes on every worker that died would flood genred's log."""
    try:
        log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PDEATHSIG


def _init(ray: Any, opts: Options) -> None:
    common: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "ERROR",
        "namespace": "genred",
    }
    if opts.env:
        common["runtime_env"] = {"env_vars": dict(opts.env)}
    if opts.address:
        ray.init(address=opts.address, **common)
        return
    # A Ray instance of our own; never one found through RAY_ADDRESS or /tmp/ray.
    ray.init(
        address="local",
        num_cpus=opts.num_cpus,
        num_gpus=opts.num_gpus,
        object_store_memory=opts.object_store_bytes,
        _temp_dir=opts.temp_dir,
        **common,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


class Channel:
    """The two pipes, with the stop flag checked between messages (never inside one)."""

    def __init__(self, commands: Any, results: Any, stopping: dict[str, bool]) -> None:
        self.commands, self.results, self.stopping = commands, results, stopping

    def send(self, message: tuple[Any, ...]) -> None:
        self.check()
        try:
            self.results.send(message)
        except (BrokenPipeError, OSError):
            raise Stop() from None

    def try_send(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            self.results.send(message)

    def receive(self, timeout: float) -> tuple[Any, ...] | None:
        self.check()
        try:
            if not self.commands.poll(timeout):
                return None
            message: tuple[Any, ...] = self.commands.recv()
        except (EOFError, OSError):
            raise Stop() from None  # genred is gone
        return message

    def check(self) -> None:
        if self.stopping["now"]:
            raise Stop()

    def close(self) -> None:
        for end in (self.commands, self.results):
            with contextlib.suppress(OSError):
                end.close()


class Server:
    """Reads commands; runs the current job a step at a time between them."""

    def __init__(self, ray: Any, opts: Options, channel: Channel) -> None:
        self.ray, self.opts, self.channel = ray, opts, channel
        self.job: JobRun | None = None
        self.actors: dict[str, list[Any]] = {}  # model workers kept per job key

    def serve(self) -> None:
        while True:
            message = self.channel.receive(POLL_S if self.job else 0.5)
            if message is not None:
                self.handle(message)
            if self.job is not None:
                self.job.step()
                if self.job.finished:
                    self.channel.send(("done", self.job.id, self.job.stats()))
                    self.job = None

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "stop":
            raise Stop()
        if kind == "job":
            if self.job is not None:
                self.job.cancel()
            self.job = JobRun(self, message[1], pickle.loads(message[2]))
        elif kind == "items" and self.job is not None and self.job.id == message[1]:
            self.job.add(message[2], last=message[3])
        elif kind == "cancel" and self.job is not None and self.job.id == message[1]:
            self.job.cancel()
            self.channel.send(("done", self.job.id, self.job.stats()))
            self.job = None

    def model_workers(self, job: Any, plugin_ref: Any) -> list[Any]:
        """The actors holding this work's model, started at its first batch."""
        key = f"{job.name}:{job.version}"
        if key not in self.actors:
            from .remote import ModelWorker

            cls = self.ray.remote(ModelWorker).options(
                num_cpus=self.opts.cpus_per_model_worker,
                num_gpus=self.opts.gpus_per_model_worker,
                max_restarts=0,
            )
            self.actors[key] = [cls.remote(plugin_ref) for _ in range(self.opts.model_workers)]
        return self.actors[key]

    def drop_model_worker(self, job: Any, actor: Any) -> None:
        key = f"{job.name}:{job.version}"
        workers = self.actors.get(key, [])
        if actor in workers:
            workers.remove(actor)
            self.ray.kill(actor)
        if not workers:
            self.actors.pop(key, None)


@dataclass
class Pending:
    track_id: int
    path: str
    deadline: float | None
    payload: Any = None  # the result's reference, for a batch step


class JobRun:
    """One FileJob on the cluster: files as tasks, results to the model workers."""

    def __init__(self, server: Server, job_id: int, job: Any) -> None:
        from .remote import run_file

        self.server, self.ray, self.id, self.job = server, server.ray, job_id, job
        self.send: Callable[[tuple[Any, ...]], None] = server.channel.send
        self.queue: deque[Any] = deque()
        self.exhausted = False
        self.asked = 0
        self.files: dict[Any, Pending] = {}  # status ref → the file
        self.ready: list[tuple[int, Any]] = []  # (track id, result ref) for the model
        self.batches: dict[Any, tuple[Any, list[int], float | None, float]] = {}
        self.counts = {"files": 0, "results": 0, "timed_out": 0, "crashed": 0}
        self.cancelled = False
        opts, work = server.opts, job.work
        slots = max(1, int(self.ray.cluster_resources().get("CPU", 1) // opts.cpus_per_file))
        self.in_flight = opts.in_flight or 2 * slots
        # a file may wait behind one other for its slot, then gets its own timeout
        self.queueing = math.ceil(self.in_flight / slots)
        self.plugin_ref = self.ray.put(job.plugin)
        self.batched = work.batch_method is not None
        self.task = self.ray.remote(run_file).options(
            num_cpus=opts.cpus_per_file,
            max_retries=opts.max_retries,
            retry_exceptions=False,
            num_returns=2 if self.batched else 1,
            name=f"{job.name}.{work.method}",
        )
        self.key = f"{job.name}:{job.version}"

    # ------------------------------------------------------------------ from the parent

    def add(self, items: list[Any], *, last: bool) -> None:
        self.queue.extend(items)
        self.asked = max(0, self.asked - len(items))
        if last:
            self.exhausted = True
            self.asked = 0

    def cancel(self) -> None:
        self.cancelled = True
        for ref in list(self.files):
            self.ray.cancel(ref, force=True)
        self.files.clear()
        self.batches.clear()
        self.queue.clear()

    @property
    def finished(self) -> bool:
        return (
            self.exhausted
            and not self.queue
            and not self.files
            and not self.ready
            and not self.batches
        )

    def stats(self) -> dict[str, Any]:
        return {**self.counts, "cancelled": self.cancelled}

    # ------------------------------------------------------------------ one step

    def step(self) -> None:
        self._ask()
        self._submit()
        self._collect_files()
        self._submit_batches()
        self._collect_batches()

    def _ask(self) -> None:
        if self.exhausted or self.asked:
            return
        room = self.in_flight * 2 - len(self.queue) - len(self.files)
        if room >= WANT_CHUNK // 2 or not self.queue:
            self.asked = max(room, 1)
            self.send(("want", self.id, self.asked))

    def _submit(self) -> None:
        timeout = self.job.timeout
        while self.queue and len(self.files) < self.in_flight:
            item = self.queue.popleft()
            hint = (item.hint,) if self.job.work.with_hint else ()
            load = not self.batched  # a decoding task for a model worker never loads it
            refs = self.task.remote(
                self.plugin_ref, self.job.work.method, item.path, self.key, load, *hint
            )
            status = refs[0] if self.batched else refs
            deadline = None
            if timeout is not None:
                deadline = time.monotonic() + timeout * (1 + self.queueing)
            # (a file's deadline runs from its submission: it may wait behind others first)
            self.files[status] = Pending(
                item.track_id, item.path, deadline, refs[1] if self.batched else None
            )
            self.counts["files"] += 1

    def _collect_files(self) -> None:
        if not self.files:
            return
        done, _ = self.ray.wait(list(self.files), num_returns=len(self.files), timeout=0)
        for ref in done:
            pending = self.files.pop(ref)
            error, value = self._get(ref, pending.path)
            if error is not None:
                self._result(pending.track_id, error)
            elif self.batched:
                self.ready.append((pending.track_id, pending.payload))
            else:
                self._result(pending.track_id, value)
        now = time.monotonic()
        for ref, pending in list(self.files.items()):
            if pending.deadline is not None and now > pending.deadline:
                self.ray.cancel(ref, force=True)  # kills the worker running it; not retried
                del self.files[ref]
                self.counts["timed_out"] += 1
                self._result(pending.track_id, self._timed_out(pending.path))

    def _get(self, ref: Any, path: str) -> tuple[BaseException | None, Any]:
        from genred.api import ExtractorCrashed

        try:
            outcome = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self.counts["crashed"] += 1
            return (
                ExtractorCrashed(
                    f"{path}: the Ray worker reading it failed "
                    f"({type(exc).__name__}: {_first_line(exc)})"
                ),
                None,
            )
        if self.batched:
            return outcome, None  # the status; the result stays in the object store
        error, value = outcome
        return error, value

    def _timed_out(self, path: str) -> BaseException:
        from genred.api import ExtractTimedOut

        allowed = (self.job.timeout or 0.0) * (1 + self.queueing)
        return ExtractTimedOut(
            f"{path}: no result after {allowed:g} s (extract.timeout {self.job.timeout:g} s, "
            "plus the wait for a free worker); its Ray worker was stopped (raise "
            "extract.timeout if such files are fine)"
        )

    def _submit_batches(self) -> None:
        if not self.ready:
            return
        size = max(1, self.job.work.batch_size)
        upstream_done = self.exhausted and not self.queue and not self.files
        workers = self.server.model_workers(self.job, self.plugin_ref)
        busy: dict[Any, int] = {}
        for actor, *_ in self.batches.values():
            busy[actor] = busy.get(actor, 0) + 1
        while self.ready and (len(self.ready) >= size or upstream_done):
            free = [a for a in workers if busy.get(a, 0) < 2]
            if not free:
                return
            actor = min(free, key=lambda a: busy.get(a, 0))
            chunk, self.ready = self.ready[:size], self.ready[size:]
            ref = actor.run.remote(self.job.work.batch_method, *[payload for _, payload in chunk])
            allowed = (self.job.timeout or 0.0) * len(chunk) * 2  # model time per file, doubled
            deadline = time.monotonic() + allowed if self.job.timeout is not None else None
            self.batches[ref] = (actor, [track_id for track_id, _ in chunk], deadline, allowed)
            busy[actor] = busy.get(actor, 0) + 1

    def _collect_batches(self) -> None:
        from genred.api import ExtractorCrashed, ExtractTimedOut, GenredError

        if not self.batches:
            return
        done, _ = self.ray.wait(list(self.batches), num_returns=len(self.batches), timeout=0)
        for ref in done:
            actor, ids, *_ = self.batches.pop(ref)
            try:
                outcomes = self.ray.get(ref)
            except self.ray.exceptions.RayActorError as exc:
                if _never_started(exc):
                    raise GenredError(
                        f"the model could not be loaded on a Ray worker: {_first_line(exc)}"
                    ) from None
                self.server.drop_model_worker(self.job, actor)
                outcomes = [
                    ExtractorCrashed(f"the Ray model worker died ({_first_line(exc)})")
                ] * len(ids)
            except self.ray.exceptions.RayError as exc:
                outcomes = [
                    ExtractorCrashed(f"a batch failed on Ray ({type(exc).__name__}: "
                                     f"{_first_line(exc)})")
                ] * len(ids)  # fmt: skip
            for track_id, outcome in zip(ids, outcomes, strict=True):
                self._result(track_id, outcome)
        now = time.monotonic()
        for ref, (actor, ids, deadline, allowed) in list(self.batches.items()):
            if deadline is not None and now > deadline:
                del self.batches[ref]
                self.server.drop_model_worker(self.job, actor)  # stops what it was doing
                for track_id in ids:
                    self._result(
                        track_id,
                        ExtractTimedOut(
                            f"the model gave no answer for its batch of {len(ids)} within "
                            f"{allowed:g} s; its Ray worker was stopped"
                        ),
                    )

    def _result(self, track_id: int, outcome: Any) -> None:
        self.counts["results"] += 1
        self.send(("result", self.id, track_id, outcome))


def _never_started(exc: BaseException) -> bool:
    """An actor whose constructor raised (its model did not load), not one that died later."""
    return "creation task" in str(exc)
