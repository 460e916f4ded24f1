"""What the `llm-metadata` classifier asks an LLM, as plain functions over plain data.

Tracks become entries: one per album (album artist, album, year, the album's genre tags and
a few track titles; the answer applies to every track of it), one per track for
compilations (track artists differ) and for tracks without an album. What a compilation's
tracks share (year, tags) is said once per request, under "albums" by album name. Entries
are packed into requests as large as `max_items` and the token budget allow. The request is
the convention of the LLM emulator's oracle (tests/emulators/llm/README.md): the last user
message is one JSON object `{"items": [{"id", "artist", "album", "title", …}]}`, the answer
`{"items": [{"id", "genres": [{"name", "confidence"}], "moods": […]}]}`.

No network, clock or database here: `plugins/llm_metadata.py` does that.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genred.api import InvalidAnswer, TrackRecord

from .limits import estimate_tokens

TITLES_PER_ALBUM = 3  # track titles shown for an album: enough to place it, few tokens
MAX_TAGS = 5  # existing genre tags shown per entry
MAX_TEXT = 100  # characters of one title, album or artist name
MAX_LABEL = 60  # a longer "genre" or "mood" in an answer is not one
# Answer tokens reserved per item (the admission check counts them before the answer):
# a compact item with three genres is ~33 tokens at 4 characters a token; over dozens of
# items the longer and shorter ones even out.
ANSWER_TOKENS_BASE = 32
ANSWER_TOKENS_PER_ITEM = 36
MOOD_TOKENS_PER_ITEM = 25
VARIOUS_ARTISTS = frozenset({"various artists", "various", "va", "v a", "verschiedene"})
_TAG_SEPARATORS = re.compile(r"\s*[,;|/\x00]\s*")
_FEATURING = re.compile(r"\s+(?:feat|ft|featuring)\b.*$")

SYSTEM = (
    "You are a music librarian. For each item of the user's JSON give its genres: up to 3 "
    "common genre or style names (as Discogs or AllMusic name them), best first, each with "
    'a confidence from 0 to 1. An item with "more" is an album ("title" and "more" are some '
    'of its tracks): answer for the whole album. "albums" holds the year and tags of the '
    'compilations items are from, by album name. "tags" are genres the files carry, often '
    'wrong or vague. {moods} When no genre fits, leave "genres" empty and say why in '
    '"reason". Answer with JSON only, one item per id, in the same order: '
    '{{"items":[{{"id":"1","genres":[{{"name":"Jazz","confidence":0.9}}],"moods":[],'
    '"reason":""}}]}}'
)
MOODS_ON = 'Also give up to 3 moods (such as Calm, Energetic, Melancholy) in "moods".'
MOODS_OFF = 'Leave "moods" empty.'

_LABELS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "confidence": {"type": "number"}},
        "required": ["name", "confidence"],
        "additionalProperties": False,
    },
}
ANSWER_SCHEMA: dict[str, Any] = {
    "title": "GenreAnswer",
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "genres": _LABELS_SCHEMA,
                    "moods": _LABELS_SCHEMA,
                    "reason": {"type": "string"},
                },
                "required": ["id", "genres", "moods", "reason"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["items"],
    "additionalProperties": False,
}


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True, eq=False)
class Entry:
    """One question: an album or a track. Its answer applies to `track_ids`."""

    track_ids: tuple[int, ...]
    item: dict[str, Any]  # what the model is told (normalized), without the request's id
    # A compilation track: (album name, what its tracks share), sent once per request.
    shared: tuple[str, dict[str, Any]] | None = None

    def wire(self, request_id: str) -> str:
        """The item as sent: compact JSON with the request's id first."""
        return _dumps({"id": request_id, **self.item})

    def cache_key(self, model: str, prompt_version: int, moods: bool) -> str:
        """Same metadata, model and prompt: same answer, so asked once."""
        blob = _dumps(
            {
                "item": self.item,
                "shared": self.shared,
                "model": model,
                "prompt": prompt_version,
                "moods": moods,
            }
        )
        return hashlib.sha256(blob.encode()).hexdigest()


