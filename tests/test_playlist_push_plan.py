"""The diff planner: the edits that turn what a remote playlist holds into what is wanted."""

from __future__ import annotations

import random

import pytest

from genred.playlists.push import plan_edits
from genred.records import PlaylistEdit, RemoteItem


def remote(items: list[str]) -> list[RemoteItem]:
    return [RemoteItem(item, f"e{i}") for i, item in enumerate(items)]


def played(current: list[str], edits: list[PlaylistEdit], *, positional: bool) -> list[str]:
    """What a target holds after `edits`, as Spotify (positional) or Plex (append) apply them."""
    rows = [(item, f"e{i}") for i, item in enumerate(current)]
    fresh = len(rows)
    for edit in edits:
        if edit.kind == "remove":
            if positional:  # Spotify: every occurrence of each URI
                rows = [r for r in rows if r[0] not in set(edit.items)]
            else:  # Plex: these entries, by playlistItemID
                gone = {e.entry for e in edit.entries}
                rows = [r for r in rows if r[1] not in gone]
            continue
        added = [(item, f"e{fresh + n}") for n, item in enumerate(edit.items)]
        fresh += len(added)
        if edit.kind == "insert":
            assert positional or edit.position is None
            at = len(rows) if edit.position is None else edit.position
            assert 0 <= at <= len(rows)
            rows[at:at] = added
        else:
            assert edit.kind == "replace"
            rows = added
    return [item for item, _ in rows]


@pytest.mark.parametrize("positional", [True, False])
def test_random_playlists_always_end_as_wanted(positional: bool) -> None:
    rng = random.Random(7)
    for _case in range(300):
        pool = [f"u{i}" for i in range(rng.randint(1, 260))]
        current = rng.sample(pool, rng.randint(0, len(pool)))
        current += rng.sample(current, min(len(current), rng.randint(0, 3)))  # duplicates
        rng.shuffle(current)
        wanted = rng.sample(pool, rng.randint(0, len(pool)))
        edits = plan_edits(remote(current), wanted, max_items=100, positional=positional)
        assert played(current, edits, positional=positional) == wanted
        assert all(len(e.items) <= 100 for e in edits)


def test_nothing_to_change_is_no_edit_and_an_append_is_one() -> None:
    items = [f"u{i}" for i in range(30)]
    assert plan_edits(remote(items), items, max_items=100, positional=True) == []
    more = plan_edits(remote(items), [*items, "x", "y"], max_items=100, positional=False)
    assert more == [PlaylistEdit("insert", items=("x", "y"), position=None)]


def test_a_few_changes_are_a_diff_and_scattered_ones_a_replace() -> None:
    items = [f"u{i}" for i in range(60)]
    swapped = [*items[:10], "new", *items[11:]]
    edits = plan_edits(remote(items), swapped, max_items=100, positional=True)
    assert [e.kind for e in edits] == ["remove", "insert"]
    assert edits[0].items == ("u10",) and edits[1] == PlaylistEdit(
        "insert", items=("new",), position=10
    )
    # Every fifth track new: 12 inserts and a removal, or one replace.
    scattered = [f"new{i}" if i % 5 == 0 else item for i, item in enumerate(items)]
    assert [
        e.kind for e in plan_edits(remote(items), scattered, max_items=100, positional=True)
    ] == ["replace"]
    # Plex cannot insert in the middle: the one-track change is a replace there.
    assert [
        e.kind for e in plan_edits(remote(items), swapped, max_items=100, positional=False)
    ] == ["replace"]


def test_a_replace_of_more_than_one_chunk() -> None:
    items = [f"u{i}" for i in range(250)]
    wanted = [items[1], items[0], *items[2:]]  # the first two swapped: Plex must replace
    edits = plan_edits(remote(items), wanted, max_items=100, positional=False)
    assert [(e.kind, len(e.items)) for e in edits] == [
        ("replace", 100),
        ("insert", 100),
        ("insert", 50),
    ]
