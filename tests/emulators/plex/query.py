"""Listing queries as PMS reads them: container paging, filters (`addedAt>>=…`, tags, ids) and sort."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .library import PlexLibrary, hex_id
from .model import TAG_ELEMENTS, Album, Item, Track


class QueryError(ValueError):
    """A query the emulator cannot answer (400)."""


@dataclass(frozen=True)
class Paging:
    """`X-Plex-Container-Start`/`-Size`, from headers or query parameters (the query wins)."""

    start: int = 0
    size: int | None = None
    requested: bool = False

    @classmethod
    def read(cls, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> Paging:
        """From the query, else the headers (`headers` keyed in lower case)."""

        def value(name: str) -> str | None:
            if name in query:
                return query[name][-1]
            return headers.get(name.lower())

        start, size = value("X-Plex-Container-Start"), value("X-Plex-Container-Size")
        try:
            return cls(
                start=max(0, int(start)) if start else 0,
                size=max(0, int(size)) if size not in (None, "") else None,
                requested=start is not None or size is not None,
            )
        except ValueError as exc:
            raise QueryError(f"bad container paging: {exc}") from None

    def page(self, items: Sequence[int]) -> Sequence[int]:
        end = None if self.size is None else self.start + self.size
        return items[self.start : end]


# -- filters ---------------------------------------------------------------------------------

_FILTER_KEY = re.compile(r"(?:(artist|album|track)\.)?([A-Za-z]+)(>>|<<|>|<|!|)")
_RELATIVE = re.compile(r"-?(\d+)(mon|[smhdwy])")
_UNITS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "mon": 30 * 86400,
    "y": 365 * 86400,
}
_NUMERIC = {"addedAt", "updatedAt", "lastViewedAt", "viewCount", "year", "duration", "index"}
_DATES = {"addedAt", "updatedAt", "lastViewedAt"}


@dataclass(frozen=True)
class Condition:
    libtype: str | None
    field: str
    op: str  # '', '!', '>>', '<<'
    value: str


Expr = Condition | tuple[str, list["Expr"]]  # ('and'|'or', operands)


def _is_parameter(key: str) -> bool:
    """Keys that shape the answer rather than filter it (PMS ignores ones it does not know)."""
    return key.startswith(("X-Plex-", "include", "exclude")) or key in {
        "type",
        "sort",
        "limit",
        "checkFiles",
        "skipRefresh",
        "asyncAugmentMetadata",
        "uri",
    }


def parse_filters(pairs: Sequence[tuple[str, str]]) -> Expr | None:
    """The filter expression of a listing query; `push/or/and/pop` group like plexapi sends them."""
    tokens: list[Condition | str] = []
    for key, value in pairs:
        if key in ("push", "pop", "and", "or"):
            tokens.append(key)
            continue
        if _is_parameter(key):
            continue
        match = _FILTER_KEY.fullmatch(key)
        if match is None:
            continue
        libtype, name, op = match.groups()
        if op in (">", "<"):
            op = op * 2
        tokens.append(Condition(libtype, name, op, value))
    if not tokens:
        return None
    expr, rest = _parse_group(tokens, 0)
    if rest != len(tokens):
        raise QueryError("unbalanced push/pop in filters")
    return expr


def _parse_group(tokens: list[Condition | str], pos: int) -> tuple[Expr, int]:
    operands: list[Expr] = []
    joiner = "and"
    while pos < len(tokens):
        token = tokens[pos]
        if token == "pop":
            break
        if token == "push":
            inner, pos = _parse_group(tokens, pos + 1)
            if pos >= len(tokens) or tokens[pos] != "pop":
                raise QueryError("push without pop in filters")
            operands.append(inner)
            pos += 1
        elif token in ("and", "or"):
            joiner = str(token)
            pos += 1
        else:
            operands.append(token)
            pos += 1
    return (joiner, operands), pos


def _epoch(value: str, now: int) -> int:
    if match := _RELATIVE.fullmatch(value):
        return now - int(match[1]) * _UNITS[match[2]]
    try:
        return int(float(value))
    except ValueError:
        raise QueryError(f"bad date value {value!r}") from None


def _target(lib: PlexLibrary, item: Item, libtype: str | None) -> Item:
    if libtype is None or libtype == item.type_name:
        return item
    if isinstance(item, Track):
        return lib.albums[item.album_key] if libtype == "album" else lib.artists[item.artist_key]
    if isinstance(item, Album) and libtype == "artist":
        return lib.artists[item.artist_key]
    return item


def _number(item: Item, lib: PlexLibrary, name: str) -> int | None:
    if name == "addedAt":
        return item.added_at
    if name == "updatedAt":
        return item.updated_at
    if name == "lastViewedAt":
        return item.last_viewed_at
    if name == "viewCount":
        return item.view_count
    if name == "year":
        return item.year if isinstance(item, Track | Album) else None
    if name == "duration":
        return item.duration_ms if isinstance(item, Track) else None
    if name == "index":
        return item.index if isinstance(item, Track) else 1
    return None


Predicate = Callable[[Item], bool]


def _compile_condition(cond: Condition, lib: PlexLibrary, now: int) -> Predicate:
    values = [v for v in cond.value.split(",") if v != ""]
    negate = cond.op == "!"

    def target(item: Item) -> Item:
        return _target(lib, item, cond.libtype)

    if cond.field in _NUMERIC:
        wanted = [_epoch(v, now) if cond.field in _DATES else int(float(v)) for v in values] or [0]
        name, bound = cond.field, wanted[0]

        def numeric(item: Item) -> bool:
            have = _number(target(item), lib, name)
            if have is None:
                return negate
            if cond.op == ">>":
                return have > bound
            if cond.op == "<<":
                return have < bound
            return (have in wanted) != negate

        return numeric
    if cond.field in TAG_ELEMENTS:
        kind = cond.field
        ids = {v for v in values if v.isdigit()}
        names = {v.casefold() for v in values}

        def tagged(item: Item) -> bool:
            tags = target(item).tags.get(kind, [])
            hit = any(
                t.casefold() in names or (ids and str(lib.tag_id(kind, t)) in ids) for t in tags
            )
            return hit != negate

        return tagged
    if cond.field == "id":
        keys = set(values)
        return lambda item: (str(target(item).rating_key) in keys) != negate
    if cond.field == "title":
        needles = [v.casefold() for v in values]
        return lambda item: any(n in target(item).title.casefold() for n in needles) != negate
    return lambda item: True  # a filter PMS knows but the emulator does not model


def compile_filters(expr: Expr, lib: PlexLibrary, now: int) -> Predicate:
    """One predicate for a whole filter expression."""
    if isinstance(expr, Condition):
        return _compile_condition(expr, lib, now)
    joiner, operands = expr
    parts = [compile_filters(op, lib, now) for op in operands]
    if joiner == "or":
        return lambda item: any(p(item) for p in parts)
    return lambda item: all(p(item) for p in parts)


# -- sort ------------------------------------------------------------------------------------

SortKey = Callable[[Item], object]


def _sort_key(lib: PlexLibrary, name: str) -> SortKey | None:
    libtype, _, field = name.rpartition(".")
    if field in ("titleSort", "title"):
        return lambda i: _target(lib, i, libtype or None).title_sort
    if field in ("addedAt", "updatedAt", "lastViewedAt", "viewCount", "year", "duration", "index"):
        return lambda i: _number(_target(lib, i, libtype or None), lib, field) or 0
    if field == "absoluteIndex":
        return lambda i: (i.disc, i.index) if isinstance(i, Track) else 0
    if field == "id":
        return lambda i: _target(lib, i, libtype or None).rating_key
    if field == "originalTitle":
        return lambda i: (getattr(i, "original_title", None) or "").casefold()
    if field == "random":
        return lambda i: hex_id("random", i.rating_key)
    if field == "originallyAvailableAt":
        return lambda i: (
            getattr(_target(lib, i, libtype or None), "originally_available_at", None) or ""
        )
    if field == "mediaBitrate":
        return lambda i: getattr(i, "bitrate", 0)
    return None  # userRating, lastRatedAt, ratingCount…: all equal in the emulator


def sort_keys(lib: PlexLibrary, keys: list[int], sort: str | None) -> list[int]:
    """`keys` (already in default order) sorted by a PMS `sort=` value, stable."""
    if not sort:
        return keys
    items = [lib.tracks.get(k) or lib.albums.get(k) or lib.artists[k] for k in keys]
    for part in reversed(sort.split(",")):
        name, _, direction = part.partition(":")
        key = _sort_key(lib, name.strip())
        if key is not None:
            items.sort(key=key, reverse=direction == "desc")
    return [i.rating_key for i in items]


def select(
    lib: PlexLibrary,
    type_code: int,
    pairs: Sequence[tuple[str, str]],
    now: int,
    candidates: list[int] | None = None,
) -> list[int]:
    """Rating keys of `type_code` matching the query's filters, in the requested order."""
    keys = lib.ordered(type_code) if candidates is None else candidates
    expr = parse_filters(pairs)
    if expr is not None:
        keep = compile_filters(expr, lib, now)
        keys = [key for key in keys if keep(lib.item(key))]
    sort = next((v for k, v in pairs if k == "sort"), None)
    keys = sort_keys(lib, list(keys), sort)
    limit = next((v for k, v in pairs if k == "limit"), None)
    if limit is not None and limit.isdigit():
        keys = keys[: int(limit)]
    return keys
