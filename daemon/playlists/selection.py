"""Selection: an intent and today's library → the playlist's tracks, each with its why.

1. The hard constraints give the pool (`Library.candidates`); one version of each
   recording is kept (`variety.one_per_recording`).
2. Every candidate gets a score from the soft preferences (genre fit, moods, labels,
   energy, closeness to "like" seeds, to the prompt's words when semantic search is on,
   the decision's confidence; in a refresh, being recently added).
3. While enough tracks pass them, the soft preferences also filter; when too few do they
   are relaxed in `RELAX_ORDER` (energy widened step by step, then dropped; then labels,
   then moods), and the report says each step. Hard constraints are never relaxed: when
   they admit fewer tracks than asked, the playlist is shorter and the report says why,
   with the closest genres that have more.
4. The ranking is the score (or the LLM's pick from a shortlist, `ranking.py`); the
   playlist fills under the per-artist and per-album caps (raised, and said so, only when
   the pool has nothing else). A refresh keeps a share of the previous tracks and draws
   the rest with a seed from the date, preferring recently added tracks.
5. The order flows (`variety.arrange`), and every track gets its "why".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .energy import energy_word
from .intent import ENERGY_RANGES, Intent, year_range_text
from .library import Candidate, Library, fold
from .similar import audio_closeness, tag_closeness
from .variety import Caps, arrange, one_per_recording, weighted_draw

AVERAGE_TRACK_MS = 240_000  # to turn a duration into a count before the tracks are known
ENERGY_STEP = 0.15  # how much an energy range widens per relaxation step
ENERGY_STEPS = 2

Ranker = Callable[[Sequence["Scored"], int], "RankResult"]
SemanticScores = Callable[[str, Sequence[int]], Mapping[int, float]]


@dataclass(frozen=True)
class Settings:
    """What the config says about selection (`playlists:`)."""

    size: int = 25
    per_artist: int = 3
    per_album: int = 2
    keep: float = 0.6
    recent: timedelta = timedelta(days=30)
    shortlist: int = 120
    semantic_weight: float = 1.0


@dataclass
class Scored:
    track: Candidate
    score: float
    matched: dict[str, Any] = field(default_factory=dict)  # what it matched, for its why


@dataclass(frozen=True)
class RankResult:
    """The ranker's order (track ids, best first) and what it noticed."""

    ids: list[int]
    notes: list[str] = field(default_factory=list)
    llm_requests: int = 0
    by: str = "score"


@dataclass(frozen=True)
class Chosen:
    """A track of the playlist: why it is there, and whether a person pinned it."""

    track: Candidate
    why: str
    score: float
    pinned: bool = False


