"""The rules parser: a prompt in plain English → intent fields, with no LLM.

It knows the taxonomy's genre names and aliases (any n-gram of the prompt that names
one), decades and year ranges ("1950s", "60s", "from 1965 to 1970", "before 1980"),
sizes ("30 songs", "2 hours"), energy and mood words ("calm", "upbeat", "party"),
vocals ("instrumental", "no vocals"), exclusions ("no X", "without X", "drop the X
songs": a genre, an artist, else words to avoid), "by ARTIST" and "like X". What is
left becomes the vibe; words it could not place are reported, which is how a prompt in
another language shows (configure an LLM for those).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .intent import IntentPatch
from .library import Vocabulary, fold

LOW, MEDIUM, HIGH = "low", "medium", "high"


def _words(text: str) -> list[str]:
    return text.split()


ENERGY_WORDS: dict[str, str] = {
    **dict.fromkeys(
        _words(
            "calm calming calmer relax relaxing relaxed chill chilled chillout mellow soothing "
            "quiet quieter peaceful gentle soft softer slow slower sleep sleeping sleepy "
            "reading study studying focus concentration meditation lazy dreamy ambient "
            "evening sunday"
        ),
        LOW,
    ),
    **dict.fromkeys(_words("steady moderate medium groovy groove"), MEDIUM),
    **dict.fromkeys(
        _words(
            "upbeat energetic energy party dance dancing danceable workout running run gym "
            "fast faster lively pumping pump intense aggressive loud heavy hype driving "
            "powerful"
        ),
        HIGH,
    ),
}
# Mood words → the mood names they may be in a library (the tagger's: Chill, Mellow, …).
MOOD_WORDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        _words("calm calming relax relaxing relaxed soothing peaceful"), ("Calm", "Chill", "Mellow")
    ),
    **dict.fromkeys(_words("chill chilled chillout"), ("Chill",)),
    "mellow": ("Mellow",),
    **dict.fromkeys(_words("party partying"), ("Party",)),
    **dict.fromkeys(_words("happy cheerful joyful joyous sunny feelgood"), ("Happy",)),
    **dict.fromkeys(_words("sad melancholic melancholy gloomy heartbreak"), ("Sad",)),
    **dict.fromkeys(_words("sexy sensual seductive"), ("Sexy",)),
    **dict.fromkeys(_words("romantic love"), ("Romantic",)),
    "beautiful": ("Beautiful",),
    **dict.fromkeys(_words("dark moody"), ("Dark",)),
    "aggressive": ("Aggressive",),
    "energetic": ("Energetic",),
}
VOCAL_LABELS = ("Vocals", "Male Vocals", "Female Vocals")
DECADE_WORDS = {
    "twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
    "seventies": 1970, "eighties": 1980, "nineties": 1990, "noughties": 2000,
}  # fmt: skip
STOPWORDS = set(
    _words(
        "a an the some any for of with and or to me my i we us our want wants need give make "
        "create build put together playlist playlists mix mixtape list songs song tracks track "
        "music tunes stuff please that this these those is are be in on at from by just only "
        "good best great nice kind sort something anything lots lot bit little very really "
        "more less much bunch few couple feel feeling vibe vibes style type sounds sound "
        "while during when into it its all every"
    )
)
_SIZE = re.compile(r"\b(\d{1,4})\s*(?:songs?|tracks?|titles?|tunes|pieces)\b", re.I)
_MINUTES = re.compile(r"\b(\d{1,4})\s*(?:minutes?|mins?)\b", re.I)
_HOURS = re.compile(r"\b(\d{1,2}(?:[.,]\d)?)\s*(?:hours?|hrs?|h)\b", re.I)
_RANGE = re.compile(
    r"\b(?:from|between)?\s*((?:19|20)\d\d)\s*(?:-|–|to|and|until|till)\s*((?:19|20)\d\d)\b",
    re.I,
)
_DECADE = re.compile(r"\b(?:the\s+)?((?:19|20)\d0)'?s\b|(?<![\d])'?(\d0)'?s\b", re.I)
_BEFORE = re.compile(r"\b(?:before|until|pre)[\s-]+((?:19|20)\d\d)\b", re.I)
_AFTER = re.compile(r"\b(?:after|since|from|post)[\s-]+((?:19|20)\d\d)\b", re.I)
_IN_YEAR = re.compile(r"\b(?:in|of)\s+((?:19|20)\d\d)\b", re.I)
_NEGATION = re.compile(
    r"\b(?:no|without|not|except|minus|drop|skip|avoid|exclude|remove|lose)\s+"
    r"(?:the\s+|any\s+|more\s+)?([^,;.!?]+?)(?=\s*(?:,|;|\.|!|\?|\band\b|\bbut\b|\bplus\b|$))",
    re.I,
)
_BY = re.compile(
    r"\b(?:by|from|only|just)\s+([^,;.!?]+?)(?=\s*(?:,|;|\.|!|\?|\band\b|\bbut\b|$))", re.I
)
_LIKE = re.compile(
    r"\b(?:like|similar to|sounds like|in the style of|close to)\s+([^,;.!?]+?)"
    r"(?=\s*(?:,|;|\.|!|\?|\band\b|\bbut\b|$))",
    re.I,
)
_VOCALS_OFF = re.compile(
    r"\b(?:no|without|zero|minus)\s+(?:vocals?|voices?|singing|lyrics)\b", re.I
)
_INSTRUMENTAL = re.compile(r"\binstrumentals?\b", re.I)
_WITH_VOCALS = re.compile(
    r"\b(female|male|women|men|woman|man)\s+(?:vocals?|voices?|singers?)\b", re.I
)
_NOUNS = re.compile(r"\b(songs?|tracks?|music|tunes|stuff|ones|numbers?|carols?)\b", re.I)


@dataclass
class ParsedPrompt:
    """What the rules parser found: patch fields, and what it could not place."""

    fields: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)

    def add(self, name: str, *values: str) -> None:
        current = list(self.fields.get(name, ()))
        for value in values:
            if value and value.casefold() not in {c.casefold() for c in current}:
                current.append(value)
        self.fields[name] = tuple(current)

    @property
    def found_anything(self) -> bool:
        return any(k not in ("title", "vibe") for k in self.fields)


class RulesParser:
    """`parse(prompt)` → ParsedPrompt; `patch(change)` → an IntentPatch for a refine."""

    def __init__(self, resolve_genre: Callable[[str], str | None], vocabulary: Vocabulary) -> None:
        self.resolve_genre = resolve_genre
        self.vocabulary = vocabulary

    def parse(self, prompt: str) -> ParsedPrompt:
        out = ParsedPrompt()
        text = " " + " ".join(prompt.split()) + " "
        text = self._shape(text, out)
        text = self._years(text, out)
        text = self._vocals(text, out)
        text = self._negations(text, out)
        text = self._artists(text, out)
        text = self._likes(text, out)
        words = self._genres(text, out)
        self._words(words, out)
        out.fields.setdefault("title", _title(prompt))
        return out

    def patch(self, change: str) -> IntentPatch:
        """A refine without an LLM: lists found are added, the rest set."""
        parsed = self.parse(change)
        parsed.fields.pop("title", None)
        parsed.fields.pop("vibe", None)
        lists = {k: list(v) for k, v in parsed.fields.items() if isinstance(v, tuple)}
        values = {k: v for k, v in parsed.fields.items() if not isinstance(v, tuple)}
        unplaced = " ".join(parsed.unplaced)
        note = f"words not understood: {unplaced}" if unplaced else ""
        return IntentPatch(set=values, add=lists, note=note)

    # ------------------------------------------------------------------ pieces

    def _shape(self, text: str, out: ParsedPrompt) -> str:
        if m := _SIZE.search(text):
            out.fields["size"] = max(1, min(int(m.group(1)), 1000))
            text = _cut(text, m)
        if m := _MINUTES.search(text):
            out.fields["minutes"] = max(1, min(int(m.group(1)), 6000))
            text = _cut(text, m)
        elif m := _HOURS.search(text):
            out.fields["minutes"] = max(1, round(float(m.group(1).replace(",", ".")) * 60))
            text = _cut(text, m)
        return text

    def _years(self, text: str, out: ParsedPrompt) -> str:
        low = high = None
        if m := _RANGE.search(text):
            low, high = sorted((int(m.group(1)), int(m.group(2))))
            text = _cut(text, m)
        decades = []
        while m := _DECADE.search(text):
            if m.group(1):
                decades.append(int(m.group(1)))
            else:
                short = int(m.group(2))
                decades.append(2000 + short if short <= 20 else 1900 + short)
            text = _cut(text, m)
        for word, start in DECADE_WORDS.items():
            if re.search(rf"\b{word}\b", text, re.I):
                decades.append(start)
                text = re.sub(rf"\b{word}\b", " ", text, flags=re.I)
        if decades:
            low = min([*decades, *([low] if low else [])])
            high = max([*(d + 9 for d in decades), *([high] if high else [])])
        if m := _BEFORE.search(text):
            high = int(m.group(1)) - 1
            text = _cut(text, m)
        if m := _AFTER.search(text):
            low = int(m.group(1))
            text = _cut(text, m)
        if low is None and high is None and (m := _IN_YEAR.search(text)):
            low = high = int(m.group(1))
            text = _cut(text, m)
        if low is not None:
            out.fields["year_min"] = low
        if high is not None:
            out.fields["year_max"] = high
        return text

    def _vocals(self, text: str, out: ParsedPrompt) -> str:
        if (m := _VOCALS_OFF.search(text)) or (m := _INSTRUMENTAL.search(text)):
            out.add("labels", self.vocabulary.label("Instrumental") or "Instrumental")
            known = [v for name in VOCAL_LABELS if (v := self.vocabulary.label(name))]
            out.add("exclude_labels", *(known or ["Vocals"]))
            text = _cut(text, m)
        if m := _WITH_VOCALS.search(text):
            who = (
                "Female Vocals"
                if m.group(1).lower() in ("female", "women", "woman")
                else "Male Vocals"
            )
            out.add("labels", self.vocabulary.label(who) or who)
            text = _cut(text, m)
        return text

    def _negations(self, text: str, out: ParsedPrompt) -> str:
        while m := _NEGATION.search(text):
            phrase = _NOUNS.sub(" ", m.group(1)).strip()
            about = bool(_NOUNS.search(m.group(1)))  # "the christmas songs": titles too
            text = _cut(text, m)
            if not phrase:
                continue
            genre = self._genre_in(phrase)
            if genre:
                out.add("exclude_genres", genre)
                if about:
                    out.add("avoid", *[_singular(w) for w in fold(phrase).split()])
            elif artist := self.vocabulary.artist(phrase):
                out.add("exclude_artists", artist)
            elif (word := fold(phrase)) in MOOD_WORDS:
                names = MOOD_WORDS[word]
                out.add("exclude_moods", *(self._moods(names) or names[:1]))
            else:
                words = [w for w in fold(phrase).split() if w not in STOPWORDS and len(w) > 2]
                out.add("avoid", *[_singular(w) for w in words])
        return text

    def _artists(self, text: str, out: ParsedPrompt) -> str:
        for m in list(_BY.finditer(text)):
            artist = self.vocabulary.artist(m.group(1))
            if artist:
                out.add("artists", artist)
                text = text.replace(m.group(0), " ", 1)
        return text

    def _likes(self, text: str, out: ParsedPrompt) -> str:
        while m := _LIKE.search(text):
            out.add("like", m.group(1).strip())
            text = _cut(text, m)
        return text

    def _genres(self, text: str, out: ParsedPrompt) -> list[str]:
        """Find genre names (longest first); the other words are returned in order."""
        words = re.findall(r"[\w&'’+/-]+", text)
        used = [False] * len(words)
        for size in range(min(4, len(words)), 0, -1):
            for start in range(len(words) - size + 1):
                if any(used[start : start + size]):
                    continue
                phrase = " ".join(words[start : start + size])
                if size == 1 and (fold(phrase) in STOPWORDS or len(phrase) < 3):
                    continue
                genre = self._genre_in(phrase)
                artist = self.vocabulary.artist(phrase) if size >= 2 else None
                if genre:
                    out.add("genres", genre)
                elif artist:
                    out.add("artists", artist)
                else:
                    continue
                used[start : start + size] = [True] * size
        return [w for w, u in zip(words, used, strict=True) if not u]

    def _moods(self, names: tuple[str, ...]) -> list[str]:
        """Those of `names` the library has, in its spelling."""
        return [m for name in names if (m := self.vocabulary.mood(name))]

    def _genre_in(self, phrase: str) -> str | None:
        genre = self.resolve_genre(phrase)
        if genre is None and phrase.lower().endswith("s") and len(phrase) > 4:
            genre = self.resolve_genre(phrase[:-1])
        return genre

    def _words(self, words: list[str], out: ParsedPrompt) -> None:
        for word in words:
            key = fold(word)
            if not key or key in STOPWORDS or key.isdigit():
                continue
            placed = key in ENERGY_WORDS or key in MOOD_WORDS
            if key in ENERGY_WORDS:
                out.fields.setdefault("energy", ENERGY_WORDS[key])
            if key in MOOD_WORDS:
                out.add("moods", *self._moods(MOOD_WORDS[key]))
            if not placed:
                out.unplaced.append(word)
        if out.unplaced:  # what no field holds: for semantic search and the LLM's ranking
            out.fields["vibe"] = " ".join(out.unplaced)


def _cut(text: str, match: re.Match[str]) -> str:
    return text[: match.start()] + " " + text[match.end() :]


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "as")):
        return word[:-1]
    return word


def _title(prompt: str) -> str:
    words = " ".join(prompt.split())[:60].strip(" ,.;:")
    return words[:1].upper() + words[1:] if words else "Playlist"
