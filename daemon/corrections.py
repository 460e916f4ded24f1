"""A person correcting genred: the one way overrides are set, from `genred override`, the
dashboard's forms and review queue, and the API.

Genre names are written as the taxonomy spells them where it knows them ("hip hop" →
"Hip-Hop"), else as typed (a person's own genre is a genre). Setting a field makes the
track pending for the decide stage; "keep genred's" drops that field's override; clearing
drops them all. Accepting a review makes genred's genres (or, under review, its best
guesses) the override, so the answer is a training label too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .store import Store, overrides
from .store.review import candidates_of
from .taxonomy import Taxonomy


@dataclass(frozen=True)
class Correction:
    """What to do to a set of tracks. None: leave that field as it is."""

    genres: Sequence[str] | None = None
    moods: Sequence[str] | None = None
    labels: Sequence[str] | None = None
    keep: Iterable[str] = ()  # fields given back to genred (their override dropped)
    clear: bool = False  # drop every override of these tracks

    @property
    def empty(self) -> bool:
        return (
            not self.clear
            and self.genres is None
            and self.moods is None
            and self.labels is None
            and not list(self.keep)
        )


@dataclass(frozen=True)
class Applied:
    set: int = 0  # field overrides written
    dropped: int = 0  # field overrides removed


def canonical_genres(values: Iterable[str], taxonomy: Taxonomy) -> list[str]:
    """As the taxonomy spells them where it knows them; "Jungle" and "Drum and Bass" that
    are one genre stay one."""
    named: dict[str, str] = {}
    for value in values:
        name = taxonomy.resolve(value) or value
        named.setdefault(name.casefold(), name)
    return list(named.values())


def apply(
    store: Store,
    taxonomy: Taxonomy,
    track_ids: Sequence[int],
    correction: Correction,
    *,
    origin: str,
    who: str | None,
) -> Applied:
    """Write `correction` for every track; OverrideError (nothing written) on a bad value."""
    values = {
        "genre": None
        if correction.genres is None
        else canonical_genres(overrides.clean_values(correction.genres, "genre"), taxonomy),
        "mood": None
        if correction.moods is None
        else list(overrides.clean_values(correction.moods, "mood")),
        "label": None
        if correction.labels is None
        else list(overrides.clean_values(correction.labels, "label")),
    }
    keep = [f for f in correction.keep if values.get(f) is None]
    written = dropped = 0
    with store.transaction():
        if correction.clear:
            dropped += overrides.clear(store, track_ids)
        elif keep:
            dropped += overrides.clear(store, track_ids, keep)
        if not correction.clear:
            for field, given in values.items():
                if given is not None:
                    written += overrides.put(store, track_ids, field, given, origin=origin, who=who)
    return Applied(written, dropped)


def accept(store: Store, track_ids: Sequence[int], *, origin: str, who: str | None) -> Applied:
    """Make genred's genres (under review: its best guesses) each track's genre override.
    Tracks genred has nothing for are left as they are."""
    if not track_ids:
        return Applied()
    written = 0
    with store.transaction():
        for start in range(0, len(track_ids), 500):
            chunk = list(track_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = store.conn.execute(
                f"SELECT track_id, genres, provenance FROM decisions WHERE track_id IN ({marks})",
                chunk,
            ).fetchall()
            for track_id, genres, provenance in rows:
                guess = candidates_of(genres, provenance)
                if guess:
                    written += overrides.put(
                        store, [track_id], "genre", guess, origin=origin, who=who
                    )
    return Applied(written)
