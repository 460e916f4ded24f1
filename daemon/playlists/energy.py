"""A track's energy, 0 (calm) to 1 (intense), estimated from what genred knows of it.

No audio analysis gives genred a tempo or loudness it can trust across taggers, so energy
is read from words: the track's moods and labels ("Party", "Chill", the tagger's "Fast" and
"Slow") weigh twice, its genre's usual energy (Metal high, Ambient low, looked up the
taxonomy tree) once. A track with none of these has no estimate (None); selection then
neither rewards nor filters it on energy. `why` texts call the result calm/steady/upbeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

MOOD_ENERGY = {
    "aggressive": 0.9,
    "energetic": 0.85,
    "party": 0.85,
    "fast": 0.85,
    "upbeat": 0.8,
    "happy": 0.7,
    "catchy": 0.65,
    "beats": 0.65,
    "drums": 0.6,
    "sexy": 0.55,
    "dark": 0.5,
    "romantic": 0.35,
    "beautiful": 0.35,
    "sad": 0.3,
    "melancholic": 0.3,
    "chill": 0.3,
    "mellow": 0.25,
    "relaxed": 0.2,
    "relaxing": 0.2,
    "calm": 0.2,
    "slow": 0.2,
    "peaceful": 0.15,
}

GENRE_ENERGY = {
    "Hardcore Punk": 0.95,
    "Metal": 0.9,
    "Punk": 0.9,
    "Drum & Bass": 0.85,
    "Techno": 0.8,
    "Dance": 0.75,
    "Disco": 0.75,
    "House": 0.7,
    "Rock": 0.7,
    "Funk": 0.65,
    "Hip-Hop": 0.65,
    "Latin": 0.65,
    "Electronic": 0.6,
    "Pop": 0.6,
    "Soul-RnB": 0.5,
    "Country": 0.5,
    "International": 0.5,
    "Experimental": 0.5,
    "Reggae": 0.5,
    "Dub": 0.45,
    "Blues": 0.45,
    "Jazz": 0.4,
    "Soundtrack": 0.4,
    "Old-Time / Historic": 0.4,
    "Folk": 0.35,
    "Singer-Songwriter": 0.35,
    "Children's Music": 0.45,
    "Holiday": 0.45,
    "Trip-Hop": 0.35,
    "Classical": 0.3,
    "Downtempo": 0.3,
    "Lo-Fi": 0.3,
    "Easy Listening": 0.25,
    "Chill-out": 0.25,
    "Spoken": 0.2,
    "Ambient": 0.15,
    "New Age": 0.15,
}


class EnergyEstimator:
    """`estimate(genres, moods, labels)` → 0..1 or None. `ancestors(name)` walks the
    taxonomy (nearest first), so a sub-genre without its own value gets its parent's."""

    def __init__(self, ancestors: Callable[[str], list[str]]) -> None:
        self._ancestors = ancestors
        self._by_genre: dict[str, float | None] = {}

    def genre_energy(self, genre: str) -> float | None:
        if genre not in self._by_genre:
            value = GENRE_ENERGY.get(genre)
            if value is None:
                try:
                    chain = self._ancestors(genre)
                except KeyError:
                    chain = []
                value = next((GENRE_ENERGY[g] for g in chain if g in GENRE_ENERGY), None)
            self._by_genre[genre] = value
        return self._by_genre[genre]

    def estimate(
        self, genres: Iterable[str], moods: Iterable[str], labels: Iterable[str]
    ) -> float | None:
        cues = [
            MOOD_ENERGY[word.casefold()]
            for word in (*moods, *labels)
            if word.casefold() in MOOD_ENERGY
        ]
        genre = next((e for g in genres if (e := self.genre_energy(g)) is not None), None)
        total = 2 * sum(cues) + (genre or 0.0)
        weight = 2 * len(cues) + (1 if genre is not None else 0)
        return round(total / weight, 3) if weight else None


def energy_word(value: float | None) -> str | None:
    if value is None:
        return None
    return "calm" if value < 0.4 else ("upbeat" if value >= 0.6 else "steady")
