"""The genre taxonomy: canonical genres, aliases, the parent tree, and canonicalization.

The data is ``models/genres.yaml`` (package ``genred.models``); its header documents the
format. ``Taxonomy.load()`` reads it (plus the user's additions from the config) and checks
it; ``taxonomy.canonicalize("Hip Hop; drum n bass")`` returns ``["Hip-Hop", "Drum & Bass"]``.

Match confidence: ``EXACT`` (1.0) when a part's folded key is a name or alias, ``FUZZY`` (0.8)
for a close spelling (difflib ratio >= ``FUZZY_CUTOFF``), ``CONTAINED`` (0.6) when only a
run of its words is a genre ("Progressive Death Metal" -> Death Metal).
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

__all__ = [
    "CONTAINED",
    "EXACT",
    "FUZZY",
    "FUZZY_CUTOFF",
    "GenreMatch",
    "Taxonomy",
    "TaxonomyError",
    "canonicalize",
    "default_taxonomy",
    "normalize_key",
]

EXACT = 1.0
FUZZY = 0.8
CONTAINED = 0.6
FUZZY_CUTOFF = 0.85  # difflib ratio; below it spellings are not "close"
FUZZY_MIN_LEN = 5  # shorter keys are too easy to confuse ("emo"/"demo")
FUZZY_MAX_LEN_DIFF = 2  # a spelling slip, not an extra word ("death metal"/"metal")

_CACHE_SIZE = 65_536
_MAX_PIECES = 6  # the most separated pieces ("R&B", "Drum & Bass") one known name spans
_MAX_WORDS = 6  # the most words a genre name has, for finding names inside longer texts
# Always separate values. NUL is how ID3v2.4 separates multiple genres.
_HARD_SEP = re.compile(r"[,;|\n\r\t\x00]")
# Separate values unless the text around them is a known name ("Drum & Bass", "R&B").
_SOFT_SEP = re.compile(r"\s*[/&+]\s*|\s+(?:and|-)\s+", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+|/")
_SLASHES = re.compile(r"/+")


if TYPE_CHECKING:
    from .config import TaxonomyConfig


class TaxonomyError(ValueError):
    """Invalid taxonomy data; the message names the offending entry."""


def _fold_tokens(text: str) -> list[str]:
    """Casefolded, accent-free words of ``text``; '&', '+' and a lone inner 'n' become 'and'."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("&", " and ").replace("+", " and ")
    words = _WORD.findall(text)
    last = len(words) - 1
    return [
        "and" if w == "n" and 0 < i < last and "/" not in (words[i - 1], words[i + 1]) else w
        for i, w in enumerate(words)
    ]


def normalize_key(text: str) -> str:
    """The lookup key: 'Hip-Hop', 'hip hop' and 'HIPHOP' → 'hiphop'; "Rock 'n' Roll",
    'rock & roll' → 'rockandroll'. Spaces and punctuation vanish, except '/', which is kept
    because 'Pop/Rock' names two genres and 'Pop Rock' one."""
    return _SLASHES.sub("/", "".join(_fold_tokens(text))).strip("/")


@dataclass(frozen=True, slots=True)
class GenreMatch:
    """One canonical genre found in a raw text."""

    name: str  # canonical name
    confidence: float  # EXACT 1.0, FUZZY 0.8 (close spelling), CONTAINED 0.6 (words inside)
    raw: str  # the part of the raw text it came from


@dataclass(frozen=True, slots=True)
class _Entry:
    target: str | None  # canonical name; None for an ignore entry
    kind: str  # "name", "alias" or "ignore"
    text: str  # the text as written
    where: str  # where it was defined, for error messages
    user: bool = False  # from the config, not the file


