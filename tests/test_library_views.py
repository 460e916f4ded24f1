"""The store side of the dashboard: the library query (filters, keyset pages, search index,
CSV cells), overrides and what decide does with them, a track's story, the review queue
and the overview's figures. Libraries are filled through the real stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genred.corrections import Correction, accept, apply
from genred.store import Store, library, overrides, review, stats, story, utcnow
from genred.store.library import CursorError, LibraryQuery
from genred.store.overrides import OverrideError
from genred.taxonomy import default_taxonomy
from genred.testing import Harness, track
from tests.dashboard_library import SCRIPT_TITLE, build, ids


@pytest.fixture
def lib(tmp_path: Path) -> Harness:
    with build(tmp_path) as harness:
        yield harness


def titles(page: library.Page) -> list[str | None]:
    return [r.title for r in page.rows]


# --------------------------------------------------------------------------- library


def test_filters_combine_and_count(lib: Harness) -> None:
    store = lib.store
    every = library.page(store, LibraryQuery(), limit=100)
    assert every.total == 8 and [r.artist for r in every.rows][:3] == ["Goldie"] * 3
    assert titles(library.page(store, LibraryQuery(genre="jazz"))) == [
        "So What",
        "Freddie Freeloader",
    ]  # exact genre (case-insensitive): "Cool Jazz" is another genre
    review_page = library.page(store, LibraryQuery(status="review"))
    assert set(titles(review_page)) == {"Saint Angel", SCRIPT_TITLE}
    assert library.page(store, LibraryQuery(status="undecided")).total == 0
    assert library.page(store, LibraryQuery(by="taxonomy")).total == 6
    assert library.page(store, LibraryQuery(by="tax")).total == 0  # whole names only
    assert library.page(store, LibraryQuery(overridden=True)).total == 0
    album = library.page(store, LibraryQuery(album="plex:1", genre="Jazz"))
    assert album.total == 2 and {r.album_key for r in album.rows} == {"plex:1"}
    row = every.rows[0]
    assert row.original == ("d&b",) and row.genres == ("Drum & Bass",) and not row.changed


def test_search_finds_words_in_any_field_through_the_index_or_a_scan(lib: Harness) -> None:
    store = lib.store
    assert library.has_search_index(store)
    assert titles(library.page(store, LibraryQuery(q="motör metal"))) == ["Ace of Spades"]
    assert titles(library.page(store, LibraryQuery(q="MOTÖR METAL"))) == ["Ace of Spades"]
    assert len(titles(library.page(store, LibraryQuery(q="motör spades")))) == 2
    assert set(titles(library.page(store, LibraryQuery(q="drum")))) == {
        "Inner City Life",
        "Timeless",
    }  # the decided genre, not the raw tag "d&b"
    assert titles(library.page(store, LibraryQuery(q="Freddie"))) == ["Freddie Freeloader"]
    assert titles(library.page(store, LibraryQuery(q="so"))) == ["So What"]  # short: a scan
    assert library.page(store, LibraryQuery(q="Freddie")).total == 1  # from the index
    assert library.page(store, LibraryQuery(q="nothing like this")).total == 0


@pytest.mark.parametrize(
    "text",
    [
        "' OR 1=1 --",
        '"; DROP TABLE tracks; --',
        "%",
        "_",
        '" OR "',
        "NEAR(a b)",
        "*",
        "\\",
        "x" * 5000,
        "<script>",
    ],
)
def test_search_text_is_data_never_sql(lib: Harness, text: str) -> None:
    found = library.page(lib.store, LibraryQuery(q=text))
    assert found.total == (1 if text == "<script>" else 0)
    assert lib.store.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == 8


def test_keyset_pages_walk_every_row_once_in_every_order(lib: Harness) -> None:
    store = lib.store
    lib.add_tracks([track("Not Decided Yet", source_id="999")], "plex")  # no decision row
    for sort in library.SORTS:
        for descending in (False, True):
            query = LibraryQuery(sort=sort, descending=descending)
            whole = [r.id for r in library.page(store, query, limit=100).rows]
            walked, cursor = [], None
            while True:
                found = library.page(store, query, cursor=cursor, limit=3)
                walked += [r.id for r in found.rows]
                if found.next_cursor is None:
                    break
                cursor = found.next_cursor
            assert walked == whole and len(set(walked)) == 9, (sort, descending)
            keys = [
                (r.confidence if r.confidence is not None else -1.0, r.id)
                for r in library.page(store, query, limit=100).rows
            ]
            if sort == "confidence":
                assert keys == sorted(keys, reverse=descending)
    by_year = library.page(store, LibraryQuery(sort="year"), limit=100)
    years = [r.year or 0 for r in by_year.rows]
    assert years == sorted(years)


def test_a_cursor_of_another_sort_or_edited_is_refused(lib: Harness) -> None:
    first = library.page(lib.store, LibraryQuery(), limit=2)
    with pytest.raises(CursorError):
        library.page(lib.store, LibraryQuery(sort="title"), cursor=first.next_cursor)
    for junk in ("", "not-base64!", "eyJzIjoiYXJ0aXN0In0", "e30"):
        if junk:
            with pytest.raises(CursorError):
                library.page(lib.store, LibraryQuery(), cursor=junk)


def test_capped_count_stops_past_the_cap(lib: Harness) -> None:
    assert library.count(lib.store, LibraryQuery(by="taxonomy"), cap=3) == 4
    assert library.count(lib.store, LibraryQuery(by="taxonomy")) == 6


def test_csv_rows_and_cells_a_spreadsheet_would_run(lib: Harness) -> None:
    rows = [r for batch in library.csv_rows(lib.store, LibraryQuery(), batch=3) for r in batch]
    assert len(rows) == 8
    first = dict(zip(library.CSV_HEADER, rows[0], strict=True))
    assert first["genres"] == "Drum & Bass" and first["genres_before"] == "d&b"
    assert first["confidence"] == "1.0000" and first["status"] == "decided"
    page = library.page(lib.store, LibraryQuery(), limit=100)
    assert [int(r[0]) for r in rows] == [r.id for r in page.rows]  # the page's order
    lib.add_tracks([track('=HYPERLINK("x")', source_id="9", artist="+1", album="@SUM(A1)")], "plex")
    risky = next(
        dict(zip(library.CSV_HEADER, r, strict=True))
        for batch in library.csv_rows(lib.store, LibraryQuery(q="HYPERLINK"))
        for r in batch
    )
    assert risky["title"] == '\'=HYPERLINK("x")' and risky["artist"] == "'+1"
    assert risky["album"] == "'@SUM(A1)" and risky["status"] == "undecided"


def test_the_search_index_follows_tracks_and_decisions(lib: Harness) -> None:
    store = lib.store
    by_title = ids(lib)

    def indexed(word: str) -> set[int]:
        rows = store.conn.execute(
            "SELECT rowid FROM track_search WHERE track_search MATCH ?", (f'"{word}"',)
        )
        return {r[0] for r in rows}

    so_what = by_title["So What"]
    with store.transaction() as conn:
        conn.execute("UPDATE tracks SET title = 'So Blue' WHERE id = ?", (so_what,))
    assert so_what in indexed("So Blue") and so_what not in indexed("So What")
    overrides.put(store, [so_what], "genre", ["Bebop"], origin="cli")
    lib.run("decide")
    assert so_what in indexed("Bebop")
    with store.transaction() as conn:
        conn.execute("UPDATE tracks SET removed = 1 WHERE id = ?", (so_what,))
    assert so_what not in indexed("Bebop")
    with store.transaction() as conn:
        conn.execute("UPDATE tracks SET removed = 0 WHERE id = ?", (so_what,))
        conn.execute("DELETE FROM tracks WHERE id = ?", (by_title["Timeless"],))
    assert so_what in indexed("Bebop") and by_title["Timeless"] not in indexed("Timeless")
    count = store.conn.execute("SELECT COUNT(*) FROM track_search").fetchone()[0]
    assert count == store.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == 7


# --------------------------------------------------------------------------- overrides


def test_an_override_is_decided_at_once_and_wins(lib: Harness) -> None:
    store = lib.store
    angel = ids(lib)["Saint Angel"]
    taxonomy = default_taxonomy()
    done = apply(
        store, taxonomy, [angel], Correction(genres=["drum and bass", "Jungle"]), origin="web",
        who="ada",
    )  # fmt: skip
    assert done.set == 1
    lib.run("decide")
    found = story.load(store, angel)
    assert found is not None and found.decision is not None
    assert found.decision.genres == ("Drum & Bass", "Jungle")  # as the taxonomy spells them
    assert found.decision.status == "decided" and found.decision.decided_by == "override"
    assert found.overrides["genre"].origin == "web" and found.overrides["genre"].created_by == "ada"
    assert story.why(found)[0].startswith("genres set by hand (web by ada")

    apply(store, taxonomy, [angel], Correction(keep=["genre"]), origin="web", who="ada")
    assert story.load(store, angel).decision is None  # dropped: decided again from predictions
    lib.run("decide")
    again = story.load(store, angel)
    assert again.decision.status == "review" and not again.overrides


def test_bad_override_values_are_refused_whole(lib: Harness) -> None:
    angel = ids(lib)["Saint Angel"]
    for bad in (["x" * 101], [f"g{i}" for i in range(21)], ["nul\x00here"]):
        with pytest.raises(OverrideError):
            apply(lib.store, default_taxonomy(), [angel], Correction(genres=bad), origin="cli",
                  who=None)  # fmt: skip
    assert overrides.of_tracks(lib.store, [angel]) == {angel: {}}
    assert overrides.clean_values([" Jazz ", "jazz", "", "Cool  Jazz"], "genre") == (
        "Jazz",
        "Cool Jazz",
    )


def test_a_new_override_lifts_hands_off_after_a_plex_edit(lib: Harness) -> None:
    """A person edited the track in Plex (genred keeps its hands off); then corrects it in
    genred: the writebacks row takes the person's Plex value as the last written one."""
    store = lib.store
    so_what = ids(lib)["So What"]
    now = utcnow()
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO writebacks (target, item_kind, item_id, field, original, written, "
            "first_written_at, written_at, manual_at) VALUES ('plex', 'track', '101', 'genre', "
            "'[\"jazz\"]', '[\"Jazz\"]', ?, ?, ?)",
            (now, now, now),
        )
    overrides.put(store, [so_what], "genre", ["Hard Bop"], origin="plex-edit")
    row = store.conn.execute("SELECT manual_at FROM writebacks WHERE item_id = '101'").fetchone()
    assert row[0] is not None  # a plex-edit keeps the hands off
    overrides.put(store, [so_what], "genre", ["Modal Jazz"], origin="web", who="ada")
    manual, written = store.conn.execute(
        "SELECT manual_at, written FROM writebacks WHERE item_id = '101'"
    ).fetchone()
    assert manual is None and json.loads(written) == ["Hard Bop"]


