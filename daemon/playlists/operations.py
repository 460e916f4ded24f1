"""The playlist operations: create, refine, undo, refresh, edit, pin, drop, show, list, push,
delete. Each takes a `PlaylistContext` and returns records (`records.py`); the CLI prints
them, the daemon's `playlists` stage and a web API call the same functions.

Every change is a new version (stored in one transaction with what selection reported);
a push follows unless asked not to. LLM requests: one to read a prompt, one per refine,
none for a refresh, undo, pin or drop (plus one more each for create and refine with
`playlists.rank: llm`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from ..config import Config
from ..errors import LibraryEmpty, PlaylistError, PluginUnavailable, RetryLater
from ..hookspecs import LinksPlaylists, PluginLookup
from ..progress import NullProgress, Progress
from ..records import TrackRecord
from ..store import Store
from ..store import playlists as q
from ..taxonomy import Taxonomy, taxonomy_from_config
from .intent import Intent, IntentPatch, apply_patch, changed_fields, describe_change
from .library import Library
from .push import description_of, push_version
from .ranking import LLMRanker
from .reading import PromptReader, Reading, check_prompt
from .records import (
    Outcome,
    PlaylistSummary,
    PlaylistView,
    PushReport,
    RemoteView,
    TrackEntry,
    VersionSummary,
)
from .selection import Chosen, SelectionReport, Selector, Settings, day_seed


@dataclass
class PlaylistContext:
    """What an operation works with. `today` seeds the draws (default: the local date)."""

    store: Store
    config: Config
    plugins: PluginLookup
    progress: Progress = field(default_factory=NullProgress)
    cancel: threading.Event | None = None
    today: date | None = None
    now: datetime | None = None

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return taxonomy_from_config(self.config.taxonomy)

    def library(self) -> Library:
        return Library(self.store, self.taxonomy)

    def day(self) -> date:
        return self.today or (self.now or datetime.now().astimezone()).date()

    def settings(self) -> Settings:
        p = self.config.playlists
        return Settings(
            size=p.size,
            per_artist=p.per_artist,
            per_album=p.per_album,
            keep=p.keep,
            recent=p.recent,
            shortlist=p.shortlist,
            semantic_weight=p.semantic.weight,
        )

    def llm(self) -> tuple[Any | None, str | None]:
        """The LLM plugin that reads prompts, or (None, why there is none)."""
        wanted = self.config.playlists.llm
        if wanted:
            try:
                return self.plugins.get("llm", wanted), None
            except PluginUnavailable as exc:
                return None, f"{exc}; the rules parser read the prompt instead"
        enabled = dict(self.plugins.of("llm"))
        if enabled:
            return next(iter(enabled.values())), None
        return None, "no LLM is configured (plugins.llm): the rules parser read the prompt"

    def target(self, name: str) -> Any:
        """The enabled playlist target `name`; PlaylistError says what is enabled."""
        try:
            return self.plugins.get("playlists", name)
        except PluginUnavailable as exc:
            enabled = ", ".join(self.plugins.of("playlists")) or "none"
            raise PlaylistError(f"{exc} (enabled playlist targets: {enabled})") from None

    def semantic(self) -> Any:
        if not self.config.playlists.semantic.enabled:
            return None
        from .semantic import SemanticScores, unavailable

        return None if unavailable() else SemanticScores(self.store)


# --------------------------------------------------------------------------- create


def create(
    ctx: PlaylistContext,
    prompt: str,
    *,
    name: str | None = None,
    size: int | None = None,
    minutes: int | None = None,
    targets: Sequence[str] | None = None,
    dry_run: bool = False,
    push: bool = True,
    saved: bool = False,
) -> Outcome:
    """A new playlist from `prompt`: read (one LLM request), selected, stored, pushed."""
    prompt = check_prompt(prompt)
    if name is not None:
        name = _checked_name(name)
        existing = q.find(ctx.store, name)
        if existing is not None:
            raise PlaylistError(
                f"a playlist named {existing.name!r} exists: refine it (genred playlist refine "
                f'{_quoted(existing.name)} "…"), delete it, or choose another --name'
            )
    if targets is None:
        targets = ctx.config.playlists.targets
    chosen_targets = list(targets if targets is not None else ctx.plugins.of("playlists"))
    for target in chosen_targets:
        ctx.target(target)
    library = ctx.library()
    _require_tracks(library)
    reading = _reader(ctx, library).read(prompt)
    intent = _with_shape(reading.intent, size, minutes, "user")
    _require_selectable(ctx, intent, reading)
    if name is None:
        name = _free_name(ctx.store, _checked_name(intent.title or prompt[:60]))
    chosen, report = _select(ctx, library, intent, name, prompt, reading)
    notes = _notes(library, reading, report)
    if dry_run:
        entries = _entries_of(ctx, library, chosen, [])
        return Outcome(
            None, entries, entries, [], [], notes, report, intent, dry_run=True,
            llm_requests=reading.llm_requests + report.llm_requests,
        )  # fmt: skip
    with ctx.store.transaction():
        playlist_id = q.create(ctx.store, name, prompt, chosen_targets, saved=saved)
        number = _store(ctx, playlist_id, None, "create", intent, chosen, [], report, reading)
    view = show(ctx, name)
    pushes = push_playlist(ctx, name) if push and chosen_targets else []
    return Outcome(
        view, view.tracks, view.tracks, [], [], notes, report, intent, pushes,
        llm_requests=_llm_count(ctx, playlist_id, number),
    )  # fmt: skip


def reprompt(ctx: PlaylistContext, name: str, prompt: str, *, push: bool = True) -> Outcome:
    """The playlist read again from a new prompt (a saved prompt edited in the config):
    a new version of the same playlist, so its remote playlists stay the same."""
    row, head = _load(ctx, name)
    prompt = check_prompt(prompt)
    library = ctx.library()
    _require_tracks(library)
    reading = _reader(ctx, library).read(prompt)
    intent = _with_shape(reading.intent, head_intent(head).size, head_intent(head).minutes, "user")
    _require_selectable(ctx, intent, reading)
    chosen, report = _select(
        ctx, library, intent, row.name, prompt, reading, pinned=head.pinned, banned=head.banned
    )
    with ctx.store.transaction():
        q.update(ctx.store, row.id, prompt=prompt)
        _store(
            ctx, row.id, head.number, "prompt edited", intent, chosen, head.banned, report, reading
        )
    return _changed(ctx, row.name, head, _notes(library, reading, report), push, [])


# --------------------------------------------------------------------------- changes


def refine(ctx: PlaylistContext, name: str, change: str, *, push: bool = True) -> Outcome:
    """A change to the stored intent in a few words (one LLM request): pinned tracks stay,
    removed ones never come back, only tracks that no longer fit are replaced."""
    row, head = _load(ctx, name)
    library = ctx.library()
    before = head_intent(head)
    patch, reading = _reader(ctx, library).change(before, row.prompt, change)
    if patch.is_empty() or before == reading.intent:
        hint = f" ({'; '.join(reading.notes)})" if reading.notes else ""
        raise PlaylistError(f"nothing in {change!r} changes the playlist{hint}")
    return _reselect(
        ctx, row, head, reading.intent, f"refine: {check_prompt(change, 'change')}", reading, push
    )


def edit(ctx: PlaylistContext, name: str, patch: IntentPatch, *, push: bool = True) -> Outcome:
    """A person's own change to the intent (fields set, added, removed): no LLM."""
    row, head = _load(ctx, name)
    if patch.is_empty():
        raise PlaylistError("the edit changes nothing")
    try:
        intent = apply_patch(head_intent(head), patch, "user")
    except ValueError as exc:
        raise PlaylistError(f"the edit does not fit the intent: {exc}") from None
    reading = Reading(intent, [], 0, "user")
    return _reselect(
        ctx, row, head, intent, "edit: " + ", ".join(sorted(patch.fields())), reading, push
    )


