"""The plugin contract: every kind of plugin and every hook genred calls, one line each.

A plugin is a class registered under an entry-point group (``genred.sources``, …,
``genred.playlists``; see KINDS), built as ``cls(settings, context)`` with its settings validated by its nested
pydantic ``Config`` model (none: it takes no settings). The stages call exactly the
methods below and nothing else; an optional hook is a small protocol of its own, checked
with ``isinstance`` before it is called. `genred.testing.check_plugin` checks a class
against its kind, signatures included. Plugins import genred only through `genred.api`.

Besides the plugin kinds, two more entry-point groups: ``genred.commands`` (a click
command or group added to the ``genred`` CLI, e.g. ``genred plex check``) and
``genred.llm_processors`` (see `LLMProcessor`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from .config import Config
from .records import (
    ChatResult,
    Edit,
    FileItem,
    FileJob,
    FileWork,
    Key,
    PlaylistEdit,
    Prediction,
    RemotePlaylist,
    ScanRequest,
    SourcePage,
    TrackMatch,
    TrackRecord,
    Unclassified,
    Values,
    WrittenFile,
)

if TYPE_CHECKING:
    from fastapi import APIRouter

    from .store import Store
    from .triggers import SyncRequester


class PluginLookup(Protocol):
    """The built plugins, for a plugin that uses another (an LLM classifier its LLM)."""

    def get(self, kind: str, name: str) -> Any:
        """The enabled plugin `name` of `kind`; PluginUnavailable says why when it is not."""
        ...

    def of(self, kind: str) -> Mapping[str, Any]:
        """Every enabled plugin of `kind`, by name."""
        ...


@dataclass
class PluginContext:
    """What every plugin may use: the whole config, the store, the other plugins.

    `plugins` is filled while the plugins are being built: look another plugin up when
    it is used, not in `__init__`. `store` is None in the daemon (each stage run opens its
    own connection and passes it to the hooks that need one). `cancel` is the daemon's
    stop event (None outside the daemon): every wait of a plugin (retry backoff, rate
    limits, Retry-After, polling) must end when it is set, and start no new request.
    """

    config: Config
    store: Store | None = None
    plugins: PluginLookup | None = None
    cancel: threading.Event | None = None

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir


# --------------------------------------------------------------------------- every plugin


class Plugin(Protocol):
    """What every plugin is: built from its validated settings and the context.

    Class attributes read by the loader: ``Config`` (its settings model) and
    ``uses_config`` (the top-level config sections it reads; default
    `DEFAULT_USES_CONFIG`: a reload rebuilds it only when these or its settings change);
    ``notice`` (a licence or caveat `genred plugins` shows, e.g. audio-llm's weights).
    """

    def __init__(self, settings: Any, context: PluginContext) -> None: ...


DEFAULT_USES_CONFIG = ("data_dir", "plex", "folders", "taxonomy")


@runtime_checkable
class Closes(Protocol):
    def close(self) -> None:
        """Release connections and threads: a reload or the shutdown drops this instance."""
        ...


@runtime_checkable
class ChecksConfig(Protocol):
    def check(self) -> list[str]:
        """Warnings for `genred config check` (and the daemon's start): a missing preset…"""
        ...


@runtime_checkable
class ProvidesRoutes(Protocol):
    def register_routes(self, router: APIRouter, requester: SyncRequester) -> None:
        """Add HTTP routes to the daemon's web server (the Plex webhook); needs `genred[web]`."""
        ...


# --------------------------------------------------------------------------- sources


@runtime_checkable
class SourcePlugin(Protocol):
    """Where tracks come from (Plex, a folder). It only reads; the sync stage writes."""

    def scan(self, request: ScanRequest) -> Iterator[SourcePage]:
        """Pages of every track (request.since None) or of those added/changed since then."""
        ...

    def gone(self, source_ids: Sequence[str]) -> set[str]:
        """Those of `source_ids` the source no longer has (asked before marking removals)."""
        ...


@runtime_checkable
class ScansPaths(Protocol):
    """A source whose `scan` honours `ScanRequest.paths` (the folder watcher's changes)."""

    supports_paths: ClassVar[bool]


@runtime_checkable
class RequestsScans(Protocol):
    def request_scan(
        self, paths: Sequence[str], *, cancel: threading.Event | None = None
    ) -> Sequence[str]:
        """Have the source rescan these local paths (Plex: a partial scan); what it asked."""
        ...


@runtime_checkable
class Listens(Protocol):
    def listen(self, notify: Callable[[str], None]) -> Callable[[], None] | None:
        """Call `notify(reason)` when the source changed (Plex alerts); returns a stopper."""
        ...


@runtime_checkable
class HasScope(Protocol):
    def scope(self) -> Any:
        """What a full scan lists, JSON-able (Plex: the configured sections): when it
        changes, the next sync is a full one, which marks removed what is left out."""
        ...


@runtime_checkable
class LocatesFiles(Protocol):
    """`path_setting` names the config key that maps its paths (said when a file is missing)."""

    path_setting: str

    def local_path(self, track: TrackRecord) -> Path | None:
        """Where this source's track is on this machine (Plex: through `plex.path_map`)."""
        ...


# --------------------------------------------------------------------------- extractors


@runtime_checkable
class ExtractorPlugin(Protocol):
    """Audio → one float32 vector per track, versioned; sent pickled to worker processes."""

    version: str

    def extract(self, path: Path) -> Any:
        """The feature vector (1-D, finite) of one file; runs in a worker process."""
        ...


@runtime_checkable
class LoadsModel(Protocol):
    def load(self) -> None:
        """Load what every file needs, in the stage's process, before the first file."""
        ...

    def unload(self) -> None:
        """Free it again when the stage is done (the idle daemon stays small)."""
        ...


@runtime_checkable
class ExtractsInBatches(Protocol):
    """An extractor whose model runs in the stage's process (``parallel = False``)."""

    parallel: bool
    batch_size: int

    def prepare(self, path: Path) -> Any:
        """Decode one file into the model's input; runs in a worker process."""
        ...

    def extract_batch(self, prepared: Sequence[Any]) -> Sequence[Any]:
        """Vectors for `batch_size` prepared files at a time, in the stage's process."""
        ...


@runtime_checkable
class WarmsUp(Protocol):
    """A plugin whose first run must prepare something slow once (compile kernels)."""

    def warm_up_needed(self) -> str | None:
        """What the first run would prepare, said in the progress; None when all is ready."""
        ...

    def warm_up(self, cancel: threading.Event | None = None) -> bool:
        """Prepare it in a process of its own (this one stays small); False when stopped."""
        ...


# --------------------------------------------------------------------------- classifiers


@runtime_checkable
class ClassifierPlugin(Protocol):
    """Tracks → top-k labels with confidences for one label set, versioned.

    A class attribute ``batch_size`` sets the tracks per call (default 500).
    """

    version: str

    def classify(
        self,
        tracks: Sequence[TrackRecord],
        *,
        store: Store | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterable[Prediction | Unclassified]:
        """One Prediction per track and label set, or Unclassified (no answer this time)."""
        ...


@runtime_checkable
class ClassifiesFiles(Protocol):
    """A classifier that listens to the files: the classify stage runs its `file_work` on
    the executor (`extract.executor`) and hands it the outcomes, instead of `classify`."""

    def file_work(self) -> FileWork:
        """The per-file (and per-batch) methods the executor runs for each track's file."""
        ...

    def classify_files(
        self,
        tracks: Sequence[TrackRecord],
        outcomes: Mapping[int, Any],
        *,
        store: Store | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterable[Prediction | Unclassified]:
        """Predictions from each track's outcome (a result, or the exception its file gave)."""
        ...


@runtime_checkable
class HintsFiles(Protocol):
    def file_hints(
        self, tracks: Sequence[TrackRecord], *, store: Store | None = None
    ) -> Mapping[int, Any]:
        """Per track, what its file's work should know (`FileWork.with_hint`): small, picklable."""
        ...


# --------------------------------------------------------------------------- executors


@runtime_checkable
class ExecutorPlugin(Protocol):
    """Runs file jobs somewhere else than the built-in local process pool (a Ray cluster),
    chosen by `extract.executor`. Only the stage's process writes the store: an executor
    yields outcomes, the stage commits them."""

    def run(
        self,
        job: FileJob,
        items: Iterable[FileItem],
        *,
        cancel: threading.Event | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """(track id, outcome or the exception of that file) per item, as each completes."""
        ...

    def release(self) -> None:
        """The stage is done: stop what `run` started (workers, a driver); keep nothing."""
        ...


# --------------------------------------------------------------------------- LLM providers


@runtime_checkable
class LLMPlugin(Protocol):
    """Chat messages in, validated JSON out, within the provider's rate limits.

    Raises LLMRequestTooLarge (split or skip), LLMBudgetExhausted (stop; run again at its
    `retry_at`), LLMAnswerError, LLMAuthFailed, LLMUnavailable, LLMRequestFailed, or
    Cancelled once `cancel` is set.
    """

    name: str

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any] | None,
        *,
        validate: Callable[[Any], Any] | None = None,
        max_tokens: int | None = None,
        cancel: threading.Event | None = None,
        model: str | None = None,
    ) -> ChatResult:
        """The answer parsed as JSON and passed through `validate` (InvalidAnswer: ask again)."""
        ...


class LLMProcessor(Protocol):
    """Changes what an LLM plugin sends and receives (group ``genred.llm_processors``,
    enabled per LLM plugin under `processors`); every hook is optional, and a nested
    ``Config`` model makes it take settings (``cls(settings)``)."""

    def system_extension(self) -> str:
        """Text appended to the system message."""
        ...

    def process_prompt(self, text: str) -> str:
        """A user message, rewritten before it is sent."""
        ...

    def process_response(self, text: str) -> str:
        """The reply's text, before it is parsed and validated."""
        ...


# --------------------------------------------------------------------------- writeback


@runtime_checkable
class WritebackPlugin(Protocol):
    """Decisions → a target (Plex, file tags); the stage plans, the plugin reads and writes.

    `name` keys its rows in the store; `source` is the source whose ids it understands.
    A class attribute ``batch_size`` caps the items per edit below `writeback.batch_size`
    (the `tags` writeback: 1, so a stop or a kill waits for one file, not a hundred).
    """

    name: str
    source: str

    def read(self, keys: Sequence[Key]) -> dict[Key, Values]:
        """The current full values of these (kind, id, field) keys; missing items are absent."""
        ...

    def apply(self, edit: Edit, *, lock: bool) -> None:
        """Send one edit (a GenredError: it did not land; EditPartlyFailed: some items did)."""
        ...


@runtime_checkable
class WritesFiles(Protocol):
    """A writeback that replaces local files (`tags`): the stage records each file with
    its new stat, so the folder watcher and the next sync do not take genred's own write
    for a change (no write → sync → write loop), and the core needs no plugin knowledge."""

    def take_written(self) -> list[WrittenFile]:
        """The files `apply` replaced since the last call, with their stat after the write."""
        ...


# --------------------------------------------------------------------------- playlists


@runtime_checkable
class PlaylistTarget(Protocol):
    """Playlists → a service (Spotify, Plex): finds library tracks there and keeps one
    remote playlist per genred playlist, edited in place (never deleted and recreated).

    `name` keys its rows in the store; `max_edit_items` caps the items of one edit (one
    request); `positional_inserts` says whether an insert may go anywhere (else: at the end).
    """

    name: str
    max_edit_items: int
    positional_inserts: bool

    def match(
        self, tracks: Sequence[TrackRecord], *, cancel: threading.Event | None = None
    ) -> Iterator[TrackMatch]:
        """Where each track is at the target; `item` None when it has no such track."""
        ...

    def read(
        self, remote_id: str, *, cancel: threading.Event | None = None
    ) -> RemotePlaylist | None:
        """The remote playlist's items in order; None when it is gone (deleted by hand)."""
        ...

    def create(
        self,
        title: str,
        description: str,
        items: Sequence[str],
        *,
        cancel: threading.Event | None = None,
    ) -> str:
        """A new playlist holding `items` (at most max_edit_items); its remote id."""
        ...

    def apply(
        self, remote_id: str, edit: PlaylistEdit, *, cancel: threading.Event | None = None
    ) -> None:
        """Send one edit (remove, insert or replace); raise a GenredError when it did not land."""
        ...

    def describe(
        self,
        remote_id: str,
        title: str,
        description: str,
        *,
        cancel: threading.Event | None = None,
    ) -> None:
        """Set the remote playlist's title and description."""
        ...

    def delete(self, remote_id: str, *, cancel: threading.Event | None = None) -> None:
        """Remove the remote playlist (Spotify: unfollow it, the API's only way)."""
        ...


@runtime_checkable
class LinksPlaylists(Protocol):
    def link(self, remote_id: str) -> str:
        """Where a person opens the remote playlist (a URL or URI), for `genred playlist show`."""
        ...


# --------------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class Kind:
    """One plugin kind: its config key under `plugins:`, entry-point group and protocol."""

    name: str
    group: str
    protocol: type
    stage: str | None  # the stage that runs it


KINDS: dict[str, Kind] = {
    "sources": Kind("sources", "genred.sources", SourcePlugin, "sync"),
    "extractors": Kind("extractors", "genred.extractors", ExtractorPlugin, "extract"),
    "classifiers": Kind("classifiers", "genred.classifiers", ClassifierPlugin, "classify"),
    "llm": Kind("llm", "genred.llm", LLMPlugin, None),
    "writeback": Kind("writeback", "genred.writeback", WritebackPlugin, "writeback"),
    "playlists": Kind("playlists", "genred.playlists", PlaylistTarget, "playlists"),
    "executors": Kind("executors", "genred.executors", ExecutorPlugin, None),
}
COMMANDS_GROUP = "genred.commands"
PROCESSORS_GROUP = "genred.llm_processors"

# Optional hooks per kind, checked by `genred.testing.check_plugin` when a class has them.
OPTIONAL_HOOKS: dict[str, tuple[type, ...]] = {
    "sources": (ScansPaths, RequestsScans, Listens, LocatesFiles, HasScope),
    "extractors": (LoadsModel, ExtractsInBatches, WarmsUp),
    "classifiers": (ClassifiesFiles, HintsFiles, LoadsModel, WarmsUp),
    "llm": (),
    "writeback": (WritesFiles,),
    "playlists": (LinksPlaylists,),
    "executors": (),
}
COMMON_HOOKS: tuple[type, ...] = (Closes, ChecksConfig, ProvidesRoutes)


class NoSettings(BaseModel):
    """Settings model of a plugin that takes none: any key is a typo."""

    model_config = {"extra": "forbid", "frozen": True}


def settings_model(cls: type) -> type[BaseModel]:
    """A plugin class's settings model (NoSettings when it has none)."""
    model = getattr(cls, "Config", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return NoSettings
