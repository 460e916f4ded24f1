"""JSON bodies in the recorded wire shapes (tests/fixtures/spotify/spotifyaio/*.json).

Key sets follow the recordings: a search or `GET /tracks/{id}` track is `search.json`'s item
(album with `is_playable`), a playlist row is `playlist_items.json`'s (both `track` and
`item`, the track carrying `episode: false, track: true`), a `GET /me/playlists` entry is
`current_user_playlist_1.json`'s (both `tracks` and `items` refs), a created playlist is
`new_playlist.json`'s plus the `items` page. `legacy_fields=False` drops the deprecated
`track`/`tracks` twins, as the Feb 2026 rename will eventually do. `href`/`next` point at
the emulator (`base`), so a client that follows `next` stays on it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .catalogue import Catalogue
from .ids import hex_digest
from .model import Album, Artist, Playlist, PlaylistEntry, Track, User

# A short market list: the recordings carry ~185 codes, the keys matter, not the length.
MARKETS = ("AD", "AT", "BE", "CA", "CH", "DE", "DK", "ES", "FR", "GB", "NL", "SE", "US")
OPEN = "https://open.spotify.com"


class Renderer:
    def __init__(self, catalogue: Catalogue, base: str, legacy_fields: bool = True) -> None:
        self.catalogue = catalogue
        self.base = base.rstrip("/")  # e.g. http://127.0.0.1:PORT/v1
        self.legacy_fields = legacy_fields

    # -- catalogue objects ----------------------------------------------------------------------

    def artist(self, artist: Artist) -> dict[str, Any]:
        return {
            "external_urls": {"spotify": f"{OPEN}/artist/{artist.id}"},
            "href": f"{self.base}/artists/{artist.id}",
            "id": artist.id,
            "name": artist.name,
            "type": "artist",
            "uri": artist.uri,
        }

    def album(self, album: Album, playable: bool = True) -> dict[str, Any]:
        cover = hex_digest("cover", album.id, length=24)
        body: dict[str, Any] = {
            "album_type": album.album_type,
            "artists": [self.artist(self.catalogue.artists[a]) for a in album.artist_ids],
            "available_markets": list(MARKETS),
            "external_urls": {"spotify": f"{OPEN}/album/{album.id}"},
            "href": f"{self.base}/albums/{album.id}",
            "id": album.id,
            "images": [
                {"height": 640, "width": 640, "url": _image("ab67616d0000b273", cover)},
                {"height": 300, "width": 300, "url": _image("ab67616d00001e02", cover)},
                {"height": 64, "width": 64, "url": _image("ab67616d00004851", cover)},
            ],
            "name": album.name,
            "release_date": album.release_date,
            "release_date_precision": "year",
            "total_tracks": album.total_tracks,
            "type": "album",
            "uri": album.uri,
        }
        if playable:
            body["is_playable"] = True
        return body

    def track(self, track: Track, in_playlist: bool = False) -> dict[str, Any]:
        """search.json's item shape; `in_playlist`: playlist_items.json's `item` shape."""
        body: dict[str, Any] = {
            "album": self.album(self.catalogue.albums[track.album_id], playable=not in_playlist),
            "artists": [self.artist(self.catalogue.artists[a]) for a in track.artist_ids],
            "available_markets": list(MARKETS),
            "disc_number": track.disc_number,
            "duration_ms": track.duration_ms,
            "explicit": track.explicit,
            "external_ids": {"isrc": track.isrc} if track.isrc else {},
            "external_urls": {"spotify": f"{OPEN}/track/{track.id}"},
            "href": f"{self.base}/tracks/{track.id}",
            "id": track.id,
            "is_local": False,
            "name": track.name,
            "popularity": track.popularity,
            "preview_url": None,
            "track_number": track.track_number,
            "type": "track",
            "uri": track.uri,
        }
        if in_playlist:
            body["episode"] = False
            body["track"] = True
        else:
            body["is_playable"] = True
        return body

    # -- users ----------------------------------------------------------------------------------

    def user_ref(self, user_id: str) -> dict[str, Any]:
        """`added_by` (no display_name), as in playlist_items.json."""
        return {
            "external_urls": {"spotify": f"{OPEN}/user/{user_id}"},
            "href": f"{self.base}/users/{user_id}",
            "id": user_id,
            "type": "user",
            "uri": f"spotify:user:{user_id}",
        }

    def owner(self, user: User) -> dict[str, Any]:
        return {**self.user_ref(user.id), "display_name": user.display_name}

    def profile(self, user: User) -> dict[str, Any]:
        """GET /me: the user's recorded profile, hrefs pointed at the emulator."""
        body = dict(user.profile)
        body.update(
            id=user.id,
            display_name=user.display_name,
            href=f"{self.base}/users/{user.id}",
            uri=user.uri,
            type="user",
            external_urls={"spotify": f"{OPEN}/user/{user.id}"},
        )
        return body

    # -- playlists -------------------------------------------------------------------------------

    def _images(self, playlist: Playlist) -> list[dict[str, Any]]:
        """None before the first track; then the first track's cover, sizes unknown (as in
        current_user_playlist_1.json's 1-track playlist: height and width null)."""
        for entry in playlist.entries:
            track = self.catalogue.track(entry.track_id)
            if track is not None:
                cover = hex_digest("cover", track.album_id, length=24)
                return [{"height": None, "url": _image("ab67616d00001e02", cover), "width": None}]
        return []

    def entry(self, entry: PlaylistEntry) -> dict[str, Any]:
        track = self.catalogue.track(entry.track_id)
        item = self.track(track, in_playlist=True) if track is not None else None
        row: dict[str, Any] = {
            "added_at": entry.added_at,
            "added_by": self.user_ref(entry.added_by),
            "is_local": False,
            "primary_color": None,
        }
        if self.legacy_fields:
            row["track"] = item
        row["item"] = item
        row["video_thumbnail"] = {"url": None}
        return row

    def items_page(self, playlist: Playlist, offset: int, limit: int) -> dict[str, Any]:
        rows = [self.entry(e) for e in playlist.entries[offset : offset + limit]]
        path = f"/playlists/{playlist.id}/items"
        return self.paging(path, rows, offset, limit, len(playlist.entries))

    def playlist(
        self, playlist: Playlist, owner: User, with_items: bool = True, page_limit: int = 100
    ) -> dict[str, Any]:
        """GET /playlists/{id} and POST /me/playlists (new_playlist.json + `items`)."""
        body: dict[str, Any] = {
            "collaborative": playlist.collaborative,
            "description": playlist.description,
            "external_urls": {"spotify": f"{OPEN}/playlist/{playlist.id}"},
            "followers": {"href": None, "total": max(0, len(playlist.followers) - 1)},
            "href": f"{self.base}/playlists/{playlist.id}",
            "id": playlist.id,
            "images": self._images(playlist),
            "primary_color": None,
            "name": playlist.name,
            "type": "playlist",
            "uri": playlist.uri,
            "owner": self.owner(owner),
            "public": playlist.public,
            "snapshot_id": playlist.snapshot_id,
        }
        if with_items:
            page = self.items_page(playlist, 0, page_limit)
            if self.legacy_fields:
                legacy = dict(page)
                legacy["href"] = page["href"].replace("/items?", "/tracks?")
                legacy["items"] = [
                    {k: v for k, v in r.items() if k != "item"} for r in page["items"]
                ]
                body["tracks"] = legacy
            body["items"] = page
        return body

    def playlist_simple(self, playlist: Playlist, owner: User) -> dict[str, Any]:
        """One entry of GET /me/playlists (current_user_playlist_1.json)."""
        ref = {"href": f"{self.base}/playlists/{playlist.id}/items", "total": len(playlist.entries)}
        body: dict[str, Any] = {
            "collaborative": playlist.collaborative,
            "description": playlist.description,
            "external_urls": {"spotify": f"{OPEN}/playlist/{playlist.id}"},
            "href": f"{self.base}/playlists/{playlist.id}",
            "id": playlist.id,
            "images": self._images(playlist),
            "name": playlist.name,
            "owner": self.owner(owner),
            "primary_color": None,
            "public": playlist.public,
            "snapshot_id": playlist.snapshot_id,
        }
        if self.legacy_fields:
            body["tracks"] = {
                "href": ref["href"].replace("/items", "/tracks"),
                "total": ref["total"],
            }
        body["items"] = ref
        body["type"] = "playlist"
        body["uri"] = playlist.uri
        return body

    # -- paging -----------------------------------------------------------------------------------

    def paging(
        self,
        path: str,
        items: list[Any],
        offset: int,
        limit: int,
        total: int,
        extra: str = "",
    ) -> dict[str, Any]:
        """A paging object; `extra` is appended to the query (`&query=…&type=track`)."""

        def link(at: int) -> str:
            return f"{self.base}{path}?offset={at}&limit={limit}{extra}"

        return {
            "href": link(offset),
            "items": items,
            "limit": limit,
            "next": link(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
        }


def search_extra(q: str, kind: str) -> str:
    """The query tail of search.json's links: `&query=Never%20Gonna%20Give%20You%20Up&type=track`
    (the real API writes `query=`, not `q=`, in them)."""
    return f"&query={quote(q, safe='')}&type={kind}"


def _image(prefix: str, digest: str) -> str:
    return f"https://i.scdn.co/image/{prefix}{digest}"


def apply_fields(data: Any, fields: str) -> Any:
    """The `fields` filter of GET /playlists/{id} and /items: `name,items.total`,
    `items(added_at,item(name,uri))`, `!description`. Unknown names are left out."""
    spec = _parse_fields(fields)
    return _select(data, spec)


def _parse_fields(text: str) -> dict[str, Any]:
    spec, _ = _parse_list(text.replace(" ", ""), 0)
    return spec


def _parse_list(text: str, i: int) -> tuple[dict[str, Any], int]:
    spec: dict[str, Any] = {}
    while i < len(text) and text[i] != ")":
        j = i
        while j < len(text) and text[j] not in ",.()":
            j += 1
        name = text[i:j]
        sub: Any = True
        if j < len(text) and text[j] == "(":
            sub, j = _parse_list(text, j + 1)
            j += 1  # the closing parenthesis
        elif j < len(text) and text[j] == ".":
            rest, j = _parse_path(text, j + 1)
            sub = rest
        if name:
            spec[name] = sub if name not in spec or sub is True else _merge(spec[name], sub)
        if j < len(text) and text[j] == ",":
            j += 1
        i = j
    return spec, i


def _parse_path(text: str, i: int) -> tuple[dict[str, Any], int]:
    j = i
    while j < len(text) and text[j] not in ",.()":
        j += 1
    name = text[i:j]
    if j < len(text) and text[j] == ".":
        sub, j = _parse_path(text, j + 1)
        return {name: sub}, j
    if j < len(text) and text[j] == "(":
        sub, j = _parse_list(text, j + 1)
        return {name: sub}, j + 1
    return {name: True}, j


def _merge(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    merged = dict(a)
    for key, value in b.items():
        merged[key] = _merge(merged[key], value) if key in merged else value
    return merged


def _select(data: Any, spec: dict[str, Any]) -> Any:
    if isinstance(data, list):
        return [_select(item, spec) for item in data]
    if not isinstance(data, dict):
        return data
    excluded = {k[1:] for k in spec if k.startswith("!")}
    included = {k: v for k, v in spec.items() if not k.startswith("!")}
    if not included:
        return {k: v for k, v in data.items() if k not in excluded}
    out = {}
    for key, sub in included.items():
        if key in data:
            out[key] = data[key] if sub is True else _select(data[key], sub)
    return out
