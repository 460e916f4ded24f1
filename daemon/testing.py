"""Test helpers for plugin authors (and genred's own tests): a library, a stage, a check.

A third-party plugin's test needs a few lines::

    from genred.testing import Harness, check_plugin, track

    def test_hello_labels_every_track(tmp_path):
        with Harness(tmp_path, "plugins: {classifiers: {hello: {greeting: hey}}}") as lib:
            lib.add_tracks([track("So What", artist="Miles Davis", genres=["Jazz"])])
            lib.run("classify")
            assert lib.predictions("hello") == {"So What": {"genre": [("hey", 1.0)]}}

    def test_hello_keeps_the_contract():
        assert check_plugin(HelloClassifier, "classifiers") == []

`Harness` builds the enabled plugins through the real entry points (or takes instances
you hand it), fills its store through the real sync stage and runs the registered stages
exactly as the daemon does. With ``pytest_plugins = ["genred.testing"]`` the fixture
`genred_harness` gives one per test.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from itertools import count
from pathlib import Path
from typing import Any

from .config import Config, parse_config
from .hookspecs import COMMON_HOOKS, KINDS, OPTIONAL_HOOKS, PluginContext, settings_model
from .loader import LoadedPlugins, load_plugins
from .progress import NullProgress, Progress
from .records import ScanRequest, SourcePage, TrackRecord
from .stages import STAGES, StageRun
from .store import Store

__all__ = ["Harness", "ListSource", "check_plugin", "genred_harness", "track"]

_ids = count(1)


def track(title: str, *, source: str = "test", **fields: Any) -> TrackRecord:
    """A TrackRecord for a test: `source_id` made up unless given; lists as tuples."""
    fields.setdefault("source_id", f"t{next(_ids)}")
    for name in ("genres", "moods", "album_genres", "artist_genres"):
        if name in fields:
            fields[name] = tuple(fields[name])
    return TrackRecord(source=source, title=title, **fields)


class ListSource:
    """A source listing the given records in one page (the sync stage stores them)."""

    def __init__(self, records: Sequence[TrackRecord]) -> None:
        self.records = list(records)

    def scan(self, request: ScanRequest) -> Iterator[SourcePage]:
        yield SourcePage([r.source_id for r in self.records], self.records)

    def gone(self, source_ids: Sequence[str]) -> set[str]:
        return set()


class Harness:
    """A config, a store and the plugins built from them, for running stages in a test.

    `config` is YAML text (dedented) or a Config; `data_dir` defaults to `root/data` and
    the store lives there. `add_plugin` puts an instance you built in place of (or beside)
    the configured ones.
    """

    def __init__(
        self,
        root: Path,
        config: str | Config = "",
        *,
        env: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> None:
        if isinstance(config, str):
            text = textwrap.dedent(config)
            if "data_dir" not in text:
                text = f"data_dir: {json.dumps(str(root / 'data'))}\n" + text
            config = parse_config(text, str(root / "genred.yaml"), dict(env or {}))
        self.config = config
        self.store = Store.open(config.db_path)
        self.context = PluginContext(config, self.store)
        self.plugins: LoadedPlugins = load_plugins(self.context)
        self.progress = progress or NullProgress()

    # ------------------------------------------------------------------ plugins

    def add_plugin(self, kind: str, name: str, instance: Any) -> Any:
        """Use `instance` as the enabled plugin `name` of `kind`."""
        self.plugins.by_kind[kind][name] = instance
        self.plugins.unavailable.pop((kind, name), None)
        return instance

    def build(self, cls: type, settings: Mapping[str, Any] | None = None) -> Any:
        """An instance of plugin class `cls` with these settings, validated by its model."""
        valid = settings_model(cls).model_validate(dict(settings or {}))
        return cls(valid, self.context)

    # ------------------------------------------------------------------ library

    def add_tracks(self, records: Sequence[TrackRecord], source: str = "test") -> list[int]:
        """Store `records` through the real sync stage (as source `source`); their ids."""
        from .pipeline.sync import sync

        records = [r if r.source == source else _with_source(r, source) for r in records]
        sync(self.store, source, ListSource(records), full=False)
        wanted = [r.source_id for r in records]
        marks = ",".join("?" * len(wanted))
        rows = self.store.conn.execute(
            f"SELECT source_id, id FROM tracks WHERE source = ? AND source_id IN ({marks})",
            [source, *wanted],
        ).fetchall()
        by_id = dict(rows)
        return [by_id[s] for s in wanted]

    def run(self, stage: str, **options: Any) -> dict[str, Any]:
        """One run of the registered stage `stage` (sync, extract, classify, …): its counts."""
        run = StageRun(self.store, self.config, self.plugins, self.progress, "test")
        run.options = options
        return STAGES[stage].run(run)

    # ------------------------------------------------------------------ reading back

    def predictions(self, classifier: str) -> dict[str, dict[str, list[tuple[str, float]]]]:
        """A classifier's stored labels: track title → label set → [(label, confidence)]."""
        out: dict[str, dict[str, list[tuple[str, float]]]] = {}
        rows = self.store.conn.execute(
            "SELECT t.title, p.label_set, p.labels FROM predictions p "
            "JOIN tracks t ON t.id = p.track_id WHERE p.classifier = ? ORDER BY t.id",
            (classifier,),
        )
        for title, label_set, labels in rows:
            out.setdefault(title, {})[label_set] = [
                (str(a), float(b)) for a, b in json.loads(labels)
            ]
        return out

    def decisions(self) -> dict[str, list[str]]:
        """Decided genres per track title."""
        rows = self.store.conn.execute(
            "SELECT t.title, d.genres FROM decisions d JOIN tracks t ON t.id = d.track_id "
            "ORDER BY t.id"
        )
        return {title: json.loads(genres) for title, genres in rows}

    def failures(self, stage: str) -> dict[str, str]:
        """Recorded failures of `stage` (e.g. "classify:hello"): item → "Type: message"."""
        rows = self.store.conn.execute(
            "SELECT item, error_type, message FROM failures WHERE stage = ? ORDER BY item",
            (stage,),
        )
        return {str(item): f"{kind}: {message}" for item, kind, message in rows}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_source(record: TrackRecord, source: str) -> TrackRecord:
    from dataclasses import replace

    return replace(record, source=source)


