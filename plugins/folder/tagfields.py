"""The genre and mood fields of every tag family mutagen writes, read and set raw.

Raw means as stored: ID3's TCON text as written (not parsed: "(17)" stays "(17)"), every
value in its order, duplicates and spacing kept, so what is read can be written back
exactly (that is what `genred revert` restores). Only empty values are dropped: an empty
field is no genre. The folder source reads the same fields (parsed, for the store).

- ID3 (MP3, WAV, AIFF): TCON, TMOO. Loaded untranslated (mutagen's default load turns a
  2.3 tag into 2.4 frames, "(17)" into "Rock" and TYER into TDRC) and saved in the file's
  own version, so every other frame stays as it was: 2.3 stays 2.3 (several values NUL-
  separated, as in 2.4, so they read back as several; TMOO in 2.3 is off the letter of the
  spec, as the taggers that write moods do); 2.2, which mutagen cannot write, becomes 2.4.
- Vorbis comments (FLAC, Ogg Vorbis, Opus, Ogg FLAC, Speex): GENRE, MOOD (the field name
  keeps the case the file had).
- MP4 (M4A): ©gen, and iTunes' freeform ----:com.apple.iTunes:MOOD.
- ASF (WMA): WM/Genre, WM/Mood. APEv2 (Monkey's Audio, WavPack, Musepack): Genre, Mood.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mutagen
from mutagen.apev2 import APEv2
from mutagen.asf import ASFTags
from mutagen.id3 import ID3, TCON, TMOO
from mutagen.mp4 import AtomDataType, MP4FreeForm, MP4Tags

from genred.api import FileNotWritable

FIELDS = ("genre", "mood")
ID3_FRAMES = {"genre": TCON, "mood": TMOO}
VORBIS_NAMES = {"genre": "GENRE", "mood": "MOOD"}
MP4_NAMES = {"genre": "\xa9gen", "mood": "----:com.apple.iTunes:MOOD"}
ASF_NAMES = {"genre": "WM/Genre", "mood": "WM/Mood"}
APE_NAMES = {"genre": "Genre", "mood": "Mood"}

Values = tuple[str, ...]


def load(path: str) -> Any:
    """The file as mutagen reads it (None: not a format it knows), ID3 untranslated."""
    audio = mutagen.File(path)
    if audio is not None and isinstance(audio.tags, ID3) and audio.tags.version >= (2, 3, 0):
        audio = type(audio)(path, translate=False)
    return audio


def family(audio: Any) -> str:
    """The tag family of a loaded mutagen file (tags added when it has none yet)."""
    if audio.tags is None:
        try:
            audio.add_tags()
        except Exception as exc:  # mutagen says so in its own words, per format
            raise FileNotWritable(
                f"cannot write tags into {type(audio).__name__} files ({exc})"
            ) from None
    tags = audio.tags
    if isinstance(tags, ID3):
        return "id3"
    if isinstance(tags, MP4Tags):
        return "mp4"
    if isinstance(tags, ASFTags):
        return "asf"
    if isinstance(tags, APEv2):
        return "ape"
    if hasattr(tags, "vendor"):  # every Vorbis comment block (FLAC, Ogg) has a vendor
        return "vorbis"
    raise FileNotWritable(f"cannot write tags of type {type(tags).__name__}")


def read(audio: Any, field: str) -> Values:
    """The field's values as stored, empty ones left out (nothing when it has no tags)."""
    tags = audio.tags
    if tags is None:
        return ()
    kind = family(audio)
    raw: list[Any]
    if kind == "id3":
        raw = [v for frame in tags.getall(ID3_FRAMES[field].__name__) for v in frame.text]
    elif kind == "mp4":
        raw = list(tags.get(MP4_NAMES[field], []))
        raw = [bytes(v).decode("utf-8", "replace") if isinstance(v, bytes) else v for v in raw]
    elif kind == "asf":
        raw = [getattr(v, "value", v) for v in tags.get(ASF_NAMES[field], [])]
    elif kind == "ape":
        value = tags.get(APE_NAMES[field])
        raw = list(value) if value is not None else []
    else:
        raw = [v for k, v in tags if k.casefold() == VORBIS_NAMES[field].casefold()]
    return tuple(str(v) for v in raw if str(v).strip())


def write(audio: Any, field: str, values: Sequence[str]) -> None:
    """Make the field hold exactly `values` (none: remove it)."""
    kind = family(audio)
    tags = audio.tags
    values = list(values)
    if kind == "id3":
        frame = ID3_FRAMES[field]
        tags.delall(frame.__name__)
        if values:
            tags.add(frame(encoding=3, text=values))
        return
    if kind == "vorbis":
        name = next(
            (k for k, _ in tags if k.casefold() == VORBIS_NAMES[field].casefold()),
            VORBIS_NAMES[field],
        )
        if values:
            tags[name] = values
        elif name.casefold() in tags:
            del tags[name]
        return
    if kind == "mp4":
        name = MP4_NAMES[field]
        stored: list[Any] = values
        if field == "mood":
            stored = [MP4FreeForm(v.encode("utf-8"), AtomDataType.UTF8) for v in values]
    else:
        name = (ASF_NAMES if kind == "asf" else APE_NAMES)[field]
        stored = values
    if values:
        tags[name] = stored
    elif name in tags:
        del tags[name]


def save(audio: Any) -> None:
    """Save into the file it was loaded from (by `load`); ID3 in the version the file had
    (2.4 for a new tag or a 2.2 one)."""
    if family(audio) == "id3":
        audio.save(v2_version=3 if audio.tags.version[:2] == (2, 3) else 4, v23_sep=None)
    else:
        audio.save()