def drop(
    ctx: PlaylistContext, name: str, positions: Sequence[int], *, push: bool = True
) -> Outcome:
    """Remove tracks (by position, 1-based): they never come back; others fill their place."""
    row, head = _load(ctx, name)
    ids = _at_positions(head.track_ids, positions)
    reading = Reading(head_intent(head), [], 0, "user")
    return _reselect(
        ctx, row, head, reading.intent, f"drop {_positions_text(positions)}", reading, push,
        banned=[*head.banned, *ids],
    )  # fmt: skip


def pin(
    ctx: PlaylistContext,
    name: str,
    positions: Sequence[int],
    *,
    pinned: bool = True,
    push: bool = True,
) -> Outcome:
    """Pin (or unpin) tracks by position: a pinned track stays through refines and refreshes."""
    row, head = _load(ctx, name)
    ids = set(_at_positions(head.track_ids, positions))
    tracks = [{**t, "pinned": pinned} if int(t["track_id"]) in ids else t for t in head.tracks]
    q.add_version(
        ctx.store, row.id, parent=head.number,
        reason=f"{'pin' if pinned else 'unpin'} {_positions_text(positions)}",
        intent=head.intent, tracks=tracks, banned=head.banned, report=head.report, llm_requests=0,
    )  # fmt: skip
    return _changed(ctx, row.name, head, [], push, [])