# --------------------------------------------------------------------------- the contract


def check_plugin(plugin: Any, kind: str) -> list[str]:
    """What in `plugin` (a class, or an instance: then its attributes count too) breaks
    the contract of `kind` (`genred.hookspecs.KINDS`); empty when it keeps it.

    Every method of the kind's protocol must exist and accept the protocol's parameters
    by the same names; an optional hook (`OPTIONAL_HOOKS`, `COMMON_HOOKS`) that is half
    there (some of its members) or has another signature is a problem too.
    """
    problems = _conforms(plugin, KINDS[kind].protocol, required=True)
    for hook in (*OPTIONAL_HOOKS[kind], *COMMON_HOOKS):
        problems += _conforms(plugin, hook, required=False)
    model = getattr(plugin, "Config", None)
    cls = plugin if isinstance(plugin, type) else type(plugin)
    if model is not None and settings_model(cls) is not model:
        problems.append("Config is not a pydantic model")
    return problems


def protocol_members(protocol: type) -> tuple[list[str], list[str]]:
    """(methods, attributes) a protocol declares itself."""
    methods = [
        name
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")
    ]
    attributes = [
        name for name in getattr(protocol, "__annotations__", {}) if not name.startswith("_")
    ]
    return methods, attributes


def _conforms(plugin: Any, protocol: type, *, required: bool) -> list[str]:
    methods, attributes = protocol_members(protocol)
    is_class = isinstance(plugin, type)
    has = [m for m in methods if callable(getattr(plugin, m, None))]
    has_attrs = [a for a in attributes if hasattr(plugin, a)]
    if not required and not has and not (has_attrs and not methods):
        return []  # the optional hook is not implemented: fine
    where = f"{protocol.__name__}"
    problems = [f"{where}: no method {m}()" for m in methods if m not in has]
    problems += [
        f"{where}: no attribute {a}"
        for a in attributes
        if a not in has_attrs and not is_class  # instance attributes exist only once built
    ]
    for name in has:
        problems += _signature_problems(where, name, getattr(protocol, name), getattr(plugin, name))
    return problems


def _signature_problems(where: str, name: str, wanted: Any, got: Any) -> list[str]:
    """How `got` (a plugin's method) fails to take what genred passes to `wanted`."""
    try:
        expected = list(inspect.signature(wanted).parameters.values())[1:]  # drop self
        actual = list(inspect.signature(got).parameters.values())
    except (TypeError, ValueError):
        return []
    if inspect.isfunction(got) and actual and actual[0].name == "self":  # looked up on a class
        actual = actual[1:]
    by_name = {p.name: p for p in actual}
    positional = [p.name for p in actual if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_args = any(p.kind is p.VAR_POSITIONAL for p in actual)
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in actual)
    problems = []
    passed_positionally = 0
    for param in expected:
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            passed_positionally += 1
            if passed_positionally > len(positional) and not takes_args:
                problems.append(f"{where}.{name}(): does not take the argument {param.name!r}")
        elif param.kind is param.KEYWORD_ONLY:
            mine = by_name.get(param.name)
            if (mine is None or mine.kind is mine.POSITIONAL_ONLY) and not takes_kwargs:
                problems.append(f"{where}.{name}(): does not take the keyword {param.name!r}")
    given = set(positional[:passed_positionally]) | {p.name for p in expected}
    for param in actual:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name in given:
            continue
        if param.default is param.empty:
            problems.append(f"{where}.{name}(): requires {param.name!r}, which genred never passes")
    return problems


# --------------------------------------------------------------------------- pytest


def _fixture() -> Any:
    import pytest

    @pytest.fixture
    def genred_harness(tmp_path: Path) -> Iterator[Harness]:
        """A Harness over tmp_path with the default config (the `taxonomy` classifier)."""
        with Harness(tmp_path) as harness:
            yield harness

    return genred_harness


try:  # the fixture exists where pytest does (`pytest_plugins = ["genred.testing"]`)
    genred_harness = _fixture()
except ImportError:  # pragma: no cover - genred used without pytest
    genred_harness = None