class _Builder:
    """Collects and checks taxonomy data; ``build()`` turns it into a ``Taxonomy``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parent: dict[str, str | None] = {}
        self.whitelist: dict[str, bool] = {}
        self.keys: dict[str, _Entry] = {}

    # -- the file ---------------------------------------------------------------------------

    def read_file_data(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise TaxonomyError(f"{self.source}: expected a mapping with 'genres' and 'ignore'")
        unknown = sorted(set(data) - {"genres", "ignore"})
        if unknown:
            raise TaxonomyError(f"{self.source}: unknown top-level key(s) {unknown}")
        if not data.get("genres"):
            raise TaxonomyError(f"{self.source}: 'genres' is missing or empty")
        self._walk(data["genres"], None, f"{self.source}: genres")
        for text in self._strings(data.get("ignore"), f"{self.source}: ignore"):
            self._add_ignore(text, f"{self.source}: ignore", user=False)

    def _walk(self, node: Any, parent: str | None, where: str) -> None:
        if not isinstance(node, Mapping):
            raise TaxonomyError(f"{where}: expected a mapping of genre names")
        for name, body in node.items():
            if not isinstance(name, str) or not name.strip():
                raise TaxonomyError(f"{where}: genre name {name!r} is not a non-empty string")
            here = f"{where} > {name}"
            body = {} if body is None else body
            if not isinstance(body, Mapping):
                raise TaxonomyError(f"{here}: expected 'aliases', 'children' or 'whitelist'")
            unknown = sorted(set(body) - {"aliases", "children", "whitelist"})
            if unknown:
                raise TaxonomyError(
                    f"{here}: unknown key(s) {unknown}; allowed: aliases, children, whitelist"
                )
            whitelist = body.get("whitelist", True)
            if not isinstance(whitelist, bool):
                raise TaxonomyError(f"{here}: whitelist must be true or false")
            self._add_genre(name, parent, here)
            self.whitelist[name] = whitelist
            for alias in self._strings(body.get("aliases"), f"{here} > aliases"):
                self._add_alias(alias, name, f"{here} > aliases", user=False)
            if body.get("children") is not None:
                self._walk(body["children"], name, f"{here} > children")

    @staticmethod
    def _strings(value: Any, where: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise TaxonomyError(f"{where}: expected a list of texts")
        for item in value:
            if not isinstance(item, str):
                raise TaxonomyError(
                    f"{where}: {item!r} is not a text (quote entries that contain ': ')"
                )
        return value

    # -- entries ----------------------------------------------------------------------------

    def _key(self, text: str, what: str, where: str) -> str:
        key = normalize_key(text)
        if not key:
            raise TaxonomyError(f"{where}: {what} {text!r} has no letters or digits")
        return key

    def _describe(self, entry: _Entry) -> str:
        if entry.kind == "name":
            return f"the genre {entry.text!r} ({entry.where})"
        if entry.kind == "alias":
            return f"alias {entry.text!r} of {entry.target!r} ({entry.where})"
        return f"ignore entry {entry.text!r} ({entry.where})"

    def _add_genre(self, name: str, parent: str | None, where: str) -> None:
        key = self._key(name, "genre name", where)
        old = self.keys.get(key)
        if old is not None:
            raise TaxonomyError(f"{where}: genre {name!r} clashes with {self._describe(old)}")
        self.keys[key] = _Entry(name, "name", name, where)
        self.parent[name] = parent

    def _add_alias(self, alias: str, name: str, where: str, *, user: bool) -> None:
        key = self._key(alias, "alias", where)
        old = self.keys.get(key)
        if old is not None and old.target != name:
            if old.kind == "name":
                raise TaxonomyError(
                    f"{where}: alias {alias!r} → {name!r} is the name of the genre "
                    f"{old.target!r}; an alias cannot hide a genre"
                )
            if not user or old.user:
                raise TaxonomyError(
                    f"{where}: alias {alias!r} → {name!r} is claimed by {self._describe(old)}"
                )
        if old is None or old.kind != "name":
            self.keys[key] = _Entry(name, "alias", alias, where, user)

    def _add_ignore(self, text: str, where: str, *, user: bool) -> None:
        key = self._key(text, "ignore entry", where)
        old = self.keys.get(key)
        if old is not None and old.kind != "ignore":
            if old.kind == "name":
                raise TaxonomyError(
                    f"{where}: {text!r} is the genre {old.target!r}; a genre cannot be ignored "
                    f"(set whitelist: false to fold it into its parent)"
                )
            if not user or old.user:
                raise TaxonomyError(f"{where}: ignore {text!r} clashes with {self._describe(old)}")
        self.keys[key] = _Entry(None, "ignore", text, where, user)

    def _resolve(self, text: str, where: str, what: str) -> str:
        entry = self.keys.get(normalize_key(text))
        if entry is None or entry.target is None:
            raise TaxonomyError(f"{where}: {what} {text!r} is not a known genre")
        return entry.target

    # -- user additions ---------------------------------------------------------------------

    def add_genres(self, extra: Mapping[str, str | None]) -> None:
        where = "taxonomy.genres"
        for name in extra:
            if not isinstance(name, str):
                raise TaxonomyError(f"{where}: genre name {name!r} is not a text")
            key = self._key(name, "genre name", where)
            old = self.keys.get(key)
            if old is not None and old.kind == "name":
                continue  # an existing genre: only its parent changes
            # A new genre takes over a built-in alias or ignore entry of the same text.
            self.keys[key] = _Entry(name, "name", name, where, user=True)
            self.parent[name] = None
            self.whitelist[name] = True
        for name, parent in extra.items():
            canonical = self._resolve(name, where, "genre")
            if parent is None:
                self.parent[canonical] = None
                continue
            if not isinstance(parent, str):
                raise TaxonomyError(f"{where}: parent of {name!r} must be a genre name or null")
            self.parent[canonical] = self._resolve(parent, f"{where}: {name}", "parent")
        self._check_cycles(where)

    def _check_cycles(self, where: str) -> None:
        for name in self.parent:
            seen = [name]
            node = self.parent[name]
            while node is not None:
                if node in seen:
                    chain = " → ".join([*seen, node])
                    raise TaxonomyError(f"{where}: {name!r} would be its own ancestor ({chain})")
                seen.append(node)
                node = self.parent[node]

    def add_aliases(self, extra: Mapping[str, str]) -> None:
        where = "taxonomy.aliases"
        for alias, target in extra.items():
            if not isinstance(alias, str) or not isinstance(target, str):
                raise TaxonomyError(f"{where}: {alias!r}: {target!r} must map a text to a genre")
            name = self._resolve(target, f"{where}: {alias}", "target")
            self._add_alias(alias, name, where, user=True)

    def add_ignore(self, extra: Iterable[str]) -> None:
        for text in extra:
            if not isinstance(text, str):
                raise TaxonomyError(f"taxonomy.ignore: {text!r} is not a text")
            self._add_ignore(text, "taxonomy.ignore", user=True)

    def set_whitelist(self, flags: Mapping[str, bool]) -> None:
        for name, flag in flags.items():
            if not isinstance(flag, bool):
                raise TaxonomyError(f"taxonomy.whitelist: {name!r} must be true or false")
            self.whitelist[self._resolve(name, "taxonomy.whitelist", "genre")] = flag

    def build(self) -> Taxonomy:
        lookup = {key: entry.target for key, entry in self.keys.items()}
        return Taxonomy(self.parent, self.whitelist, lookup, source=self.source)


class Taxonomy:
    """An immutable genre tree with aliases; canonicalizes raw genre texts.

    Name arguments (``parent``, ``ancestors``, ...) accept a canonical name or any alias and
    raise ``KeyError`` for texts that are no known genre.
    """

    def __init__(
        self,
        parent: Mapping[str, str | None],
        whitelist: Mapping[str, bool],
        lookup: Mapping[str, str | None],
        *,
        source: str = "<data>",
    ) -> None:
        """Use ``load()`` or ``from_data()``; this trusts its (already checked) input."""
        self.source = source
        self._parent = dict(parent)
        self._lookup = dict(lookup)
        self.names: frozenset[str] = frozenset(self._parent)
        self.top_levels: tuple[str, ...] = tuple(n for n, p in self._parent.items() if p is None)
        self._children: dict[str, list[str]] = {name: [] for name in self._parent}
        for name, up in self._parent.items():
            if up is not None:
                self._children[up].append(name)
        self._emitted: dict[str, str | None] = {}
        for name in self._parent:
            node: str | None = name
            while node is not None and not whitelist.get(node, True):
                node = self._parent[node]
            self._emitted[name] = node
        self._keys_by_len: dict[int, list[str]] = {}
        for key in self._lookup:
            self._keys_by_len.setdefault(len(key), []).append(key)
        self._match_text: Callable[[str], tuple[GenreMatch, ...]] = functools.lru_cache(
            maxsize=_CACHE_SIZE
        )(self._match_text_uncached)
        self._guess: Callable[[str], tuple[str | None, float]] = functools.lru_cache(
            maxsize=_CACHE_SIZE
        )(self._guess_uncached)

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        extra_genres: Mapping[str, str | None] | None = None,
        extra_aliases: Mapping[str, str] | None = None,
        ignore: Iterable[str] = (),
        whitelist: Mapping[str, bool] | None = None,
    ) -> Taxonomy:
        """Read genres.yaml (the built-in one unless ``path``) and apply the user's additions:
        ``extra_genres`` new (or moved) genre → parent (None = top level); ``extra_aliases``
        raw text → genre, overriding built-in aliases; ``ignore`` texts that map to nothing;
        ``whitelist`` genre → whether it is written. Raises ``TaxonomyError``."""
        if path is None:
            text, source = _builtin_text()
        else:
            source = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise TaxonomyError(f"{source}: cannot read the taxonomy: {exc}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise TaxonomyError(f"{source}: not valid YAML: {exc}") from exc
        return cls.from_data(
            data,
            source=source,
            extra_genres=extra_genres,
            extra_aliases=extra_aliases,
            ignore=ignore,
            whitelist=whitelist,
        )

    @classmethod
    def from_data(
        cls,
        data: Any,
        *,
        source: str = "<data>",
        extra_genres: Mapping[str, str | None] | None = None,
        extra_aliases: Mapping[str, str] | None = None,
        ignore: Iterable[str] = (),
        whitelist: Mapping[str, bool] | None = None,
    ) -> Taxonomy:
        """Like ``load()``, from already parsed YAML data (``{"genres": ..., "ignore": ...}``)."""
        builder = _Builder(source)
        builder.read_file_data(data)
        builder.add_genres(extra_genres or {})
        builder.add_aliases(extra_aliases or {})
        builder.add_ignore(ignore)
        builder.set_whitelist(whitelist or {})
        return builder.build()

    def __repr__(self) -> str:
        return f"<Taxonomy {len(self.names)} genres from {self.source}>"

    # -- the tree ---------------------------------------------------------------------------

    def resolve(self, text: str) -> str | None:
        """The canonical name ``text`` spells exactly (name or alias, folded), else None."""
        return self._lookup.get(normalize_key(text))

    def is_known(self, name: str) -> bool:
        """Whether ``name`` is a canonical genre or one of its aliases."""
        return self.resolve(name) is not None

    def _require(self, name: str) -> str:
        canonical = self.resolve(name)
        if canonical is None:
            raise KeyError(f"{name!r} is not a known genre")
        return canonical

    def parent(self, name: str) -> str | None:
        """The parent genre, or None for a top-level genre."""
        return self._parent[self._require(name)]

    def ancestors(self, name: str) -> list[str]:
        """All ancestors, nearest first (empty for a top-level genre)."""
        out: list[str] = []
        node = self._parent[self._require(name)]
        while node is not None:
            out.append(node)
            node = self._parent[node]
        return out

    def top_level(self, name: str) -> str:
        """The top-level genre above ``name`` (itself if it is one)."""
        canonical = self._require(name)
        return ([canonical, *self.ancestors(canonical)])[-1]

    def children(self, name: str) -> list[str]:
        """The direct sub-genres, in file order."""
        return list(self._children[self._require(name)])

    def is_whitelisted(self, name: str) -> bool:
        """Whether the genre is written as itself (else its nearest whitelisted ancestor is)."""
        canonical = self._require(name)
        return self._emitted[canonical] == canonical

    # -- canonicalization -------------------------------------------------------------------

    def split(self, raw: str) -> list[str]:
        """Split a multi-valued text into parts: always at , ; | NUL and newlines; at / & +
        ' and ' ' - ' unless the text around them is a known name ('Drum & Bass', 'R&B')."""
        parts: list[str] = []
        for chunk in _HARD_SEP.split(raw):
            parts.extend(self._split_soft(chunk))
        return parts

    def _split_soft(self, chunk: str) -> list[str]:
        spans: list[tuple[int, int]] = []
        start = 0
        for sep in _SOFT_SEP.finditer(chunk):
            spans.append((start, sep.start()))
            start = sep.end()
        spans.append((start, len(chunk)))
        spans = [(a, b) for a, b in spans if chunk[a:b].strip()]
        if len(spans) <= 1:
            return [chunk[a:b].strip() for a, b in spans]
        # Greedy: the longest run of pieces that is a known text, from the left.
        out: list[str] = []
        found = False
        i = 0
        while i < len(spans):
            for j in range(min(len(spans), i + _MAX_PIECES), i, -1):
                text = chunk[spans[i][0] : spans[j - 1][1]].strip()
                if normalize_key(text) in self._lookup:
                    out.append(text)
                    found = True
                    i = j
                    break
            else:
                out.append(chunk[spans[i][0] : spans[i][1]].strip())
                i += 1
        # No piece is known: keep the text whole, so a misspelt name is guessed as one.
        return out if found else [chunk[spans[0][0] : spans[-1][1]].strip()]

    def match(self, raw: str | Iterable[str]) -> list[GenreMatch]:
        """The best match for each part of ``raw``, in order of first appearance, one per
        canonical name (the most confident). Parts that are ignored or unknown give nothing."""
        if isinstance(raw, str):
            return list(self._match_text(raw))
        best: dict[str, GenreMatch] = {}
        for text in raw:
            for found in self._match_text(text):
                _keep_best(best, found)
        return list(best.values())

    def canonicalize(self, raw: str | Iterable[str]) -> list[str]:
        """The canonical genre names in ``raw`` (deduplicated, in order), or []."""
        return [found.name for found in self.match(raw)]

    def _match_text_uncached(self, raw: str) -> tuple[GenreMatch, ...]:
        best: dict[str, GenreMatch] = {}
        for part in self.split(raw):
            found = self._match_part(part)
            if found is not None:
                _keep_best(best, found)
        return tuple(best.values())

    def _match_part(self, part: str) -> GenreMatch | None:
        key = normalize_key(part)
        if not key:
            return None
        if key in self._lookup:
            name, confidence = self._lookup[key], EXACT
        else:
            name, confidence = self._guess(part)
        emitted = self._emitted[name] if name is not None else None
        return GenreMatch(emitted, confidence, part) if emitted is not None else None

    def _guess_uncached(self, part: str) -> tuple[str | None, float]:
        """A genre for a text with no exact match: a close spelling, else words inside it."""
        key = normalize_key(part)
        if len(key) >= FUZZY_MIN_LEN:
            near = [
                k
                for size in range(len(key) - FUZZY_MAX_LEN_DIFF, len(key) + FUZZY_MAX_LEN_DIFF + 1)
                for k in self._keys_by_len.get(size, ())
                if size >= FUZZY_MIN_LEN
            ]
            close = difflib.get_close_matches(key, near, n=1, cutoff=FUZZY_CUTOFF)
            if close:
                name = self._lookup[close[0]]  # None when it is close to an ignore entry
                return (name, FUZZY) if name is not None else (None, 0.0)
        words = [w for w in _fold_tokens(part) if w != "/"]
        for size in range(min(len(words) - 1, _MAX_WORDS), 0, -1):  # longest run first ...
            for start in range(len(words) - size, -1, -1):  # ... rightmost first (the head)
                name = self._lookup.get("".join(words[start : start + size]))
                if name is not None:
                    return name, CONTAINED
        return None, 0.0


def _keep_best(best: dict[str, GenreMatch], found: GenreMatch) -> None:
    """Add ``found`` unless its name is there with at least its confidence (order kept)."""
    old = best.get(found.name)
    if old is None or found.confidence > old.confidence:
        best[found.name] = found


def _builtin_text() -> tuple[str, str]:
    """The built-in genres.yaml: package data, else the source checkout's models/."""
    try:
        return (resources.files("genred.models") / "genres.yaml").read_text(
            encoding="utf-8"
        ), "genred.models/genres.yaml"
    except (ImportError, OSError, TypeError):
        path = Path(__file__).resolve().parent.parent / "models" / "genres.yaml"
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise TaxonomyError(f"the built-in taxonomy is missing: {exc}") from exc


@functools.cache
def default_taxonomy() -> Taxonomy:
    """The built-in taxonomy, loaded once."""
    return Taxonomy.load()


def canonicalize(raw: str | Iterable[str]) -> list[str]:
    """``default_taxonomy().canonicalize(raw)``."""
    return default_taxonomy().canonicalize(raw)


def taxonomy_from_config(config: TaxonomyConfig) -> Taxonomy:
    """The taxonomy as the config's `taxonomy:` section extends or replaces it."""
    return Taxonomy.load(
        config.path,
        extra_genres=config.genres,
        extra_aliases=config.aliases,
        ignore=config.ignore,
        whitelist=config.whitelist,
    )