def undo(ctx: PlaylistContext, name: str, *, push: bool = True) -> Outcome:
    """Back to the version the current one was made from (every version is kept)."""
    row, head = _load(ctx, name)
    if head.parent is None:
        raise PlaylistError(f"nothing to undo: version {head.number} of {row.name!r} is its first")
    q.set_head(ctx.store, row.id, head.parent)
    return _changed(ctx, row.name, head, [f"back to version {head.parent}"], push, [])


def refresh(
    ctx: PlaylistContext, name: str, *, keep: float | None = None, push: bool = True
) -> Outcome:
    """The stored intent on today's library, without the LLM: `keep` of the previous
    tracks stay, the rest is drawn (seed from the date), recently added ones preferred."""
    row, head = _load(ctx, name)
    library = ctx.library()
    reason = f"refresh {ctx.day().isoformat()}"
    base = head
    if head.reason == reason and head.parent is not None:  # refreshed today already: the
        base = q.version(ctx.store, row.id, head.parent) or head  # same draw from the same base
    intent = head_intent(base)
    reading = Reading(intent, [], 0, "stored")
    chosen, report = _select(
        ctx, library, intent, row.name, row.prompt, None,
        previous=base.track_ids, pinned=head.pinned, banned=head.banned, keep=keep, refresh=True,
    )  # fmt: skip
    notes = _notes(library, reading, report)
    if [c.track.id for c in chosen] == head.track_ids:
        notes.append("the refresh chose the same tracks: no new version")
        return _changed(ctx, row.name, head, notes, push, [], stored=False)
    _store(ctx, row.id, base.number, reason, intent, chosen, head.banned, report, reading)
    return _changed(ctx, row.name, head, notes, push, [])


def _reselect(
    ctx: PlaylistContext,
    row: q.PlaylistRow,
    head: q.VersionRow,
    intent: Intent,
    reason: str,
    reading: Reading,
    push: bool,
    *,
    banned: Sequence[int] | None = None,
) -> Outcome:
    library = ctx.library()
    banned_ids = list(head.banned if banned is None else banned)
    chosen, report = _select(
        ctx, library, intent, row.name, row.prompt, reading,
        previous=head.track_ids, pinned=head.pinned, banned=banned_ids,
        changed=changed_fields(head_intent(head), intent),
    )  # fmt: skip
    _store(ctx, row.id, head.number, reason, intent, chosen, banned_ids, report, reading)
    changes = describe_change(head_intent(head), intent)
    return _changed(ctx, row.name, head, _notes(library, reading, report), push, changes)


def _changed(
    ctx: PlaylistContext,
    name: str,
    before: q.VersionRow,
    notes: list[str],
    push: bool,
    intent_changes: list[str],
    *,
    stored: bool = True,
) -> Outcome:
    view = show(ctx, name)
    old = set(before.track_ids)
    new = {t.track_id for t in view.tracks}
    added = [t for t in view.tracks if t.track_id not in old]
    removed_ids = [i for i in before.track_ids if i not in new]
    removed = _entries(ctx, ctx.library(), [{"track_id": i, "why": ""} for i in removed_ids], [])
    if not intent_changes and view.version != before.number:
        intent_changes = describe_change(head_intent(before), view.intent)
    pushes = push_playlist(ctx, name) if push and view.targets else []
    row = q.find(ctx.store, name)
    assert row is not None
    llm = _llm_count(ctx, row.id, view.version) if stored and view.version != before.number else 0
    return Outcome(
        view, view.tracks, added, removed, intent_changes, notes, view.report, view.intent,
        pushes, llm_requests=llm,
    )  # fmt: skip


# --------------------------------------------------------------------------- reading back


