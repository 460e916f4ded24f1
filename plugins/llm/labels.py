"""Classifier `llm-labels`: the user's own labels ("Focus", "Happy Vocal", "Workout"),
each described by a prompt preset (genred_plugins.llm.presets), asked of an LLM from metadata.

For every preset, and every album (or track: `group`), the LLM says whether the label
applies and how likely; the answer is stored as a prediction of label set
`kind:Target Label` with one label, the target, and its probability. The decide stage
makes it a genre, mood or label of the track; the Plex writeback writes it.

Like llm-metadata: one question per album (per track on compilations), packed, cached
by metadata + model + the preset's content, so editing one preset asks only its own
questions again. The presets are read from their folder at each run, so an edited file
counts without a restart; a malformed one is skipped with its error in the log (and in
`genred config check`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genred.api import (
    InvalidAnswer,
    PluginContext,
    PluginUnavailable,
    Prediction,
    Store,
    TrackRecord,
    Unclassified,
    get_logger,
)

from .asking import Budget, Tally, ask_entries, clamp
from .metadata import album_mates, enabled_llm
from .presets import NamedPreset, load_presets, presets_dir
from .prompt import (
    Entry,
    answer_items,
    build_entries,
    check_fields,
    confidence_of,
    first_problem,
    track_entry,
    user_content,
)

log = get_logger("genred.classify")
PROMPT_VERSION = 1  # of the wording below: changing it asks every preset again
ANSWER_TOKENS_PER_ITEM = 16  # {"id":"12","match":false,"confidence":0.1}, ≈ 11 tokens

LABEL_SCHEMA: dict[str, Any] = {
    "title": "LabelAnswer",
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "match": {"type": "boolean"},
                    "confidence": {"type": "number"},
                },
                "required": ["id", "match", "confidence"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["items"],
    "additionalProperties": False,
}


class LLMLabelsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    llm: str = Field("groq", description="the enabled llm plugin to ask")
    presets: list[str] = Field(
        default_factory=list, description="preset names to run; empty: every preset"
    )
    group: Literal["album", "track"] = Field(
        "album", description="album: one question per album (cheap); track: per track"
    )
    max_items_per_request: int = Field(100, ge=1, le=500)
    max_request_tokens: int = Field(5500, ge=256)
    max_tokens: int = Field(2048, ge=64, description="answer tokens of one request, at most")
    batch_tracks: int = Field(5000, ge=1, description="tracks per classify batch")


@dataclass(frozen=True)
class LabelItem:
    id: str
    probability: float  # that the label applies
    problem: str | None = None  # why the item is unusable


class LLMLabelsClassifier:
    Config = LLMLabelsSettings
    uses_config = ("plugins", "presets_dir")

    def __init__(self, settings: LLMLabelsSettings, context: PluginContext) -> None:
        self.settings = settings
        self.context = context
        self.batch_size = settings.batch_tracks

    def presets(self) -> list[NamedPreset]:
        """The presets to run, read now; malformed ones are logged and skipped."""
        folder = presets_dir(self.context.config)
        found, problems = load_presets(folder)
        for problem in problems:
            log.warning("preset skipped", problem=str(problem))
        wanted = self.settings.presets
        missing = sorted(set(wanted) - {p.name for p in found})
        if missing:
            log.warning("presets not found", folder=str(folder), names=", ".join(missing))
        return [p for p in found if not wanted or p.name in wanted]

    def check(self) -> list[str]:
        """`genred config check`: presets that are skipped, or no presets at all."""
        folder = presets_dir(self.context.config)
        found, problems = load_presets(folder)
        out = [f"preset skipped: {problem}" for problem in problems]
        if not found:
            out.append(f"llm-labels has no presets in {folder}")
        return out

    def llm(self) -> Any:
        return enabled_llm(self.context, self.settings.llm, "llm-labels")

    def model_of(self, llm: Any, preset: NamedPreset) -> str:
        """The model a preset's answers come from (part of its cache keys)."""
        model = preset.preset.model
        if model and hasattr(llm, "name_for"):
            return str(llm.name_for(model))
        return str(getattr(llm, "name", None) or self.settings.llm) + (f"/{model}" if model else "")

    @property
    def version(self) -> str:
        """Follows the LLM, the presets' contents and the grouping."""
        try:
            llm_name = str(getattr(self.llm(), "name", self.settings.llm))
        except PluginUnavailable:
            llm_name = f"{self.settings.llm}?"
        blob = json.dumps(
            [
                llm_name,
                PROMPT_VERSION,
                self.settings.group,
                [[p.name, preset_digest(p)] for p in self.presets()],
            ]
        )
        return "1-" + hashlib.sha256(blob.encode()).hexdigest()[:10]

    def classify(
        self,
        tracks: Sequence[TrackRecord],
        *,
        store: Store | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Prediction | Unclassified]:
        presets = self.presets()
        if not presets:
            return
        llm = self.llm()
        store = store or self.context.store
        s = self.settings
        if s.group == "album":
            entries = build_entries(tracks, album_mates(store, tracks) if store else None)
        else:
            entries = [track_entry(t) for t in tracks if t.id is not None]
        for preset in presets:
            model = self.model_of(llm, preset)
            tally = Tally()
            try:
                yield from ask_entries(
                    LabelForm(preset, model),
                    llm,
                    entries,
                    budget=Budget(s.max_items_per_request, s.max_request_tokens, s.max_tokens),
                    store=store,
                    model=model,
                    prompt_version=f"labels:{PROMPT_VERSION}",
                    cancel=cancel,
                    tally=tally,
                    chat_options={"model": preset.preset.model} if preset.preset.model else None,
                )
            finally:
                tally.log(f"llm-labels batch ({preset.name})")


