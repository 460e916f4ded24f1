"""Replies and Spotify's two error shapes: the Web API's `{"error": {"status", "message"}}`
and the accounts service's OAuth `{"error", "error_description"}`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def json_reply(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return Reply(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})


class ApiError(Exception):
    """A Web API error answer: `{"error": {"status": 404, "message": "Resource not found"}}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def reply(self) -> Reply:
        body = {"error": {"status": self.status, "message": self.message}}
        return json_reply(self.status, body, self.headers)


class OAuthError(Exception):
    """An accounts-service error: HTTP 400 `{"error": "invalid_grant", "error_description": …}`
    (shape of spotify-web-api-java's auth-invalid-client.json)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def reply(self) -> Reply:
        return json_reply(self.status, {"error": self.error, "error_description": self.description})


def html_reply(status: int, text: str) -> Reply:
    """The accounts service's error page (what a browser shows for a bad client/redirect)."""
    body = (
        "<!DOCTYPE html><html><head><title>Error</title></head>"
        f"<body><h1>Oops! Something went wrong</h1><p>{text}</p></body></html>"
    ).encode()
    return Reply(status, body, {"Content-Type": "text/html; charset=utf-8"})
