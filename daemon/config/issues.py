"""Config problems located by file, line and key: ``genred.yaml:14 plex.url: not a valid URL``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]


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


class ConfigNotFound(ConfigError):
    """No config file anywhere genred looks (nothing given by --config or $GENRED_CONFIG)."""


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
