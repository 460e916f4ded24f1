"""What to write where: pure functions from wanted values, current values and past writes
to a list of grouped edits. No I/O here; the writeback stage feeds and applies them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..records import Edit, Key, Values
from ..taxonomy import normalize_key

__all__ = ["Edit", "Key", "PastWrite", "Plan", "Target", "Values"]


@dataclass(frozen=True)
class Target:
    """What genred wants one item (track, album, artist) to carry in one field."""

    kind: str
    item_id: str
    field: str
    desired: Values
    track_id: int | None = None  # store id, for track-level items

    @property
    def key(self) -> Key:
        return (self.kind, self.item_id, self.field)


@dataclass(frozen=True)
class PastWrite:
    """The writebacks row of an item: what genred found, wrote, and is writing."""

    original: Values
    written: Values | None
    pending: Values | None
    manual: bool = False
    reverted: bool = False


def delta(before: Values, after: Values, exact: bool = False) -> tuple[Values, Values]:
    """Tags to add and to remove (case-insensitively) to turn `before` into `after`.

    Plex applies a change as: drop the removed tags, append the added ones. With `exact`
    (a revert must restore the very list, in order), when that cannot give `after` in its
    order, the change is to remove every tag and add `after` whole.
    """
    had = {fold(v) for v in before}
    wants = {fold(v) for v in after}
    add = tuple(v for v in dict.fromkeys(after) if fold(v) not in had)
    remove = tuple(v for v in dict.fromkeys(before) if fold(v) not in wants)
    if exact:
        result = [fold(v) for v in before if fold(v) in wants] + [fold(v) for v in add]
        if result != [fold(v) for v in dict.fromkeys(after)]:
            return tuple(dict.fromkeys(after)), tuple(dict.fromkeys(before))
    return add, remove


MAX_REMOVALS = 20  # tags removed by one request, to keep its URL reasonable
Member = tuple[str, Values, Values, Values]  # item id, before, after, its own removals


def group_edits(
    changes: Iterable[tuple[str, str, str, Values, Values]], batch_size: int, exact: bool = False
) -> list[Edit]:
    """Group (kind, field, id, before, after) changes into as few requests as is safe.

    Items that gain the same tags share a request; their removals are merged into one list
    as long as no merged tag is one a member keeps (removing a tag an item lacks does
    nothing). With `exact` (reverts) only identical changes share a request.
    """
    groups: dict[tuple[str, str, Values, Values], list[Member]] = defaultdict(list)
    for kind, fld, item_id, before, after in changes:
        add, remove = delta(before, after, exact)
        groups[(kind, fld, add, remove if exact else ())].append((item_id, before, after, remove))
    edits: list[Edit] = []
    for (kind, fld, add, _), members in sorted(groups.items()):
        members.sort(key=lambda m: m[3])
        chunk: list[Member] = []
        removal: dict[str, str] = {}  # folded → as spelled
        kept: set[str] = set()  # folded tags some member of the chunk keeps or gains
        for member in members:
            item_id, before, after, remove = member
            wants = {fold(v) for v in after}
            merged = {**removal, **{fold(v): v for v in remove}}
            fits = (
                len(chunk) < batch_size
                and len(merged) <= MAX_REMOVALS
                and not (set(merged) & (kept | wants))
            )
            if chunk and not fits:
                edits.append(_edit(kind, fld, add, chunk, tuple(removal.values())))
                chunk, removal, kept = [], {}, set()
                merged = {fold(v): v for v in remove}
            chunk.append(member)
            removal = merged
            kept |= wants
        if chunk:
            edits.append(_edit(kind, fld, add, chunk, tuple(removal.values())))
    return edits


def _edit(
    kind: str,
    fld: str,
    add: Values,
    chunk: list[tuple[str, Values, Values, Values]],
    remove: Values,
) -> Edit:
    return Edit(
        kind,
        fld,
        tuple(m[0] for m in chunk),
        add,
        remove,
        {m[0]: m[1] for m in chunk},
        {m[0]: m[2] for m in chunk},
    )


@dataclass
class Plan:
    edits: list[Edit] = field(default_factory=list)
    manual: list[tuple[Target, Values]] = field(default_factory=list)  # a person edited it
    confirmed: list[tuple[Target, Values]] = field(
        default_factory=list
    )  # an unconfirmed write landed
    unchanged: int = 0
    held: int = 0  # manual or reverted items genred leaves alone


def fold(value: str) -> str:
    return value.casefold().strip()


def same(a: Sequence[str] | None, b: Sequence[str] | None) -> bool:
    """Equal as tag sets: Plex may return tags in its own order and case."""
    if a is None or b is None:
        return a is b
    return sorted({fold(v) for v in a}) == sorted({fold(v) for v in b})


def final_value(mode: str, current: Values, desired: Values) -> Values | None:
    """The complete list an item should carry, or None to leave it as it is.

    append: keep what is there, add what is missing (case-insensitively);
    replace: exactly the decided values; fill: only items that have none.
    """
    if not desired:
        return None
    if mode == "append":
        # "Hip Hop" already there means "Hip-Hop" is: no near-duplicate spellings.
        have = {normalize_key(v) for v in current}
        return current + tuple(v for v in desired if normalize_key(v) not in have)
    if mode == "replace":
        return desired
    if mode == "fill":
        return desired if not current else None
    raise ValueError(f"unknown writeback mode {mode!r}")


def majority(lists: Iterable[Sequence[str]], max_values: int) -> Values:
    """Values carried by at least half of the lists (most common first); else the most common."""
    lists = [tuple(v) for v in lists if v]
    if not lists:
        return ()
    counts = Counter(v for values in lists for v in dict.fromkeys(values))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = [v for v, n in ranked if n * 2 >= len(lists)]
    return tuple((kept or [ranked[0][0]])[:max_values])


def plan_writes(
    targets: Iterable[Target],
    current: Mapping[Key, Values],
    past: Mapping[Key, PastWrite],
    mode: str,
    batch_size: int,
) -> Plan:
    """Decide, per item, whether to write, and group identical writes into edits."""
    plan = Plan()
    changes: list[tuple[str, str, str, Values, Values]] = []
    for target in targets:
        key = target.key
        if key not in current:
            continue  # gone from the target; the next sync marks it removed
        now = current[key]
        known = past.get(key)
        if known and (known.manual or known.reverted):
            plan.held += 1
            continue
        if known:
            last = known.written if known.written is not None else known.original
            if same(now, known.pending) and not same(now, last):
                plan.confirmed.append((target, now))  # our interrupted write did land
            elif not same(now, last):
                plan.manual.append((target, now))
                continue
        final = final_value(mode, now, target.desired)
        if final is None or same(final, now):
            plan.unchanged += 1
            continue
        changes.append((target.kind, target.field, target.item_id, now, final))
    plan.edits = group_edits(changes, batch_size)
    return plan


def plan_reverts(
    rows: Mapping[Key, PastWrite],
    current: Mapping[Key, Values],
    batch_size: int,
    force: bool = False,
) -> tuple[list[Edit], list[Key], list[Key]]:
    """Edits that put back the originals; plus the keys already as they were, and the keys a
    person changed after genred's write (skipped unless `force`)."""
    changes: list[tuple[str, str, str, Values, Values]] = []
    already: list[Key] = []
    changed: list[Key] = []
    for key, row in rows.items():
        if key not in current:
            continue
        now = current[key]
        if same(now, row.original):
            already.append(key)
            continue
        ours = same(now, row.written) or same(now, row.pending)
        if not ours and not force:
            changed.append(key)
            continue
        kind, item_id, fld = key
        changes.append((kind, fld, item_id, now, row.original))
    return group_edits(changes, batch_size, exact=True), already, changed
