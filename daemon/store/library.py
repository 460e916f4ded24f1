"""The library as the dashboard lists it: search, filters, sort, cursor pages, CSV rows.

Everything the user types reaches SQLite as a bound parameter (search words are LIKE
patterns with their wildcards escaped); sort keys come from a fixed table. Pages are
keyset pages (a cursor holds the sort key and id of the last row shown), so page 2,000
costs what page 1 does; the sort keys are indexed (schema migration `_v7_library_views`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import Store

MAX_QUERY = 200  # characters of a search that are used
MAX_WORDS = 8


@dataclass(frozen=True)
class Sort:
    """A sort order: its SQL key expressions (never NULL), the last of them unique.

    A sort on a decisions column (`column`) is read through that column's index, tracks
    without a value (`missing`: the key they sort with) apart: the LEFT JOIN the other
    sorts use could only sort every row."""

    name: str
    title: str
    keys: tuple[str, ...]
    column: str | None = None  # decisions.<column>, indexed
    missing: float | str = ""


SORTS: dict[str, Sort] = {
    s.name: s
    for s in (
        Sort(
            "artist",
            "Artist",
            (
                "coalesce(t.artist, '') COLLATE NOCASE",
                "coalesce(t.album, '') COLLATE NOCASE",
                "coalesce(t.disc_no, 0)",
                "coalesce(t.track_no, 0)",
                "t.id",
            ),
        ),
        Sort("title", "Title", ("coalesce(t.title, '') COLLATE NOCASE", "t.id")),
        Sort(
            "album",
            "Album",
            (
                "coalesce(t.album, '') COLLATE NOCASE",
                "coalesce(t.disc_no, 0)",
                "coalesce(t.track_no, 0)",
                "t.id",
            ),
        ),
        Sort("year", "Year", ("coalesce(t.year, 0)", "t.id")),
        Sort(
            "confidence",
            "Confidence",
            ("coalesce(d.confidence, -1.0)", "t.id"),
            column="confidence",
            missing=-1.0,
        ),
        Sort(
            "decided",
            "Decided",
            ("coalesce(d.decided_at, '')", "t.id"),
            column="decided_at",
            missing="",
        ),
    )
}
STATUSES = ("decided", "review", "undecided")


class CursorError(ValueError):
    """A cursor this query did not hand out (or one of another sort order)."""


@dataclass(frozen=True)
class LibraryQuery:
    """What the user asked for. Every field is optional; they combine with AND."""

    q: str = ""  # words matched in title, artist, album, genres, moods, labels
    genre: str | None = None  # a decided genre (case-insensitive, exact)
    below: float | None = None  # decided with a confidence below this
    status: str | None = None  # decided | review | undecided
    by: str | None = None  # decided by this classifier (or `override`, `album`)
    changed: bool = False  # genred wrote it (and it is not reverted)
    overridden: bool = False  # it has a manual override
    album: str | None = None  # `source:album id`
    sort: str = "artist"
    descending: bool = False

    def words(self) -> list[str]:
        return self.q[:MAX_QUERY].split()[:MAX_WORDS]

    def without_sort(self) -> LibraryQuery:
        return replace(self, sort="artist", descending=False)


@dataclass(frozen=True)
class LibraryRow:
    id: int
    title: str | None
    artist: str | None
    album: str | None
    year: int | None
    source: str
    source_id: str
    album_key: str | None
    original: tuple[str, ...]  # the genres before genred wrote any (else as the source has them)
    genres: tuple[str, ...]
    moods: tuple[str, ...]
    labels: tuple[str, ...]
    confidence: float | None
    status: str  # decided | review | undecided
    decided_by: str
    overridden: bool
    changed: bool


@dataclass(frozen=True)
class Page:
    rows: list[LibraryRow]
    next_cursor: str | None
    total: int | None = None
    query: LibraryQuery = field(default_factory=LibraryQuery)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


DENSE = 2000  # a search matching more tracks than this walks the sort order instead
SEARCHED = (
    "t.title",
    "t.artist",
    "t.album",
    "t.album_artist",
    "d.genres",
    "d.moods",
    "d.labels",
)


def has_search_index(store: Store) -> bool:
    """The trigram index (schema `_v8_track_search`) exists: not on SQLite before 3.34."""
    row = store.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'track_search'"
    ).fetchone()
    return row is not None


def match_expression(words: Sequence[str]) -> str:
    """FTS5 query text: every word as a quoted phrase (its own quotes doubled), ANDed."""
    return " AND ".join('"' + w.replace('"', '""') + '"' for w in words)


@dataclass(frozen=True)
class _Where:
    sql: str
    params: list[Any]
    total: int | None = None  # known without counting (a plain search, from the index)


def _where(store: Store, query: LibraryQuery) -> _Where:
    clauses = ["t.removed = 0"]
    params: list[Any] = []
    words = query.words()
    searchable = has_search_index(store)
    indexed = [w for w in words if len(w) >= 3] if searchable else None
    scanned = [w for w in words if w not in (indexed or [])]
    total: int | None = None
    if indexed:
        expression = match_expression(indexed)
        matches = int(
            store.conn.execute(
                "SELECT COUNT(*) FROM track_search WHERE track_search MATCH ?", (expression,)
            ).fetchone()[0]
        )
        plain = LibraryQuery(q=query.q, sort=query.sort, descending=query.descending)
        if not scanned and query == plain:
            total = matches
        if matches > DENSE and query == plain:
            scanned = words  # plenty of matches: the sort order finds a page at once
        else:
            clauses.append("t.id IN (SELECT rowid FROM track_search WHERE track_search MATCH ?)")
            params.append(expression)
    for word in scanned:
        pattern = _like(word)
        clauses.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in SEARCHED) + ")")
        params += [pattern] * len(SEARCHED)
    if query.genre:
        quoted = json.dumps(query.genre.strip(), ensure_ascii=False)  # as decisions hold it
        if indexed is not None:  # the index finds the few tracks that mention it at all
            clauses.append("t.id IN (SELECT rowid FROM track_search WHERE track_search MATCH ?)")
            params.append(match_expression([quoted]))
        clauses.append("d.genres LIKE ? ESCAPE '\\'")
        params.append(_like(quoted))
    if query.below is not None:
        clauses.append("d.confidence < ?")
        params.append(float(query.below))
    if query.status == "undecided":
        clauses.append("d.track_id IS NULL")
    elif query.status:
        clauses.append("d.status = ?")
        params.append(query.status)
    if query.by:
        clauses.append("(',' || d.decided_by || ',') LIKE ? ESCAPE '\\'")
        params.append(_like(f",{query.by.strip()},"))
    if query.changed:
        clauses.append(
            "EXISTS (SELECT 1 FROM writebacks w WHERE w.item_kind = 'track' "
            "AND w.item_id = t.source_id AND w.written IS NOT NULL AND w.reverted_at IS NULL)"
        )
    if query.overridden:
        clauses.append("EXISTS (SELECT 1 FROM overrides o WHERE o.track_id = t.id)")
    if query.album:
        source, _, album_id = query.album.partition(":")
        clauses.append("t.source = ? AND t.album_source_id = ?")
        params += [source, album_id]
    return _Where(" AND ".join(clauses), params, total)


FROM = "FROM tracks t LEFT JOIN decisions d ON d.track_id = t.id"
COLUMNS = """t.id, t.title, t.artist, t.album, t.year, t.source, t.source_id, t.album_source_id,
    t.genres, d.genres, d.moods, d.labels, d.confidence, d.status, d.decided_by,
    EXISTS (SELECT 1 FROM overrides o WHERE o.track_id = t.id),
    (SELECT w.original FROM writebacks w WHERE w.item_kind = 'track' AND w.item_id = t.source_id
        AND w.field = 'genre' AND w.written IS NOT NULL AND w.reverted_at IS NULL LIMIT 1)"""


def _row(values: Sequence[Any]) -> LibraryRow:
    (
        track_id,
        title,
        artist,
        album,
        year,
        source,
        source_id,
        album_id,
        source_genres,
        genres,
        moods,
        labels,
        confidence,
        status,
        decided_by,
        overridden,
        original,
    ) = values
    return LibraryRow(
        id=track_id,
        title=title,
        artist=artist,
        album=album,
        year=year,
        source=source,
        source_id=source_id,
        album_key=f"{source}:{album_id}" if album_id else None,
        original=tuple(json.loads(original if original is not None else source_genres)),
        genres=tuple(json.loads(genres)) if genres else (),
        moods=tuple(json.loads(moods)) if moods else (),
        labels=tuple(json.loads(labels)) if labels else (),
        confidence=confidence,
        status=status or "undecided",
        decided_by=decided_by or "",
        overridden=bool(overridden),
        changed=original is not None,
    )


def encode_cursor(sort: Sort, descending: bool, key: Sequence[Any]) -> str:
    blob = json.dumps({"s": sort.name, "d": descending, "k": list(key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(blob.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort, descending: bool) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = data["k"]
        ok = (
            data["s"] == sort.name
            and data["d"] == descending
            and isinstance(key, list)
            and len(key) == len(sort.keys)
            and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in key)
        )
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        ok = False
    if not ok:
        raise CursorError(
            "this cursor does not belong to this list (the sort changed, or it was edited): "
            "start again from the first page"
        )
    return list(key)


def page(
    store: Store,
    query: LibraryQuery,
    *,
    cursor: str | None = None,
    limit: int = 50,
    with_total: bool = True,
) -> Page:
    """One page of the library: `limit` rows after `cursor` (None: the first page).

    The ids of the page are found first (sort keys only), then their columns are read:
    the per-row subqueries run for the rows shown, not for every row sorted."""
    sort = SORTS.get(query.sort) or SORTS["artist"]
    where = _where(store, query)
    after = decode_cursor(cursor, sort, query.descending) if cursor else None
    if sort.column is None:
        found = _keyed(store, sort, where, after, query.descending, limit + 1)
    else:
        found = _keyed_by_decision(store, sort, where, after, query.descending, limit + 1)
    rows = _rows_of(store, [int(f[0]) for f in found[:limit]])
    next_cursor = (
        encode_cursor(sort, query.descending, found[limit - 1][1:]) if len(found) > limit else None
    )
    total = where.total
    if total is None and with_total:
        total = count(store, query)
    return Page(rows, next_cursor, total, query)


def _keyed(
    store: Store,
    sort: Sort,
    where: _Where,
    after: list[Any] | None,
    descending: bool,
    n: int,
    extra: str = "",
) -> list[tuple[Any, ...]]:
    """(id, *sort key) of the first `n` tracks after `after`, walking the sort's index."""
    keys = ", ".join(sort.keys)
    direction = "DESC" if descending else "ASC"
    sql = f"SELECT t.id, {keys} {FROM} WHERE {where.sql}{extra}"
    params = list(where.params)
    if after is not None:
        sql += f" AND ({keys}) {'<' if descending else '>'} ({', '.join('?' * len(after))})"
        params += after
    sql += f" ORDER BY {', '.join(f'{k} {direction}' for k in sort.keys)} LIMIT ?"
    return [tuple(r) for r in store.conn.execute(sql, [*params, n])]


