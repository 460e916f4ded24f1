"""Plex's file paths and this machine's: `plex.path_map` rewrites prefixes both ways."""

from __future__ import annotations


def map_path(path: str | None, path_map: dict[str, str]) -> str | None:
    """Apply the longest matching `plex_prefix → local_prefix` rule."""
    if path is None:
        return None
    for prefix in sorted(path_map, key=len, reverse=True):
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return path_map[prefix].rstrip("/") + path[len(prefix.rstrip("/")) :]
    return path


def reverse_map_path(path: str, path_map: dict[str, str]) -> str:
    """The Plex path of a local `path`: `map_path` backwards, the longest local prefix wins."""
    by_local = sorted(path_map.items(), key=lambda rule: len(rule[1].rstrip("/")), reverse=True)
    for plex_prefix, local_prefix in by_local:
        local_prefix = local_prefix.rstrip("/")
        if path == local_prefix or path.startswith(local_prefix + "/"):
            return plex_prefix.rstrip("/") + path[len(local_prefix) :]
    return path
