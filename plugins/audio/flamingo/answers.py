"""The question the model is asked about a track, and how its answer is read.

The model is asked for JSON: genres (named from the taxonomy: it is given the top-level
genres and the candidates the earlier cascade steps proposed, to confirm or reject by
ear), moods, and a one-sentence caption. `parse_answer` checks the structure where the
model runs (a reply that is not that JSON is asked again, a bounded number of times);
`genre_labels`/`mood_labels` read the content where the store is, as the LLM classifiers
do: names the taxonomy does not know are dropped and counted, confidences clamped.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genred.api import InvalidAnswer, Taxonomy

MAX_NAME = 60  # longer "names" are sentences, not genres
MAX_CAPTION = 400
MAX_LABELS = 5
REMINDER = (
    "Your last reply was not the JSON asked for. Reply with that JSON object only, no other text."
)


@dataclass(frozen=True)
class Answer:
    """A reply with the right structure: names as the model wrote them."""

    genres: tuple[tuple[str, float], ...]
    moods: tuple[tuple[str, float], ...]
    caption: str | None
    raw: str  # the reply, for the log when something looks wrong
    seconds: float = 0.0  # how much audio it heard
    cut: bool = False  # the file was longer than that


def question(
    top_level: Sequence[str], candidates: Sequence[str], *, moods: bool, caption: bool
) -> str:
    """The user message that goes with the audio."""
    fields = ['"genres": [{"name": "<genre>", "confidence": <0..1>}]']
    if moods:
        fields.append('"moods": [{"name": "<mood, one or two words>", "confidence": <0..1>}]')
    if caption:
        fields.append('"caption": "<one sentence: what the track sounds like>"')
    lines = [
        "Listen to this music and answer with one JSON object, nothing else:",
        "{" + ", ".join(fields) + "}",
        f"Name at most 3 genres, most fitting first. Use genre names like these: {', '.join(top_level)}"
        " (or a more specific genre within one of them).",
    ]
    if candidates:
        lines.append(
            "Other listeners suggested: "
            + ", ".join(candidates)
            + ". Keep those you hear, drop the others."
        )
    if moods:
        lines.append("Name at most 3 moods.")
    return "\n".join(lines)


def parse_answer(text: str) -> Answer:
    """The reply's JSON object, checked; InvalidAnswer says what is wrong (it is asked again)."""
    data = _json_object(text)
    genres = _labels(data.get("genres"), "genres", required=True)
    moods = _labels(data.get("moods"), "moods", required=False)
    caption = data.get("caption")
    if caption is not None and not isinstance(caption, str):
        raise InvalidAnswer('"caption" is not a string')
    caption = " ".join(caption.split())[:MAX_CAPTION] if caption else None
    return Answer(genres, moods, caption or None, text)


def _json_object(text: str) -> dict[str, Any]:
    cleaned = re.sub(r"^```(?:json)?|```$", "", text.strip(), flags=re.MULTILINE).strip()
    start, end = cleaned.find("{"), cleaned.rfind("}")
    if start < 0 or end <= start:
        raise InvalidAnswer("the reply holds no JSON object")
    try:
        data = json.loads(cleaned[start : end + 1])
    except ValueError as exc:
        raise InvalidAnswer(f"the reply is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidAnswer("the reply is not a JSON object")
    return data


def _labels(value: Any, key: str, *, required: bool) -> tuple[tuple[str, float], ...]:
    if value is None:
        if required:
            raise InvalidAnswer(f'the reply has no "{key}"')
        return ()
    if not isinstance(value, list):
        raise InvalidAnswer(f'"{key}" is not a list')
    out = []
    for n, item in enumerate(value[: MAX_LABELS * 2]):
        if isinstance(item, str):  # a bare name: said without a confidence
            name, confidence = item, 0.5
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            name, confidence = item["name"], item.get("confidence", 0.5)
        else:
            raise InvalidAnswer(f'{key}[{n}] is not {{"name": ..., "confidence": ...}}')
        out.append((name.strip(), clamp(confidence)))
    return tuple(out)


def clamp(value: Any) -> float:
    """A confidence in [0, 1]; anything that is not a number is 0."""
    if isinstance(value, bool):
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if number != number else min(max(number, 0.0), 1.0)  # NaN → 0


def genre_labels(
    taxonomy: Taxonomy,
    labels: Sequence[tuple[str, float]],
    min_confidence: float,
    unknown: Counter[str],
) -> tuple[tuple[str, float], ...]:
    """Taxonomy names, best first; names it does not know are dropped (and counted)."""
    best: dict[str, float] = {}
    for name, confidence in labels:
        matches = taxonomy.match(name) if 0 < len(name) <= MAX_NAME else []
        if not matches:
            unknown[name] += 1
        for match in matches:
            score = round(confidence * match.confidence, 4)
            if score >= min_confidence and score > best.get(match.name, -1.0):
                best[match.name] = score
    return tuple(sorted(best.items(), key=lambda kv: (-kv[1], kv[0])))[:MAX_LABELS]


def mood_labels(
    labels: Sequence[tuple[str, float]], min_confidence: float
) -> tuple[tuple[str, float], ...]:
    """Moods (no mood taxonomy): short words, trimmed, each once, best first."""
    best: dict[str, tuple[str, float]] = {}
    for name, confidence in labels:
        text = " ".join(name.split())
        if not text or len(text) > 40 or not any(c.isalpha() for c in text):
            continue
        score = round(confidence, 4)
        key = text.casefold()
        if score >= min_confidence and score > best.get(key, ("", -1.0))[1]:
            best[key] = (text, score)
    return tuple(sorted(best.values(), key=lambda kv: (-kv[1], kv[0])))[:MAX_LABELS]
