"""The YAML config file: where it is, what it may contain, and errors that name key and line.

Loading is three steps: YAML → plain data with a map of key paths to line numbers,
`${ENV}` interpolation, then pydantic validation. Every problem becomes a `ConfigIssue`
rendered as ``genred.yaml:14 plex.url: not a valid URL``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

KeyPath = tuple[str | int, ...]

SEARCH_PATHS = (Path("/etc/genred/genred.yaml"), Path("config/genred.yaml"))
ENV_VAR = "GENRED_CONFIG"
PLUGIN_KINDS = ("sources", "extractors", "classifiers", "llm", "writeback")


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file, located by key path and line."""

    file: str
    line: int | None
    path: KeyPath
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = dotted(self.path)
        return f"{where} {key}: {self.message}" if key else f"{where}: {self.message}"


class ConfigError(Exception):
    """The config file could not be used; `issues` says every reason."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --------------------------------------------------------------------------- models


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def parse_duration(value: Any) -> timedelta:
    """`90`, `"90s"`, `"15m"`, `"1h30m"`, `"2d"` → timedelta (plain numbers are seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 15m, 1h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 15m, 1h, 1d)")
        d, h, m, s = match.groups()
        seconds = int(d or 0) * 86400 + int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


class RetrySettings(StrictModel):
    """How hard a plugin tries a remote service (Plex, an LLM) before giving up on a request.

    `attempts` counts requests, the first included; waits grow from `backoff_initial` to
    `backoff_max` seconds, with jitter.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(5, ge=1, le=20, description="requests at most, the first included")
    backoff_initial: float = Field(1.0, ge=0)
    backoff_max: float = Field(30.0, ge=0)


class PlexConfig(StrictModel):
    url: AnyHttpUrl = Field(description="Base URL of the Plex Media Server")
    token: SecretStr = Field(
        description="X-Plex-Token; use ${PLEX_TOKEN} to keep it out of the file"
    )
    sections: list[str | int] = Field(
        default_factory=list,
        description="Music sections by title or id; empty = every music section",
    )
    path_map: dict[str, str] = Field(
        default_factory=dict, description="Plex path prefix → local path prefix"
    )
    timeout: float = Field(30.0, gt=0)
    verify_ssl: bool = True


class FolderConfig(StrictModel):
    path: Path
    recursive: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value


class JobSchedule(StrictModel):
    """When a job runs: `every` (interval) or `cron` (crontab line), not both."""

    every: timedelta | None = None
    cron: str | None = None
    enabled: bool = True
    misfire_grace: timedelta = timedelta(minutes=10)

    @field_validator("every", "misfire_grace", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            from .scheduler import crontab_trigger

            try:
                crontab_trigger(value)
            except ValueError as exc:
                raise ValueError(f"not a valid crontab line: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> JobSchedule:
        if self.enabled and (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' or 'cron'")
        return self


class ScheduleConfig(StrictModel):
    sync: JobSchedule = JobSchedule(every=timedelta(hours=1))
    extract: JobSchedule = JobSchedule(every=timedelta(hours=1))
    classify: JobSchedule = JobSchedule(every=timedelta(hours=1))
    decide: JobSchedule = JobSchedule(every=timedelta(hours=1))
    writeback: JobSchedule = JobSchedule(every=timedelta(hours=1))
    first_sync_after: timedelta = Field(
        timedelta(seconds=5), description="`genred run` syncs this long after it starts"
    )

    @field_validator("first_sync_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


class WritebackConfig(StrictModel):
    mode: Literal["append", "replace", "fill"] = "append"
    levels: list[Literal["track", "album", "artist"]] = Field(default_factory=lambda: ["track"])
    dry_run: bool = False
    lock: bool = True
    batch_size: int = Field(100, ge=1, le=1000)
    labels_as: Literal["label", "mood"] = Field(
        "label", description="where decided custom labels (presets of kind label) go in Plex"
    )


class ExtractConfig(StrictModel):
    """The extract stage: worker processes, a per-file time limit, commit size."""

    workers: int | None = Field(
        None, ge=1, le=256, description="worker processes decoding audio; null = CPU cores"
    )
    timeout: timedelta = Field(
        timedelta(minutes=5), description="one file taking longer is stopped and recorded"
    )
    batch: int = Field(50, ge=1, le=10000, description="vectors per committed batch")

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


class CascadeTier(StrictModel):
    """One step of the decide cascade: these classifiers' votes, and when to stop here."""

    classifiers: list[str] = Field(min_length=1)
    accept: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="decided at this step when the best genre scores at least this; "
        "null: the last step (everything that voted)",
    )


