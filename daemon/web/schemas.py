"""The REST API's request and response bodies (pydantic): what `/api/openapi.json` says."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Value = Annotated[str, Field(min_length=1, max_length=100)]
Values = Annotated[list[Value], Field(max_length=20)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """Every error: what went wrong, in words a person can act on."""

    message: str
    errors: list[str] = Field(default_factory=list, description="one line per bad field")


class TrackItem(BaseModel):
    id: int
    title: str | None
    artist: str | None
    album: str | None
    year: int | None
    source: str
    source_id: str
    album_key: str | None
    genres_before: list[str]
    genres: list[str]
    moods: list[str]
    labels: list[str]
    confidence: float | None
    status: Literal["decided", "review", "undecided"]
    decided_by: str
    overridden: bool
    written: bool


class TrackPage(BaseModel):
    items: list[TrackItem]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")
    total: int


class Said(BaseModel):
    classifier: str
    label_set: str
    version: str
    labels: list[tuple[str, float]]
    created_at: str


class DecisionOut(BaseModel):
    genres: list[str]
    moods: list[str]
    labels: list[str]
    confidence: float | None
    status: str
    decided_at: str
    decided_by: str
    step: int | None
    genre_voters: dict[str, dict[str, float]]
    album_smoothing: dict[str, Any] | None
    provenance: dict[str, Any]


class OverrideOut(BaseModel):
    field: str
    values: list[str]
    origin: str
    created_by: str | None
    created_at: str


class WriteOut(BaseModel):
    target: str
    kind: str
    item_id: str
    field: str
    original: list[str] = Field(description="before genred's first write: what a revert restores")
    written: list[str] | None
    pending: list[str] | None
    written_at: str | None
    manual_at: str | None
    reverted_at: str | None


class FailureOut(BaseModel):
    stage: str
    error_type: str
    message: str
    attempts: int
    last_failed_at: str
    next_retry_at: str | None


class TrackStoryOut(BaseModel):
    track: dict[str, Any]
    album_key: str | None
    predictions: list[Said]
    decision: DecisionOut | None
    overrides: list[OverrideOut]
    writes: list[WriteOut]
    failures: list[FailureOut]
    why: list[str]


class OverrideIn(Body):
    """Per field: a list sets it (empty: "none"), null leaves it as it is."""

    genres: Values | None = None
    moods: Values | None = None
    labels: Values | None = None
    keep: list[Literal["genre", "mood", "label"]] = Field(
        default_factory=list, max_length=3, description="fields given back to genred"
    )


class OverrideResult(BaseModel):
    tracks: int
    set: int
    dropped: int


class GenreItem(BaseModel):
    name: str
    parent: str | None
    count: int = Field(description="tracks decided with it")


class ValueCount(BaseModel):
    name: str
    count: int


class Stats(BaseModel):
    tracks: int
    removed: int
    classified: int
    decided: int
    review: int
    undecided: int
    written: int
    failed: int
    overridden: int
    genres_before: int
    genres_now: int
    top_genres: list[ValueCount]
    top_genres_before: list[ValueCount]
    confidence_histogram: list[int] = Field(description="10 bins: 0–0.1, …, 0.9–1.0")
    new_labels: int = Field(description="manual labels since the current audio model")
    model: str | None
    review_waiting: int


class ReviewTrackOut(BaseModel):
    id: int
    title: str | None
    artist: str | None
    status: str
    confidence: float | None
    genres: list[str]
    candidates: list[str]
    answered: bool


class ReviewAlbumOut(BaseModel):
    key: str
    album: str | None
    artist: str | None
    tracks: list[ReviewTrackOut]
    next_cursor: str = Field(description="pass as `cursor` to skip to the next album")


class ReviewQueue(BaseModel):
    waiting: int = Field(description="tracks under review nobody has answered for")
    album: ReviewAlbumOut | None


class ReviewAnswer(Body):
    tracks: Annotated[
        list[Annotated[int, Field(ge=1, le=2**62)]], Field(min_length=1, max_length=500)
    ]
    action: Literal["accept", "correct"]
    genres: Values | None = Field(None, description="with `correct`: the right genres")


class RunOut(BaseModel):
    id: int
    job: str
    trigger: str
    started_at: str
    ended_at: str | None
    status: str
    counts: dict[str, Any]
    error: str | None


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


class ProgressItem(BaseModel):
    job: str
    trigger: str
    run_id: int | None
    step: str
    done: int
    total: int | None
    seconds: float


class ProgressOut(BaseModel):
    running: list[ProgressItem]
    next_runs: dict[str, str | None]


class JobStarted(BaseModel):
    job: str
    run_id: int
    run: str = Field(description="where the run's record is")
    events: str = Field(description="its progress as server-sent events")


# --------------------------------------------------------------------------- playlists

Prompt = Annotated[str, Field(min_length=1, max_length=2000)]


class PlaylistItem(BaseModel):
    id: int
    name: str
    prompt: str
    tracks: int
    minutes: int
    version: int | None
    targets: list[str]
    pushed: list[str] = Field(description="the targets it was pushed to")
    saved: bool
    updated_at: str


class PlaylistPage(BaseModel):
    items: list[PlaylistItem]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class PlaylistTrack(BaseModel):
    position: int
    track_id: int
    artist: str
    title: str
    album: str
    year: int | None
    duration_ms: int | None
    why: str
    pinned: bool
    matches: dict[str, str] = Field(description="target → its item, or `not found: …`")


class PlaylistRemote(BaseModel):
    target: str
    remote_id: str
    link: str | None
    pushed_version: int | None
    pushed_at: str | None
    in_sync: bool


class PlaylistOut(BaseModel):
    id: int | None = Field(description="null for a preview (nothing stored)")
    name: str
    prompt: str
    version: int | None
    summary: str
    intent: dict[str, Any]
    tracks: list[PlaylistTrack]
    unmatched: dict[str, list[PlaylistTrack]] = Field(description="per target, not found there")
    remotes: list[PlaylistRemote]
    notes: list[str]


class PlaylistCreate(Body):
    prompt: Prompt
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    size: Annotated[int, Field(ge=1, le=1000)] | None = None
    preview: bool = Field(False, description="select and show the tracks, store nothing")


class PlaylistRefine(Body):
    change: Annotated[str, Field(min_length=1, max_length=500)]


class PlaylistPush(Body):
    targets: Annotated[list[Value], Field(max_length=10)] | None = None


class PushOut(BaseModel):
    target: str
    status: str
    link: str | None
    added: int
    removed: int
    unmatched: int
    message: str


class PushResult(BaseModel):
    pushes: list[PushOut]
