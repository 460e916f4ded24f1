"""`playlists:`: how prompts become playlists, and the saved ones the daemon keeps fresh."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .types import CrontabLine, Duration, StrictModel

MAX_PROMPT_CHARS = 1000


class SavedPlaylist(StrictModel):
    """One saved prompt: rebuilt from the library on its own schedule, pushed to its targets.

    The first run creates it (one LLM request when an LLM is configured); later runs
    refresh it from the stored intent (no LLM). Editing `prompt` makes the next run read
    it again.
    """

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    targets: list[str] = Field(
        default_factory=list, description="playlist targets (plugins.playlists) to push to"
    )
    size: int | None = Field(None, ge=1, le=1000, description="tracks; default: the prompt's")
    minutes: int | None = Field(None, ge=1, le=6000, description="length instead of a size")
    every: Duration | None = None
    cron: CrontabLine | None = None
    keep: float | None = Field(
        None, ge=0.0, le=1.0, description="share of the previous tracks a refresh keeps"
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _one_trigger(self) -> SavedPlaylist:
        if self.every is not None and self.cron is not None:
            raise ValueError("give 'every' or 'cron', not both")
        if self.size is not None and self.minutes is not None:
            raise ValueError("give 'size' or 'minutes', not both")
        return self


class SemanticConfig(StrictModel):
    """Optional text embeddings of each track's profile (pip install 'genred[semantic]')."""

    enabled: bool = False
    index_batch: int = Field(
        2000, ge=1, description="profiles embedded per playlists run (the rest next time)"
    )
    weight: float = Field(1.0, ge=0.0, le=5.0, description="weight of closeness to the prompt")


class PlaylistsConfig(StrictModel):
    """`playlists:`: the pipeline's settings and the saved prompts."""

    llm: str | None = Field(
        None,
        description="the llm plugin that reads prompts; null: the first enabled one, and "
        "the rules parser when none is",
    )
    rank: Literal["score", "llm"] = Field(
        "score",
        description="score: the candidates' scores order them (1 LLM request a playlist); "
        "llm: the LLM picks from a shortlist (one request more)",
    )
    size: int = Field(25, ge=1, le=1000, description="tracks when the prompt says nothing")
    shortlist: int = Field(
        120, ge=10, le=400, description="candidates shown to the LLM when rank is llm"
    )
    per_artist: int = Field(3, ge=1, description="tracks of one artist at most (default)")
    per_album: int = Field(2, ge=1, description="tracks of one album at most (default)")
    keep: float = Field(
        0.6, ge=0.0, le=1.0, description="share of the previous tracks a refresh keeps"
    )
    recent: Duration = Field(
        timedelta(days=30), description="tracks added this recently are preferred in a refresh"
    )
    targets: list[str] | None = Field(
        None, description="targets of a new playlist when none are given; null: every enabled one"
    )
    first_run_after: Duration = Field(
        timedelta(minutes=1),
        description="a saved playlist that never ran is made this long after the first sync",
    )
    recheck_missing: Duration = Field(
        timedelta(days=30), description="a track a target did not have is looked up again after"
    )
    semantic: SemanticConfig = SemanticConfig()
    saved: dict[str, SavedPlaylist] = Field(
        default_factory=dict, description="name → a saved prompt the daemon keeps fresh"
    )

    @field_validator("saved", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            seen: dict[str, str] = {}
            for name in value:
                if not str(name).strip():
                    raise ValueError("a saved playlist needs a name")
                folded = str(name).strip().casefold()
                if folded in seen:
                    raise ValueError(f"{name!r} and {seen[folded]!r} are the same name")
                seen[folded] = str(name)
        return value