def show(ctx: PlaylistContext, name: str, *, version: int | None = None) -> PlaylistView:
    """The playlist at its head (or `version`): intent, report, tracks with their whys,
    where each was matched, its versions and where it is pushed."""
    row, head = _load(ctx, name)
    shown = head
    if version is not None and version != head.number:
        found = q.version(ctx.store, row.id, version)
        if found is None:
            raise PlaylistError(
                f"{row.name!r} has no version {version} (it has 1 to {_max_version(ctx, row.id)})"
            )
        shown = found
    entries = _entries(ctx, ctx.library(), shown.tracks, row.targets)
    versions = [
        VersionSummary(v.number, v.parent, v.reason, v.created_at, len(v.tracks), v.llm_requests, v.number == row.head)
        for v in q.versions(ctx.store, row.id)
    ]  # fmt: skip
    remotes = []
    for r in q.remotes(ctx.store, row.id):
        link = None
        try:
            target = ctx.plugins.get("playlists", r.target)
            link = target.link(r.remote_id) if isinstance(target, LinksPlaylists) else None
        except PluginUnavailable:
            pass
        remotes.append(
            RemoteView(
                r.target,
                r.remote_id,
                link,
                r.version,
                r.pushed_at,
                r.version == row.head and r.items != ["?unknown"],
            )
        )
    return PlaylistView(
        row.name, row.prompt, row.targets, row.saved, shown.number, head_intent(shown),
        SelectionReport.from_json(shown.report), entries, versions, remotes,
        row.created_at, row.updated_at,
    )  # fmt: skip


def list_playlists(store: Store) -> list[PlaylistSummary]:
    out = []
    for row in q.all_playlists(store):
        head = q.version(store, row.id, row.head) if row.head is not None else None
        tracks = head.track_ids if head else []
        minutes = 0
        if tracks:
            total = store.conn.execute(
                "SELECT COALESCE(SUM(duration_ms), 0) FROM tracks WHERE id IN "
                "(SELECT value FROM json_each(?))",
                (_json(tracks),),
            ).fetchone()[0]
            minutes = int(total) // 60_000
        count = store.conn.execute(
            "SELECT COUNT(*) FROM playlist_versions WHERE playlist_id = ?", (row.id,)
        ).fetchone()[0]
        out.append(
            PlaylistSummary(row.name, row.prompt, len(tracks), minutes, row.head, int(count), row.targets, row.saved, row.updated_at)
        )  # fmt: skip
    return out


# --------------------------------------------------------------------------- push, delete


def push_playlist(
    ctx: PlaylistContext,
    name: str,
    *,
    targets: Sequence[str] | None = None,
    verify: bool = False,
) -> list[PushReport]:
    """Push the head version to its targets (or `targets`); one report each. A target that
    asks to wait is reported `deferred` (its RetryLater is in `deferred_until`)."""
    row, head = _load(ctx, name)
    wanted = list(targets if targets is not None else row.targets)
    if not wanted:
        return []
    intent = head_intent(head)
    description = description_of(row.prompt, intent.summary())
    library = ctx.library()
    rows = library.records(head.track_ids)
    records = [
        TrackRecord.from_row(rows[i])
        for i in head.track_ids
        if i in rows and not rows[i]["removed"]
    ]
    gone = len(head.track_ids) - len(records)
    reports: list[PushReport] = []
    for name_ in wanted:
        try:
            target = ctx.target(name_)
        except PlaylistError as exc:
            reports.append(PushReport(name_, "failed", message=str(exc)))
            continue
        try:
            report = push_version(
                ctx.store, target, playlist_id=row.id, version=head.number, title=row.name,
                description=description, records=records,
                recheck_missing=ctx.config.playlists.recheck_missing, verify=verify, cancel=ctx.cancel,
                progress=ctx.progress,
            )  # fmt: skip
        except RetryLater as exc:
            report = PushReport(
                name_, "deferred", message=str(exc), retry_at=exc.retry_at.isoformat()
            )
        if gone:
            report.notes.append(f"{gone} tracks left the library since this version: not pushed")
        reports.append(report)
    return reports


def delete(ctx: PlaylistContext, name: str, *, remote: bool = False) -> list[str]:
    """Forget the playlist; with `remote`, delete its remote playlists first (Spotify:
    unfollow). What happened, one line per target."""
    row, _head = _load(ctx, name)
    said = []
    for r in q.remotes(ctx.store, row.id):
        if not remote:
            said.append(f"{r.target}: the remote playlist {r.remote_id} is kept")
            continue
        try:
            ctx.target(r.target).delete(r.remote_id, cancel=ctx.cancel)
            said.append(f"{r.target}: deleted {r.remote_id}")
        except Exception as exc:  # a failed remote delete must not keep the local one
            said.append(f"{r.target}: could not delete {r.remote_id}: {exc}")
    q.delete(ctx.store, row.id)
    said.append(f"{row.name!r} deleted from genred")
    return said