def _keyed_by_decision(
    store: Store,
    sort: Sort,
    where: _Where,
    after: list[Any] | None,
    descending: bool,
    n: int,
) -> list[tuple[Any, ...]]:
    """As `_keyed`, for a sort on a decisions column: the tracks that have a value come
    from its index (decisions driving the join), those without it (sorting first going
    up, last going down) from a walk of the tracks by id."""
    column = f"d.{sort.column}"
    direction = "DESC" if descending else "ASC"

    def valued(start: list[Any] | None, count: int) -> list[tuple[Any, ...]]:
        sql = (
            f"SELECT t.id, {column}, t.id FROM decisions d JOIN tracks t ON t.id = d.track_id "
            f"WHERE {where.sql} AND {column} IS NOT NULL"
        )
        params = list(where.params)
        if start is not None:
            sql += f" AND ({column}, d.track_id) {'<' if descending else '>'} (?, ?)"
            params += start
        sql += f" ORDER BY {column} {direction}, d.track_id {direction} LIMIT ?"
        return [tuple(r) for r in store.conn.execute(sql, [*params, count])]

    def valueless(start: list[Any] | None, count: int) -> list[tuple[Any, ...]]:
        if not _any_without(store, str(sort.column)):
            return []  # the usual case: spare the walk over every track
        sql = f"SELECT t.id, ?, t.id {FROM} WHERE {where.sql} AND {column} IS NULL"
        params = [sort.missing, *where.params]
        if start is not None:
            sql += f" AND t.id {'<' if descending else '>'} ?"
            params.append(start[1])
        sql += f" ORDER BY t.id {direction} LIMIT ?"
        return [tuple(r) for r in store.conn.execute(sql, [*params, count])]

    in_valueless = after is not None and after[0] == sort.missing
    if descending:  # values first, then the tracks without one
        found = [] if in_valueless else valued(after, n)
        if len(found) < n:
            found += valueless(after if in_valueless else None, n - len(found))
    else:  # the tracks without a value first
        found = valueless(after, n) if after is None or in_valueless else []
        if len(found) < n:
            found += valued(None if after is None or in_valueless else after, n - len(found))
    return found


