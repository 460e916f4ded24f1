"""Plex webhooks: what Plex posts, and which events mean new music in a library.

Plex (a Plex Pass feature) POSTs ``multipart/form-data`` to the configured URL: a ``payload``
part holding JSON (``event``, ``user``, ``owner``, ``Account``, ``Server``, ``Player``,
``Metadata``) and, for some events, a ``thumb`` part with a JPEG poster. Plex's webhook
article lists two "New Content" events, ``library.new`` ("a new item is added to a library
to which the user has access") and ``library.on.deck`` ("a new item is added that appears
in the user's On Deck"); every other event (``media.play``, ``media.scrobble``,
``admin.database.backup``, …) is about playback or the server and changes no track.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

NEW_MEDIA_EVENTS = frozenset({"library.new", "library.on.deck"})
MUSIC_SECTION_TYPE = "artist"  # PMS's type of a music library section
MAX_PAYLOAD_PART = 1024 * 1024  # the JSON part; Plex's payloads are a few kB


class WebhookError(ValueError):
    """A webhook body genred cannot read (answered with 400 and this message)."""


@dataclass(frozen=True)
class PlexWebhook:
    """The parts of one Plex webhook that decide what genred does with it."""

    event: str
    section_type: str | None = None
    section_id: str | None = None
    item_type: str | None = None
    title: str | None = None

    @property
    def adds_music(self) -> bool:
        """New media in a music section (or in a section the payload does not name)."""
        return self.event in NEW_MEDIA_EVENTS and self.section_type in (None, MUSIC_SECTION_TYPE)

    @classmethod
    def from_payload(cls, data: Any) -> PlexWebhook:
        if not isinstance(data, Mapping):
            raise WebhookError("the payload must be a JSON object")
        event = data.get("event")
        if not isinstance(event, str) or not event:
            raise WebhookError("the payload has no `event`")
        metadata = data.get("Metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        return cls(
            event=event,
            section_type=_text(metadata.get("librarySectionType")),
            section_id=_text(metadata.get("librarySectionID")),
            item_type=_text(metadata.get("type")),
            title=_text(metadata.get("title")),
        )


def parse_payload(raw: str | bytes) -> PlexWebhook:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookError(f"the payload is not valid JSON ({exc})") from None
    return PlexWebhook.from_payload(data)


async def read_webhook(request: Request) -> PlexWebhook:
    """The webhook in `request`'s form body (the `thumb` poster is not kept)."""
    async with request.form(
        max_files=4, max_fields=16, max_part_size=MAX_PAYLOAD_PART
    ) as form:  # a malformed multipart body is a 400 from Starlette itself
        raw = form.get("payload")
        if isinstance(raw, UploadFile):  # sent with a filename: still the JSON text
            raw = await raw.read(MAX_PAYLOAD_PART + 1)
            if len(raw) > MAX_PAYLOAD_PART:
                raise WebhookError("the payload part is too large")
    if raw is None:
        raise WebhookError("no `payload` form field (Plex sends multipart/form-data)")
    return parse_payload(raw)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