class AlbumSmoothing(StrictModel):
    """A track whose genre differs from its album's needs more confidence."""

    enabled: bool = True
    margin: float = Field(0.2, ge=0.0, le=1.0, description="extra confidence to differ")
    min_tracks: int = Field(3, ge=2, description="albums with fewer decided tracks: no smoothing")
    min_share: float = Field(
        0.6, gt=0.5, le=1.0, description="the album's genre must be this share of its tracks'"
    )


class DecideConfig(StrictModel):
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    mood_min_confidence: float = Field(
        0.3, ge=0.0, le=1.0, description="moods are kept from this score (taggers are shy)"
    )
    max_genres: int = Field(3, ge=1, le=20)
    max_moods: int = Field(3, ge=0, le=20)
    weights: dict[str, float] = Field(
        default_factory=dict, description="classifier name → weight in the vote (default 1.0)"
    )
    cascade: list[CascadeTier] = Field(
        default_factory=list,
        description="cheap and confident first; later steps (audio) only where earlier ones "
        "stay below `accept`; empty: one weighted vote of every classifier",
    )
    album_smoothing: AlbumSmoothing = AlbumSmoothing()

    @model_validator(mode="after")
    def _cascade_order(self) -> DecideConfig:
        named = [c for tier in self.cascade for c in tier.classifiers]
        twice = sorted({c for c in named if named.count(c) > 1})
        if twice:
            raise ValueError(f"cascade: {', '.join(twice)} named in more than one step")
        if any(tier.accept is None for tier in self.cascade[:-1]):
            raise ValueError("cascade: only the last step may leave `accept` unset")
        return self


class LabelSource(StrictModel):
    """One source of training labels: its weight in the loss, the confidence it needs."""

    enabled: bool = True
    weight: float = Field(1.0, gt=0, le=10, description="sample weight of its labels")
    min_confidence: float = Field(0.0, ge=0, le=1, description="labels below it are not used")


class TrainLabelsConfig(StrictModel):
    """Where `genred train` takes labels, in order of trust (the first that has one wins)."""

    override: LabelSource = LabelSource()
    library: LabelSource = LabelSource()
    llm: LabelSource = LabelSource(weight=0.5, min_confidence=0.8)
    llm_classifier: str = Field("llm-metadata", description="whose predictions `llm` reads")


class TrainConfig(StrictModel):
    """`genred train`: the `audio-model` classifier fitted on stored features."""

    features: list[str] = Field(
        default_factory=lambda: ["handcrafted"], min_length=1, description="extractor names"
    )
    labels: TrainLabelsConfig = TrainLabelsConfig()
    min_examples: int = Field(20, ge=2, description="a label needs this many tracks to be a class")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="held out for the evaluation")
    split_by: Literal["album", "artist"] = "album"
    seed: int = 0
    epochs: int = Field(200, ge=1, le=100000)
    patience: int = Field(20, ge=1, description="stop after this many epochs without progress")
    hidden: list[int] = Field(default_factory=lambda: [256], description="hidden layer widths")
    dropout: float = Field(0.3, ge=0, lt=1)
    learning_rate: float = Field(1e-3, gt=0, le=1)
    weight_decay: float = Field(1e-2, ge=0)
    batch_size: int = Field(64, ge=1, le=65536)
    keep_versions: int = Field(3, ge=1, description="trained models kept in the data dir")

    @field_validator("hidden")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if any(w < 1 or w > 65536 for w in value):
            raise ValueError("hidden layer widths must be between 1 and 65536")
        return value