def test_new_labels_count_genre_overrides_after_a_moment(lib: Harness) -> None:
    store = lib.store
    a, b = ids(lib)["So What"], ids(lib)["Timeless"]
    assert overrides.new_labels(store, None) == 0
    overrides.put(store, [a], "genre", ["Bebop"], origin="cli")
    overrides.put(store, [b], "genre", [], origin="cli")  # "no genre": no label
    overrides.put(store, [b], "mood", ["calm"], origin="cli")
    assert overrides.new_labels(store, None) == 1
    assert overrides.new_labels(store, "2000-01-01T00:00:00+00:00") == 1
    assert overrides.new_labels(store, "2999-01-01T00:00:00+00:00") == 0


# --------------------------------------------------------------------------- review queue


def test_review_queue_goes_album_by_album_and_answers_leave_it(lib: Harness) -> None:
    store = lib.store
    first = review.next_album(store)
    assert first is not None and first.key in ("plex:2", "plex:3")
    assert review.waiting(store) == 2
    skipped = review.next_album(store, first.position)
    assert skipped is not None and skipped.key != first.key
    assert {first.key, skipped.key} == {"plex:2", "plex:3"}
    assert [t.track_no for t in first.tracks] == sorted(t.track_no for t in first.tracks)

    open_ids = [t.id for t in first.open_tracks() if t.status == "review"]
    apply(store, default_taxonomy(), open_ids, Correction(genres=["Metal"]), origin="web",
          who="ada")  # fmt: skip
    assert review.waiting(store) == 1
    accepted = accept(store, [t.id for t in first.open_tracks()], origin="web", who="ada")
    assert accepted.set == len([t for t in first.open_tracks() if t.candidates])
    after = review.next_album(store)
    assert after is not None and after.key != first.key
    with pytest.raises(CursorError):
        review.next_album(store, "7:x:y")


