"""What to write where: pure functions from wanted values, current values and past writes
to a list of grouped edits. No I/O here; the writeback stage feeds and applies them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Key = tuple[str, str, str]  # (item_kind, item_id, field)
Values = tuple[str, ...]


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


@dataclass(frozen=True)
class Edit:
    """One request's worth: set `field` of every item in `ids` to exactly `values`."""

    kind: str
    field: str
    values: Values
    ids: tuple[str, ...]
    before: Mapping[str, Values] = field(default_factory=dict)  # per id, for dry runs and removal


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
        have = {fold(v) for v in current}
        return current + tuple(v for v in desired if fold(v) not in have)
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
    groups: dict[tuple[str, str, Values], list[str]] = defaultdict(list)
    befores: dict[tuple[str, str, Values], dict[str, Values]] = defaultdict(dict)
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
        group = (target.kind, target.field, final)
        groups[group].append(target.item_id)
        befores[group][target.item_id] = now
    for (kind, fld, values), ids in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        for start in range(0, len(ids), batch_size):
            chunk = tuple(ids[start : start + batch_size])
            before = {i: befores[(kind, fld, values)][i] for i in chunk}
            plan.edits.append(Edit(kind, fld, values, chunk, before))
    return plan


def plan_reverts(
    rows: Mapping[Key, PastWrite],
    current: Mapping[Key, Values],
    batch_size: int,
    force: bool = False,
) -> tuple[list[Edit], list[Key], list[Key]]:
    """Edits that put back the originals; plus the keys already as they were, and the keys a
    person changed after genred's write (skipped unless `force`)."""
    groups: dict[tuple[str, str, Values], list[str]] = defaultdict(list)
    befores: dict[tuple[str, str, Values], dict[str, Values]] = defaultdict(dict)
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
        groups[(kind, fld, row.original)].append(item_id)
        befores[(kind, fld, row.original)][item_id] = now
    edits = []
    for (kind, fld, values), ids in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        for start in range(0, len(ids), batch_size):
            chunk = tuple(ids[start : start + batch_size])
            before = {i: befores[(kind, fld, values)][i] for i in chunk}
            edits.append(Edit(kind, fld, values, chunk, before))
    return edits, already, changed
