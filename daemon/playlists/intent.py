"""The typed intent of a playlist: what the prompt asks, stored with the playlist.

A small rule grammar in the spirit of Navidrome's smart playlists (`.nsp`): every hard
constraint must hold (`all`), the genres among themselves are `any` (a sub-genre counts
for its parent: Bebop is Jazz), and exclusions are `isNot`. Soft preferences only order
the tracks — and filter them while enough tracks pass, being relaxed in `RELAX_ORDER`
when too few do. Hard constraints are never relaxed.

Every field records where its value came from (`sources`: llm, rules, user, refine, or
default when unset), so `genred playlist show` can tell what the LLM read and what a
person set. A refresh re-runs the stored intent: no LLM.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Energy = Literal["low", "medium", "high"]
Order = Literal["flow", "score", "shuffle", "year", "added"]

# Energy words → the range of the 0..1 estimate (genred.playlists.energy) a track needs.
ENERGY_RANGES: dict[str, tuple[float, float]] = {
    "low": (0.0, 0.4),
    "medium": (0.3, 0.7),
    "high": (0.6, 1.0),
}
ENERGY_WORDS = {"low": "calm", "medium": "steady", "high": "upbeat"}

HARD_FIELDS = (
    "genres",
    "exclude_genres",
    "year_min",
    "year_max",
    "artists",
    "exclude_artists",
    "avoid",
    "exclude_moods",
    "exclude_labels",
)
SOFT_FIELDS = ("moods", "labels", "energy", "like", "vibe")
SHAPE_FIELDS = ("title", "size", "minutes", "per_artist", "per_album", "order", "versions")
LIST_FIELDS = (
    "genres",
    "exclude_genres",
    "artists",
    "exclude_artists",
    "avoid",
    "exclude_moods",
    "exclude_labels",
    "moods",
    "labels",
    "like",
)
FIELDS = (*SHAPE_FIELDS, *HARD_FIELDS, *SOFT_FIELDS)
# Soft preferences are given up in this order when the hard constraints admit too few.
RELAX_ORDER = ("energy", "labels", "moods")


class Intent(BaseModel):
    """What a playlist is made of. Lists are tuples; names are canonical (taxonomy genres,
    the library's own moods, labels and artists)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = ""
    # hard constraints
    genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    year_min: int | None = Field(None, ge=1000, le=2100)
    year_max: int | None = Field(None, ge=1000, le=2100)
    artists: tuple[str, ...] = ()
    exclude_artists: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()  # words no title, album or genre of a track may hold
    exclude_moods: tuple[str, ...] = ()
    exclude_labels: tuple[str, ...] = ()  # "no vocals": tracks labelled Vocals
    # soft preferences
    moods: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    energy: Energy | None = None
    like: tuple[str, ...] = ()  # titles, albums or artists of the library to sound like
    vibe: str = ""  # the rest of the prompt, in the user's words
    # shape
    size: int | None = Field(None, ge=1, le=1000)
    minutes: int | None = Field(None, ge=1, le=6000)
    per_artist: int | None = Field(None, ge=1, le=1000)
    per_album: int | None = Field(None, ge=1, le=1000)
    order: Order = "flow"
    versions: bool = False  # live versions, remasters, edits beside the original
    sources: dict[str, str] = Field(default_factory=dict)

    def source_of(self, name: str) -> str:
        return self.sources.get(name, "default")

    def is_empty(self) -> bool:
        """Nothing to select by: no constraint and no preference at all."""
        return not any(getattr(self, f) for f in (*HARD_FIELDS, *SOFT_FIELDS))

    def hard(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in HARD_FIELDS if getattr(self, f)}

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> Intent:
        return cls.model_validate(json.loads(data) if isinstance(data, str) else data)

    def summary(self) -> str:
        """One line for a person: "Jazz · 1950s–1960s · calm · Chill · no vocals · 25 tracks"."""
        parts: list[str] = []
        if self.genres:
            parts.append(" or ".join(self.genres))
        if self.artists:
            parts.append("by " + ", ".join(self.artists))
        if self.year_min is not None or self.year_max is not None:
            parts.append(year_range_text(self.year_min, self.year_max))
        if self.energy:
            parts.append(ENERGY_WORDS[self.energy])
        parts += list(self.moods) + list(self.labels)
        if self.like:
            parts.append("like " + ", ".join(self.like))
        for values, word in (
            (self.exclude_genres, "no"),
            (self.exclude_artists, "not by"),
            (self.exclude_moods, "not"),
            (self.exclude_labels, "no"),
            (self.avoid, "nothing with"),
        ):
            if values:
                parts.append(f"{word} {', '.join(values)}")
        if self.vibe:
            parts.append(f"“{self.vibe}”")
        if self.minutes:
            parts.append(f"{self.minutes} min")
        elif self.size:
            parts.append(f"{self.size} tracks")
        return " · ".join(parts) or "anything"


def year_range_text(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        if low % 10 == 0 and high == low + 9:
            return f"{low}s"
        return f"{low}–{high}" if low != high else str(low)
    return f"from {low}" if low is not None else f"until {high}"


# --------------------------------------------------------------------------- changes


class IntentPatch(BaseModel):
    """A change to an intent (a refine, a user's edit): `set` replaces fields, `add` and
    `remove` change list fields; `null` in `set` clears a field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    set: dict[str, Any] = Field(default_factory=dict)
    add: dict[str, list[str]] = Field(default_factory=dict)
    remove: dict[str, list[str]] = Field(default_factory=dict)
    note: str = ""

    @field_validator("set")
    @classmethod
    def _known_set(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown intent fields {unknown}; known: {', '.join(FIELDS)}")
        return value

    @field_validator("add", "remove")
    @classmethod
    def _known_lists(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(LIST_FIELDS))
        if unknown:
            raise ValueError(f"not list fields {unknown}; lists: {', '.join(LIST_FIELDS)}")
        return value

    def is_empty(self) -> bool:
        return not (self.set or any(self.add.values()) or any(self.remove.values()))

    def fields(self) -> frozenset[str]:
        changed = [*self.set, *(k for k, v in self.add.items() if v), *self.remove]
        return frozenset(changed)


def apply_patch(intent: Intent, patch: IntentPatch, source: str) -> Intent:
    """The intent with the patch applied; every field it touches gets `source`.

    Raises ValueError (pydantic's) when a value does not fit its field.
    """
    data = intent.model_dump()
    sources = dict(intent.sources)
    for name, value in patch.set.items():
        data[name] = _default(name) if value is None else value
        sources[name] = source
    for name, values in patch.add.items():
        current = list(data.get(name) or ())
        folded = {v.casefold() for v in current}
        current += [v for v in values if v.casefold() not in folded]
        data[name] = tuple(current)
        sources[name] = source
    for name, values in patch.remove.items():
        gone = {v.casefold() for v in values}
        data[name] = tuple(v for v in data.get(name) or () if v.casefold() not in gone)
        sources[name] = source
    # An exclusion wins over the same inclusion ("no jazz" after "jazz").
    for include, exclude in (
        ("genres", "exclude_genres"),
        ("artists", "exclude_artists"),
        ("moods", "exclude_moods"),
        ("labels", "exclude_labels"),
    ):
        if patch.add.get(exclude) or exclude in patch.set:
            gone = {v.casefold() for v in data[exclude]}
            data[include] = tuple(v for v in data[include] if v.casefold() not in gone)
        elif patch.add.get(include) or include in patch.set:
            back = {v.casefold() for v in data[include]}
            data[exclude] = tuple(v for v in data[exclude] if v.casefold() not in back)
    data["sources"] = sources
    return Intent.model_validate(data)


def _default(name: str) -> Any:
    return Intent.model_fields[name].get_default(call_default_factory=True)


def changed_fields(before: Intent, after: Intent) -> list[str]:
    return [f for f in FIELDS if getattr(before, f) != getattr(after, f)]


def describe_change(before: Intent, after: Intent) -> list[str]:
    """What a patch did, one line per field: "energy: (any) → upbeat"."""
    out = []
    for name in changed_fields(before, after):
        old, new = getattr(before, name), getattr(after, name)
        out.append(f"{name}: {_shown(old)} → {_shown(new)}")
    return out


def _shown(value: Any) -> str:
    if value is None or value == () or value == "":
        return "(any)"
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------- the LLM's form


class IntentAnswer(BaseModel):
    """What the LLM answers for a prompt: the intent's fields as plain JSON (lists, not
    tuples; any field may be missing). Unknown keys are ignored, a wrong type asks again."""

    model_config = ConfigDict(extra="ignore")

    title: str = ""
    genres: list[str] = Field(default_factory=list)
    exclude_genres: list[str] = Field(default_factory=list)
    year_min: int | None = None
    year_max: int | None = None
    artists: list[str] = Field(default_factory=list)
    exclude_artists: list[str] = Field(default_factory=list)
    avoid: list[str] = Field(default_factory=list)
    exclude_moods: list[str] = Field(default_factory=list)
    exclude_labels: list[str] = Field(default_factory=list)
    moods: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    energy: Energy | None = None
    like: list[str] = Field(default_factory=list)
    vibe: str = ""
    size: int | None = None
    minutes: int | None = None
    per_artist: int | None = None
    order: Order | None = None
    versions: bool | None = None

    @field_validator("energy", "order", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() or None if isinstance(value, str) else value


def intent_schema() -> dict[str, Any]:
    """The JSON schema the LLM's intent answer follows (strict-output friendly)."""
    strings = {"type": "array", "items": {"type": "string"}}
    number = {"type": ["integer", "null"]}
    props: dict[str, Any] = {
        "title": {"type": "string"},
        **{name: strings for name in LIST_FIELDS},
        "year_min": number,
        "year_max": number,
        "energy": {"type": ["string", "null"], "enum": ["low", "medium", "high", None]},
        "vibe": {"type": "string"},
        "size": number,
        "minutes": number,
        "per_artist": number,
        "order": {"type": ["string", "null"], "enum": [*get_args(Order), None]},
        "versions": {"type": ["boolean", "null"]},
    }
    return {
        "title": "PlaylistIntent",
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def patch_schema() -> dict[str, Any]:
    """The JSON schema of a refine answer: an IntentPatch."""
    strings = {"type": "array", "items": {"type": "string"}}
    lists = {
        "type": "object",
        "properties": {name: strings for name in LIST_FIELDS},
        "additionalProperties": False,
    }
    return {
        "title": "PlaylistChange",
        "type": "object",
        "properties": {
            "set": {"type": "object"},
            "add": lists,
            "remove": lists,
            "note": {"type": "string"},
        },
        "required": ["set", "add", "remove", "note"],
        "additionalProperties": False,
    }


def parse_answer(data: Any) -> IntentAnswer:
    """The validate hook's first step; ValueError (asks again) when the shape is wrong."""
    if not isinstance(data, dict):
        raise ValueError("the answer must be one JSON object with the intent's fields")
    try:
        return IntentAnswer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ValueError(problems) from None


def as_patch_set(answer: IntentAnswer, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The answer's non-empty fields as a patch's `set` (what the prompt said)."""
    wanted = set(fields) if fields is not None else set(FIELDS)
    out: dict[str, Any] = {}
    for name, value in answer.model_dump().items():
        if name in wanted and value not in (None, "", [], ()):
            out[name] = tuple(value) if isinstance(value, list) else value
    return out
