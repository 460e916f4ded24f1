"""The YAML config file: where it is, what it may contain, and errors that name key and line.

Loading is three steps (`loading`): YAML → plain data with a map of key paths to line
numbers (`source`), `${ENV}` interpolation, then pydantic validation of the sections
(`services`, `schedule`, `pipeline`, `plugins`, gathered in `model.Config`). Every problem
becomes a `ConfigIssue` rendered as ``genred.yaml:14 plex.url: not a valid URL``.
"""

from .issues import ConfigError, ConfigIssue, ConfigNotFound, KeyPath, dotted
from .loading import (
    ENV_VAR,
    SEARCH_PATHS,
    is_empty_yaml,
    load_config,
    locate,
    parse_config,
    plugin_key_path,
    validate_section,
    validation_issues,
    world_readable_secret_warning,
)
from .model import Config
from .pipeline import (
    AlbumSmoothing,
    CascadeTier,
    DecideConfig,
    ExtractConfig,
    LabelSource,
    TaxonomyConfig,
    TrainConfig,
    TrainLabelsConfig,
    WritebackConfig,
)
from .playlists import MAX_PROMPT_CHARS, PlaylistsConfig, SavedPlaylist, SemanticConfig
from .plugins import PLUGIN_KINDS, PluginEntry, PluginsConfig, plugin_entries
from .schedule import JobSchedule, ScheduleConfig
from .services import FolderConfig, LoggingConfig, PlexConfig, WatchConfig, WebConfig
from .source import SourceMap, interpolate, parse_yaml
from .types import Duration, RetrySettings, StrictModel, is_secret_key, parse_duration

__all__ = [
    "ENV_VAR",
    "MAX_PROMPT_CHARS",
    "PLUGIN_KINDS",
    "SEARCH_PATHS",
    "AlbumSmoothing",
    "CascadeTier",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "ConfigNotFound",
    "DecideConfig",
    "Duration",
    "ExtractConfig",
    "FolderConfig",
    "JobSchedule",
    "KeyPath",
    "LabelSource",
    "LoggingConfig",
    "PlaylistsConfig",
    "PlexConfig",
    "PluginEntry",
    "PluginsConfig",
    "RetrySettings",
    "SavedPlaylist",
    "ScheduleConfig",
    "SemanticConfig",
    "SourceMap",
    "StrictModel",
    "TaxonomyConfig",
    "TrainConfig",
    "TrainLabelsConfig",
    "WatchConfig",
    "WebConfig",
    "WritebackConfig",
    "dotted",
    "interpolate",
    "is_empty_yaml",
    "is_secret_key",
    "load_config",
    "locate",
    "parse_config",
    "parse_duration",
    "parse_yaml",
    "plugin_entries",
    "plugin_key_path",
    "validate_section",
    "validation_issues",
    "world_readable_secret_warning",
]