class TaxonomyConfig(StrictModel):
    path: Path | None = Field(None, description="Use this genres.yaml instead of the built-in one")
    genres: dict[str, str | None] = Field(
        default_factory=dict, description="Extra canonical genres: name → parent (null = top)"
    )
    aliases: dict[str, str] = Field(default_factory=dict, description="raw text → canonical name")
    ignore: list[str] = Field(default_factory=list, description="raw texts that are no genre")
    whitelist: dict[str, bool] = Field(
        default_factory=dict, description="genre → written (false: folded into its parent)"
    )


class WebConfig(StrictModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8785, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    webhook_delay: timedelta = Field(
        timedelta(seconds=10), description="wait this long after a webhook, gathering others"
    )

    @field_validator("webhook_delay", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class WatchConfig(StrictModel):
    """The folder watcher (inotify through watchdog) and the config-file watch."""

    enabled: bool = True
    settle: timedelta = Field(
        timedelta(seconds=30),
        description="a file counts once its size and mtime stayed unchanged this long",
    )
    polling: bool = Field(
        False, description="poll instead of inotify (network mounts changed by other machines)"
    )
    poll_interval: timedelta = timedelta(seconds=60)
    config_file: bool = Field(True, description="reload when the config file is edited")

    @field_validator("settle", "poll_interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


class LoggingConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


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

    @field_validator(*PLUGIN_KINDS, mode="before")
    @classmethod
    def _entries(cls, value: Any) -> Any:
        return plugin_entries(value)

    def enabled(self, kind: str) -> list[PluginEntry]:
        return [e for e in getattr(self, kind) if e.enabled]


def _default_data_dir() -> Path:
    state = os.environ.get("STATE_DIRECTORY")  # set by systemd's StateDirectory=
    if state:
        return Path(state.split(":")[0])
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "genred"


class Config(StrictModel):
    data_dir: Path = Field(default_factory=_default_data_dir)
    plex: PlexConfig | None = None
    folders: list[FolderConfig] = Field(default_factory=list)
    watch: WatchConfig = WatchConfig()
    plugins: PluginsConfig = PluginsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    extract: ExtractConfig = ExtractConfig()
    decide: DecideConfig = DecideConfig()
    train: TrainConfig = TrainConfig()
    writeback: WritebackConfig = WritebackConfig()
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


SECRET_KEY = re.compile(r"(token|secret|password|passwd|api[_-]?key|authorization)", re.I)


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


# --------------------------------------------------------------------------- YAML with lines


@dataclass(frozen=True)
class SourceMap:
    """Line numbers (1-based) of every key path in one file."""

    file: str
    lines: Mapping[KeyPath, int]

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of `path`, or of its nearest ancestor that appears in the file."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def issue(self, path: Sequence[str | int], message: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line_of(path), tuple(path), message)


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _construct(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        yaml.SafeLoader("").flatten_mapping(node)  # resolve `<<: *anchor` merges
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            key_path = (*path, str(key))
            lines[key_path] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, key_path, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML, keeping the line of every key. Syntax errors become ConfigErrors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigIssue(file, line, (), f"invalid YAML: {problem}")]) from None
    lines: dict[KeyPath, int] = {}
    data = {} if node is None else _construct(node, (), lines)
    return data, SourceMap(file, lines)


# --------------------------------------------------------------------------- interpolation

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(data: Any, env: Mapping[str, str], source: SourceMap) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; unset without default = error."""
    issues: list[ConfigIssue] = []

    def sub(value: str, path: KeyPath) -> str:
        def one(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            issues.append(source.issue(path, f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(one, value)

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, str):
            return sub(node, path)
        if isinstance(node, dict):
            return {k: walk(v, (*path, str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        return node

    result = walk(data, ())
    if issues:
        raise ConfigError(issues)
    return result


# --------------------------------------------------------------------------- loading


def _friendly(error: Mapping[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see config/genred.example.yaml)"
    if kind == "missing":
        return "required key is missing"
    if kind.startswith("url_"):
        return f"not a valid URL ({msg.removeprefix('Input should be a valid URL, ')})"
    return msg.removeprefix("Value error, ")


def validation_issues(
    exc: ValidationError, source: SourceMap, prefix: KeyPath = ()
) -> list[ConfigIssue]:
    """Turn pydantic errors into ConfigIssues located in the file."""
    issues = []
    for error in exc.errors():
        loc = _file_path(prefix + tuple(error["loc"]))
        issues.append(source.issue(loc, _friendly(error)))
    return issues


def _file_path(loc: KeyPath) -> KeyPath:
    """Map a pydantic location back to the key path as written in the file.

    Plugin lists are normalized to entries; ``plugins.sources[0].settings.x`` is
    written in the file as ``plugins.sources.plex.x`` (or as a list item).
    """
    return tuple(part for part in loc if part not in ("settings",))


def locate(cfg_path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path:
    """Find the config file: --config, then $GENRED_CONFIG, then the standard places."""
    env = os.environ if env is None else env
    if cfg_path:
        path = Path(cfg_path)
        if not path.is_file():
            raise ConfigError([ConfigIssue(str(path), None, (), "no such config file")])
        return path
    if env.get(ENV_VAR):
        return locate(env[ENV_VAR], env)
    for candidate in SEARCH_PATHS:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(p) for p in SEARCH_PATHS)
    raise ConfigError(
        [
            ConfigIssue(
                "genred", None, (), f"no config file found (tried --config, ${ENV_VAR}, {tried})"
            )
        ]
    )


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Locate, parse, interpolate and validate the config file."""
    env = os.environ if env is None else env
    file = locate(path, env)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(file), None, (), f"cannot read: {exc.strerror}")]
        ) from None
    return parse_config(text, str(file), env)


