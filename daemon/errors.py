"""Errors a user can act on, raised at the edges and caught once at the stage boundary."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from threading import Event


class GenredError(Exception):
    """Base of every error genred reports to a user (message says what to do).

    `permanent`: trying the same item again cannot help until its file changes (too short,
    not audio, an unsupported codec). The stages record such a failure once and skip the
    item until then, instead of retrying it with a backoff (see `genred.store.failures`).
    """

    permanent: bool = False


def is_permanent(error: BaseException) -> bool:
    """Whether `error` is a permanent failure of its item (see `GenredError.permanent`)."""
    return getattr(error, "permanent", False) is True


class PlexUnreachable(GenredError):
    """Plex did not answer, or answered with a server error, after retries."""


class PlexAuthFailed(GenredError):
    """Plex refused the token (401)."""


class PlexRequestFailed(GenredError):
    """Plex refused one request (4xx other than 401); retrying as is will not help."""


class PluginUnavailable(Exception):
    """An enabled plugin cannot be used; the message says what to install or fix."""


class ProcessorUnavailable(GenredError):
    """A configured LLM processor is not installed, fails to import, or has bad settings."""


class StageBusy(GenredError):
    """Another process is running this stage right now (see genred.locks)."""


class Cancelled(GenredError):
    """The daemon is stopping: the stage stopped after committing the item in hand."""


class RetryLater(GenredError):
    """The job cannot go on before `retry_at` (a spent budget, a long 429): the daemon runs
    it again then; what was committed is kept."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at

    def __reduce__(self) -> tuple[type, tuple[str, datetime]]:
        return (type(self), (str(self), self.retry_at))


def raise_if_cancelled(cancel: Event | None, where: str) -> None:
    """Called by stages between committed units of work (a page, a batch, one request)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{where}: stopped for shutdown; committed work is kept")


# --------------------------------------------------------------------------- LLM providers
# Raised by the LLM plugins (genred_plugins.llm); never retried by the caller as is.


class LLMUnavailable(GenredError):
    """The LLM provider did not answer, or kept answering 5xx, after retries."""


class LLMAuthFailed(GenredError):
    """The provider refused the API key (401/403): fix the key, retrying will not help."""


class LLMRequestFailed(GenredError):
    """The provider refused one request (another 4xx: unknown model, unsupported option)."""


class LLMRequestTooLarge(GenredError):
    """The request can never fit the provider's limits: split it or skip it, never resend it."""


class LLMAnswerError(GenredError):
    """The model kept giving answers that are not valid JSON for the task; the batch failed."""


class InvalidAnswer(ValueError):
    """Raised by a chat's `validate` callback (or the parser): the answer is unusable, ask again."""


class LLMBudgetExhausted(RetryLater):
    """A rate budget (usually per day) is spent: stop the job and run it again at `retry_at`."""


# --------------------------------------------------------------------------- writeback
# Raised by a writeback plugin's `apply`; the writeback stage records it per item.


class EditPartlyFailed(GenredError):
    """Some items of one edit landed, others did not: `failed` maps each of those to why.

    A target that writes item by item (files) raises it after writing the rest, so the
    stage records the landed items as written and only the others as failed."""

    def __init__(self, message: str, failed: Mapping[str, GenredError]) -> None:
        super().__init__(message)
        self.failed = dict(failed)

    def __reduce__(self) -> tuple[type, tuple[str, dict[str, GenredError]]]:
        return (type(self), (str(self), self.failed))


class FileChangedSinceRead(GenredError):
    """The file changed between the writeback's read and its write: it is left alone."""


class FileNotWritable(GenredError):
    """The file cannot be replaced as it is (permissions, its owner, hard links, its format)."""


# --------------------------------------------------------------------------- audio
# Raised by genred_plugins.audio for one file; the extract stage records it for that track.


class AudioError(GenredError):
    """A track's audio could not be decoded; the message names the file and what is wrong."""


class AudioFileMissing(AudioError):
    """The file is not there (moved or deleted since the last sync)."""


class AudioUnreadable(AudioError):
    """The file exists but cannot be read: permissions, a directory, an I/O error."""


class AudioEmpty(AudioError):
    """The file has zero bytes, or a valid header and no samples."""

    permanent = True


class NotAudio(AudioError):
    """The content is not a recognised audio format (a renamed text file, an image)."""

    permanent = True


class AudioTruncated(AudioError):
    """The file ends before its declared length, or its stream breaks off (damaged)."""

    permanent = True


class UnsupportedCodec(AudioError):
    """The container is known but no available decoder handles its audio codec."""

    permanent = True


class AudioTooShort(AudioError):
    """The audio is shorter than what the analysis needs (one tagger patch, about 3 s)."""

    permanent = True


class AudioSilent(AudioError):
    """Every part of the audio that would be analysed is silent: there is nothing to hear."""

    permanent = True


# --------------------------------------------------------------------------- extraction
# Recorded by the extract stage for one track; the rest of the library goes on.


class ExtractTimedOut(GenredError):
    """An extractor took longer than `extract.timeout` on one file; its worker was stopped."""


class ExtractorCrashed(GenredError):
    """The worker process died while extracting one file (a decoder crash, out of memory)."""


class InvalidFeatures(GenredError):
    """An extractor returned something that is not a finite 1-D vector of its usual length."""


# --------------------------------------------------------------------------- trained models
# `genred train` and the `audio-model` classifier (genred.training).


class TrainingError(GenredError):
    """`genred train` cannot train from what is stored (no features, too few labels)."""


class ModelUnavailable(GenredError):
    """No trained model in the data dir, or its files are missing, damaged or unreadable."""


class FeaturesMissing(GenredError):
    """A track lacks a feature vector (of the version a model was trained on) it needs.

    Permanent when the vector can never be computed from the file as it is (its extractor
    recorded a permanent failure: too short, not audio); else it may come with the next
    extraction, and the track is tried again after a backoff.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# --------------------------------------------------------------------------- playlists
# genred.playlists and the playlist targets (genred_plugins.spotify, genred_plugins.plex).


class PlaylistError(GenredError):
    """A playlist cannot be made or changed as asked (empty prompt, unknown name, …)."""


class LibraryEmpty(PlaylistError):
    """No track is synced yet (at a first start the sync may still be running)."""


class RemoteAuthFailed(GenredError):
    """A playlist target refused the credentials; the message says how to log in again."""


class RemoteUnavailable(GenredError):
    """A playlist target did not answer, or kept answering 5xx, after retries."""


class RemoteRequestFailed(GenredError):
    """A playlist target refused one request (a 4xx); retrying it as is will not help."""


class RemoteRateLimited(RetryLater):
    """A playlist target asked to wait longer than genred waits in a job: deferred."""
