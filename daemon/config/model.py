"""The whole config file as one model: every section, and the secrets it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, model_validator

from .pipeline import (
    LOCAL_EXECUTOR,
    DecideConfig,
    ExtractConfig,
    TaxonomyConfig,
    TrainConfig,
    WritebackConfig,
)
from .playlists import PlaylistsConfig
from .plugins import PluginsConfig
from .schedule import ScheduleConfig
from .services import (
    FolderConfig,
    LoggingConfig,
    PlexConfig,
    WatchConfig,
    WebConfig,
    default_data_dir,
)
from .source import SourceMap
from .types import StrictModel, is_secret_key


class Config(StrictModel):
    data_dir: Path = Field(default_factory=default_data_dir)
    plex: PlexConfig | None = None
    folders: list[FolderConfig] = Field(default_factory=list)
    watch: WatchConfig = WatchConfig()
    plugins: PluginsConfig = PluginsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    extract: ExtractConfig = ExtractConfig()
    decide: DecideConfig = DecideConfig()
    train: TrainConfig = TrainConfig()
    writeback: WritebackConfig = WritebackConfig()
    playlists: PlaylistsConfig = PlaylistsConfig()
    taxonomy: TaxonomyConfig = TaxonomyConfig()
    web: WebConfig = WebConfig()
    logging: LoggingConfig = LoggingConfig()
    presets_dir: Path | None = Field(
        None, description="prompt presets (*.yaml); default: prompts/ beside this file"
    )

    _source: SourceMap | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _default_plugins(cls, data: Any) -> Any:
        """With no plugin list given, a configured Plex server is the source and the target."""
        if not isinstance(data, dict) or not data.get("plex"):
            return data
        plugins = data.get("plugins")
        plugins = dict(plugins) if isinstance(plugins, dict) else {}
        plugins.setdefault("sources", ["plex"])
        plugins.setdefault("writeback", ["plex"])
        plugins.setdefault("playlists", ["plex"])
        return {**data, "plugins": plugins}

    @model_validator(mode="before")
    @classmethod
    def _auto_train_schedule(cls, data: Any) -> Any:
        """`schedule.train` says when; `train.auto.enabled` says whether."""
        if not isinstance(data, dict):
            return data
        train = data.get("train")
        auto = train.get("auto") if isinstance(train, dict) else None
        enabled = auto.get("enabled", False) if isinstance(auto, dict) else auto
        enabled = False if enabled is None else enabled
        schedule = data.get("schedule")
        if not isinstance(enabled, bool) or not isinstance(schedule, dict | None):
            return data  # left to the validation of those sections
        schedule = dict(schedule or {})
        when = schedule.get("train")
        when = dict(when) if isinstance(when, dict) else ({} if when is None else when)
        if isinstance(when, dict):
            if not (when.get("every") or when.get("cron")):
                when["every"] = "1d"
            when["enabled"] = enabled
        schedule["train"] = when
        return {**data, "schedule": schedule}

    @model_validator(mode="before")
    @classmethod
    def _chosen_executor(cls, data: Any) -> Any:
        """`extract.executor: ray` enables the executor plugin `ray` with its defaults
        unless `plugins.executors` lists it (with settings, or disabled)."""
        if not isinstance(data, dict) or not isinstance(data.get("extract"), dict):
            return data
        name = data["extract"].get("executor")
        if not isinstance(name, str) or name in ("", LOCAL_EXECUTOR):
            return data
        plugins = data.get("plugins")
        plugins = dict(plugins) if isinstance(plugins, dict) else {}
        listed = plugins.get("executors")
        if listed is None:
            plugins["executors"] = [name]
        elif isinstance(listed, list) and name not in listed:
            plugins["executors"] = [*listed, name]
        elif isinstance(listed, dict) and name not in listed:
            plugins["executors"] = {**listed, name: None}
        return {**data, "plugins": plugins}

    @property
    def source(self) -> SourceMap:
        """Where each key came from (file and lines), for errors raised after loading."""
        return self._source or SourceMap("<defaults>", {})

    @property
    def db_path(self) -> Path:
        return self.data_dir / "genred.db"

    def secrets(self) -> list[str]:
        """Every secret value in this config, for log redaction."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, SecretStr):
                found.append(node.get_secret_value())
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(getattr(node, name))
            elif isinstance(node, dict):
                for key, val in node.items():
                    if isinstance(val, str) and is_secret_key(str(key)):
                        found.append(val)
                    else:
                        walk(val)
            elif isinstance(node, list | tuple):
                for val in node:
                    walk(val)

        walk(self)
        return [s for s in found if s]
