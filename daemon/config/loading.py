"""Finding, reading and validating the config file; pydantic errors become located issues."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .issues import ConfigError, ConfigIssue, KeyPath
from .model import Config
from .source import SourceMap, interpolate, parse_yaml

SEARCH_PATHS = (Path("/etc/genred/genred.yaml"), Path("config/genred.yaml"))
ENV_VAR = "GENRED_CONFIG"


def _friendly(error: Mapping[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see config/genred.example.yaml)"
    if kind == "missing":
        return "required key is missing"
    if kind.startswith("url_"):
        return f"not a valid URL ({msg.removeprefix('Input should be a valid URL, ')})"
    return str(msg).removeprefix("Value error, ")


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