# --------------------------------------------------------------------------- helpers


def head_intent(version: q.VersionRow) -> Intent:
    return Intent.from_json(version.intent)


def _load(ctx: PlaylistContext, name: str) -> tuple[q.PlaylistRow, q.VersionRow]:
    row = q.find(ctx.store, name)
    if row is None:
        names = [p.name for p in q.all_playlists(ctx.store)]
        known = f" (there are: {', '.join(names)})" if names else " (there are none yet)"
        raise PlaylistError(f"no playlist named {name!r}{known}")
    head = q.version(ctx.store, row.id, row.head) if row.head is not None else None
    if head is None:
        raise PlaylistError(f"playlist {row.name!r} has no version (a create broke off): delete it")
    return row, head


def _reader(ctx: PlaylistContext, library: Library) -> PromptReader:
    llm, why_not = ctx.llm()
    return PromptReader(library, llm, cancel=ctx.cancel, llm_note=why_not)


def _select(
    ctx: PlaylistContext,
    library: Library,
    intent: Intent,
    name: str,
    prompt: str,
    reading: Reading | None,
    *,
    previous: Sequence[int] = (),
    pinned: Sequence[int] = (),
    banned: Iterable[int] = (),
    keep: float | None = None,
    refresh: bool = False,
    changed: Iterable[str] = (),
) -> tuple[list[Chosen], SelectionReport]:
    llm, _ = ctx.llm()
    ranker = None
    if ctx.config.playlists.rank == "llm" and llm is not None and not refresh:
        ranker = LLMRanker(llm, prompt, intent, cancel=ctx.cancel)
    selector = Selector(library, ctx.settings(), semantic=ctx.semantic(), now=ctx.now)
    return selector.select(
        intent, seed=day_seed(name, ctx.day()), previous=previous, pinned=pinned,
        banned=banned, keep=keep, ranker=ranker, refresh=refresh, changed=changed,
    )  # fmt: skip


def _store(
    ctx: PlaylistContext,
    playlist_id: int,
    parent: int | None,
    reason: str,
    intent: Intent,
    chosen: Sequence[Chosen],
    banned: Sequence[int],
    report: SelectionReport,
    reading: Reading | None,
) -> int:
    report.notes = list(dict.fromkeys([*(reading.notes if reading else []), *report.notes]))
    tracks = [
        {"track_id": c.track.id, "why": c.why, "pinned": c.pinned, "score": c.score} for c in chosen
    ]
    return q.add_version(
        ctx.store, playlist_id, parent=parent, reason=reason, intent=intent.to_json(),
        tracks=tracks, banned=banned, report=report.to_json(),
        llm_requests=(reading.llm_requests if reading else 0) + report.llm_requests,
    )  # fmt: skip


def _notes(library: Library, reading: Reading | None, report: SelectionReport) -> list[str]:
    notes = list(reading.notes) if reading else []
    vocab = library.vocabulary
    if vocab.decided == 0:
        notes.append(
            "no track has a decision yet: genres are the sources' own tags, canonicalized "
            "(run `genred classify` and `genred decide` for better ones)"
        )
    return list(dict.fromkeys([*notes, *report.notes]))


def _require_tracks(library: Library) -> None:
    if library.vocabulary.tracks == 0:
        raise LibraryEmpty("the library is empty: run `genred sync` first")


def _require_selectable(ctx: PlaylistContext, intent: Intent, reading: Reading) -> None:
    semantic = ctx.config.playlists.semantic.enabled
    fields = [f for f, v in intent.hard().items() if v]
    fields += [f for f in ("moods", "labels", "energy", "like") if getattr(intent, f)]
    if fields or (semantic and intent.vibe):
        return
    said = f" ({'; '.join(reading.notes)})" if reading.notes else ""
    raise PlaylistError(
        "the prompt names nothing genred can select by: no genre, decade, mood, energy, "
        f"artist or track of the library{said}; nothing was created"
    )