def fold(text: object) -> str:
    """Case, accents and punctuation folded away: "Beyoncé - Halo!" -> "beyonce halo"."""
    plain = unicodedata.normalize("NFKD", str(text or ""))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", plain).split())


def album_key(track: TrackRecord) -> tuple[str, ...] | None:
    """What groups a track with its album mates: the source's album id, else the names."""
    if track.album_source_id:
        return ("id", track.source, track.album_source_id)
    if track.album and fold(track.album):
        return ("name", track.source, fold(track.album_artist or track.artist), fold(track.album))
    return None


def is_compilation(tracks: Sequence[TrackRecord]) -> bool:
    """Various artists, or tracks by different artists (a featured guest does not count)."""
    if any(fold(t.album_artist) in VARIOUS_ARTISTS for t in tracks):
        return True
    artists = {_FEATURING.sub("", fold(t.artist)) for t in tracks if fold(t.artist)}
    return len(artists) > 1


def build_entries(
    tracks: Sequence[TrackRecord],
    albums: Mapping[tuple[str, ...], Sequence[TrackRecord]] | None = None,
) -> list[Entry]:
    """The entries for `tracks` (stored ones: `id` set), in order of first appearance.

    `albums` gives every track of an album (from the store), so an album's entry, and so its
    cache key, is the same whichever of its tracks a batch holds; without it, the album is
    what `tracks` hold of it.
    """
    groups: dict[Any, list[TrackRecord]] = {}
    for track in tracks:
        if track.id is None:
            continue
        key = album_key(track)
        groups.setdefault(key if key is not None else ("track", track.id), []).append(track)
    entries: list[Entry] = []
    for key, members in groups.items():
        if key[0] == "track":
            entries.append(track_entry(members[0]))
            continue
        whole = list((albums or {}).get(key) or ())
        known = {t.id for t in whole}
        whole += [t for t in members if t.id not in known]
        if is_compilation(whole):
            entries.extend(compilation_entries(whole, members))
        else:
            entries.append(album_entry(whole, tuple(t.id for t in members if t.id is not None)))
    return entries


def album_entry(tracks: Sequence[TrackRecord], track_ids: tuple[int, ...]) -> Entry:
    ordered = sorted(
        tracks, key=lambda t: (t.disc_no or 1, t.track_no or 10_000, fold(t.title), t.id or 0)
    )
    first = ordered[0]
    titles = _unique(_clean(t.title) for t in ordered)[:TITLES_PER_ALBUM]
    years = Counter(t.year for t in ordered if t.year)
    tags = _tags(
        [g for t in ordered for g in t.album_genres] + [g for t in ordered for g in t.genres]
    )
    item = {
        "artist": _clean(first.album_artist or first.artist),
        "album": _clean(first.album),
        "year": years.most_common(1)[0][0] if years else None,
        "tags": tags or _tags(g for t in ordered for g in t.artist_genres),
        "title": titles[0] if titles else None,
        "more": titles[1:],
    }
    return Entry(track_ids, _compact(item))


def compilation_entries(
    tracks: Sequence[TrackRecord], members: Sequence[TrackRecord]
) -> list[Entry]:
    """One entry per track of `members`; the album's year and tags go to `shared`."""
    years = Counter(t.year for t in tracks if t.year)
    common = Counter(tuple(_tags(t.genres)) for t in tracks if t.genres).most_common(1)
    # The album's tags and those most of its tracks carry.
    tags = _tags([g for t in tracks for g in t.album_genres] + list(common[0][0] if common else ()))
    facts = _compact({"year": years.most_common(1)[0][0] if years else None, "tags": tags})
    out = []
    for track in members:
        entry = track_entry(track)
        album = entry.item.get("album")
        if not album or not facts:
            out.append(entry)
            continue
        item = dict(entry.item)
        if item.get("year") == facts.get("year"):
            item.pop("year", None)
        if {fold(t) for t in item.get("tags", ())} <= {fold(t) for t in tags}:
            item.pop("tags", None)  # nothing the album's tags do not say
        out.append(Entry(entry.track_ids, item, (album, facts)))
    return out


