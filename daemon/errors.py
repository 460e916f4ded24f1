"""Errors a user can act on, raised at the edges and caught once at the stage boundary."""

from __future__ import annotations


class GenredError(Exception):
    """Base of every error genred reports to a user (message says what to do)."""


class PlexUnreachable(GenredError):
    """Plex did not answer, or answered with a server error, after retries."""


class PlexAuthFailed(GenredError):
    """Plex refused the token (401)."""


class PlexRequestFailed(GenredError):
    """Plex refused one request (4xx other than 401); retrying as is will not help."""


class StageBusy(GenredError):
    """Another process is running this stage right now."""
