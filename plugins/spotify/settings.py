"""Settings of the `spotify` playlist target (`plugins.playlists.spotify`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator

from genred.api import Duration, RetrySettings

SCOPES = ("playlist-read-private", "playlist-modify-private", "playlist-modify-public")
DEFAULT_REDIRECT = "http://127.0.0.1:8888/callback"


class SpotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1, description="your app's Client ID (developer dashboard)")
    client_secret: SecretStr | None = Field(
        None, description="${SPOTIFY_CLIENT_SECRET}; none: PKCE (no secret needed)"
    )
    redirect_uri: str = Field(
        DEFAULT_REDIRECT, description="exactly as registered for the app: http://127.0.0.1:PORT/…"
    )
    public: bool = Field(False, description="new playlists are public on your profile")
    timeout: float = Field(15.0, gt=0, description="seconds to wait for one answer")
    retries: RetrySettings = RetrySettings(attempts=4, backoff_initial=1.0, backoff_max=30.0)
    max_wait: Duration = Field(
        timedelta(seconds=30), description="a 429 asking to wait longer defers the job"
    )
    defer_without_retry_after: Duration = Field(
        timedelta(minutes=10), description="how long a 429 that names no wait defers the job"
    )
    match_threshold: float = Field(
        0.75, ge=0.0, le=1.0, description="how alike a search hit must be to count as the track"
    )
    search_limit: int = Field(
        10, ge=1, le=10, description="hits per search (10: Development Mode's most)"
    )
    api_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://api.spotify.com/v1/"), description="the Web API (tests: an emulator)"
    )
    accounts_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://accounts.spotify.com"), description="the accounts service"
    )

    @field_validator("client_secret", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("redirect_uri")
    @classmethod
    def _loopback(cls, value: str) -> str:
        """Spotify refuses `localhost` and plain HTTP except on a loopback address."""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.hostname == "localhost":
            port = f":{parts.port}" if parts.port else ""
            raise ValueError(
                f"Spotify refuses 'localhost' redirect URIs: use http://127.0.0.1{port}{parts.path}"
                " (and register exactly that for your app)"
            )
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1"):
            raise ValueError(
                "a plain-http redirect URI must be on 127.0.0.1 (or [::1]); else https"
            )
        return value

    @property
    def pkce(self) -> bool:
        return self.client_secret is None