@dataclass
class SelectionReport:
    """What a selection did: asked, got, what it relaxed, what it could not do."""

    asked: int | None = None
    minutes: int | None = None
    got: int = 0
    total_ms: int = 0
    pool: int = 0  # tracks the hard constraints admit
    candidates: int = 0  # of them, after the soft preferences (as relaxed)
    relaxed: list[str] = field(default_factory=list)
    shortfall: str | None = None
    closest: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ranked_by: str = "score"
    llm_requests: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SelectionReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def day_seed(name: str, day: date) -> int:
    """The seed of one playlist's draw on one day: a refresh is reproducible."""
    digest = hashlib.sha256(f"{fold(name)}|{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Selector:
    """Runs one selection over `library` with the config's `settings`."""

    def __init__(
        self,
        library: Library,
        settings: Settings,
        *,
        semantic: SemanticScores | None = None,
        now: datetime | None = None,
    ) -> None:
        self.library = library
        self.settings = settings
        self.semantic = semantic
        self.now = now

    def select(
        self,
        intent: Intent,
        *,
        seed: int,
        previous: Sequence[int] = (),
        pinned: Sequence[int] = (),
        banned: Iterable[int] = (),
        keep: float | None = None,
        ranker: Ranker | None = None,
        refresh: bool = False,
        changed: Iterable[str] = (),
    ) -> tuple[list[Chosen], SelectionReport]:
        """The tracks, in order, and the report. `previous`: the last version's tracks (a
        refresh keeps `keep` of them, a refine all that still fit: the soft preferences in
        `changed` unrelaxed, so "more upbeat" replaces the calm ones even where the pool
        needs relaxing to fill up); `pinned` always stay while they exist; `banned` never
        come back."""
        s = self.settings
        report = SelectionReport(asked=intent.size, minutes=intent.minutes)
        if intent.size is None and intent.minutes is None:
            report.asked = s.size
        target_n = report.asked or max(1, round((intent.minutes or 0) * 60_000 / AVERAGE_TRACK_MS))
        banned_ids = set(banned)
        pool = [c for c in self.library.candidates(intent) if c.id not in banned_ids]
        # One version of each recording (versions of one song ranked by confidence: the
        # soft preferences do not tell a remaster from the original).
        pool = one_per_recording(pool, versions=intent.versions, rank=lambda c: c.confidence)
        report.pool = len(pool)
        per_artist = intent.per_artist or (10**6 if intent.artists else s.per_artist)
        per_album = intent.per_album or (10**6 if intent.artists else s.per_album)
        passing = self._soft_filter(intent, pool, target_n, per_artist, per_album, report)
        # Only what passes is scored: a prompt without a genre admits most of the library.
        scorer = _Scorer(self, intent, passing, report, refresh)
        scored = {c.id: scorer.score(c) for c in passing}
        strict = _strictly(intent, passing, set(changed))
        report.candidates = len(passing)
        ranked = sorted(passing, key=lambda c: (-scored[c.id].score, _jitter(seed, c.id)))
        by_id = {c.id: c for c in passing}
        outside = [i for i in pinned if i not in by_id and i not in banned_ids]
        if outside:  # a pin is a person's wish: it stays even where the intent says no
            for c in self.library.candidates(Intent(), ids=outside):
                by_id[c.id] = c
                scored[c.id] = scorer.score(c)
        pinned_here = [by_id[i] for i in pinned if i in by_id]
        missing_pins = [i for i in pinned if i not in by_id]
        if missing_pins:
            report.notes.append(f"{len(missing_pins)} pinned tracks are gone from the library")
        fixed: list[Candidate] = list(pinned_here)
        if previous and refresh:
            fixed += self._kept(previous, ranked, scored, target_n, keep, seed, fixed)
        elif previous:  # a refine: every previous track that still fits stays
            still = {c.id for c in strict}
            fixed += [by_id[i] for i in previous if i in still and by_id[i] not in fixed]
        order = [c for c in ranked if c not in fixed]
        if ranker is not None and len(passing) > target_n and not (previous and refresh):
            order = self._llm_order(ranker, order, scored, target_n - len(fixed), report)
        elif refresh:
            order = self._drawn(order, scored, target_n - len(fixed), seed)
        picked = self._fill(intent, fixed, order, target_n, per_artist, per_album, report)
        picked = arrange(picked, intent.order, seed)
        chosen = [
            Chosen(
                t,
                scorer.why(scored[t.id], t, fixed),
                round(scored[t.id].score, 4),
                t in pinned_here,
            )
            for t in picked
        ]
        report.got = len(chosen)
        report.total_ms = sum(c.track.duration_ms or 0 for c in chosen)
        self._shortfall(intent, report, target_n)
        return chosen, report

    # ------------------------------------------------------------------ soft filters

    def _soft_filter(
        self,
        intent: Intent,
        pool: list[Candidate],
        need: int,
        per_artist: int,
        per_album: int,
        report: SelectionReport,
    ) -> list[Candidate]:
        """The pool behind the soft preferences, relaxed until `need` tracks can be had.

        Steps are taken in the declared order while too few pass; then every step that
        turns out not to be needed (the later ones sufficed) is taken back, so the report
        lists exactly what was given up, each with how many candidates there would be
        without it.
        """
        relax = _Relaxation(intent)
        steps = relax.steps()
        applied: list[str] = []
        for step in steps:
            if _fillable(relax.passing(pool), per_artist, per_album) >= need:
                break
            relax.apply(step)
            applied.append(step)
        for step in list(applied):  # take back what was not needed, first given up first
            trial = relax.without(step, applied)
            if _fillable(trial.passing(pool), per_artist, per_album) >= need:
                applied.remove(step)
                relax = trial
        final = len(relax.passing(pool))
        for step in applied:  # what each step given up brings: the final set without it
            without = len(relax.without(step, applied).passing(pool))
            text = _Relaxation(intent).describe(step)
            report.relaxed.append(
                f"{text} to reach {need} ({without} candidates without it, {final} with)"
            )
        return relax.passing(pool)

    # ------------------------------------------------------------------ picking

    def _kept(
        self,
        previous: Sequence[int],
        ranked: list[Candidate],
        scored: Mapping[int, Scored],
        target_n: int,
        keep: float | None,
        seed: int,
        fixed: list[Candidate],
    ) -> list[Candidate]:
        """The previous tracks a refresh keeps: a seeded draw, by score, of those still fit."""
        share = self.settings.keep if keep is None else keep
        still = {c.id: c for c in ranked}
        survivors = [still[i] for i in previous if i in still and still[i] not in fixed]
        count = min(len(survivors), max(0, round(share * target_n) - len(fixed)))
        weights = [max(scored[c.id].score, 0.01) for c in survivors]
        return weighted_draw(survivors, weights, count, seed ^ 0x5EED)

    def _drawn(
        self, order: list[Candidate], scored: Mapping[int, Scored], need: int, seed: int
    ) -> list[Candidate]:
        """A refresh's new tracks: drawn by score among the best three times as many."""
        if need <= 0:
            return order
        head = order[: max(3 * need, need + 10)]
        weights = [max(scored[c.id].score, 0.01) for c in head]
        drawn = weighted_draw(head, weights, len(head), seed)
        return drawn + order[len(head) :]

    def _llm_order(
        self,
        ranker: Ranker,
        order: list[Candidate],
        scored: Mapping[int, Scored],
        need: int,
        report: SelectionReport,
    ) -> list[Candidate]:
        shortlist = _varied_head(order, self.settings.shortlist, self.settings.per_artist + 1)
        result = ranker([scored[c.id] for c in shortlist], max(need, 1))
        report.notes += result.notes
        report.llm_requests += result.llm_requests
        report.ranked_by = result.by
        by_id = {c.id: c for c in order}
        first = [by_id[i] for i in result.ids if i in by_id]
        chosen = set(result.ids)
        return first + [c for c in order if c.id not in chosen]

    def _fill(
        self,
        intent: Intent,
        fixed: list[Candidate],
        order: list[Candidate],
        target_n: int,
        per_artist: int,
        per_album: int,
        report: SelectionReport,
    ) -> list[Candidate]:
        target_ms = intent.minutes * 60_000 if intent.minutes else None
        picked: list[Candidate] = []
        total = 0

        def full() -> bool:
            return total >= target_ms if target_ms is not None else len(picked) >= target_n

        caps = Caps(per_artist, per_album)
        for track in fixed:
            if full():
                break
            picked.append(track)
            caps.take(track)
            total += track.duration_ms or AVERAGE_TRACK_MS
        rest = [t for t in order if t not in picked]
        raised = 0
        while not full() and rest:
            skipped = []
            for track in rest:
                if full():
                    skipped.append(track)
                    continue
                if caps.allows(track):
                    picked.append(track)
                    caps.take(track)
                    total += track.duration_ms or AVERAGE_TRACK_MS
                else:
                    skipped.append(track)
            rest = skipped
            if full() or not rest:
                break
            raised += 1
            caps.per_artist += 1
            caps.per_album += 1
        if raised:
            report.relaxed.append(
                f"per-artist and per-album caps raised to {caps.per_artist} and "
                f"{caps.per_album}: the pool has too few artists and albums"
            )
        return picked

    # ------------------------------------------------------------------ shortfall

    def _shortfall(self, intent: Intent, report: SelectionReport, target_n: int) -> None:
        if intent.minutes:
            short = report.total_ms < intent.minutes * 60_000 * 0.9
            wanted = f"{intent.minutes} minutes"
            got = f"{report.total_ms // 60_000} minutes ({report.got} tracks)"
        else:
            short = report.got < target_n
            wanted, got = f"{target_n} tracks", f"{report.got}"
        if not short:
            return
        hard = _hard_text(intent)
        if report.pool == 0:
            report.shortfall = f"no track of the library fits {hard}"
        else:
            report.shortfall = (
                f"asked for {wanted}, got {got}: {hard} admits only {report.pool} "
                f"track{'s' if report.pool != 1 else ''} (one version of each recording)"
            )
        alone = self.library.admitted_alone(intent)
        if len(alone) > 1:
            report.closest.append(
                "alone, " + "; ".join(f"{what} admits {n:,}" for what, n in alone.items())
            )
        for genre in intent.genres:
            count = self.library.genre_count(genre)
            near = self.library.closest_genres(genre)
            if near:
                others = "; ".join(f"{g} has {n:,}" for g, n in near)
                report.closest.append(f"the library has {count:,} tracks of {genre}; {others}")


class _Scorer:
    """Scores and whys for one selection."""

    def __init__(
        self,
        selector: Selector,
        intent: Intent,
        pool: Sequence[Candidate],
        report: SelectionReport,
        refresh: bool,
    ) -> None:
        self.intent = intent
        self.settings = selector.settings
        library = selector.library
        self.exact = set(intent.genres)
        self.wanted = library.expand(intent.genres) if intent.genres else set()
        self.moods = {fold(m): m for m in intent.moods}
        self.labels = {fold(x): x for x in intent.labels}
        self.energy = ENERGY_RANGES.get(intent.energy or "")
        self.recent_since = None
        if refresh:
            now = selector.now or datetime.now().astimezone()
            self.recent_since = (now - self.settings.recent).isoformat()
        self.seeds: list[tuple[str, Candidate]] = []
        self.audio: dict[int, float] = {}
        if intent.like:
            found = library.find_tracks(intent.like)
            missing = [t for t, ids in found.items() if not ids]
            if missing:
                report.notes.append(
                    "nothing in the library is called " + ", ".join(repr(m) for m in missing)
                )
            seed_ids = {i: text for text, ids in found.items() for i in ids[:50]}
            seeds = library.candidates(Intent(), ids=list(seed_ids))
            self.seeds = [(seed_ids[s.id], s) for s in seeds]
            self.audio = audio_closeness(library.store, list(seed_ids), [c.id for c in pool])
        self._by_tags: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}
        self.semantic: Mapping[int, float] = {}
        if selector.semantic is not None and (intent.vibe or intent.title):
            text = " ".join(x for x in (intent.vibe, intent.title) if x)
            self.semantic = selector.semantic(text, [c.id for c in pool])

    def score(self, c: Candidate) -> Scored:
        key = (c.genres, c.moods, c.labels, c.energy)
        tags = self._by_tags.get(key)
        if tags is None:  # tracks share their tags: their part of the score is worked out once
            tags = self._by_tags[key] = self._tag_score(c)
        s, shared = tags
        matched = dict(shared)
        if self.seeds:
            best, text = 0.0, ""
            for like, seed in self.seeds:
                if seed.id == c.id:
                    continue
                close = tag_closeness(c, seed)
                if c.id in self.audio:
                    close = 0.5 * close + 0.5 * self.audio[c.id]
                if close > best:
                    best, text = close, like
            s += 1.5 * best
            if best >= 0.4:
                matched["like"] = text
        if self.semantic:
            near = self.semantic.get(c.id, 0.0)
            s += self.settings.semantic_weight * near
            if near >= 0.6:
                matched["semantic"] = True
        s += 0.3 * c.confidence
        if self.recent_since is not None and (c.added_at or "") >= self.recent_since:
            s += 0.6
            matched["recent"] = True
        return Scored(c, s, matched)

    def _tag_score(self, c: Candidate) -> tuple[float, dict[str, Any]]:
        """The part of the score from genres, moods, labels and energy, and what matched."""
        s = 0.0
        matched: dict[str, Any] = {}
        if self.wanted:
            genre = next((g for g in c.genres if g in self.exact), None)
            genre = genre or next((g for g in c.genres if g in self.wanted), None)
            if genre is not None:
                s += 2.0 if genre == (c.genres[0] if c.genres else None) else 1.6
                matched["genre"] = genre
        elif c.genres:
            matched["genre"] = c.genres[0]
        if self.moods:
            hits = [m for m in c.moods if fold(m) in self.moods]
            s += len(hits) / len(self.moods)
            if hits:
                matched["moods"] = hits
        if self.labels:
            hits = [x for x in c.labels if fold(x) in self.labels]
            s += len(hits) / len(self.labels)
            if hits:
                matched["labels"] = hits
        if self.energy is not None and c.energy is not None:
            lo, hi = self.energy
            distance = 0.0 if lo <= c.energy <= hi else min(abs(c.energy - lo), abs(c.energy - hi))
            s += max(0.0, 1.0 - 2 * distance)
            if distance == 0:
                matched["energy"] = energy_word(c.energy)
        return s, matched

    def why(self, scored: Scored, track: Candidate, fixed: Sequence[Candidate]) -> str:
        m = scored.matched
        parts: list[str] = []
        if m.get("genre"):
            parts.append(m["genre"])
        parts += m.get("moods", [])
        if m.get("energy") and not m.get("moods"):
            parts.append(m["energy"])
        parts += m.get("labels", [])
        if track.year:
            parts.append(str(track.year))
        if m.get("like"):
            parts.append(f"close to {m['like']}")
        if m.get("semantic"):
            parts.append("near the prompt's words")
        if m.get("recent"):
            parts.append("recently added")
        if track in fixed:
            parts.append("kept from before")
        return " · ".join(parts)


