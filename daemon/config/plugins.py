"""`plugins:`: the enabled plugins per kind, each with its raw settings section."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .types import StrictModel

PLUGIN_KINDS = (
    "sources",
    "extractors",
    "classifiers",
    "llm",
    "writeback",
    "playlists",
    "executors",
)


class PluginEntry(BaseModel):
    """One enabled plugin: its name and its raw section (validated by the plugin's own model)."""

    model_config = ConfigDict(frozen=True)

    name: str
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)


def plugin_entries(value: Any) -> Any:
    """Accept ``[plex, folder]`` or ``{plex: {...}, folder: null}`` for one kind."""
    if value is None:
        return []
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ValueError("list plugin names, or map each name to its settings")
        return [{"name": v} for v in value]
    if isinstance(value, dict):
        entries = []
        for name, section in value.items():
            if section is not None and not isinstance(section, dict):
                raise ValueError(f"settings of plugin {name!r} must be a mapping")
            section = dict(section or {})
            enabled = section.pop("enabled", True)
            entries.append({"name": str(name), "enabled": enabled, "settings": section})
        return entries
    raise ValueError("expected a list of plugin names or a mapping of name → settings")


class PluginsConfig(StrictModel):
    """Enabled plugins per kind; each name may carry the plugin's own settings section."""

    sources: list[PluginEntry] = Field(default_factory=list)
    extractors: list[PluginEntry] = Field(default_factory=list)
    classifiers: list[PluginEntry] = Field(default_factory=lambda: [PluginEntry(name="taxonomy")])
    llm: list[PluginEntry] = Field(default_factory=list)
    writeback: list[PluginEntry] = Field(default_factory=list)
    playlists: list[PluginEntry] = Field(default_factory=list)
    executors: list[PluginEntry] = Field(
        default_factory=list, description="where file work runs besides this machine (ray)"
    )

    @field_validator(*PLUGIN_KINDS, mode="before")
    @classmethod
    def _entries(cls, value: Any) -> Any:
        return plugin_entries(value)

    def enabled(self, kind: str) -> list[PluginEntry]:
        entries: list[PluginEntry] = getattr(self, kind)
        return [e for e in entries if e.enabled]