def _any_without(store: Store, column: str) -> bool:
    """Is there a track without a decision, or a decision without `column`? (Two counts
    and an index probe: milliseconds.)"""
    one = store.conn.execute
    if one(f"SELECT 1 FROM decisions WHERE {column} IS NULL LIMIT 1").fetchone():
        return True
    tracks = one("SELECT COUNT(*) FROM tracks").fetchone()[0]
    return bool(tracks > one("SELECT COUNT(*) FROM decisions").fetchone()[0])


def _rows_of(store: Store, ids: list[int]) -> list[LibraryRow]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    found = {
        r[0]: _row(r)
        for r in store.conn.execute(f"SELECT {COLUMNS} {FROM} WHERE t.id IN ({marks})", ids)
    }
    return [found[i] for i in ids if i in found]


def count(store: Store, query: LibraryQuery, cap: int | None = None) -> int:
    """How many tracks the query matches; with `cap`, counting stops past it (a result of
    `cap + 1` means "more than cap"), so a broad filter is counted in milliseconds."""
    where = _where(store, query)
    if where.total is not None:
        return where.total
    if cap is None:
        sql = f"SELECT COUNT(*) {FROM} WHERE {where.sql}"
        return int(store.conn.execute(sql, where.params).fetchone()[0])
    sql = f"SELECT COUNT(*) FROM (SELECT 1 {FROM} WHERE {where.sql} LIMIT ?)"
    return int(store.conn.execute(sql, [*where.params, cap + 1]).fetchone()[0])


