"""The playlist questions: an intent from a prompt's words, a change to an intent, a pick of
ids from a shortlist, and (for the filter-last comparison) songs named from memory.

A question is a JSON document in the last user message with a `task`:

    {"task": "playlist-intent", "prompt": "relaxing jazz for reading",
     "genres": [the library's genres], "moods": […], "labels": […]}
    -> {"title": …, "genres": ["Jazz"], "energy": "low", "moods": ["Chill"], …}

    {"task": "playlist-refine", "prompt": …, "intent": {…}, "change": "more upbeat, no vocals"}
    -> {"set": {"energy": "high"}, "add": {"exclude_labels": ["Vocals"], "labels":
        ["Instrumental"]}, "remove": {}, "note": "…"}

    {"task": "playlist-rank", "prompt": …, "intent": "…", "count": 25,
     "items": [{"id": 1, "artist": …, "title": …, "genres": […], "moods": […]}, …]}
    -> {"ids": [3, 1, …]}

    {"task": "playlist-songs", "prompt": …, "count": 25}
    -> {"songs": [{"artist": …, "title": …}, …]}   (from `PlaylistOracle.knowledge`)

Words are read as a small LLM would: genre names from the question's list and a built-in
list (so it names genres the library may lack), decades, energy and mood words in English,
French, Spanish and German, "no/without/sans/sin/ohne X" as an exclusion. Noise (the
emulator's `Noise`): `unknown_genre` puts an OUT_OF_TAXONOMY name into the genres,
`wrong_genre` replaces them; for a ranking, `missing_id` leaves ids out, `extra_id` adds
one that was not shown, and `PlaylistOracle.duplicate_rate` names one twice; the
per-request kinds (non-JSON, truncated, 5xx, …) apply as to any answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .noise import NoiseInjector
from .oracle import FALLBACK_GENRES, OUT_OF_TAXONOMY, OracleAnswer, fold


def _words(text: str) -> list[str]:
    return text.split()


TASKS = ("playlist-intent", "playlist-refine", "playlist-rank", "playlist-songs")
KNOWN_GENRES = (
    *FALLBACK_GENRES, "Ambient", "Bossa Nova", "Latin", "Funk", "Disco", "House", "Techno",
    "Drum & Bass", "Dubstep", "Trip-Hop", "Downtempo", "Punk", "Indie Rock", "Hard Rock",
    "Soul", "Gospel", "Christmas", "Holiday", "Soundtrack", "New Age", "Lo-Fi", "Chill-out",
    "Bebop", "Swing", "Vocal Jazz", "Dub", "Ska", "Singer-Songwriter", "Experimental",
    "Noise", "Synth-Pop", "Trance", "Breakbeat", "Post-Rock", "Shoegaze",
)  # fmt: skip
WORDS = {  # word (any of four languages) → what it means
    **dict.fromkeys(
        _words(
            "calm calming relaxing relaxed chill mellow soothing quiet peaceful gentle soft slow "
            "sleep reading study focus calmer slower calme tranquille doux tranquilo relajante "
            "suave lento ruhig entspannt sanft leise"
        ),
        "low",
    ),
    **dict.fromkeys(
        _words(
            "upbeat energetic party dance dancing workout running fast lively intense faster "
            "fête fete danser rapide fiesta bailar rápido rapido tanzen schnell party"
        ),
        "high",
    ),
}
MOODS = {
    **dict.fromkeys(_words("happy cheerful joyful heureux joyeux feliz alegre fröhlich"), "Happy"),
    **dict.fromkeys(_words("sad melancholic triste traurig"), "Sad"),
    **dict.fromkeys(_words("chill chilled relaxing relaxed calm calme tranquilo ruhig"), "Chill"),
    **dict.fromkeys(_words("mellow doux suave sanft"), "Mellow"),
    **dict.fromkeys(_words("party fête fiesta"), "Party"),
}
TRANSLATED = {"classique": "Classical", "clásica": "Classical", "klassik": "Classical",
              "noël": "Christmas", "noel": "Christmas", "navidad": "Christmas",
              "weihnachten": "Christmas"}  # fmt: skip
NO = r"(?:no|without|not|except|drop(?:\s+the)?|sans|sin|ohne|pas\s+de)"
VOCALS = r"(?:vocals?|voices?|singing|voix|chant|voz|canto|gesang|stimme)"
_DECADE = re.compile(r"\b((?:19|20)\d0)'?s\b|(?:années|años|jahre)\s*'?(\d0)\b|\b'?(\d0)s\b", re.I)
_SIZE = re.compile(r"\b(\d{1,3})\s*(?:songs?|tracks?|titres|canciones|lieder)\b", re.I)
_BY = re.compile(r"\bby\s+([A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*)*)")


def find_playlist_request(text: str) -> dict[str, Any] | None:
    """The playlist question a message holds (the whole text, or its {…} span), or None."""
    candidates = [text.strip()]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            document = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("task") in TASKS:
            return document
    return None


@dataclass(frozen=True)
class Song:
    """A song the emulated LLM knows of (whether or not the listener's library has it)."""

    artist: str
    title: str
    genres: tuple[str, ...]
    year: int | None = None


@dataclass
class PlaylistOracle:
    """Answers the playlist questions; `knowledge` is what it names for playlist-songs."""

    knowledge: list[Song] = field(default_factory=list)
    # A ranking names one id twice at this rate (drawn from the noise's seeded RNG). Kept
    # here, not in `Noise`: the classification questions have no use for it.
    duplicate_rate: float = 0.0

    def answer(self, document: Mapping[str, Any], noise: NoiseInjector | None) -> OracleAnswer:
        task = document.get("task")
        if task == "playlist-intent":
            return self._intent(document, noise)
        if task == "playlist-refine":
            return self._refine(document, noise)
        if task == "playlist-rank":
            return self._rank(document, noise)
        return self._songs(document)

    # ------------------------------------------------------------------ questions

    def _intent(self, document: Mapping[str, Any], noise: NoiseInjector | None) -> OracleAnswer:
        prompt = str(document.get("prompt") or "")
        read = read_words(prompt, _listed(document, "genres"), _listed(document, "moods"))
        out = OracleAnswer({"title": prompt[:40].strip().title() or "Playlist", **read})
        _genre_noise(out, out.document, "genres", noise)
        return out

    def _refine(self, document: Mapping[str, Any], noise: NoiseInjector | None) -> OracleAnswer:
        change = str(document.get("change") or "")
        read = read_words(change, _listed(document, "genres"), _listed(document, "moods"))
        values = {k: read.pop(k) for k in ("energy", "year_min", "year_max", "size") if k in read}
        read.pop("vibe", None)
        patch = {"set": values, "add": read, "remove": {}, "note": f"changed: {change}"}
        out = OracleAnswer(patch)
        _genre_noise(out, patch["add"], "genres", noise)
        return out

    def _rank(self, document: Mapping[str, Any], noise: NoiseInjector | None) -> OracleAnswer:
        items = [i for i in document.get("items", []) if isinstance(i, dict)]
        count = int(document.get("count") or len(items))
        words = set(fold(f"{document.get('prompt', '')} {document.get('intent', '')}").split())

        def fit(item: Mapping[str, Any]) -> tuple[int, str]:
            text = " ".join(
                [str(item.get("title", "")), *map(str, item.get("genres") or []),
                 *map(str, item.get("moods") or [])]
            )  # fmt: skip
            hits = len(words & set(fold(text).split()))
            tie = hashlib.sha1(str(item.get("id")).encode()).hexdigest()
            return -hits, tie

        ids: list[Any] = [i.get("id") for i in sorted(items, key=fit)[:count]]
        out = OracleAnswer({"ids": ids})
        if noise is not None and ids and noise.hit("missing_id"):
            del ids[len(ids) // 2 :]
            out.noise.append("missing_id")
        if noise is not None and noise.hit("extra_id"):
            shown = [int(i.get("id", 0)) for i in items if str(i.get("id", "")).isdigit()]
            ids.insert(0, max(shown, default=0) + 100)
            out.noise.append("extra_id")
        if (
            noise is not None
            and ids
            and self.duplicate_rate
            and noise.rng.random() < self.duplicate_rate
        ):
            ids.insert(1, ids[0])
            out.noise.append("duplicate_id")
        return out

    def _songs(self, document: Mapping[str, Any]) -> OracleAnswer:
        prompt = str(document.get("prompt") or "")
        count = int(document.get("count") or 25)
        read = read_words(prompt, (), ())
        wanted = {fold(g) for g in read.get("genres", [])}
        low, high = read.get("year_min"), read.get("year_max")
        fitting = [
            s
            for s in self.knowledge
            if (not wanted or wanted & {fold(g) for g in s.genres})
            and (low is None or (s.year or 0) >= low)
            and (high is None or (s.year or 9999) <= high)
        ]
        fitting.sort(
            key=lambda s: hashlib.sha1(f"{prompt}|{s.artist}|{s.title}".encode()).hexdigest()
        )
        songs = [{"artist": s.artist, "title": s.title} for s in fitting[:count]]
        return OracleAnswer({"songs": songs})


def read_words(text: str, genres: Sequence[str], moods: Sequence[str]) -> dict[str, Any]:
    """The intent fields a prompt's words give (a small LLM's reading)."""
    out: dict[str, Any] = {}
    folded = " " + fold(text) + " "
    lowered = text.casefold()
    if re.search(rf"\b{NO}\s+{VOCALS}\b", lowered) or "instrumental" in lowered:
        out["exclude_labels"] = ["Vocals"]
        out["labels"] = ["Instrumental"]
        lowered = re.sub(rf"\b{NO}\s+{VOCALS}\b", " ", lowered)
    excluded: list[str] = []
    for m in re.finditer(rf"\b{NO}\s+(?:the\s+)?([\w'&-]+)", lowered):
        excluded.append(fold(m.group(1)))
    names = sorted({*genres, *KNOWN_GENRES}, key=lambda g: -len(g))
    found: list[str] = []
    for name in names:
        key = fold(name)
        if key and f" {key} " in folded and not any(key in fold(f) for f in found):
            (out.setdefault("exclude_genres", []) if key in excluded else found).append(name)
    for word, genre in TRANSLATED.items():
        if f" {fold(word)} " in folded:
            target = out.setdefault("exclude_genres", []) if fold(word) in excluded else found
            if genre not in target:
                target.append(genre)
    if found:
        out["genres"] = found
    avoid = [w for w in excluded if w not in {fold(g) for g in out.get("exclude_genres", [])}]
    avoid = [w.removesuffix("songs").strip() or w for w in avoid if w not in ("vocals", "vocal")]
    if avoid:
        out["avoid"] = avoid
    decades = []
    for m in _DECADE.finditer(text):
        if m.group(1):
            decades.append(int(m.group(1)))
        else:
            short = int(m.group(2) or m.group(3))
            decades.append(2000 + short if short <= 20 else 1900 + short)
    if decades:
        out["year_min"], out["year_max"] = min(decades), max(decades) + 9
    words = folded.split()
    energy = next((WORDS[w] for w in words if w in WORDS), None)
    if energy:
        out["energy"] = energy
    listed = {fold(m): m for m in moods}
    found_moods = []
    for w in words:
        mood = MOODS.get(w)
        if mood and (not listed or fold(mood) in listed):
            found_moods.append(listed.get(fold(mood), mood))
    if found_moods:
        out["moods"] = list(dict.fromkeys(found_moods))
    if m := _SIZE.search(text):
        out["size"] = int(m.group(1))
    if m := _BY.search(text):
        out["artists"] = [m.group(1)]
    out["vibe"] = " ".join(text.split()[:8])
    return out


def _listed(document: Mapping[str, Any], key: str) -> list[str]:
    value = document.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def _genre_noise(
    out: OracleAnswer, target: dict[str, Any], key: str, noise: NoiseInjector | None
) -> None:
    if noise is None:
        return
    if noise.hit("wrong_genre"):
        target[key] = [noise.rng.choice(FALLBACK_GENRES)]
        out.noise.append("wrong_genre")
    if noise.hit("unknown_genre"):
        target[key] = [noise.rng.choice(OUT_OF_TAXONOMY), *target.get(key, [])]
        out.noise.append("unknown_genre")
