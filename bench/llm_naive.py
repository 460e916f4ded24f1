"""The seed's scheme of asking an LLM for genres: the naive way bench_llm compares with.

30 file names per request, one item per track (`{"id": "17", "file": "Artist - Album -
03 - Title.mp3"}`), no grouping by album, no cache, no rate limiter: requests go out as fast
as the groq SDK (max_retries=0) sends them, and a 429 is answered by waiting its
`retry-after` (on the benchmark's fake clock) and sending the same request again. No
`max_completion_tokens` is set, as the seed set none (the emulator then counts only the
prompt against tokens per minute before answering, which favours this scheme).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import groq

from genred.records import TrackRecord

BATCH = 30
SYSTEM = (
    "You are a music expert. For each music file name in the user's JSON, give the song's "
    "genres (up to 3, best first) with a confidence from 0 to 1. Answer with JSON only: "
    '{"items":[{"id":"1","genres":[{"name":"Jazz","confidence":0.9}]}]}'
)


def file_name(track: TrackRecord) -> str:
    """The name a tagger gives the file: "Artist - Album - 03 - Title.mp3"."""
    ext = (track.path or "x.mp3").rsplit(".", 1)[-1]
    number = f"{track.track_no:02d} - " if track.track_no else ""
    name = f"{track.artist} - {track.album} - {number}{track.title}.{ext}"
    return re.sub(r'[\\/:*?"<>|]', "_", name)


def items(tracks: Sequence[TrackRecord]) -> list[dict[str, str]]:
    """One item per track, numbered from "1" across the library (ids stay unique)."""
    return [{"id": str(n), "file": file_name(t)} for n, t in enumerate(tracks, start=1)]


def batches(rows: Sequence[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    for start in range(0, len(rows), BATCH):
        yield list(rows[start : start + BATCH])


@dataclass
class NaiveTally:
    requests: int = 0  # sent, the refused ones included
    refused: int = 0  # 429s
    answered: int = 0  # items that came back


def classify_naively(
    client: groq.Groq,
    model: str,
    rows: Sequence[dict[str, str]],
    wait: Callable[[float], Any],
) -> NaiveTally:
    """Ask about `rows` 30 at a time; `wait(seconds)` is how a 429's retry-after is honoured."""
    tally = NaiveTally()
    for batch in batches(rows):
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": json.dumps({"items": batch})},
        ]
        while True:
            tally.requests += 1
            try:
                completion = client.chat.completions.create(
                    model=model, messages=messages, response_format={"type": "json_object"}
                )
            except groq.RateLimitError as exc:
                tally.refused += 1
                wait(float(exc.response.headers.get("retry-after", "1")))
                continue
            break
        content = completion.choices[0].message.content or "{}"
        tally.answered += len(json.loads(content).get("items", []))
    return tally
