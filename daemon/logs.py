"""structlog set-up: key=value on a terminal, JSON under systemd or into a pipe; secrets redacted.

Every record, ours and third-party (plexapi, urllib3, apscheduler log through the stdlib),
passes one `Redactor` before it is rendered, so a token can reach no log line.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "***"

# Secret-looking things that may appear inside any text (URLs, headers, reprs).
_PATTERNS = (
    re.compile(r"(?i)(x-plex-token[=:]\s*['\"]?)[^&\s'\",}]+"),
    re.compile(r"(?i)((?:access|refresh)_token[=:]\s*['\"]?)[^&\s'\",}]+"),
    re.compile(r"(?i)(api[_-]?key[=:]\s*['\"]?)[^&\s'\",}]+"),
    re.compile(r"(?i)(authorization['\"]?[=:]\s*['\"]?(?:bearer|basic)\s+)[^\s'\",}]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"()\bgsk_[A-Za-z0-9]{8,}"),  # Groq keys
    re.compile(r"()\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style keys
)
_SECRET_KEYS = re.compile(r"(?i)(token|secret|password|passwd|api[_-]?key|authorization|cookie)")


class Redactor:
    """Removes known secret values, secret-named keys and secret-looking substrings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = set()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Very short values would redact ordinary words; 4 characters is the floor.
        self.secrets = {s for s in secrets if s and len(s) >= 4}

    def text(self, value: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            value = pattern.sub(lambda m: m.group(1) + REDACTED, value)
        return value

    def value(self, key: str, value: Any) -> Any:
        if _SECRET_KEYS.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value("", v) for v in value]
        if isinstance(value, BaseException | bytes) or not isinstance(value, int | float | bool):
            return self.text(str(value)) if value is not None else None
        return value

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event):
            if key.startswith("_"):
                continue
            event[key] = (
                self.value(key, event[key]) if key != "event" else self.value("", event[key])
            )
        return event


def wants_json(stream: TextIO, fmt: str) -> bool:
    if fmt != "auto":
        return fmt == "json"
    if os.environ.get("JOURNAL_STREAM"):
        return True
    return not (hasattr(stream, "isatty") and stream.isatty())


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> Redactor:
    """Configure structlog and the stdlib root logger; returns the redactor to update on reload."""
    stream = stream or sys.stderr
    redactor = Redactor(secrets)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if wants_json(stream, fmt)
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries stay at warning unless we debug.
    for name in ("urllib3", "plexapi", "apscheduler", "watchdog", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return redactor


def get_logger(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)
