"""Finding and building plugins: one loader for every entry-point group genred reads.

A plugin whose import fails (a missing extra, a broken package) is reported and skipped;
the others still load. The extra a plugin needs is named by its own registration, as
entry points allow: ``plex = "genred_plugins.plex.source:PlexSource [plex]"``.
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from .config import PLUGIN_KINDS, Config, ConfigError, PluginEntry, validate_section
from .errors import PluginUnavailable, ProcessorUnavailable
from .hookspecs import (
    COMMANDS_GROUP,
    DEFAULT_USES_CONFIG,
    KINDS,
    PROCESSORS_GROUP,
    PluginContext,
    settings_model,
)

GROUPS = {kind: KINDS[kind].group for kind in PLUGIN_KINDS}


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


def missing_dependency_message(label: str, ep: metadata.EntryPoint, exc: ImportError) -> str:
    """What to install when `ep` failed to import: the extra its registration names."""
    missing = getattr(exc, "name", None) or ""
    module = missing.split(".")[0]
    own = ep.value.split(":")[0]
    if missing and (own == missing or own.startswith(missing + ".")):
        return f"{label} is registered as {ep.value} but that module is missing (reinstall it)"
    dist = ep.dist.name if ep.dist else "genred"
    if ep.extras:
        extras = ",".join(ep.extras)
        return f"{label} needs {module or exc}: install it with pip install '{dist}[{extras}]'"
    if module:
        return f"{label} cannot import {module}: install the package that provides it"
    return f"{label} failed to import: {exc}"


def entry_points(group: str) -> Iterator[metadata.EntryPoint]:
    """The entry points of `group`, each name once (a distribution seen twice on sys.path)."""
    seen: set[str] = set()
    for ep in metadata.entry_points(group=group):
        if ep.name not in seen:
            seen.add(ep.name)
            yield ep


def load_entry_point(ep: metadata.EntryPoint, label: str) -> tuple[Any, str | None]:
    """(the loaded object, None), or (None, why it cannot be used)."""
    try:
        return ep.load(), None
    except ImportError as exc:
        return None, missing_dependency_message(label, ep, exc)
    except Exception as exc:  # a broken third-party plugin must not stop the rest
        return None, f"{label} failed to load: {type(exc).__name__}: {exc}"


def discover(kinds: Iterable[str] = PLUGIN_KINDS) -> list[PluginInfo]:
    """Every plugin registered under genred's entry-point groups, imported or with its error."""
    found: list[PluginInfo] = []
    for kind in kinds:
        for ep in entry_points(GROUPS[kind]):
            info = PluginInfo(kind, ep.name, ep.value, ep.dist.name if ep.dist else None)
            info.cls, info.error = load_entry_point(ep, f"plugin {ep.name!r} ({kind})")
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
                wanted = str(model.model_validate(entry.settings).model_dump()["llm"])
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

    def instances(self) -> Iterator[tuple[str, str, Any]]:
        """(kind, name, instance) of every built plugin."""
        for kind in PLUGIN_KINDS:
            for name, instance in self.by_kind[kind].items():
                yield kind, name, instance

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


# --------------------------------------------------------------------------- other groups


@dataclass(frozen=True)
class FoundCommand:
    """A CLI command registered under ``genred.commands``, or why it cannot be loaded."""

    name: str
    command: Any  # a click.Command, when it loaded
    error: str | None


def discover_commands() -> list[FoundCommand]:
    """The commands plugins add to the ``genred`` CLI (`genred plex …`, `genred presets …`)."""
    found = []
    for ep in entry_points(COMMANDS_GROUP):
        command, error = load_entry_point(ep, f"command {ep.name!r}")
        found.append(FoundCommand(ep.name, command, error))
    return found


def load_processors(entries: Sequence[PluginEntry], owner: str) -> list[Any]:
    """Build the enabled LLM processors named in `entries` (for the LLM plugin `owner`).

    Raises ProcessorUnavailable naming the config key when one is unknown, cannot be
    imported or gets settings it does not take.
    """
    if not entries:
        return []
    found = {ep.name: ep for ep in entry_points(PROCESSORS_GROUP)}
    built = []
    for entry in entries:
        if not entry.enabled:
            continue
        where = f"plugins.llm.{owner}.processors.{entry.name}"
        ep = found.get(entry.name)
        if ep is None:
            names = ", ".join(sorted(found)) or "none installed"
            raise ProcessorUnavailable(f"{where}: no LLM processor {entry.name!r} ({names})")
        cls, error = load_entry_point(ep, f"{where}: {ep.value}")
        if cls is None:
            raise ProcessorUnavailable(str(error))
        model = getattr(cls, "Config", None)
        try:
            settings = model.model_validate(entry.settings) if model else None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(section)'}: {e['msg']}" for e in exc.errors()
            )
            raise ProcessorUnavailable(f"{where}: {problems}") from None
        if settings is None and entry.settings:
            raise ProcessorUnavailable(f"{where}: this processor takes no settings")
        built.append(cls(settings) if model else cls())
    return built