class _Relaxation:
    """Which soft preferences filter, and how far energy is widened."""

    def __init__(self, intent: Intent) -> None:
        self.intent = intent
        self.base = ENERGY_RANGES[intent.energy] if intent.energy else (0.0, 1.0)
        self.energy_on = intent.energy is not None
        self.widened = 0
        self.moods = {fold(m) for m in intent.moods}
        self.labels = {fold(x) for x in intent.labels}

    def steps(self) -> list[str]:
        """The declared order: energy widened step by step then dropped, labels, moods."""
        out: list[str] = []
        if self.intent.energy:
            out += [f"energy+{i + 1}" for i in range(ENERGY_STEPS)] + ["energy"]
        if self.intent.labels:
            out.append("labels")
        if self.intent.moods:
            out.append("moods")
        return out

    def bounds(self) -> tuple[float, float]:
        return self.base[0] - self.widened * ENERGY_STEP, self.base[1] + self.widened * ENERGY_STEP

    def apply(self, step: str) -> None:
        if step.startswith("energy+"):
            self.widened = int(step.removeprefix("energy+"))
        elif step == "energy":
            self.energy_on = False
        elif step == "labels":
            self.labels = set()
        else:
            self.moods = set()

    def without(self, step: str, applied: Sequence[str]) -> _Relaxation:
        """The relaxation with `step` taken back (a widening: back to the one before)."""
        trial = _Relaxation(self.intent)
        for other in applied:
            if not _taken_back_with(step, other):
                trial.apply(other)
        return trial

    def describe(self, step: str) -> str:
        if step.startswith("energy+"):
            widened = self.widened
            self.widened = int(step.removeprefix("energy+"))
            text = f"energy {_range_text(self.base)} widened to {_range_text(self.bounds())}"
            self.widened = widened
            return text
        if step == "energy":
            return f"energy {_range_text(self.base)} dropped"
        if step == "labels":
            return f"labels {', '.join(self.intent.labels)} dropped"
        return f"moods {', '.join(self.intent.moods)} dropped"

    def passing(self, pool: Sequence[Candidate]) -> list[Candidate]:
        lo, hi = self.bounds()
        out = []
        for c in pool:
            if self.energy_on and (c.energy is None or not lo <= c.energy <= hi):
                continue
            if self.labels and not self.labels & {fold(x) for x in c.labels}:
                continue
            if self.moods and not self.moods & {fold(m) for m in c.moods}:
                continue
            out.append(c)
        return out


