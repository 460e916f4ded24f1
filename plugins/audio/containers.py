"""What a file's bytes say about its container, without decoding: pure functions.

Decoders are lenient about damage (libsndfile shortens a cut WAV to what is there, an Ogg
stream cut mid-page just ends early), so these checks tell a truncated file from a short
one, and a damaged audio file from something that is not audio at all.
"""

from __future__ import annotations

import struct

HEAD_BYTES = 64
TAIL_BYTES = 65536  # an Ogg page is at most 65,307 bytes: the last one starts in here


def sniff_container(head: bytes) -> str | None:
    """The container named by a file's first bytes ("wav", "flac", "ogg", …), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RF64" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; 0xFFF1/0xFFF9 are ADTS (raw AAC), the rest MPEG layer 1-3
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"
    if head[:4] == b"caff":
        return "caf"
    if head[:4] == b"MAC ":
        return "ape"
    if head[:4] == b"wvpk":
        return "wavpack"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return None


def ogg_ended(tail: bytes) -> bool:
    """Whether the last Ogg page in `tail` (the file's last bytes) ends its stream.

    Every complete Ogg stream's last page has the end-of-stream flag; a cut file's does not.
    """
    at = tail.rfind(b"OggS")
    while at >= 0:
        if at + 6 <= len(tail) and tail[at + 4] == 0:  # stream structure version 0
            return bool(tail[at + 5] & 0x04)
        at = tail.rfind(b"OggS", 0, at)
    return False


def pcm_bytes_missing(head: bytes, file_size: int) -> int:
    """How many bytes of a WAV/AIFF sample chunk its header declares beyond the file's end.

    `head` holds the file's first bytes (a few KiB: the chunks before the samples). 0 when
    nothing is missing or the header does not say (a streamed WAV declares 0 or 0xFFFFFFFF).
    """
    kind = sniff_container(head)
    if kind == "wav" and head[:4] == b"RIFF":
        chunk_id, endian, offset = b"data", "<", 12
    elif kind == "aiff":
        chunk_id, endian, offset = b"SSND", ">", 12
    else:
        return 0
    while offset + 8 <= len(head):
        name = head[offset : offset + 4]
        (size,) = struct.unpack(endian + "I", head[offset + 4 : offset + 8])
        if name == chunk_id:
            if size in (0, 0xFFFFFFFF):
                return 0
            return max(0, offset + 8 + size - file_size)
        offset += 8 + size + (size & 1)
    return 0
