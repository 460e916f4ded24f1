"""Playlist target `plex`: genred's playlists as regular audio playlists in Plex.

Tracks resolve through the store: a track synced from Plex is its ratingKey (no request);
one from another source is reported as not in Plex. The requests are plexapi's own
(`createPlaylist`, `addItems`, `removeItems`, `edit`, `delete`), sent as plexapi builds
them, with the items' ratingKeys in one `uri` instead of one fetch per item:

    POST   /playlists?type=audio&title=…&smart=0&uri=server://{machine}/com.plexapp.plugins.library/library/metadata/1,2,3
    PUT    /playlists/{id}/items?uri=…            (append)
    DELETE /playlists/{id}/items/{playlistItemID} (one entry)
    DELETE /playlists/{id}/items                  (clear, for a replace)
    PUT    /playlists/{id}?title=…&summary=…

Plex appends only (`positional_inserts = False`): when the order changes, the planner
replaces the list (clear + add: two requests), which keeps the playlist and its ratingKey.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from plexapi import utils as plex_utils
from pydantic import BaseModel, ConfigDict, Field

from genred.api import (
    PlaylistEdit,
    PlexRequestFailed,
    PluginContext,
    RemoteItem,
    RemotePlaylist,
    RemoteRequestFailed,
    TrackMatch,
    TrackRecord,
    raise_if_cancelled,
)

from .connection import RetrySettings, call, connect

MAX_ITEMS = 100  # ratingKeys in one uri (Plex takes more; this keeps URLs short)


class PlexPlaylistsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retries: RetrySettings = RetrySettings()
    source: str = Field("plex", description="the source whose ids are Plex ratingKeys")


class PlexPlaylists:
    """Regular audio playlists on the configured Plex server."""

    Config = PlexPlaylistsSettings
    uses_config = ("plex",)
    name = "plex"
    max_edit_items: ClassVar[int] = MAX_ITEMS
    positional_inserts: ClassVar[bool] = False

    def __init__(self, settings: PlexPlaylistsSettings, context: PluginContext) -> None:
        if context.config.plex is None:
            raise ValueError("the plex playlist target needs a `plex:` section (url, token)")
        self.settings = settings
        self.plex = context.config.plex
        self._server: Any = None

    @property
    def server(self) -> Any:
        if self._server is None:
            self._server = connect(self.plex, self.settings.retries)
        return self._server

    # ------------------------------------------------------------------ PlaylistTarget

    def match(
        self, tracks: Sequence[TrackRecord], *, cancel: threading.Event | None = None
    ) -> Iterator[TrackMatch]:
        """A track synced from Plex is its ratingKey; others are not in Plex."""
        for track in tracks:
            assert track.id is not None
            if track.source == self.settings.source:
                yield TrackMatch(track.id, track.source_id, "source", 1.0)
            else:
                yield TrackMatch(
                    track.id,
                    None,
                    "none",
                    0.0,
                    f"not in Plex (a track of the {track.source} source)",
                )

    def read(
        self, remote_id: str, *, cancel: threading.Event | None = None
    ) -> RemotePlaylist | None:
        try:
            meta = self._query(f"/playlists/{remote_id}", "reading a playlist")
            items = self._query(f"/playlists/{remote_id}/items", "reading a playlist's items")
        except PlexRequestFailed as exc:
            if "no such item" in str(exc):
                return None
            raise
        entry = next(iter(meta), None)
        if entry is None:
            return None
        found = tuple(
            RemoteItem(e.attrib["ratingKey"], e.attrib.get("playlistItemID"))
            for e in items
            if "ratingKey" in e.attrib
        )
        return RemotePlaylist(
            remote_id, found, entry.attrib.get("title", ""), entry.attrib.get("summary", "")
        )

    def create(
        self,
        title: str,
        description: str,
        items: Sequence[str],
        *,
        cancel: threading.Event | None = None,
    ) -> str:
        if not items:
            raise RemoteRequestFailed("Plex cannot create an empty playlist")
        query = {"type": "audio", "title": title, "smart": 0, "uri": self._uri(items)}
        made = self._query(
            f"/playlists{plex_utils.joinArgs(query)}", "creating a playlist", method="post"
        )
        entry = next(iter(made), None)
        if entry is None or "ratingKey" not in entry.attrib:
            raise RemoteRequestFailed("Plex created the playlist but gave no ratingKey")
        remote_id = str(entry.attrib["ratingKey"])
        if description:
            self.describe(remote_id, title, description, cancel=cancel)
        return remote_id

    def apply(
        self, remote_id: str, edit: PlaylistEdit, *, cancel: threading.Event | None = None
    ) -> None:
        if edit.kind == "insert":
            self._add(remote_id, edit.items)
        elif edit.kind == "remove":
            for entry in edit.entries:
                raise_if_cancelled(cancel, "plex: removing playlist items")
                if entry.entry is None:
                    raise RemoteRequestFailed(f"no playlistItemID for item {entry.item}")
                self._query(
                    f"/playlists/{remote_id}/items/{entry.entry}",
                    "removing a track",
                    method="delete",
                )
        elif edit.kind == "replace":
            self._query(f"/playlists/{remote_id}/items", "clearing a playlist", method="delete")
            if edit.items:
                self._add(remote_id, edit.items)
        else:
            raise RemoteRequestFailed(f"unknown edit {edit.kind!r}")

    def describe(
        self,
        remote_id: str,
        title: str,
        description: str,
        *,
        cancel: threading.Event | None = None,
    ) -> None:
        query = plex_utils.joinArgs({"title": title, "summary": description})
        self._query(f"/playlists/{remote_id}{query}", "describing a playlist", method="put")

    def delete(self, remote_id: str, *, cancel: threading.Event | None = None) -> None:
        self._query(f"/playlists/{remote_id}", "deleting a playlist", method="delete")

    def link(self, remote_id: str) -> str:
        return f"{str(self.plex.url).rstrip('/')}/playlists/{remote_id} (Plex playlist {remote_id})"

    def close(self) -> None:
        self._server = None

    # ------------------------------------------------------------------ requests

    def _add(self, remote_id: str, items: Sequence[str]) -> None:
        query = plex_utils.joinArgs({"uri": self._uri(items)})
        self._query(f"/playlists/{remote_id}/items{query}", "adding tracks", method="put")

    def _uri(self, items: Sequence[str]) -> str:
        keys = ",".join(quote(str(i), safe="") for i in items)
        machine = self.server.machineIdentifier
        return f"server://{machine}/com.plexapp.plugins.library/library/metadata/{keys}"

    def _query(self, path: str, what: str, method: str = "get") -> Any:
        server = self.server
        send = getattr(server._session, method)
        return call(lambda: server.query(path, method=send), what, self.settings.retries)
