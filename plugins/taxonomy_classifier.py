"""Classifier `taxonomy`: the genres a track already has, cleaned up by the taxonomy.

The track's own genres first; when it has none, its album's, then its artist's, with a
little less confidence. Exact names and aliases score 1.0, fuzzy matches less (the
taxonomy says how much). A track with nothing usable gets no prediction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from threading import Event

from pydantic import BaseModel, ConfigDict, Field

from genred.api import PluginContext, Prediction, Store, TrackRecord, taxonomy_from_config


class TaxonomySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    album_factor: float = Field(0.9, ge=0, le=1, description="confidence × this for album genres")
    artist_factor: float = Field(0.8, ge=0, le=1, description="confidence × this for artist genres")


class TaxonomyClassifier:
    Config = TaxonomySettings
    uses_config = ("taxonomy",)  # rebuilt on reload only when these sections change
    label_set = "genre"

    def __init__(self, settings: TaxonomySettings, context: PluginContext) -> None:
        self.settings = settings
        self.taxonomy = taxonomy_from_config(context.config.taxonomy)
        # The version follows the taxonomy and settings: editing either re-classifies.
        blob = json.dumps(
            [
                sorted(self.taxonomy.names),
                context.config.taxonomy.model_dump(mode="json"),
                settings.model_dump(),
            ],
            sort_keys=True,
            default=str,
        )
        self.version = "1-" + hashlib.sha256(blob.encode()).hexdigest()[:10]

    def classify(
        self,
        tracks: Sequence[TrackRecord],
        *,
        store: Store | None = None,
        cancel: Event | None = None,
    ) -> Iterator[Prediction]:
        for track in tracks:
            if track.id is None:
                continue
            labels = self._labels(track)
            if labels:
                yield Prediction(track.id, "genre", labels)

    def _labels(self, track: TrackRecord) -> tuple[tuple[str, float], ...]:
        for raw, factor in (
            (track.genres, 1.0),
            (track.album_genres, self.settings.album_factor),
            (track.artist_genres, self.settings.artist_factor),
        ):
            matches = self.taxonomy.match(list(raw)) if raw else []
            if matches:
                ranked = sorted(matches, key=lambda m: -m.confidence)
                return tuple((m.name, round(m.confidence * factor, 4)) for m in ranked)
        return ()
