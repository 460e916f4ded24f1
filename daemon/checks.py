"""What `genred config check` checks, and what a reload checks before it applies a file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .config import PLUGIN_KINDS, Config, ConfigError
from .loader import PluginInfo, dependency_warnings, discover, validate_plugin_settings
from .taxonomy import TaxonomyError, taxonomy_from_config


def check_config(config: Config, infos: Sequence[PluginInfo] | None = None) -> None:
    """Every enabled plugin's section and the taxonomy additions; ConfigError with lines."""
    validate_plugin_settings(config, discover() if infos is None else infos)
    check_taxonomy(config)


def check_taxonomy(config: Config) -> None:
    """The taxonomy additions must load: an alias to an unknown genre is a config error."""
    try:
        taxonomy_from_config(config.taxonomy)
    except TaxonomyError as exc:
        # Messages read "taxonomy.aliases: 8-bit: target 'X' is not a known genre".
        parts = str(exc).removeprefix("taxonomy.").split(": ")
        path: tuple[str | int, ...] = ("taxonomy",)
        while len(parts) > 1 and (*path, parts[0]) in config.source.lines:
            path = (*path, parts.pop(0))
        raise ConfigError([config.source.issue(path, ": ".join(parts))]) from None


def config_warnings(config: Config, infos: Sequence[PluginInfo], plugins: Any) -> list[str]:
    """What is usable but probably not meant: unimportable plugins, an LLM classifier whose
    LLM is not enabled, and each built plugin's own `check()` (a preset skipped…)."""
    from .hookspecs import ChecksConfig

    index = {(i.kind, i.name): i for i in infos}
    out = []
    for kind in PLUGIN_KINDS:
        for entry in config.plugins.enabled(kind):
            info = index.get((kind, entry.name))
            if info is not None and info.error:
                out.append(info.error)
    out += dependency_warnings(config, infos)
    out += playlist_warnings(config)
    for _kind, _name, instance in plugins.instances():
        if isinstance(instance, ChecksConfig):
            out += instance.check()
    return out


def playlist_warnings(config: Config) -> list[str]:
    """`playlists:` naming targets or an LLM that are not enabled."""
    targets = {e.name for e in config.plugins.enabled("playlists")}
    have = ", ".join(sorted(targets)) or "none"
    out = []
    named = [("playlists.targets", t) for t in config.playlists.targets or ()]
    named += [
        (f"playlists.saved.{name}.targets", t)
        for name, saved in config.playlists.saved.items()
        for t in saved.targets
    ]
    for where, target in named:
        if target not in targets:
            out.append(
                f"{where}: the playlist target {target!r} is not enabled (plugins.playlists: {have})"
            )
    llms = {e.name for e in config.plugins.enabled("llm")}
    if config.playlists.llm and config.playlists.llm not in llms:
        out.append(
            f"playlists.llm: the llm plugin {config.playlists.llm!r} is not enabled "
            f"(plugins.llm: {', '.join(sorted(llms)) or 'none'}); the rules parser reads prompts"
        )
    return out