def _taken_back_with(step: str, other: str) -> bool:
    """Whether taking back `step` takes back `other` too: a widening goes with the wider
    ones and with dropping energy altogether."""
    if other == step:
        return True
    if step.startswith("energy+") and other.startswith("energy"):
        return other == "energy" or int(other.removeprefix("energy+")) > int(
            step.removeprefix("energy+")
        )
    return False


def _strictly(intent: Intent, tracks: Sequence[Candidate], fields: set[str]) -> list[Candidate]:
    """Those of `tracks` that meet the soft preferences in `fields` as asked, unrelaxed."""
    energy = ENERGY_RANGES.get(intent.energy or "") if "energy" in fields else None
    moods = {fold(m) for m in intent.moods} if "moods" in fields else set()
    labels = {fold(x) for x in intent.labels} if "labels" in fields else set()
    out = []
    for c in tracks:
        if energy is not None and (c.energy is None or not energy[0] <= c.energy <= energy[1]):
            continue
        if labels and not labels & {fold(x) for x in c.labels}:
            continue
        if moods and not moods & {fold(m) for m in c.moods}:
            continue
        out.append(c)
    return out


def _fillable(tracks: Sequence[Candidate], per_artist: int, per_album: int) -> int:
    caps = Caps(per_artist, per_album)
    n = 0
    for track in tracks:
        if caps.allows(track):
            caps.take(track)
            n += 1
    return n


