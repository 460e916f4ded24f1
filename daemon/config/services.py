"""Sections about the world around genred: Plex, music folders, the watcher, web, logging."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from .types import Duration, StrictModel


class PlexConfig(StrictModel):
    """`plex:`: the server the `plex` plugins talk to, and where its files are here."""

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


class WatchConfig(StrictModel):
    """The folder watcher (inotify through watchdog) and the config-file watch."""

    enabled: bool = True
    settle: Duration = Field(
        timedelta(seconds=30),
        description="a file counts once its size and mtime stayed unchanged this long",
    )
    polling: bool = Field(
        False, description="poll instead of inotify (network mounts changed by other machines)"
    )
    poll_interval: Duration = timedelta(seconds=60)
    config_file: bool = Field(True, description="reload when the config file is edited")


class WebConfig(StrictModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8785, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    webhook_delay: Duration = Field(
        timedelta(seconds=10), description="wait this long after a webhook, gathering others"
    )
    api_token: SecretStr | None = Field(
        None,
        description="needed for every change (Bearer for the API, the login form for the "
        "pages); none: the dashboard and API are read-only",
    )
    auth: Literal["writes", "all"] = Field(
        "writes", description="what needs the token: changes only, or every page and read too"
    )
    session_lifetime: Duration = Field(
        timedelta(days=7), description="how long a dashboard login lasts"
    )
    root_path: str = Field(
        "", description="the path prefix a reverse proxy serves genred under, e.g. /genred"
    )

    @field_validator("webhook_secret", "api_token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("api_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError(
                "the token must have at least 16 characters (e.g. `openssl rand -hex 24`)"
            )
        return value

    @field_validator("root_path")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and (not value.startswith("/") or "//" in value or "?" in value):
            raise ValueError("a path like /genred (starting with /, no query)")
        return value

    @model_validator(mode="after")
    def _all_needs_a_token(self) -> WebConfig:
        if self.auth == "all" and self.api_token is None:
            raise ValueError("auth: all needs an api_token (no one could log in)")
        return self


class LoggingConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


def default_data_dir() -> Path:
    state = os.environ.get("STATE_DIRECTORY")  # set by systemd's StateDirectory=
    if state:
        return Path(state.split(":")[0])
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "genred"
