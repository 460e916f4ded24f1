"""The five plugin kinds and the entry-point loader.

A plugin is a class found through an entry point group (``genred.sources``, …). It carries
its own pydantic settings model as ``Config`` and is built as ``cls(settings, context)``.
Built-in plugins are registered in pyproject.toml exactly like third-party ones. A plugin
whose import fails (a missing extra, a broken package) is reported and skipped; the
others still load.
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from .config import PLUGIN_KINDS, Config, ConfigError, PluginEntry, validate_section

if TYPE_CHECKING:
    import threading

    from .llm import ChatResult
    from .records import ScanRequest, SourcePage
    from .store import Store

GROUPS = {kind: f"genred.{kind}" for kind in PLUGIN_KINDS}

# Top-level module of a dependency → the extra that installs it.
EXTRA_FOR_MODULE = {
    "plexapi": "plex",
    "spotipy": "spotify",
    "groq": "llm",
    "openai": "llm",
    "librosa": "audio",
    "soundfile": "audio",
    "soxr": "audio",
    "av": "audio",
    "scipy": "audio",
    "mutagen": "audio",
    "numpy": "audio",
    "torch": "ml",
    "transformers": "ml",
    "onnxruntime": "audio",  # the tagger's runtime; genred[ml] has it too
    "fastapi": "web",
    "uvicorn": "web",
}


class NoSettings(BaseModel):
    """Settings model of a plugin that takes none: any key is a typo."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class PluginContext:
    """What every plugin may use: the whole config and the store. Nothing global.

    `plugins`: everything `load_plugins` built with this context, for a plugin that uses
    another (an LLM classifier its LLM: `context.plugins.get("llm", name)`). Look it up
    when it is used, not in `__init__` (it is filled while the plugins are being built).
    """

    config: Config
    store: Store | None = None
    plugins: LoadedPlugins | None = None

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir


# --------------------------------------------------------------------------- protocols


class Plugin(Protocol):
    """Common shape: a settings model and a constructor taking (settings, context).

    Optional: `uses_config`, the top-level config sections the plugin reads (default
    DEFAULT_USES_CONFIG): a reload rebuilds the plugin only when its own settings or these
    sections changed. `close()`, when present, is called when an instance is dropped.
    """

    Config: ClassVar[type[BaseModel]]

    def __init__(self, settings: Any, context: PluginContext) -> None: ...


@runtime_checkable
class SourcePlugin(Plugin, Protocol):
    """Where tracks come from (Plex, a folder). It only reads; the sync stage
    (`genred.pipeline.sync`) writes the store; the contract types are in `genred.records`.

    Optional: a class attribute ``supports_paths: ClassVar[bool] = True`` says `scan` honours
    `ScanRequest.paths` (list only what is at or under those local paths); for a plugin
    without it, a sync limited to paths is an ordinary incremental sync.
    """

    def scan(self, request: ScanRequest) -> Iterator[SourcePage]:
        """List every track (request.since None) or those added/updated since then, in pages.

        A page names every source id it listed and carries full TrackRecords only for the
        new or changed ones (`request.known(ids)` gives what the store has); its `cursor`,
        passed back as `request.resume`, continues an interrupted full scan after that page.
        """
        ...

    def gone(self, source_ids: Sequence[str]) -> set[str]:
        """Those of `source_ids` the source no longer has (asked before marking removals)."""
        ...


@runtime_checkable
class ExtractorPlugin(Plugin, Protocol):
    """Audio → one float32 feature vector per track, versioned.

    The extract stage (`genred.pipeline.extract`) sends the instance, pickled, to worker
    processes and calls `extract` there. Optional: `dims`; `load()` / `unload()` (called
    in the stage's process before and after a run); `parallel = False` with
    `prepare(path)` (runs in the workers: decoding) and `extract_batch(prepared)` (runs
    in the stage's process, a batch at a time: a model loaded once, maybe on a GPU).
    """

    version: str

    def extract(self, path: Path) -> Any: ...


@runtime_checkable
class ClassifierPlugin(Plugin, Protocol):
    """Tracks → predictions (top-k labels with confidence) for one label set, versioned.

    Optional: keywords `store` and `cancel` on `classify` (the stage passes them when the
    signature has them); `batch_size`, the tracks per call (default 500); yielding
    `Unclassified` for a track it could not do this time (retried later, not marked done).
    """

    version: str

    def classify(self, tracks: Sequence[Any]) -> Iterator[Any]: ...


@dataclass(frozen=True)
class Unclassified:
    """Yielded by a classifier instead of a prediction: no answer for this track this time
    (a failed request, an answer that left it out). The stage records the failure and asks
    again after a backoff, instead of storing "nothing to say"."""

    track_id: int
    error: Exception