def track_entry(track: TrackRecord) -> Entry:
    artist = _clean(track.artist or track.album_artist)
    album_artist = _clean(track.album_artist)
    title = _clean(track.title)
    item = {
        "artist": artist,
        "album_artist": album_artist
        if album_artist and fold(album_artist) not in (fold(artist), *VARIOUS_ARTISTS)
        else None,
        "album": _clean(track.album),
        "title": title,
        "year": track.year,
        "tags": _tags(track.genres) or _tags(track.album_genres) or _tags(track.artist_genres),
        "file": _file_name(track.path, title),
    }
    return Entry((track.id,) if track.id is not None else (), _compact(item))


def _file_name(path: str | None, title: str | None) -> str | None:
    """The file's name when it says more than the title ("03 - Title.mp3" does not)."""
    if not path:
        return None
    name = re.split(r"[/\\]", path)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    bare = re.sub(r"^[\d\s._-]+", "", fold(stem))  # leading track and disc numbers
    if title and bare == fold(title):
        return None
    return _clean(name)


def _clean(text: object) -> str | None:
    if text is None:
        return None
    value = " ".join(str(text).split())
    return value[:MAX_TEXT] or None


def _unique(values: Iterable[str | None]) -> list[str]:
    seen: set[str] = set()
    out = []
    for value in values:
        key = fold(value)
        if value and key and key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _tags(values: Iterable[str]) -> list[str]:
    """Tags once each ("Pop, Rock" and "Pop/Rock" are "Pop" and "Rock"), a few."""
    parts = (_clean(p) for v in values for p in _TAG_SEPARATORS.split(v))
    return [t[:MAX_LABEL] for t in _unique(parts)][:MAX_TAGS]


def _compact(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v not in (None, "", [], ())}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- requests


def system_prompt(moods: bool) -> str:
    return SYSTEM.format(moods=MOODS_ON if moods else MOODS_OFF)


def answer_budget(items: int, moods: bool, cap: int, per_item: int | None = None) -> int:
    """The max_tokens of a request of `items` entries (`pack` keeps it within `cap`);
    `per_item` answer tokens per entry (default: a genre answer's)."""
    if per_item is None:
        per_item = ANSWER_TOKENS_PER_ITEM + (MOOD_TOKENS_PER_ITEM if moods else 0)
    return min(cap, ANSWER_TOKENS_BASE + items * per_item)


def request_ids(count: int) -> list[str]:
    """Short ids, unique within one request: the answer echoes them, so they cost twice."""
    return [str(n) for n in range(1, count + 1)]


def messages_for(entries: Sequence[Entry], moods: bool) -> list[dict[str, str]]:
    """The chat messages asking about `entries`, their ids numbered from "1"."""
    return [
        {"role": "system", "content": system_prompt(moods)},
        {"role": "user", "content": user_content(entries)},
    ]


def user_content(entries: Sequence[Entry], head: Mapping[str, Any] | None = None) -> str:
    """`{…head, "albums": {…}, "items": [...]}`: the entries with ids from "1", and what
    their compilations share, said once."""
    items = ",".join(e.wire(i) for e, i in zip(entries, request_ids(len(entries)), strict=True))
    shared = dict(e.shared for e in entries if e.shared is not None)
    front = "".join(f"{_dumps(k)}:{_dumps(v)}," for k, v in (head or {}).items())
    albums = '"albums":' + _dumps(shared) + "," if shared else ""
    return "{" + front + albums + '"items":[' + items + "]}"


