"""The pieces that make a stop prompt: retry waits that end on the stop event, a main loop
that a signal wakes whichever thread it reached, and the launcher that notes an early
SIGTERM. (The whole daemon is signalled at many points in test_stop_e2e.py.)"""

from __future__ import annotations

import signal
import threading

import pytest
import requests

from genred.config import RetrySettings
from genred.errors import Cancelled
from genred.launch import subcommand
from genred.wakeup import Wakeup
from genred_plugins.plex.connection import call


def test_a_plex_retry_wait_ends_on_cancel_and_no_attempt_follows() -> None:
    cancel = threading.Event()
    attempts: list[int] = []

    def refused() -> None:
        attempts.append(1)
        threading.Timer(0.1, cancel.set).start()  # the stop comes during the first backoff
        raise requests.ConnectionError("connection refused")

    slow = RetrySettings(attempts=5, backoff_initial=60.0, backoff_max=60.0)
    with pytest.raises(Cancelled, match="stopped while connecting"):
        call(refused, "connecting", slow, cancel)
    assert len(attempts) == 1  # woken from a 60 s wait, and not tried again


def test_a_signal_to_another_thread_wakes_the_main_loop() -> None:
    """The kernel may hand SIGTERM to any thread; the main thread must wake all the same."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are handled in the main thread only")
    handled: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: handled.append(signum))
    wakeup = Wakeup()
    started, done = threading.Event(), threading.Event()

    def other() -> None:
        started.set()
        done.wait(30)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        wakeup.take_signals()
        started.wait(5)
        assert thread.ident is not None
        signal.pthread_kill(thread.ident, signal.SIGUSR1)  # not to the main thread
        assert wakeup.wait(30) is True  # woken, not timed out
        assert handled == [signal.SIGUSR1]  # and Python ran the handler in the main thread
    finally:
        done.set()
        thread.join()
        wakeup.close()
        signal.signal(signal.SIGUSR1, previous)


def test_set_from_another_thread_wakes_and_is_drained() -> None:
    wakeup = Wakeup()
    try:
        threading.Timer(0.05, wakeup.set).start()
        assert wakeup.wait(30) is True
        assert wakeup.wait(0) is False  # drained: one wake-up per set
    finally:
        wakeup.close()


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["run"], "run"),
        (["--config", "x.yaml", "run"], "run"),
        (["--config=x.yaml", "run", "--config", "y"], "run"),
        (["sync", "--full"], "sync"),
        (["--version"], None),
    ],
)
def test_the_launcher_finds_the_command_before_click_parses(
    args: list[str], command: str | None
) -> None:
    assert subcommand(args) == command
