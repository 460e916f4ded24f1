"""Spotify-style identifiers: base62 ids, URIs, snapshot ids and ISRCs, all deterministic."""

from __future__ import annotations

import base64
import hashlib
import re

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 22  # every catalogue and playlist id Spotify hands out has 22 base62 characters
_ID = re.compile(r"[0-9A-Za-z]+")
_URI = re.compile(r"spotify:(track|episode|album|artist|playlist|user|show):([0-9A-Za-z]+)")
ISRC_PATTERN = re.compile(r"[A-Z]{2}[A-Z0-9]{3}\d{7}")


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()


def spotify_id(*parts: object) -> str:
    """A stable 22-character base62 id for `parts` (independent of PYTHONHASHSEED)."""
    n = int.from_bytes(_digest("id", *parts), "big")
    chars = []
    for _ in range(ID_LENGTH):
        n, rest = divmod(n, 62)
        chars.append(BASE62[rest])
    return "".join(chars)


def hash_fraction(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for `parts`."""
    return int.from_bytes(_digest("fraction", *parts)[:8], "big") / 2**64


def hex_digest(*parts: object, length: int = 40) -> str:
    return _digest("hex", *parts).hex()[:length]


def is_base62(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def uri(kind: str, ident: str) -> str:
    return f"spotify:{kind}:{ident}"


def parse_uri(value: str) -> tuple[str, str] | None:
    """`spotify:track:<id>` → ("track", id); anything else → None."""
    match = _URI.fullmatch(value.strip())
    return (match.group(1), match.group(2)) if match else None


def snapshot_id(playlist_id: str, version: int) -> str:
    """Shaped as the recorded ones ("AAAACG9jmE4O/USJ4XSA7mfhfXkaxawY"): base64 of 24 bytes,
    the first 4 a big-endian version counter (the recordings start AAAAAq…, AAAACG…)."""
    raw = version.to_bytes(4, "big") + _digest("snapshot", playlist_id, version)[:20]
    return base64.b64encode(raw).decode("ascii")


def make_isrc(country: str, registrant: str, year: int, designation: int) -> str:
    """An ISRC as ISO 3901 writes it without dashes: CC XXX YY NNNNN (12 characters)."""
    return f"{country}{registrant}{year % 100:02d}{designation:05d}"