def pack(
    entries: Sequence[Entry],
    *,
    max_items: int,
    max_request_tokens: int,
    max_answer_tokens: int,
    moods: bool,
    base_chars: int | None = None,
    per_item: int | None = None,
) -> list[list[Entry]]:
    """Entries in order, as few requests as `max_items` and the token budgets allow.

    A request's tokens are counted as `genred_plugins.llm.estimate_tokens` counts them (prompt
    characters / 4 + its max_tokens), which is what the rate limiter reserves: at most
    `max_request_tokens`, of which the answer's at most `max_answer_tokens`. An entry too
    large for any request goes alone. `base_chars` (the system message and the user
    message's frame) and `per_item` (answer tokens per entry) default to a genre question's.
    """
    base = base_chars if base_chars is not None else len(system_prompt(moods)) + len('{"items":[]}')

    def budget(items: int, cap: int) -> int:
        return answer_budget(items, moods, cap, per_item)

    requests: list[list[Entry]] = []
    current: list[Entry] = []
    shared: dict[str, dict[str, Any]] = {}
    chars = base

    def added(entry: Entry) -> int:
        """Characters `entry` adds to the current request."""
        size = len(entry.wire(str(len(current) + 1))) + (1 if current else 0)
        if entry.shared is not None and entry.shared[0] not in shared:
            name, facts = entry.shared
            size += len(_dumps(name)) + 1 + len(_dumps(facts))
            size += 1 if shared else len('"albums":{},')
        return size

    for entry in entries:
        size = added(entry)
        tokens = math.ceil((chars + size) / 4)
        tokens += budget(len(current) + 1, max_answer_tokens)
        # Two compilations of one name do not go into one request.
        clash = (
            entry.shared is not None
            and shared.get(entry.shared[0], entry.shared[1]) != (entry.shared[1])
        )
        full = len(current) >= max_items or budget(len(current) + 1, 1 << 30) > max_answer_tokens
        if current and (full or tokens > max_request_tokens or clash):
            requests.append(current)
            current, shared, chars = [], {}, base
            size = added(entry)
        current.append(entry)
        if entry.shared is not None:
            shared.setdefault(*entry.shared)
        chars += size
    if current:
        requests.append(current)
    return requests


def request_tokens(entries: Sequence[Entry], moods: bool, max_answer_tokens: int) -> int:
    """What the rate limiter reserves for the request asking about `entries`."""
    budget = answer_budget(len(entries), moods, max_answer_tokens)
    return estimate_tokens(messages_for(entries, moods), budget)


# --------------------------------------------------------------------------- the answer

# What an answer item may carry; the fields of a question's item (an echoed input) may not.
GENRE_FIELDS = frozenset({"id", "genres", "moods", "reason"})
INPUT_FIELDS = frozenset(
    {"artist", "album_artist", "album", "title", "year", "tags", "more", "file", "albums"}
)


@dataclass(frozen=True)
class AnswerItem:
    """One item of an answer, checked: names as the model wrote them, confidences in [0, 1].

    `reason`: why no genre fits (an empty `genres` is an answer only with one); `problem`:
    why the item is unusable (its entry fails; the answer's other items count)."""

    id: str
    genres: tuple[tuple[str, float], ...]
    moods: tuple[tuple[str, float], ...]
    reason: str = ""
    problem: str | None = None


