"""`genred doctor llm`: three test questions to the configured model, before a long run.

Each sample track is asked alone with the llm-metadata classifier's real prompt, schema and
checks (nothing is cached or stored); the report says which output mode the server took,
how long each answer took, and whether it validated — and if not, why.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genred.api import GenredError, InvalidAnswer, TrackRecord

from .metadata import GenreForm, LLMMetadataClassifier
from .prompt import answer_budget, track_entry

# Three tracks whose genres are not in doubt, asked as a library's tracks are.
SAMPLES: tuple[TrackRecord, ...] = (
    TrackRecord("doctor", "1", title="So What", artist="Miles Davis", album="Kind of Blue",
                year=1959, genres=("jazz",)),
    TrackRecord("doctor", "2", title="Smells Like Teen Spirit", artist="Nirvana",
                album="Nevermind", year=1991),
    TrackRecord("doctor", "3", title="Windowlicker", artist="Aphex Twin",
                album="Windowlicker", year=1999, genres=("electronica",)),
)  # fmt: skip


@dataclass(frozen=True)
class Check:
    """One test question's outcome."""

    track: str
    seconds: float
    mode: str | None  # the output mode the server took (None: no answer)
    valid: bool
    genres: tuple[str, ...] = ()
    problem: str = ""


def diagnose(
    llm: Any,
    classifier: LLMMetadataClassifier,
    samples: Sequence[TrackRecord] = SAMPLES,
    cancel: threading.Event | None = None,
) -> list[Check]:
    """Ask each sample once (the plugin's own answer retries included) and check the answer."""
    form = GenreForm(classifier, classifier.model())
    moods = classifier.settings.moods
    checks = []
    for n, track in enumerate(samples, start=1):
        entry = track_entry(dataclasses.replace(track, id=n))
        what = f"{track.artist} – {track.title}"
        started = time.monotonic()
        try:
            result = llm.chat(
                form.messages([entry]),
                form.schema,
                max_tokens=answer_budget(1, moods, classifier.settings.max_tokens),
                cancel=cancel,
            )
            elapsed = time.monotonic() - started
            items = form.check(result.data)
            usable = [i for i in items if not i.problem]
            if not usable:
                raise InvalidAnswer(items[0].problem if items else "the answer has no items")
            genres = tuple(name for name, _ in form.read(usable[0])["genres"])
            checks.append(Check(what, elapsed, _mode(llm), True, genres))
        except (GenredError, InvalidAnswer) as exc:
            elapsed = time.monotonic() - started
            checks.append(Check(what, elapsed, _mode(llm), False, problem=str(exc)))
    return checks


def _mode(llm: Any) -> str | None:
    output_mode = getattr(llm, "output_mode", None)
    return output_mode() if callable(output_mode) else None
