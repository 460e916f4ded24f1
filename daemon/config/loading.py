"""Finding, reading and validating the config file; pydantic errors become located issues."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .issues import ConfigError, ConfigIssue, ConfigNotFound, KeyPath
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
        if path.is_dir():
            raise ConfigError([ConfigIssue(str(path), None, (), DIRECTORY)])
        if not path.exists():
            raise ConfigError([ConfigIssue(str(path), None, (), "no such config file")])
        return path
    if env.get(ENV_VAR):
        return locate(env[ENV_VAR], env)
    for candidate in SEARCH_PATHS:
        if candidate.exists():  # a directory or an unreadable file there is said, not skipped
            return candidate
    tried = ", ".join(str(p) for p in SEARCH_PATHS)
    raise ConfigNotFound(
        [
            ConfigIssue(
                "genred", None, (), f"no config file found (tried --config, ${ENV_VAR}, {tried})"
            )
        ]
    )


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    allow_empty: bool = True,
) -> Config:
    """Locate, read, parse, interpolate and validate the config file.

    `allow_empty` False (a reload) refuses a file with no settings at all: a half-saved
    edit or a failed copy must not turn into "every setting at its default".
    """
    env = os.environ if env is None else env
    file = locate(path, env)
    return parse_config(read_config_text(file), str(file), env, allow_empty=allow_empty)


DIRECTORY = "is a directory, not a config file"
EMPTY_ON_RELOAD = (
    "the file is empty (a half-saved edit, or a failed copy?): refused; to run with every "
    "setting at its default, restart genred"
)


def read_config_text(file: Path) -> str:
    """The file's text; what is wrong and where when it cannot be read as UTF-8 text."""
    try:
        data = file.read_bytes()
    except IsADirectoryError:
        raise ConfigError([ConfigIssue(str(file), None, (), DIRECTORY)]) from None
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(str(file), None, (), "no such config file")]) from None
    except PermissionError:
        raise ConfigError([ConfigIssue(str(file), None, (), _denied(file))]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigIssue(str(file), None, (), f"cannot be read: {reason}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        problem = (
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
            "save the file as UTF-8"
        )
        raise ConfigError([ConfigIssue(str(file), line, (), problem)]) from None


def _denied(file: Path) -> str:
    who = f"genred runs as uid {os.getuid()}"
    try:
        st = file.stat()
    except OSError:
        return f"cannot be read: permission denied ({who}; a folder on the way is closed to it)"
    return (
        f"cannot be read: permission denied ({who}; the file belongs to uid {st.st_uid}, "
        f"gid {st.st_gid}, mode {st.st_mode & 0o777:o})"
    )


def is_empty_yaml(text: str) -> bool:
    """No YAML document at all: nothing, blank lines or comments only."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader) is None
    except yaml.YAMLError:
        return False


def parse_config(
    text: str,
    file: str = "genred.yaml",
    env: Mapping[str, str] | None = None,
    *,
    allow_empty: bool = True,
) -> Config:
    env = os.environ if env is None else env
    if not allow_empty and is_empty_yaml(text):
        raise ConfigError([ConfigIssue(file, None, (), EMPTY_ON_RELOAD)])
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
