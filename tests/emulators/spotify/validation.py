"""Every Web API request and response checked against the OpenAPI spec with openapi-core.

The spec is tests/fixtures/spotify/openapi/fixed-spotify-open-api.yml (sonallux's fixed copy
of Spotify's official definition, MIT). The file is not changed; the validator patches its
in-memory copy, and each patch is listed here and in the README:

1. `servers` becomes `/v1`, so any host (the emulator's 127.0.0.1:PORT) matches.
2. Every `security` requirement is dropped: the spec's `oauth_2_0` is an OAuth2 scheme,
   which openapi-core cannot check (it warns "Unsupported scheme type" and passes). The
   emulator checks bearer tokens itself (auth.py).
3. A `discriminator` without a `mapping` (PlaylistTrackObject's `item`/`track`:
   `oneOf [TrackObject, EpisodeObject]`, `propertyName: type`) gets one built from each
   target's `type` enum (`track` → TrackObject, `episode` → EpisodeObject). Without it
   OpenAPI's implicit mapping looks for `#/components/schemas/track`, which does not exist,
   and even the recorded playlist_items.json fails ("reference … could not be resolved").
4. The operations Spotify removed for Development-Mode apps (removed.py) are deleted, so a
   request to one (`POST /users/{id}/playlists`, any `/playlists/{id}/tracks`) is reported
   as PathNotFound/OperationNotFound: using them is a bug in the client.

Paths are checked as the emulator routes them: one trailing slash is dropped first
(spotipy's `me()` sends `GET /v1/me/`, which the real API answers as `/v1/me`).
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from .removed import REMOVED

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "spotify"
SPEC_PATH = FIXTURES / "openapi" / "fixed-spotify-open-api.yml"
HOST_URL = "http://emulator.invalid"  # any host: the patched server URL is relative


@dataclass(frozen=True)
class Violation:
    """One way a request or a response broke the spec.

    `expected` says why a violation was asked for, so a test can tell it from a real one:
    "fault:429", "fault:5xx", "fault:revoke" (an injected fault: a 500 is in no operation's
    responses, an empty-bodied 429 lacks the spec's error object) or "fields" (a `fields`
    filter leaves out required keys; the spec does not model partial answers). None: a
    real violation by the client or the emulator.
    """

    kind: str  # "request" or "response"
    method: str
    path: str
    status: int | None  # the response status (None for a request violation)
    error: str  # openapi-core's exception class: PathNotFound, InvalidRequestBody, …
    message: str
    expected: str | None = None

    def __str__(self) -> str:
        where = f"{self.method} {self.path}" + (f" → {self.status}" if self.status else "")
        return f"{self.kind} {where}: {self.error}: {self.message}"


def _load(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)


def _walk(node: Any) -> Iterable[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _type_enum(spec: dict[str, Any], ref: str, prop: str) -> list[str]:
    """The enum of `prop` in the schema `ref` points at (following allOf)."""
    schema = spec
    for part in ref.lstrip("#/").split("/"):
        schema = schema[part]
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if "$ref" in node:
            stack.append(_resolve(spec, node["$ref"]))
            continue
        enum = node.get("properties", {}).get(prop, {}).get("enum")
        if enum:
            found.extend(enum)
        stack.extend(node.get("allOf", []))
    return found


def _resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = spec
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def patch_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The four patches in this module's docstring, on a deep copy."""
    spec = copy.deepcopy(spec)
    spec["servers"] = [{"url": "/v1"}]
    spec.pop("security", None)
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    for node in list(_walk(spec)):
        disc = node.get("discriminator")
        if isinstance(disc, dict) and "mapping" not in disc and "oneOf" in node:
            mapping = {}
            for target in node["oneOf"]:
                ref = target.get("$ref")
                if ref:
                    for value in _type_enum(spec, ref, disc["propertyName"]):
                        mapping[value] = ref
            disc["mapping"] = mapping
    for entry in REMOVED:
        item = spec["paths"].get(entry.spec_path)
        if item is None:
            raise KeyError(f"removed.py names {entry.spec_path}, which the spec lacks")
        for method in entry.methods:
            item.pop(method.lower(), None)
        if not any(k in item for k in ("get", "post", "put", "delete", "patch")):
            del spec["paths"][entry.spec_path]
    return spec


class _Request:
    def __init__(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> None:
        self.method = method.lower()
        self.host_url = HOST_URL
        self.path = path
        self.body = body or None
        self.content_type = (_get(headers, "content-type") or "").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(dict(headers))
        )


class _Response:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = Headers(dict(headers))
        self.content_type = (_get(headers, "content-type") or "").lower()
        self.data = body


def _get(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def describe(error: Exception) -> str:
    """openapi-core's exception with its schema errors, each cut to 300 characters."""
    text = str(error)
    cause = error.__cause__
    details = [str(getattr(se, "message", se))[:300] for se in getattr(cause, "schema_errors", ())]
    if not details and cause is not None:
        details = [str(cause)[:300]]
    return "; ".join([text[:300], *details]) if details else text[:300]


class SpecValidator:
    """Validates request/response pairs; thread-safe (one lock: openapi-core caches lazily)."""

    def __init__(self, spec_path: Path = SPEC_PATH) -> None:
        self.spec = patch_spec(_load(spec_path))
        self._api = OpenAPI.from_dict(self.spec, config=Config(spec_validator_cls=None))
        self._lock = threading.Lock()

    def request_errors(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> list[tuple[str, str]]:
        request = _Request(method, path, query, headers, body)
        with self._lock:
            return [(type(e).__name__, describe(e)) for e in self._api.iter_request_errors(request)]

    def response_errors(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
        status: int,
        response_headers: Mapping[str, str],
        response_body: bytes,
    ) -> list[tuple[str, str]]:
        request = _Request(method, path, query, headers, body)
        response = _Response(status, response_headers, response_body)
        with self._lock:
            return [
                (type(e).__name__, describe(e))
                for e in self._api.iter_response_errors(request, response)
            ]


@functools.lru_cache(maxsize=2)
def shared_validator(spec_path: Path = SPEC_PATH) -> SpecValidator:
    """One validator per spec per process (loading and compiling schemas costs ~0.1 s)."""
    return SpecValidator(spec_path)