def answer_items(data: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """`(where, item)` for each item of an `{"items": [{"id": …, …}]}` answer; InvalidAnswer
    when it is not that shape (every LLM question here is answered so)."""
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise InvalidAnswer('expected an object {"items": [...]}')
    for n, item in enumerate(data["items"]):
        where = f"items[{n}]"
        if not isinstance(item, dict):
            raise InvalidAnswer(f"{where} is not an object")
        if not isinstance(item.get("id"), str | int) or isinstance(item.get("id"), bool):
            raise InvalidAnswer(f'{where} has no "id"')
        yield f'item "{str(item["id"]).strip()}"', item


def check_fields(item: Mapping[str, Any], where: str, key: str, allowed: frozenset[str]) -> None:
    """InvalidAnswer unless `item` has its answer's `key` and only answer fields."""
    echoed = sorted(INPUT_FIELDS & item.keys())
    if key not in item:
        why = " (the answer echoed the input)" if echoed else ""
        raise InvalidAnswer(f'{where}: no "{key}" key{why}')
    if echoed:
        raise InvalidAnswer(f"{where}: the answer echoed the input ({', '.join(echoed)})")
    extra = sorted(set(item) - allowed)
    if extra:
        raise InvalidAnswer(f"{where}: fields that are not the answer's ({', '.join(extra)})")


def confidence_of(value: Any, where: str) -> float:
    """A confidence as given: a number from 0 to 1, else InvalidAnswer."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidAnswer(f"{where}: confidence {value!r} is not a number")
    if not 0.0 <= value <= 1.0:
        raise InvalidAnswer(f"{where}: confidence {value!r} is not between 0 and 1")
    return float(value)


def first_problem(items: Sequence[Any]) -> None:
    """InvalidAnswer (asked again) when every item of a non-empty answer is unusable."""
    problems = [i.problem for i in items if i.problem]
    if items and len(problems) == len(items):
        more = f" (and {len(problems) - 1} more items)" if len(problems) > 1 else ""
        raise InvalidAnswer(problems[0] + more)


def check_answer(data: Any, moods: bool = False) -> list[AnswerItem]:
    """The answer's structure (the chat's `validate` hook): InvalidAnswer has it asked again.

    An item is usable with a `genres` list of `{"name", "confidence"}` (0 to 1), not empty
    unless a `reason` says why, `moods` too when they are asked, and no other fields (an
    echoed input is not an answer). An unusable item carries its `problem`; an answer with
    no usable item is InvalidAnswer. Which ids and names are usable is the classifier's
    business (an unknown id is dropped, not asked again).
    """
    out = []
    for where, item in answer_items(data):
        try:
            out.append(_genre_item(item, where, moods))
        except InvalidAnswer as exc:
            out.append(AnswerItem(str(item["id"]).strip(), (), (), problem=str(exc)))
    first_problem(out)
    return out


def _genre_item(item: Mapping[str, Any], where: str, moods: bool) -> AnswerItem:
    check_fields(item, where, "genres", GENRE_FIELDS)
    if moods and "moods" not in item:
        raise InvalidAnswer(f'{where}: no "moods" key')
    reason = item.get("reason", "")
    if not isinstance(reason, str):
        raise InvalidAnswer(f'{where}: "reason" is not a string')
    reason = " ".join(reason.split())
    genres = _labels(item["genres"], f"{where}.genres")
    if not genres and not reason:
        raise InvalidAnswer(f'{where}: "genres" is empty and no "reason" says why')
    found_moods = _labels(item.get("moods", []), f"{where}.moods")
    return AnswerItem(str(item["id"]).strip(), genres, found_moods, reason)


def _labels(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, list):
        raise InvalidAnswer(f"{where} is not a list")
    out = []
    for n, label in enumerate(value):
        if not isinstance(label, dict) or set(label) != {"name", "confidence"}:
            raise InvalidAnswer(f'{where}[{n}] is not {{"name": …, "confidence": …}}')
        name = label["name"]
        if not isinstance(name, str) or not name.strip():
            raise InvalidAnswer(f"{where}[{n}].name is not a name")
        confidence = confidence_of(label["confidence"], f"{where}[{n}]")
        out.append((" ".join(name.split()), confidence))
    return tuple(out)


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Plan:
    """What classifying a library would cost, computed without sending anything."""

    tracks: int
    entries: int  # questions (albums, and tracks of compilations or of no album)
    requests: int
    tokens: int  # as the rate limiter reserves them (prompt + max_tokens)
    each: tuple[int, ...] = ()  # those tokens request by request


def plan_requests(
    tracks: Sequence[TrackRecord],
    *,
    batch_tracks: int,
    max_items: int,
    max_request_tokens: int,
    max_answer_tokens: int,
    moods: bool = False,
) -> Plan:
    """The requests a first classify run makes over `tracks` (stored: `id` set), as the
    stage does it: in id order, `batch_tracks` at a time, albums whole, each question once."""
    ordered = sorted((t for t in tracks if t.id is not None), key=lambda t: t.id or 0)
    albums: dict[tuple[str, ...], list[TrackRecord]] = {}
    for track in ordered:
        key = album_key(track)
        if key is not None:
            albums.setdefault(key, []).append(track)
    asked: set[str] = set()
    entries = 0
    each: list[int] = []
    for start in range(0, len(ordered), batch_tracks):
        fresh = []
        for entry in build_entries(ordered[start : start + batch_tracks], albums):
            question = entry.cache_key("", 0, moods)
            if question not in asked:
                asked.add(question)
                fresh.append(entry)
        entries += len(fresh)
        for batch in pack(
            fresh,
            max_items=max_items,
            max_request_tokens=max_request_tokens,
            max_answer_tokens=max_answer_tokens,
            moods=moods,
        ):
            each.append(request_tokens(batch, moods, max_answer_tokens))
    return Plan(len(ordered), entries, len(each), sum(each), tuple(each))
