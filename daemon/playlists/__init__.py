"""Playlists from plain words: a prompt → an intent → tracks of your own library → pushed.

`operations` is the public face (create, refine, undo, refresh, edit, pin, drop, show,
list, push, delete, sync_saved), taking a `PlaylistContext` and returning the records of
`records`. Underneath: `intent` (the typed, stored intent and its patches), `reading`
(the LLM once, else `rules`), `library` (candidates behind the hard constraints, in SQL
first), `selection` (scores, soft filters relaxed in a declared order, shortfall, why),
`ranking` (the LLM ranks ids of a shortlist), `variety` (one version per recording,
caps, order), `energy`, `similar` ("like these"), `semantic` (optional text embeddings)
and `push` (matching, and diffs sent in recorded chunks to a `PlaylistTarget`).
"""

from .intent import Intent, IntentPatch
from .operations import (
    PlaylistContext,
    create,
    delete,
    drop,
    edit,
    list_playlists,
    pin,
    push_playlist,
    refine,
    refresh,
    reprompt,
    show,
    sync_saved,
    undo,
)
from .records import (
    Outcome,
    PlaylistSummary,
    PlaylistView,
    PushReport,
    RemoteView,
    TrackEntry,
    VersionSummary,
)
from .selection import SelectionReport

__all__ = [
    "Intent",
    "IntentPatch",
    "Outcome",
    "PlaylistContext",
    "PlaylistSummary",
    "PlaylistView",
    "PushReport",
    "RemoteView",
    "SelectionReport",
    "TrackEntry",
    "VersionSummary",
    "create",
    "delete",
    "drop",
    "edit",
    "list_playlists",
    "pin",
    "push_playlist",
    "refine",
    "refresh",
    "reprompt",
    "show",
    "sync_saved",
    "undo",
]
