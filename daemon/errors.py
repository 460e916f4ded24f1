"""Errors a user can act on, raised at the edges and caught once at the stage boundary."""

from __future__ import annotations

from threading import Event


class GenredError(Exception):
    """Base of every error genred reports to a user (message says what to do)."""


class PlexUnreachable(GenredError):
    """Plex did not answer, or answered with a server error, after retries."""


class PlexAuthFailed(GenredError):
    """Plex refused the token (401)."""


class PlexRequestFailed(GenredError):
    """Plex refused one request (4xx other than 401); retrying as is will not help."""


class StageBusy(GenredError):
    """Another process is running this stage right now (see genred.locks)."""


class Cancelled(GenredError):
    """The daemon is stopping: the stage stopped after committing the item in hand."""


def raise_if_cancelled(cancel: Event | None, where: str) -> None:
    """Called by stages between committed units of work (a page, a batch, one request)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{where}: stopped for shutdown; committed work is kept")