@runtime_checkable
class LLMPlugin(Plugin, Protocol):
    """Chat messages in, validated JSON out, with token usage, within the provider's limits.

    The answer is parsed as JSON (strict `schema` output where the model supports it) and
    passed to `validate`, which may raise `genred.llm.InvalidAnswer` to have it asked
    again. `model` asks another model of the same provider (a preset's). Raises
    LLMRequestTooLarge (split or skip), LLMBudgetExhausted (stop, run again at its
    `retry_at`), LLMAnswerError, LLMAuthFailed, LLMUnavailable, LLMRequestFailed, or
    Cancelled once `cancel` is set. `genred.llm.ChatCompletionsLLM` implements it.
    """

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any] | None,
        *,
        validate: Callable[[Any], Any] | None = None,
        max_tokens: int | None = None,
        cancel: threading.Event | None = None,
        model: str | None = None,
    ) -> ChatResult: ...


class LLMProcessor(Protocol):
    """Changes what an LLM plugin sends and receives (entry-point group
    `genred.llm_processors`, enabled per LLM plugin under `processors`). Every hook is
    optional; an optional nested pydantic `Config` makes it take settings (`cls(settings)`).
    """

    def system_extension(self) -> str:
        """Text appended to the system message."""
        ...

    def process_prompt(self, text: str) -> str:
        """A user message, rewritten before it is sent."""
        ...

    def process_response(self, text: str) -> str:
        """The reply's text, before it is parsed and validated."""
        ...


@runtime_checkable
class WritebackPlugin(Plugin, Protocol):
    """Decisions → a target (Plex, file tags); idempotent and revertible."""

    def write(self, items: Sequence[Any], *, dry_run: bool = False) -> Any: ...


PROTOCOLS: dict[str, type] = {
    "sources": SourcePlugin,
    "extractors": ExtractorPlugin,
    "classifiers": ClassifierPlugin,
    "llm": LLMPlugin,
    "writeback": WritebackPlugin,
}


# --------------------------------------------------------------------------- discovery


@dataclass
class PluginInfo:
    """One discovered plugin and whether it can be imported."""

    kind: str
    name: str
    target: str
    distribution: str | None
    cls: type | None = None
    error: str | None = None

    @property
    def available(self) -> bool:
        return self.cls is not None


class PluginUnavailable(Exception):
    """An enabled plugin cannot be used; the message says what to install or fix."""


def missing_dependency_message(kind: str, name: str, target: str, exc: ImportError) -> str:
    missing = getattr(exc, "name", None) or ""
    module = missing.split(".")[0]
    extra = EXTRA_FOR_MODULE.get(module)
    what = f"plugin {name!r} ({kind})"
    own = target.split(":")[0]
    if missing and (own == missing or own.startswith(missing + ".")):
        return f"{what} is registered as {target} but that module is missing (reinstall it)"
    if extra:
        return f"{what} needs {module}: install it with pip install 'genred[{extra}]'"
    if module:
        return f"{what} cannot import {module}: install the package that provides it"
    return f"{what} failed to import: {exc}"


def discover(kinds: Iterable[str] = PLUGIN_KINDS) -> list[PluginInfo]:
    """Every plugin registered under genred's entry-point groups, imported or with its error."""
    found: list[PluginInfo] = []
    for kind in kinds:
        seen: set[str] = set()
        for ep in metadata.entry_points(group=GROUPS[kind]):
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            dist = ep.dist.name if ep.dist else None
            info = PluginInfo(kind, ep.name, ep.value, dist)
            try:
                info.cls = ep.load()
            except ImportError as exc:
                info.error = missing_dependency_message(kind, ep.name, ep.value, exc)
            except Exception as exc:  # a broken third-party plugin must not stop the rest
                info.error = (
                    f"plugin {ep.name!r} ({kind}) failed to load: {type(exc).__name__}: {exc}"
                )
            found.append(info)
    return sorted(found, key=lambda i: (PLUGIN_KINDS.index(i.kind), i.name))


def dependency_warnings(config: Config, infos: Iterable[PluginInfo]) -> list[str]:
    """Enabled plugins that name an LLM plugin (setting `llm`) which is not enabled."""
    enabled_llms = {e.name for e in config.plugins.enabled("llm")}
    index = {(i.kind, i.name): i for i in infos}
    out = []
    for kind in PLUGIN_KINDS:
        for entry in config.plugins.enabled(kind):
            info = index.get((kind, entry.name))
            if info is None or info.cls is None:
                continue
            model = settings_model(info.cls)
            if "llm" not in model.model_fields:
                continue
            try:
                wanted = str(model.model_validate(entry.settings).llm)  # type: ignore[attr-defined]
            except ValueError:
                continue  # reported by validate_plugin_settings
            if wanted not in enabled_llms:
                have = ", ".join(sorted(enabled_llms)) or "none"
                out.append(
                    f"{kind} plugin {entry.name!r} asks the llm plugin {wanted!r}, which is not "
                    f"enabled (enabled: {have}): add it under plugins.llm, or set "
                    f"plugins.{kind}.{entry.name}.llm"
                )
    return out


