"""A Plex Media Server emulator for tests: the real plexapi client talks to it over HTTP.

See README.md for what is emulated, where each answer's shape comes from, and what is not.
"""

from .faults import Faults
from .library import PlexLibrary
from .model import Album, Artist, Playlist, Track
from .scan import ScanResult
from .server import PlexEmulator, RequestRecord

__all__ = [
    "Album",
    "Artist",
    "Faults",
    "Playlist",
    "PlexEmulator",
    "PlexLibrary",
    "RequestRecord",
    "ScanResult",
    "Track",
]
