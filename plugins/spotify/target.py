"""Playlist target `spotify`: genred's playlists in the logged-in user's Spotify account.

Only the current endpoints (NOTES.md of the vendored fixtures: the Feb/Mar 2026 changes
removed `POST /users/{id}/playlists` and renamed `/tracks` to `/items`):

- create: `POST /me/playlists` (spotipy's `current_user_playlist_create`), then the first
  items;
- insert: `POST /playlists/{id}/items` with `{"uris": [...], "position": n}` in the body,
  sent by hand: spotipy 2.26's `playlist_add_items` sends a bare JSON array, which the
  live API answers 400 "No uris provided" since 2024-02-27 (spotipy#1075; the spec allows
  only the object and the query forms);
- remove: `DELETE /playlists/{id}/items` `{"items": [{"uri": …}]}` (every occurrence);
- replace: `PUT /playlists/{id}/items` `{"uris": [...]}` (≤ 100);
- describe: `PUT /playlists/{id}`; delete: `DELETE /playlists/{id}/followers` (unfollow:
  the API's only delete; the playlist stays readable, so "deleted by hand" is checked by
  whether `/me/playlists` still lists it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any, ClassVar

from genred.api import (
    PlaylistEdit,
    PluginContext,
    RemoteItem,
    RemotePlaylist,
    RemoteRequestFailed,
    TrackMatch,
    TrackRecord,
)

from .client import SpotifyCalls, paged
from .matching import Matcher
from .settings import SpotifySettings
from .tokens import Tokens, token_path

MAX_ITEMS = 100  # URIs a single items request may carry
DESCRIPTION_CHARS = 300


class SpotifyPlaylists:
    """Matches, reads and edits playlists through the Web API (see the module text)."""

    Config = SpotifySettings
    uses_config = ("data_dir",)
    name = "spotify"
    max_edit_items: ClassVar[int] = MAX_ITEMS
    positional_inserts: ClassVar[bool] = True

    def __init__(self, settings: SpotifySettings, context: PluginContext) -> None:
        self.settings = settings
        self.data_dir = context.data_dir
        self.tokens = Tokens(settings, context.data_dir)
        self.calls = SpotifyCalls(settings, self.tokens)
        self.matcher = Matcher(self.calls, settings.match_threshold, settings.search_limit)

    # ------------------------------------------------------------------ PlaylistTarget

    def match(
        self, tracks: Sequence[TrackRecord], *, cancel: threading.Event | None = None
    ) -> Iterator[TrackMatch]:
        """Each track's Spotify URI, by ISRC or a field search; or why it has none."""
        return self.matcher.match(tracks, cancel)

    def read(
        self, remote_id: str, *, cancel: threading.Event | None = None
    ) -> RemotePlaylist | None:
        """The playlist's items; None when the user no longer follows it (deleted by hand)."""
        meta = self._listed(remote_id, cancel)  # name and description come with the listing
        if meta is None:
            return None
        first = self.calls.call(
            lambda c: c._get(f"playlists/{remote_id}/items", limit=50, offset=0),
            "reading a playlist's items",
            cancel,
        )
        rows = paged(first, self.calls, "reading a playlist's items", cancel)
        items = []
        for row in rows:
            track = row.get("item") or row.get("track")
            if track and track.get("uri"):
                items.append(RemoteItem(str(track["uri"])))
        return RemotePlaylist(
            remote_id,
            tuple(items),
            str((meta or {}).get("name") or ""),
            str((meta or {}).get("description") or ""),
        )

    def create(
        self,
        title: str,
        description: str,
        items: Sequence[str],
        *,
        cancel: threading.Event | None = None,
    ) -> str:
        """`POST /me/playlists`, then the first items (at most 100)."""
        made = self.calls.call(
            lambda c: c.current_user_playlist_create(
                title, public=self.settings.public, description=_description(description)
            ),
            "creating a playlist",
            cancel,
        )
        remote_id = str((made or {}).get("id") or "")
        if not remote_id:
            raise RemoteRequestFailed("Spotify created the playlist but gave no id")
        if items:
            self.apply(remote_id, PlaylistEdit("insert", items=tuple(items)), cancel=cancel)
        return remote_id

    def apply(
        self, remote_id: str, edit: PlaylistEdit, *, cancel: threading.Event | None = None
    ) -> None:
        uris = list(edit.items)
        if len(uris) > MAX_ITEMS:
            raise RemoteRequestFailed(f"an edit of {len(uris)} items; Spotify takes {MAX_ITEMS}")
        path = f"playlists/{remote_id}/items"
        if edit.kind == "insert":
            payload: dict[str, Any] = {"uris": uris}
            if edit.position is not None:
                payload["position"] = edit.position
            # By hand, not playlist_add_items: see the module text (spotipy#1075).
            self.calls.call(lambda c: c._post(path, payload=payload), "adding tracks", cancel)
        elif edit.kind == "remove":
            body = {"items": [{"uri": u} for u in uris]}
            self.calls.call(lambda c: c._delete(path, payload=body), "removing tracks", cancel)
        elif edit.kind == "replace":
            self.calls.call(
                lambda c: c._put(path, payload={"uris": uris}), "replacing tracks", cancel
            )
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
        self.calls.call(
            lambda c: c.playlist_change_details(
                remote_id, name=title, description=_description(description)
            ),
            "describing a playlist",
            cancel,
        )

    def delete(self, remote_id: str, *, cancel: threading.Event | None = None) -> None:
        self.calls.call(
            lambda c: c.current_user_unfollow_playlist(remote_id), "deleting a playlist", cancel
        )

    def link(self, remote_id: str) -> str:
        return f"https://open.spotify.com/playlist/{remote_id}"

    # ------------------------------------------------------------------ the rest

    def check(self) -> list[str]:
        """`genred config check`: a missing login is worth a warning."""
        if not token_path(self.data_dir).exists():
            return ["spotify: not logged in yet: run `genred spotify login`"]
        return []

    def close(self) -> None:
        self.calls.close()

    def _listed(self, remote_id: str, cancel: threading.Event | None) -> dict[str, Any] | None:
        """The playlist as `/me/playlists` lists it (newest first), or None: unfollowed."""
        offset = 0
        while True:
            page = self.calls.call(
                partial(_listing, offset=offset), "listing your playlists", cancel
            )
            items = (page or {}).get("items") or []
            found = next((p for p in items if p and p.get("id") == remote_id), None)
            if found is not None:
                return dict(found)
            if not (page or {}).get("next") or not items:
                return None
            offset += len(items)


def _listing(client: Any, offset: int) -> Any:
    return client.current_user_playlists(limit=50, offset=offset)


def _description(text: str) -> str:
    """Spotify keeps descriptions to 300 characters on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= DESCRIPTION_CHARS else flat[: DESCRIPTION_CHARS - 1] + "…"