def _varied_head(order: Sequence[Candidate], size: int, per_artist: int) -> list[Candidate]:
    """The first `size` of `order` with at most `per_artist` of any artist."""
    counts: dict[str, int] = {}
    out = []
    for track in order:
        if counts.get(track.artist_key, 0) >= per_artist:
            continue
        counts[track.artist_key] = counts.get(track.artist_key, 0) + 1
        out.append(track)
        if len(out) >= size:
            break
    return out


def _jitter(seed: int, track_id: int) -> int:
    return int.from_bytes(
        hashlib.blake2b(f"{seed}:{track_id}".encode(), digest_size=4).digest(), "big"
    )


def _range_text(bounds: tuple[float, float]) -> str:
    lo, hi = max(bounds[0], 0.0), min(bounds[1], 1.0)
    if lo <= 0:
        return f"≤ {hi:.2f}"
    if hi >= 1:
        return f"≥ {lo:.2f}"
    return f"{lo:.2f}–{hi:.2f}"


def _hard_text(intent: Intent) -> str:
    parts = []
    if intent.genres:
        parts.append(" or ".join(intent.genres))
    if intent.artists:
        parts.append("by " + ", ".join(intent.artists))
    if intent.year_min is not None or intent.year_max is not None:
        parts.append(year_range_text(intent.year_min, intent.year_max))
    for values, word in (
        (intent.exclude_genres, "no"),
        (intent.exclude_artists, "not by"),
        (intent.exclude_labels, "no"),
        (intent.exclude_moods, "not"),
        (intent.avoid, "nothing with"),
    ):
        if values:
            parts.append(f"{word} {', '.join(values)}")
    return "“" + " · ".join(parts) + "”" if parts else "the library"
