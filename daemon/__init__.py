"""genred: a genre daemon for music libraries."""

__version__ = "0.1.0"
