"""Plex webhooks: what Plex posts, which events mean new music, and the route that takes them.

Plex (a Plex Pass feature) POSTs ``multipart/form-data`` to the configured URL: a ``payload``
part holding JSON (``event``, ``user``, ``owner``, ``Account``, ``Server``, ``Player``,
``Metadata``) and, for some events, a ``thumb`` part with a JPEG poster. Plex's webhook
article lists two "New Content" events, ``library.new`` ("a new item is added to a library
to which the user has access") and ``library.on.deck`` ("a new item is added that appears
in the user's On Deck"); every other event (``media.play``, ``media.scrobble``,
``admin.database.backup``, …) is about playback or the server and changes no track.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from genred.api import SyncRequester, get_logger

log = get_logger("genred.web")

WEBHOOK_PREFIX = "/webhooks/plex/"  # the rest of the path is the secret: logged as ***
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
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
        part = form.get("payload")
        raw: str | bytes | None
        if isinstance(part, UploadFile):  # sent with a filename: still the JSON text
            raw = await part.read(MAX_PAYLOAD_PART + 1)
            if len(raw) > MAX_PAYLOAD_PART:
                raise WebhookError("the payload part is too large")
        else:
            raw = part
    if raw is None:
        raise WebhookError("no `payload` form field (Plex sends multipart/form-data)")
    return parse_payload(raw)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def add_webhook_route(router: APIRouter, web: Any, requester: SyncRequester) -> None:
    """`/webhooks/plex/{secret}` on `router`; each new-music webhook asks for a sync of
    the `plex` source `web.webhook_delay` later.

    Plex posts one library.new per added item (an album is a burst of them); the daemon
    coalesces the delayed requests into one sync.
    """
    secret = web.webhook_secret
    expected = secret.get_secret_value().encode() if secret is not None else None
    delay = web.webhook_delay.total_seconds()

    # Every method is routed here so that a wrong secret is a 404 whatever the method
    # (a 405 would tell that the path exists).
    @router.api_route(WEBHOOK_PREFIX + "{secret}", methods=ALL_METHODS, include_in_schema=False)
    async def plex_webhook(secret: str, request: Request) -> JSONResponse:
        # Wrong or unset secret: the same 404 as any unknown path, and nothing read.
        if expected is None or not hmac.compare_digest(secret.encode(), expected):
            raise HTTPException(status_code=404)
        if request.method != "POST":
            raise HTTPException(status_code=405, headers={"Allow": "POST"})
        try:
            hook = await read_webhook(request)
        except WebhookError as exc:
            log.warning("plex webhook refused", reason=str(exc))
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if not hook.adds_music:
            log.debug("plex webhook ignored", plex_event=hook.event, section=hook.section_type)
            return JSONResponse({"status": "ignored", "event": hook.event})
        await run_in_threadpool(_request_sync, requester, hook, delay)
        return JSONResponse({"status": "sync requested", "event": hook.event})


def _request_sync(requester: SyncRequester, hook: PlexWebhook, delay: float) -> None:
    log.info(
        "plex webhook: new media, sync requested",
        plex_event=hook.event,
        section=hook.section_id,
        item_type=hook.item_type,
        title=hook.title,
    )
    requester.request_sync("plex", reason=f"webhook: plex {hook.event}", delay=delay)
