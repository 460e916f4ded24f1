"""Reading a prompt (or a change to one) into an intent: the LLM once, else the rules parser.

The LLM is the enabled `llm` plugin (`LLMPlugin.chat`, the same client and rate budget
the classifiers use). It is shown the library's genres, moods and labels and answers
the intent's fields as JSON; a refine answers a patch (`set`, `add`, `remove`) to the
stored intent, never a new playlist. Whatever it says is then checked here: genres go
through the taxonomy (unknown names are dropped and reported), moods, labels and artists
are looked up in the library. When the LLM cannot be asked or keeps answering nonsense,
the rules parser reads the prompt instead, and the notes say so. A spent rate budget is
not papered over: LLMBudgetExhausted goes up (the daemon defers the job).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..config import MAX_PROMPT_CHARS
from ..errors import GenredError, InvalidAnswer, LLMBudgetExhausted, PlaylistError
from ..logs import get_logger
from .intent import (
    LIST_FIELDS,
    Intent,
    IntentPatch,
    apply_patch,
    as_patch_set,
    intent_schema,
    parse_answer,
    patch_schema,
)
from .library import Library
from .rules import RulesParser

log = get_logger("genred.playlists")

SHOWN_GENRES = 150  # the library's most common genres listed in a question
INTENT_TOKENS = 600
PATCH_TOKENS = 400

INTENT_SYSTEM = """\
You turn a listener's request into a playlist intent for THEIR OWN music library.
Answer with one JSON object only: the intent's fields, as in the schema.
- genres: only if the request names a genre or a style; use the library's genre names.
- year_min / year_max: only for decades or years the request names.
- artists: only if the request asks for these artists alone.
- exclude_genres, exclude_artists, exclude_moods, exclude_labels, avoid: what the request
  rules out ("no vocals" → exclude_labels ["Vocals"], labels ["Instrumental"]; "no
  Christmas songs" → avoid ["christmas"]).
- moods, labels: from the library's lists; energy: low (calm), medium, high (upbeat).
- like: titles, albums or artists the request says it should sound like.
- vibe: the rest of the request in a few words; title: a short playlist title.
- size (tracks) or minutes, per_artist, order (flow, shuffle, year, added) only if asked.
A request in another language: answer in the same JSON, names as listed."""

REFINE_SYSTEM = """\
You change an existing playlist intent as the listener asks. Answer with one JSON object:
{"set": {field: value}, "add": {list field: [values]}, "remove": {list field: [values]},
"note": "what you changed"}. Change only what the request asks; leave the rest alone.
Fields are those of the intent shown. Use the library's genre, mood and label names."""


@dataclass
class Reading:
    """An intent, read, with what the reading noticed and what it cost."""

    intent: Intent
    notes: list[str] = field(default_factory=list)
    llm_requests: int = 0
    reader: str = "rules"  # rules | the LLM plugin's name


def check_prompt(prompt: str, what: str = "prompt") -> str:
    """The prompt, trimmed; PlaylistError when it is empty or too long."""
    text = " ".join((prompt or "").split())
    if not text:
        raise PlaylistError(f"the {what} is empty: say in a few words what you want to hear")
    if len(text) > MAX_PROMPT_CHARS:
        raise PlaylistError(
            f"the {what} is {len(text):,} characters long; at most {MAX_PROMPT_CHARS:,} are "
            "read: say what you want in a sentence or two"
        )
    return text


class PromptReader:
    """Reads prompts and changes with `llm` (an LLMPlugin, or None: the rules parser)."""

    def __init__(
        self,
        library: Library,
        llm: Any | None,
        *,
        cancel: threading.Event | None = None,
        llm_note: str | None = None,
    ) -> None:
        self.library = library
        self.llm = llm
        self.cancel = cancel
        self.llm_note = llm_note  # why there is no LLM (said once in the notes)
        self.rules = RulesParser(library.taxonomy.resolve, library.vocabulary)

    # ------------------------------------------------------------------ prompts

    def read(self, prompt: str, *, source: str = "llm") -> Reading:
        prompt = check_prompt(prompt)
        if self.llm is not None:
            try:
                return self._read_with_llm(prompt, source)
            except LLMBudgetExhausted:
                raise
            except GenredError as exc:
                reading = self._read_with_rules(prompt)
                reading.notes.insert(
                    0,
                    f"the LLM could not read the prompt ({exc}); the rules parser read it",
                )
                reading.llm_requests = 1
                return reading
        reading = self._read_with_rules(prompt)
        if self.llm_note:
            reading.notes.insert(0, self.llm_note)
        return reading

    def _read_with_rules(self, prompt: str) -> Reading:
        parsed = self.rules.parse(prompt)
        notes = list(parsed.notes)
        if parsed.unplaced and (not parsed.found_anything or len(parsed.unplaced) >= 3):
            notes.append(
                f"words the rules parser did not understand: {', '.join(parsed.unplaced[:12])}"
                " (it reads English; configure an LLM for other languages)"
            )
        intent = apply_patch(Intent(), IntentPatch(set=parsed.fields), "rules")
        return Reading(intent, notes, 0, "rules")

    def _read_with_llm(self, prompt: str, source: str) -> Reading:
        vocab = self.library.vocabulary
        document = {
            "task": "playlist-intent",
            "prompt": prompt,
            "genres": [g for g, _ in vocab.genres.most_common(SHOWN_GENRES)],
            "moods": [m for m, _ in vocab.moods.most_common(40)],
            "labels": [x for x, _ in vocab.labels.most_common(40)],
        }
        messages = [
            {"role": "system", "content": INTENT_SYSTEM},
            {"role": "user", "content": json.dumps(document, ensure_ascii=False)},
        ]
        llm = self.llm
        assert llm is not None
        result = llm.chat(
            messages,
            intent_schema(),
            validate=_validate_intent,
            max_tokens=INTENT_TOKENS,
            cancel=self.cancel,
        )
        fields, notes = self.checked(as_patch_set(result.data))
        fields.setdefault("title", prompt[:60])
        intent = apply_patch(Intent(), IntentPatch(set=fields), source)
        return Reading(intent, notes, result.attempts, _name(self.llm))

    # ------------------------------------------------------------------ changes

    def change(self, intent: Intent, prompt: str, change: str) -> tuple[IntentPatch, Reading]:
        """The patch a refine makes, and the intent after it."""
        change = check_prompt(change, "change")
        if self.llm is not None:
            try:
                return self._change_with_llm(intent, prompt, change)
            except LLMBudgetExhausted:
                raise
            except GenredError as exc:
                patch, reading = self._change_with_rules(intent, change)
                reading.notes.insert(
                    0, f"the LLM could not read the change ({exc}); the rules parser read it"
                )
                reading.llm_requests = 1
                return patch, reading
        patch, reading = self._change_with_rules(intent, change)
        if self.llm_note:
            reading.notes.insert(0, self.llm_note)
        return patch, reading

    def _change_with_rules(self, intent: Intent, change: str) -> tuple[IntentPatch, Reading]:
        patch = self.rules.patch(change)
        notes = [patch.note] if patch.note else []
        return patch, Reading(apply_patch(intent, patch, "refine"), notes, 0, "rules")

    def _change_with_llm(
        self, intent: Intent, prompt: str, change: str
    ) -> tuple[IntentPatch, Reading]:
        vocab = self.library.vocabulary
        current = {k: v for k, v in intent.to_json().items() if k != "sources"}
        document = {
            "task": "playlist-refine",
            "prompt": prompt,
            "intent": current,
            "change": change,
            "genres": [g for g, _ in vocab.genres.most_common(SHOWN_GENRES)],
            "moods": [m for m, _ in vocab.moods.most_common(40)],
            "labels": [x for x, _ in vocab.labels.most_common(40)],
        }
        messages = [
            {"role": "system", "content": REFINE_SYSTEM},
            {"role": "user", "content": json.dumps(document, ensure_ascii=False)},
        ]
        llm = self.llm
        assert llm is not None
        result = llm.chat(
            messages,
            patch_schema(),
            validate=_validate_patch,
            max_tokens=PATCH_TOKENS,
            cancel=self.cancel,
        )
        raw: IntentPatch = result.data
        values, notes = self.checked(raw.set, clearing=True)
        add, add_notes = self._checked_lists(raw.add)
        remove = {k: list(v) for k, v in raw.remove.items() if v}
        patch = IntentPatch(set=values, add=add, remove=remove, note=raw.note)
        try:
            after = apply_patch(intent, patch, "refine")
        except ValidationError as exc:
            raise PlaylistError(f"the LLM's change does not fit the intent: {exc}") from None
        notes += add_notes
        if raw.note:
            notes.insert(0, f"the LLM: {raw.note}")
        return patch, Reading(after, notes, result.attempts, _name(self.llm))

    # ------------------------------------------------------------------ checking names

    def checked(
        self, fields: dict[str, Any], *, clearing: bool = False
    ) -> tuple[dict[str, Any], list[str]]:
        """Fields with every name looked up: genres in the taxonomy (unknown dropped),
        moods, labels and artists in the library (their spelling). With `clearing`,
        None values stay (a patch clears those fields)."""
        out: dict[str, Any] = {}
        notes: list[str] = []
        lists = {k: v for k, v in fields.items() if k in LIST_FIELDS and v is not None}
        checked_lists, notes = self._checked_lists(lists)
        for name, value in fields.items():
            if name in LIST_FIELDS:
                if value is None and clearing:
                    out[name] = None
                elif name in checked_lists:
                    out[name] = tuple(checked_lists[name])
            elif value is not None or clearing:
                out[name] = value
        low, high = out.get("year_min"), out.get("year_max")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            out["year_min"], out["year_max"] = high, low
        for name in ("year_min", "year_max"):
            year = out.get(name)
            if isinstance(year, int) and not 1000 <= year <= 2100:
                notes.append(f"{name} {year} is no year: ignored")
                out.pop(name)
        for name in ("size", "minutes", "per_artist"):
            number = out.get(name)
            if isinstance(number, int) and number < 1:
                out.pop(name)
            elif isinstance(number, int):
                out[name] = min(number, 1000 if name != "minutes" else 6000)
        return out, notes

    def _checked_lists(self, lists: dict[str, Any]) -> tuple[dict[str, list[str]], list[str]]:
        vocab = self.library.vocabulary
        taxonomy = self.library.taxonomy
        out: dict[str, list[str]] = {}
        notes: list[str] = []
        unknown_genres: list[str] = []
        for name, values in lists.items():
            kept: list[str] = []
            for value in values or ():
                text = str(value).strip()
                if not text:
                    continue
                if name in ("genres", "exclude_genres"):
                    found = taxonomy.canonicalize(text)
                    if found:
                        kept += [g for g in found if g not in kept]
                    else:
                        unknown_genres.append(text)
                elif name in ("moods", "exclude_moods"):
                    kept.append(vocab.mood(text) or text.title())
                elif name in ("labels", "exclude_labels"):
                    kept.append(vocab.label(text) or text.title())
                elif name in ("artists", "exclude_artists"):
                    spelled = vocab.artist(text)
                    if spelled is None:
                        notes.append(f"the library has no artist {text!r}")
                    kept.append(spelled or text)
                elif name == "avoid":
                    kept.append(text.casefold())
                else:
                    kept.append(text)
            out[name] = kept
        if unknown_genres:
            notes.append(
                "genres genred does not know, dropped: " + ", ".join(dict.fromkeys(unknown_genres))
            )
        return out, notes


def _validate_intent(data: Any) -> Any:
    try:
        return parse_answer(data)
    except ValueError as exc:
        raise InvalidAnswer(str(exc)) from None


def _validate_patch(data: Any) -> IntentPatch:
    if not isinstance(data, dict):
        raise InvalidAnswer("the answer must be one JSON object with set, add, remove, note")
    cleaned = {k: data[k] for k in ("set", "add", "remove", "note") if data.get(k) is not None}
    for key in ("add", "remove"):
        if isinstance(cleaned.get(key), dict):
            cleaned[key] = {
                k: [str(x) for x in (v if isinstance(v, list) else [v])]
                for k, v in cleaned[key].items()
                if v not in (None, [], "")
            }
    try:
        return IntentPatch.model_validate(cleaned)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise InvalidAnswer(problems) from None


def _name(llm: Any) -> str:
    return str(getattr(llm, "name", None) or type(llm).__name__)
