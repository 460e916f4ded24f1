"""The dashboard's sections: each is a nav entry, its pages and its part of the API.

`SECTIONS` is the one list the app is built from (`create_app`), in nav order. A new
section is one module with a `Section` and one line here, as the playlists section
(`playlists.page_routes`, `playlists.api_routes`) is; its templates extend ``base.html`` (the nav marks it current
when `section` is its name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter

from .context import WebContext

RouterFactory = Callable[[WebContext], APIRouter]


@dataclass(frozen=True)
class Section:
    name: str
    title: str  # in the nav
    path: str  # where the nav links to
    pages: RouterFactory | None = None  # HTML routes (out of the OpenAPI schema)
    api: RouterFactory | None = None  # routes under /api (in the schema)
    nav: bool = True


def core_sections() -> list[Section]:
    import genred.web.api as api
    import genred.web.pages as pages
    import genred.web.playlists as playlists

    return [
        Section("overview", "Overview", "/", pages.overview_routes, api.overview_routes),
        Section("library", "Library", "/library", pages.library_routes, api.library_routes),
        Section("review", "Review", "/review", pages.review_routes, api.review_routes),
        Section(
            "playlists", "Playlists", "/playlists", playlists.page_routes, playlists.api_routes
        ),
        Section("settings", "Settings", "/settings", pages.settings_routes, api.settings_routes),
        Section("session", "Log in", "/login", pages.session_routes, nav=False),
    ]
