"""Writeback `plex`: genres (and moods) onto tracks, albums and artists in Plex.

Reads current values from full items (`/library/metadata/{ids}`, never a listing, whose
tag lists Plex truncates) and writes with multi-edits, one request per group of up to
100 items that need the identical change, exactly as plexapi's `LibrarySection.multiEdit`
sends them:
    PUT /library/sections/{id}/all?type=10&id=1,2,3&genre[0].tag.tag=Jazz&genre[].tag.tag-=jazz%20fusion&genre.locked=1
Plex adds the indexed tags to every item of a multi-item edit, while for a single item they
become its complete list (which is why plexapi's `addGenre` resends the old tags); so a
single-item edit carries the item's complete new list, a multi-item edit the change.
Removals are quoted once more, as plexapi's `_tagHelper` does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from plexapi import utils as plex_utils
from pydantic import BaseModel, ConfigDict, Field

from genred.api import Edit, Key, PlexRequestFailed, PluginContext, Values

from .connection import RetrySettings, call, connect

PLEX_TYPE = {"artist": 8, "album": 9, "track": 10}
TAG_ELEMENT = {"genre": "Genre", "mood": "Mood", "label": "Label", "style": "Style"}


class PlexWritebackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    read_batch: int = Field(200, ge=1, le=1000, description="items per metadata read")
    retries: RetrySettings = RetrySettings()


class PlexWriteback:
    """Reads and writes tag fields of Plex items by ratingKey."""

    Config = PlexWritebackSettings
    uses_config = ("plex",)  # rebuilt on reload only when these sections change
    name = "plex"
    source = "plex"

    def __init__(self, settings: PlexWritebackSettings, context: PluginContext) -> None:
        if context.config.plex is None:
            raise ValueError(
                "the plex writeback needs a `plex:` section (url, token) in the config"
            )
        self.settings = settings
        self.plex = context.config.plex
        self.cancel = context.cancel  # the daemon's stop: every retry wait ends on it
        self._server: Any = None
        self._section_of: dict[str, str] = {}

    @property
    def server(self) -> Any:
        if self._server is None:
            self._server = connect(self.plex, self.settings.retries, self.cancel)
        return self._server

    def read(self, keys: Sequence[Key]) -> dict[Key, Values]:
        """Current full values of the given (kind, ratingKey, field) keys; missing items are absent."""
        ids_by_kind: dict[str, dict[str, None]] = defaultdict(dict)  # ordered set per kind
        for kind, item_id, _ in keys:
            ids_by_kind[kind][item_id] = None
        values: dict[tuple[str, str], dict[str, Values]] = {}
        for kind, id_set in ids_by_kind.items():
            ids = list(id_set)
            for start in range(0, len(ids), self.settings.read_batch):
                chunk = ids[start : start + self.settings.read_batch]
                for item_id, fields in self._read_chunk(chunk).items():
                    values[(kind, item_id)] = fields
        return {
            key: values[(key[0], key[1])].get(key[2], ())
            for key in keys
            if (key[0], key[1]) in values
        }

    def _read_chunk(self, ids: list[str]) -> dict[str, dict[str, Values]]:
        path = "/library/metadata/" + ",".join(ids)
        try:
            container = call(
                lambda: self.server.query(path),
                f"reading {len(ids)} items",
                self.settings.retries,
                self.cancel,
            )
        except PlexRequestFailed as exc:
            if "no such item" in str(exc):
                return {}
            raise
        section = container.attrib.get("librarySectionID")
        found: dict[str, dict[str, Values]] = {}
        for element in container:
            key = element.attrib.get("ratingKey")
            if key is None:
                continue
            self._section_of[key] = element.attrib.get("librarySectionID") or section or ""
            found[key] = {
                fld: tuple(t.attrib["tag"] for t in element.findall(tag) if "tag" in t.attrib)
                for fld, tag in TAG_ELEMENT.items()
            }
        return found

    def apply(self, edit: Edit, *, lock: bool) -> None:
        """Send one edit; split by library section if its items live in several."""
        by_section: dict[str, list[str]] = defaultdict(list)
        for item_id in edit.ids:
            section = self._section_of.get(item_id)
            if not section:
                self.read([(edit.kind, item_id, edit.field)])
                section = self._section_of.get(item_id)
            if not section:
                raise PlexRequestFailed(f"{edit.kind} {item_id} is no longer in Plex")
            by_section[section].append(item_id)
        for section, ids in by_section.items():
            if len(ids) == 1:  # one item: Plex takes the indexed tags as its complete list
                self._put(
                    section,
                    edit,
                    ids,
                    self._params(edit.field, edit.after[ids[0]], edit.remove, lock),
                )
            else:  # several: Plex adds the indexed tags to each item and removes the others
                self._put(section, edit, ids, self._params(edit.field, edit.add, edit.remove, lock))

    @staticmethod
    def _params(field: str, tags: Values, remove: Values, lock: bool) -> dict[str, Any]:
        params: dict[str, Any] = {f"{field}[{i}].tag.tag": v for i, v in enumerate(tags)}
        if remove:
            params[f"{field}[].tag.tag-"] = ",".join(quote(v, safe="") for v in remove)
        params[f"{field}.locked"] = 1 if lock else 0
        return params

    def _put(self, section: str, edit: Edit, ids: list[str], params: dict[str, Any]) -> None:
        query = {"type": PLEX_TYPE[edit.kind], "id": ",".join(ids), **params}
        path = f"/library/sections/{section}/all{plex_utils.joinArgs(query)}"
        server = self.server
        call(
            lambda: server.query(path, method=server._session.put),
            f"writing {edit.field} of {len(ids)} {edit.kind}s",
            self.settings.retries,
            self.cancel,
        )