CSV_HEADER = (
    "id",
    "source",
    "source_id",
    "artist",
    "album",
    "title",
    "year",
    "genres_before",
    "genres",
    "moods",
    "labels",
    "confidence",
    "status",
    "decided_by",
    "overridden",
    "written",
)


def _joined(column: str) -> str:
    return f"coalesce((SELECT group_concat(value, '; ') FROM json_each({column})), '')"


TEXT_CELLS = (3, 4, 5, 7, 8, 9, 10)  # what a person (or a tag) wrote: may look like a formula
CSV_COLUMNS = f"""t.id, t.source, t.source_id, coalesce(t.artist, ''), coalesce(t.album, ''),
    coalesce(t.title, ''), coalesce(t.year, ''),
    {_joined("coalesce((SELECT w.original FROM writebacks w WHERE w.item_kind = 'track' "
             "AND w.item_id = t.source_id AND w.field = 'genre' AND w.written IS NOT NULL "
             "AND w.reverted_at IS NULL LIMIT 1), t.genres)")},
    {_joined("d.genres")}, {_joined("d.moods")}, {_joined("d.labels")},
    CASE WHEN d.confidence IS NULL THEN '' ELSE printf('%.4f', d.confidence) END,
    coalesce(d.status, 'undecided'), coalesce(d.decided_by, ''),
    CASE WHEN EXISTS (SELECT 1 FROM overrides o WHERE o.track_id = t.id) THEN 'yes' ELSE 'no' END,
    CASE WHEN EXISTS (SELECT 1 FROM writebacks w WHERE w.item_kind = 'track'
        AND w.item_id = t.source_id AND w.written IS NOT NULL AND w.reverted_at IS NULL)
        THEN 'yes' ELSE 'no' END"""  # fmt: skip


def csv_rows(store: Store, query: LibraryQuery, batch: int = 1000) -> Iterator[list[list[Any]]]:
    """The CSV's lines (CSV_HEADER's cells) of every row the query matches, in its order,
    `batch` at a time: one statement, its cells made by SQLite, so 100,000 rows stream in
    a second or two with flat memory."""
    sort = SORTS.get(query.sort) or SORTS["artist"]
    where = _where(store, query)
    direction = "DESC" if query.descending else "ASC"
    order = ", ".join(f"{k} {direction}" for k in sort.keys)
    cursor = store.conn.execute(
        f"SELECT {CSV_COLUMNS} {FROM} WHERE {where.sql} ORDER BY {order}", where.params
    )
    text = TEXT_CELLS
    try:
        while rows := cursor.fetchmany(batch):
            out = []
            for row in rows:
                cells = list(row)
                for i in text:
                    cells[i] = _safe_cell(cells[i])
                out.append(cells)
            yield out
    finally:
        cursor.close()


def _safe_cell(text: str) -> str:
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
