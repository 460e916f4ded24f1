"""Endpoints Spotify removed for Development-Mode apps (new apps from 2026-02-11, existing
ones from 2026-03-09; tests/fixtures/spotify/NOTES.md §1), and what they answer now.

The answers: 403 `{"error": {"status": 403, "message": "Forbidden"}}` (bjarneo/cliamp#54
quotes it for `GET /playlists/{id}/tracks`; spotify/spotify-web-api-ts-sdk#159 lists
`POST /users/{id}/playlists` and the `/tracks` writes as 403), 404 for the recommendation
endpoints, which are gone entirely (a public probe of the live API, 2026). The validator
deletes these operations from its copy of the spec, so a request to one is a violation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Removed:
    methods: frozenset[str]
    spec_path: str  # the path template as the OpenAPI file spells it
    status: int = 403
    message: str = "Forbidden"

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^/v1" + re.sub(r"\{[^}]+\}", "[^/]+", self.spec_path) + "$")


def _m(*methods: str) -> frozenset[str]:
    return frozenset(methods)


REMOVED: tuple[Removed, ...] = (
    Removed(_m("GET", "POST"), "/users/{user_id}/playlists"),
    Removed(_m("GET", "POST", "PUT", "DELETE"), "/playlists/{playlist_id}/tracks"),
    Removed(_m("GET"), "/users/{user_id}"),
    Removed(_m("GET"), "/tracks"),
    Removed(_m("GET"), "/artists"),
    Removed(_m("GET"), "/albums"),
    Removed(_m("GET"), "/artists/{id}/top-tracks"),
    Removed(_m("GET"), "/artists/{id}/related-artists"),
    Removed(_m("GET"), "/audio-features"),
    Removed(_m("GET"), "/audio-features/{id}"),
    Removed(_m("GET"), "/audio-analysis/{id}"),
    Removed(_m("GET"), "/recommendations", 404, "Service not found"),
    Removed(_m("GET"), "/recommendations/available-genre-seeds", 404, "Service not found"),
    Removed(_m("GET"), "/markets"),
    Removed(_m("GET"), "/browse/new-releases"),
    Removed(_m("GET"), "/browse/featured-playlists"),
    Removed(_m("GET"), "/browse/categories"),
    Removed(_m("GET"), "/browse/categories/{category_id}"),
    Removed(_m("GET"), "/browse/categories/{category_id}/playlists"),
    Removed(_m("GET"), "/playlists/{playlist_id}/followers/contains"),
)
_COMPILED = tuple((r, r.pattern) for r in REMOVED)


def removed_for(method: str, path: str) -> Removed | None:
    for entry, pattern in _COMPILED:
        if method.upper() in entry.methods and pattern.match(path):
            return entry
    return None