def _with_shape(intent: Intent, size: int | None, minutes: int | None, source: str) -> Intent:
    if size is None and minutes is None:
        return intent
    values: dict[str, Any] = {"size": size, "minutes": minutes}
    return apply_patch(intent, IntentPatch(set=values), source)


def _entries_of(
    ctx: PlaylistContext, library: Library, chosen: Sequence[Chosen], targets: Sequence[str]
) -> list[TrackEntry]:
    tracks = [{"track_id": c.track.id, "why": c.why, "pinned": c.pinned} for c in chosen]
    return _entries(ctx, library, tracks, targets)


def _entries(
    ctx: PlaylistContext,
    library: Library,
    tracks: Sequence[dict[str, Any]],
    targets: Sequence[str],
) -> list[TrackEntry]:
    ids = [int(t["track_id"]) for t in tracks]
    rows = library.records(ids)
    matched = {t: q.matches(ctx.store, t, ids) for t in targets}
    out = []
    for position, t in enumerate(tracks, 1):
        row = rows.get(int(t["track_id"]), {})
        found: dict[str, str] = {}
        for target, cache in matched.items():
            hit = cache.get(int(t["track_id"]))
            if hit is not None:
                found[target] = hit.match.item or f"not found: {hit.match.note or 'no match'}"
        out.append(
            TrackEntry(
                position, int(t["track_id"]), row.get("artist") or row.get("album_artist") or "",
                row.get("title") or "", row.get("album") or "", row.get("year"),
                row.get("duration_ms"), str(t.get("why") or ""), bool(t.get("pinned")), found,
            )
        )  # fmt: skip
    return out


def _at_positions(track_ids: Sequence[int], positions: Sequence[int]) -> list[int]:
    bad = [p for p in positions if not 1 <= p <= len(track_ids)]
    if bad:
        raise PlaylistError(
            f"no track at position {', '.join(map(str, bad))}: the playlist has {len(track_ids)}"
        )
    return [track_ids[p - 1] for p in positions]


def _positions_text(positions: Sequence[int]) -> str:
    return ", ".join(str(p) for p in positions)


def _checked_name(name: str) -> str:
    text = " ".join(name.split())
    if not text:
        raise PlaylistError("a playlist needs a name")
    if len(text) > 100:
        raise PlaylistError(f"the name is {len(text)} characters long; at most 100")
    return text


def _free_name(store: Store, name: str) -> str:
    candidate, n = name, 2
    while q.find(store, candidate) is not None:
        candidate = f"{name} ({n})"
        n += 1
    return candidate


def _quoted(name: str) -> str:
    return f'"{name}"' if " " in name else name


def _max_version(ctx: PlaylistContext, playlist_id: int) -> int:
    return int(
        ctx.store.conn.execute(
            "SELECT COALESCE(MAX(number), 0) FROM playlist_versions WHERE playlist_id = ?",
            (playlist_id,),
        ).fetchone()[0]
    )


def _llm_count(ctx: PlaylistContext, playlist_id: int, number: int) -> int:
    found = q.version(ctx.store, playlist_id, number)
    return found.llm_requests if found else 0


def _json(values: Sequence[int]) -> str:
    return json.dumps(list(values))


# --------------------------------------------------------------------------- saved prompts


def sync_saved(ctx: PlaylistContext, name: str) -> Outcome:
    """What the daemon's job for a saved playlist does: create it the first time, read the
    prompt again when it was edited in the config, else refresh it; then push it."""
    saved = ctx.config.playlists.saved.get(name)
    if saved is None:
        raise PlaylistError(f"no saved playlist {name!r} in the config (playlists.saved)")
    row = q.find(ctx.store, name)
    if row is None:
        return create(
            ctx, saved.prompt, name=name, size=saved.size, minutes=saved.minutes,
            targets=saved.targets, saved=True,
        )  # fmt: skip
    if list(row.targets) != list(saved.targets) or not row.saved:
        q.update(ctx.store, row.id, targets=saved.targets, saved=True)
    if " ".join(saved.prompt.split()) != row.prompt:
        return reprompt(ctx, name, saved.prompt)
    _row, head = _load(ctx, name)
    intent = head_intent(head)
    if (saved.size, saved.minutes) != (None, None) and (saved.size, saved.minutes) != (
        intent.size,
        intent.minutes,
    ):
        edit(ctx, name, IntentPatch(set={"size": saved.size, "minutes": saved.minutes}), push=False)
    return refresh(ctx, name, keep=saved.keep)