def parse_config(
    text: str, file: str = "genred.yaml", env: Mapping[str, str] | None = None
) -> Config:
    env = os.environ if env is None else env
    data, source = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(file, 1, (), "the file must be a mapping of keys")])
    data = interpolate(data, env, source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_remap_plugin_issues(exc, source, data)) from None
    config._source = source
    return config


def _remap_plugin_issues(exc: ValidationError, source: SourceMap, data: Any) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if len(loc) >= 3 and loc[0] == "plugins" and isinstance(loc[2], int):
            loc = plugin_key_path(data, str(loc[1]), loc[2]) + loc[3:]
        issues.append(source.issue(_file_path(loc), _friendly(error)))
    return issues


def plugin_key_path(data: Any, kind: str, index: int) -> KeyPath:
    """The file key path of the index-th plugin of `kind` (mapping form or list form)."""
    section = (data.get("plugins") or {}).get(kind) if isinstance(data, dict) else None
    if isinstance(section, dict):
        names = list(section)
        if index < len(names):
            return ("plugins", kind, str(names[index]))
    return ("plugins", kind, index)


def validate_section(
    model: type[BaseModel], settings: Mapping[str, Any], source: SourceMap, path: KeyPath
) -> BaseModel:
    """Validate one plugin section with the plugin's own model; errors carry key and line."""
    try:
        return model.model_validate(dict(settings))
    except ValidationError as exc:
        raise ConfigError(validation_issues(exc, source, path)) from None


def world_readable_secret_warning(file: Path, text: str) -> str | None:
    """Warn when a file holding literal secrets can be read by other users."""
    try:
        mode = file.stat().st_mode
    except OSError:
        return None
    literal = re.search(r"(?im)^\s*[\w-]*(token|secret|api_key|password)\s*:\s*(?!\$\{)\S+", text)
    if literal and mode & 0o077:
        return (
            f"{file} holds a secret and is readable by other users (mode {mode & 0o777:o}); "
            f"run: chmod 600 {file}, or use ${{ENV_VAR}} references"
        )
    return None


def check_taxonomy(config: Config) -> None:
    """The taxonomy additions must load: an alias to an unknown genre is a config error."""
    from .taxonomy import TaxonomyError, taxonomy_from_config  # only when checked

    try:
        taxonomy_from_config(config.taxonomy)
    except TaxonomyError as exc:
        # Messages read "taxonomy.aliases: 8-bit: target 'X' is not a known genre".
        parts = str(exc).removeprefix("taxonomy.").split(": ")
        path: tuple[str | int, ...] = ("taxonomy",)
        while len(parts) > 1 and (*path, parts[0]) in config.source.lines:
            path = (*path, parts.pop(0))
        raise ConfigError([config.source.issue(path, ": ".join(parts))]) from None