def settings_model(cls: type) -> type[BaseModel]:
    model = getattr(cls, "Config", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return NoSettings


@dataclass
class LoadedPlugins:
    """The enabled plugins, built, per kind; plus the ones that could not be."""

    by_kind: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {k: {} for k in PLUGIN_KINDS}
    )
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)
    fingerprints: dict[tuple[str, str], Any] = field(default_factory=dict)

    def of(self, kind: str) -> dict[str, Any]:
        return self.by_kind[kind]

    def get(self, kind: str, name: str) -> Any:
        try:
            return self.by_kind[kind][name]
        except KeyError:
            reason = self.unavailable.get((kind, name), "it is not enabled in the config")
            raise PluginUnavailable(
                f"plugin {name!r} ({kind}) is not available: {reason}"
            ) from None


def validate_plugin_settings(
    config: Config, infos: Sequence[PluginInfo]
) -> dict[tuple[str, str], Any]:
    """Validate the section of every enabled, importable plugin. Raises ConfigError with lines."""
    index = {(i.kind, i.name): i for i in infos}
    settings: dict[tuple[str, str], Any] = {}
    issues = []
    for kind in PLUGIN_KINDS:
        for position, entry in enumerate(config.plugins.enabled(kind)):
            info = index.get((kind, entry.name))
            path = _entry_path(config, kind, entry, position)
            if info is None:
                known = ", ".join(sorted(n for k, n in index if k == kind)) or "none installed"
                issues.append(config.source.issue(path, f"unknown {kind} plugin (known: {known})"))
                continue
            if info.cls is None:
                continue  # reported as unavailable, not as a config error
            try:
                settings[(kind, entry.name)] = validate_section(
                    settings_model(info.cls), entry.settings, config.source, path
                )
            except ConfigError as exc:
                issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues)
    return settings


def _entry_path(
    config: Config, kind: str, entry: PluginEntry, position: int
) -> tuple[str | int, ...]:
    mapping_form = ("plugins", kind, entry.name)
    if config.source.line_of(mapping_form) and mapping_form in config.source.lines:
        return mapping_form
    return ("plugins", kind, position)


def load_plugins(
    context: PluginContext,
    infos: Sequence[PluginInfo] | None = None,
    previous: LoadedPlugins | None = None,
) -> LoadedPlugins:
    """Build every enabled plugin with its validated settings.

    With `previous` (a reload), a plugin whose settings and used config sections are
    unchanged is kept as it is; only the changed ones are built again.
    """
    infos = discover() if infos is None else infos
    settings = validate_plugin_settings(context.config, infos)
    index = {(i.kind, i.name): i for i in infos}
    loaded = LoadedPlugins()
    context.plugins = loaded
    for kind in PLUGIN_KINDS:
        for entry in context.config.plugins.enabled(kind):
            info = index[(kind, entry.name)]
            if info.cls is None:
                loaded.unavailable[(kind, entry.name)] = info.error or "not importable"
                continue
            key = (kind, entry.name)
            valid = settings[key]
            fingerprint = plugin_fingerprint(info.cls, valid, context.config)
            if previous is not None and previous.fingerprints.get(key) == fingerprint:
                loaded.by_kind[kind][entry.name] = previous.by_kind[kind][entry.name]
                loaded.fingerprints[key] = fingerprint
                continue
            try:
                loaded.by_kind[kind][entry.name] = info.cls(valid, context)
                loaded.fingerprints[key] = fingerprint
            except Exception as exc:
                loaded.unavailable[key] = f"{type(exc).__name__}: {exc}"
    return loaded


# Top-level config sections a plugin depends on unless it names its own in `uses_config`.
DEFAULT_USES_CONFIG = ("data_dir", "plex", "folders", "taxonomy")


def plugin_fingerprint(cls: type, settings: BaseModel, config: Config) -> tuple[Any, ...]:
    """What a plugin instance was built from: its settings and the config sections it uses.

    Compared with ==, which for pydantic models includes secret values (a new token
    rebuilds the plugin) without ever turning them into text.
    """
    sections = getattr(cls, "uses_config", DEFAULT_USES_CONFIG)
    return (cls, settings, tuple((name, getattr(config, name, None)) for name in sections))


def retired(previous: LoadedPlugins, current: LoadedPlugins) -> list[Any]:
    """Instances of `previous` that `current` no longer uses (to be closed)."""
    kept = {id(p) for kind in PLUGIN_KINDS for p in current.by_kind[kind].values()}
    return [
        p for kind in PLUGIN_KINDS for p in previous.by_kind[kind].values() if id(p) not in kept
    ]
