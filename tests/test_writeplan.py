from __future__ import annotations

import pytest

from genred.pipeline.writeplan import (
    PastWrite,
    Target,
    final_value,
    majority,
    plan_reverts,
    plan_writes,
)


@pytest.mark.parametrize(
    ("mode", "current", "desired", "expected"),
    [
        (
            "append",
            ("electronic", "chill"),
            ("Electronic", "Ambient"),
            ("electronic", "chill", "Ambient"),
        ),
        ("append", (), ("Jazz",), ("Jazz",)),
        ("replace", ("electronic", "chill"), ("Electronic",), ("Electronic",)),
        ("fill", ("x",), ("Jazz",), None),
        ("fill", (), ("Jazz",), ("Jazz",)),
        ("append", ("x",), (), None),
    ],
)
def test_final_value_per_mode(
    mode: str, current: tuple[str, ...], desired: tuple[str, ...], expected: tuple[str, ...] | None
) -> None:
    assert final_value(mode, current, desired) == expected


def test_majority_of_tracks() -> None:
    assert majority([("Rock", "Pop"), ("Rock",), ("Jazz",), ("Rock", "Jazz")], 3) == (
        "Rock",
        "Jazz",
    )
    assert majority([("A",), ("B",), ("C",)], 3) == ("A",)  # nobody has half: most common
    assert majority([(), ()], 3) == ()


def t(item: str, *desired: str, kind: str = "track") -> Target:
    return Target(
        kind, item, "genre", tuple(desired), track_id=int(item) if kind == "track" else None
    )


def test_identical_lists_are_grouped_and_chunked() -> None:
    targets = [t(str(i), "Rock") for i in range(250)] + [t("900", "Jazz")]
    current = {x.key: () for x in targets}
    plan = plan_writes(targets, current, {}, "replace", batch_size=100)
    assert [(e.add, e.remove, len(e.ids)) for e in plan.edits] == [
        (("Jazz",), (), 1),
        (("Rock",), (), 100),
        (("Rock",), (), 100),
        (("Rock",), (), 50),
    ]
    assert plan.edits[1].before["0"] == () and plan.edits[1].after["0"] == ("Rock",)


def test_append_groups_by_the_change_not_the_whole_list() -> None:
    a, b = t("1", "Electronic"), t("2", "Electronic")
    current = {a.key: ("chill",), b.key: ("idm", "glitch")}
    [edit] = plan_writes([a, b], current, {}, "append", 100).edits
    assert (edit.add, edit.remove, edit.ids) == (("Electronic",), (), ("1", "2"))
    assert edit.after == {"1": ("chill", "Electronic"), "2": ("idm", "glitch", "Electronic")}
    [replace] = plan_writes([a, b], current, {}, "replace", 100).edits
    assert (replace.add, replace.remove, replace.ids) == (
        ("Electronic",),
        ("chill", "idm", "glitch"),
        ("1", "2"),  # removals merged
    )


def test_removals_are_not_merged_onto_an_item_that_keeps_the_tag() -> None:
    a, b, c = t("1", "Electronic"), t("2", "Electronic", "Ambient"), t("3", "Electronic")
    current = {a.key: ("Ambient",), b.key: ("Ambient",), c.key: ("Dub",)}
    edits = plan_writes([a, b, c], current, {}, "replace", 100).edits
    # 2 keeps Ambient, so it cannot share a request that removes Ambient; 1 and 3 can.
    assert [(e.ids, e.add, e.remove) for e in edits] == [
        (("2",), ("Electronic",), ()),
        (("1", "3"), ("Electronic",), ("Ambient", "Dub")),
    ]


def test_append_does_not_add_an_equivalent_spelling() -> None:
    assert final_value("append", ("Hip Hop",), ("Hip-Hop", "Jazz")) == ("Hip Hop", "Jazz")


def test_second_run_writes_nothing_and_manual_edits_are_detected() -> None:
    a, b, c = t("1", "Rock"), t("2", "Rock"), t("3", "Rock")
    past = {
        a.key: PastWrite(original=("rock n roll",), written=("Rock",), pending=None),
        b.key: PastWrite(original=(), written=("Rock",), pending=None),
        c.key: PastWrite(original=(), written=("Rock",), pending=None, manual=True),
    }
    current = {a.key: ("rock",), b.key: ("Punk",), c.key: ("Anything",)}  # a: same set, other case
    plan = plan_writes([a, b, c], current, past, "replace", 100)
    assert plan.edits == []
    assert plan.unchanged == 1
    assert [(x.item_id, v) for x, v in plan.manual] == [("2", ("Punk",))]
    assert plan.held == 1


def test_unconfirmed_write_that_landed_is_confirmed_not_rewritten() -> None:
    landed, lost = t("1", "Rock"), t("2", "Rock")
    past = {
        landed.key: PastWrite(original=("x",), written=None, pending=("Rock",)),
        lost.key: PastWrite(original=("x",), written=None, pending=("Rock",)),
    }
    current = {landed.key: ("Rock",), lost.key: ("x",)}
    plan = plan_writes([landed, lost], current, past, "replace", 100)
    assert [(x.item_id, v) for x, v in plan.confirmed] == [("1", ("Rock",))]
    assert [(e.after, e.ids) for e in plan.edits] == [({"2": ("Rock",)}, ("2",))]


def test_items_missing_from_target_are_skipped() -> None:
    plan = plan_writes([t("1", "Rock")], {}, {}, "append", 100)
    assert plan.edits == [] and plan.unchanged == 0


def test_reverts_group_by_original_and_respect_later_edits() -> None:
    k = lambda i: ("track", i, "genre")  # noqa: E731
    rows = {
        k("1"): PastWrite(("a", "b"), ("Rock",), None),
        k("2"): PastWrite(("a", "b"), ("Rock",), None),
        k("3"): PastWrite((), ("Jazz",), None),
        k("4"): PastWrite(("x",), ("Rock",), None),  # a person changed it since
        k("5"): PastWrite(("y",), ("Rock",), None),  # already back
    }
    current = {
        k("1"): ("Rock",),
        k("2"): ("rock",),
        k("3"): ("Jazz",),
        k("4"): ("Punk",),
        k("5"): ("y",),
    }
    edits, already, changed = plan_reverts(rows, current, 100)
    assert [(e.add, e.remove, e.ids) for e in edits] == [
        ((), ("Jazz",), ("3",)),
        (("a", "b"), ("Rock",), ("1",)),
        (("a", "b"), ("rock",), ("2",)),
    ]
    assert edits[0].before == {"3": ("Jazz",)} and edits[0].after == {"3": ()}
    assert already == [k("5")] and changed == [k("4")]
    forced, _, changed = plan_reverts(rows, current, 100, force=True)
    assert changed == [] and ("4",) in [e.ids for e in forced]