def preset_digest(preset: NamedPreset) -> str:
    blob = json.dumps(preset.preset.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class LabelForm:
    """ "Is it <target>?" for a preset, answered with a probability."""

    schema = LABEL_SCHEMA
    per_item = ANSWER_TOKENS_PER_ITEM

    def __init__(self, preset: NamedPreset, model: str) -> None:
        self.preset, self.model = preset, model
        self.target = preset.preset.target_label
        self.system = system_prompt(preset)
        self.head = {"label": self.target}
        self.base_chars = len(self.system) + len(user_content([], self.head))
        self._digest = preset_digest(preset)

    def cache_key(self, entry: Entry) -> str:
        base = entry.cache_key(self.model, PROMPT_VERSION, False)
        return hashlib.sha256(f"labels|{base}|{self._digest}".encode()).hexdigest()

    def messages(self, entries: Sequence[Entry]) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": user_content(entries, self.head)},
        ]

    def check(self, data: Any) -> list[LabelItem]:
        return check_label_answer(data)

    def read(self, item: LabelItem) -> dict[str, float]:
        return {"p": item.probability}

    def usable(self, answer: Any) -> bool:
        p = answer.get("p") if isinstance(answer, dict) else None
        return isinstance(p, int | float) and not isinstance(p, bool) and 0.0 <= p <= 1.0

    def predictions(self, entry: Entry, answer: Any, tally: Tally) -> Iterator[Prediction]:
        tally.answered += 1
        probability = clamp(answer.get("p") if isinstance(answer, dict) else None)
        for track_id in entry.track_ids:
            yield Prediction(track_id, self.preset.label_set, ((self.target, probability),))


def system_prompt(named: NamedPreset) -> str:
    p = named.preset
    lines = [
        p.role.strip(),
        f'Decide for each item of the user\'s JSON whether it is "{p.target_label}".',
        f"{p.target_label} means:",
        *(f"- {c}" for c in p.characteristics),
    ]
    if p.examples.positive:
        lines.append(f"Examples of {p.target_label}: " + "; ".join(p.examples.positive))
    if p.examples.negative:
        lines.append(f"Not {p.target_label}: " + "; ".join(p.examples.negative))
    lines.append(
        'An item with "more" is an album ("title" and "more" are some of its tracks): answer '
        'for the whole album. "tags" are genres the files carry. Answer with JSON only, one '
        'item per id, in the same order: {"items":[{"id":"1","match":true,"confidence":0.8}]}'
        f' where "confidence" is how likely the item is {p.target_label}, from 0 to 1.'
    )
    return "\n".join(lines)


LABEL_FIELDS = frozenset({"id", "match", "confidence", "reason"})


def check_label_answer(data: Any) -> list[LabelItem]:
    """Structure only (the chat's validate hook): each item a `match` (true or false) and a
    `confidence` from 0 to 1, and no other fields (an echoed input is not an answer); an
    unusable item carries its `problem`, an answer with no usable item is InvalidAnswer.
    The probability that the label applies: `confidence` read as that probability, or,
    when it contradicts `match` (a model that gave its certainty in the verdict), as 1 − it."""
    out = []
    for where, item in answer_items(data):
        key = str(item["id"]).strip()
        try:
            check_fields(item, where, "match", LABEL_FIELDS)
            match = item["match"]
            if not isinstance(match, bool):
                raise InvalidAnswer(f"{where}: match {match!r} is not true or false")
            if "confidence" not in item:
                raise InvalidAnswer(f'{where}: no "confidence" key')
            confidence = confidence_of(item["confidence"], where)
        except InvalidAnswer as exc:
            out.append(LabelItem(key, 0.0, problem=str(exc)))
            continue
        probability = confidence if match == (confidence >= 0.5) else 1.0 - confidence
        out.append(LabelItem(key, round(probability, 4)))
    first_problem(out)
    return out