def test_accept_takes_the_best_guess_of_a_track_under_review(tmp_path: Path) -> None:
    with Harness(tmp_path, "plugins: {classifiers: []}") as harness:
        (only,) = harness.add_tracks([track("Unsure", source_id="9", album_source_id="a")])
        now = utcnow()
        with harness.store.transaction() as conn:
            conn.execute(
                "INSERT INTO predictions VALUES (?, 'llm', 'genre', '1', ?, ?)",
                (only, json.dumps([["Soul", 0.4], ["Funk", 0.3]]), now),
            )
        harness.run("decide")
        assert story.load(harness.store, only).decision.status == "review"
        assert review.next_album(harness.store).tracks[0].candidates == ("Soul", "Funk")
        assert accept(harness.store, [only], origin="api", who="bot").set == 1
        harness.run("decide")
        decided = story.load(harness.store, only).decision
        assert decided.genres == ("Soul", "Funk") and decided.status == "decided"


# --------------------------------------------------------------------------- overview


def test_overview_figures(lib: Harness) -> None:
    figures = stats.overview(lib.store)
    assert (figures.tracks, figures.decided, figures.review, figures.undecided) == (8, 6, 2, 0)
    assert figures.classified == 6  # two tracks had nothing usable
    assert figures.genres_before == 8 and figures.genres_now == 4
    assert figures.top_now[0] == ("Drum & Bass", 2) or figures.top_now[0] == ("Jazz", 2)
    assert sum(figures.confidence) == 6 and figures.confidence[-1] == 6
    assert figures.genre_counts["Jazz"] == 2
    failing, by_stage = stats.failing(lib.store)
    assert failing == [] and by_stage == {}


def test_story_of_an_unknown_track_is_none(lib: Harness) -> None:
    assert story.load(lib.store, 999_999) is None
    assert isinstance(lib.store, Store)
