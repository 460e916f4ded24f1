"""A Spotify Web API emulator for tests: the real spotipy client talks to it over HTTP.

See README.md for what is emulated, where each answer's shape comes from, and what is not.
"""

from .auth import AuthServer, Client, redirect_uri_problem
from .catalogue import Catalogue
from .faults import FaultRule, Faults
from .model import Album, Artist, Playlist, PlaylistEntry, Track, User
from .server import RequestRecord, SpotifyEmulator
from .validation import SpecValidator, Violation

__all__ = [
    "Album",
    "Artist",
    "AuthServer",
    "Catalogue",
    "Client",
    "FaultRule",
    "Faults",
    "Playlist",
    "PlaylistEntry",
    "RequestRecord",
    "SpecValidator",
    "SpotifyEmulator",
    "Track",
    "User",
    "Violation",
    "redirect_uri_problem",
]
