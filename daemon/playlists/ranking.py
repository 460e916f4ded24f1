"""The LLM ranks ids, never names: a shortlist of candidates with short integer ids, and the
LLM answers the ids it would play, best first.

Every id is checked: one it was not shown, or one it gave twice, is dropped and counted;
too few ids are topped up from the scores, and the notes say so. An answer that is no
usable JSON (after the plugin's own asking again) leaves the score order, said so too.
A spent budget goes up (the daemon defers the job).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from ..errors import GenredError, InvalidAnswer, LLMBudgetExhausted
from .intent import Intent
from .selection import RankResult, Scored

RANK_SYSTEM = """\
You choose tracks for a playlist from a shortlist of the listener's own library.
Each candidate has an integer id. Answer with one JSON object: {"ids": [id, …]}, the ids
of the `count` tracks that fit the request best, best first. Use only ids from the list,
each once."""

RANK_SCHEMA: dict[str, Any] = {
    "title": "PlaylistRanking",
    "type": "object",
    "properties": {"ids": {"type": "array", "items": {"type": "integer"}}},
    "required": ["ids"],
    "additionalProperties": False,
}


class LLMRanker:
    """A `selection.Ranker` asking `llm` (an LLMPlugin) about the prompt and intent."""

    def __init__(
        self, llm: Any, prompt: str, intent: Intent, *, cancel: threading.Event | None = None
    ) -> None:
        self.llm = llm
        self.prompt = prompt
        self.intent = intent
        self.cancel = cancel

    def __call__(self, shortlist: Sequence[Scored], count: int) -> RankResult:
        shown = {i + 1: s for i, s in enumerate(shortlist)}
        document = {
            "task": "playlist-rank",
            "prompt": self.prompt,
            "intent": self.intent.summary(),
            "count": count,
            "items": [
                {
                    "id": number,
                    "artist": s.track.artist,
                    "title": s.track.title,
                    "album": s.track.album,
                    "year": s.track.year,
                    "genres": list(s.track.genres[:2]),
                    "moods": list(s.track.moods[:3]),
                }
                for number, s in shown.items()
            ],
        }
        messages = [
            {"role": "system", "content": RANK_SYSTEM},
            {"role": "user", "content": json.dumps(document, ensure_ascii=False)},
        ]
        name = str(getattr(self.llm, "name", None) or type(self.llm).__name__)
        by_score = [s.track.id for s in shortlist]
        try:
            result = self.llm.chat(
                messages,
                RANK_SCHEMA,
                validate=_validate_ids,
                max_tokens=32 + 6 * count,
                cancel=self.cancel,
            )
        except LLMBudgetExhausted:
            raise
        except GenredError as exc:
            return RankResult(
                by_score, [f"the LLM could not rank ({exc}); ranked by score"], 1, "score"
            )
        ids, notes = check_ids(result.data, shown, count)
        chosen = [shown[n].track.id for n in ids]
        rest = [i for i in by_score if i not in set(chosen)]
        return RankResult(chosen + rest, notes, result.attempts, name)


def _validate_ids(data: Any) -> list[Any]:
    if isinstance(data, dict) and isinstance(data.get("ids"), list):
        return list(data["ids"])
    if isinstance(data, list):
        return data
    raise InvalidAnswer('the answer must be {"ids": [integers]}')


def check_ids(
    answer: Sequence[Any], shown: dict[int, Any], count: int
) -> tuple[list[int], list[str]]:
    """The valid ids of an answer (shown, each once, at most `count`) and notes on the rest."""
    ids: list[int] = []
    unknown = duplicates = 0
    for raw in answer:
        try:
            number = int(raw)
        except (TypeError, ValueError):
            unknown += 1
            continue
        if number not in shown:
            unknown += 1
        elif number in ids:
            duplicates += 1
        else:
            ids.append(number)
    notes = []
    if unknown:
        notes.append(f"the LLM named {unknown} ids it was not shown: ignored")
    if duplicates:
        notes.append(f"the LLM named {duplicates} tracks twice: counted once")
    if len(ids) < count:
        notes.append(f"the LLM chose {len(ids)} of {count}; the rest by score")
    return ids[:count], notes
