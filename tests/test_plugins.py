"""Plugin discovery through entry points, with a real third-party package made in a temp dir."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from genred.config import ConfigError, parse_config
from genred.errors import PluginUnavailable
from genred.hookspecs import ClassifierPlugin, PluginContext
from genred.loader import discover, load_plugins, retired
from genred.testing import Harness, check_plugin, track

PLUGIN_CODE = '''
from pydantic import BaseModel, ConfigDict

from genred.api import Prediction, Unclassified


class HelloSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    greeting: str = "hi"
    repeat: int = 1


class HelloClassifier:
    """A tiny third-party classifier: every track is 'Hello'; a track titled 'skip' is
    not answered this time."""

    Config = HelloSettings
    version = "1"

    def __init__(self, settings, context):
        self.settings = settings
        self.context = context

    def classify(self, tracks, *, store=None, cancel=None):
        for t in tracks:
            if t.title == "skip":
                yield Unclassified(t.id, RuntimeError("no answer for skip"))
            else:
                yield Prediction(t.id, "genre", ((self.settings.greeting * self.settings.repeat, 1.0),))


class TupleClassifier:
    """Broken: yields tuples instead of Predictions (the shape of an old example)."""

    version = "1"

    def __init__(self, settings, context):
        pass

    def classify(self, tracks, *, store=None, cancel=None):
        for t in tracks:
            yield (t, [("Hello", 1.0)])


class RaisingClassifier:
    """Broken: every call raises."""

    version = "1"

    def __init__(self, settings, context):
        pass

    def classify(self, tracks, *, store=None, cancel=None):
        raise AttributeError("'NoneType' object has no attribute 'taxonomy'")
'''


def make_dist(root: Path, dist: str, module: str, code: str, entry_points: str) -> None:
    """A minimal installed distribution: a module plus its .dist-info with entry points."""
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    site.mkdir()
    make_dist(
        site,
        "genred_hello",
        "genred_hello",
        PLUGIN_CODE,
        "[genred.classifiers]\nhello = genred_hello:HelloClassifier\n"
        "tuples = genred_hello:TupleClassifier\nraising = genred_hello:RaisingClassifier\n",
    )
    make_dist(
        site,
        "genred_needs_extra",
        "genred_needs_extra",
        "import fancy_missing_dep\n",
        "[genred.classifiers]\nfancy = genred_needs_extra:Fancy [fancy]\n",
    )
    make_dist(
        site,
        "genred_broken",
        "genred_broken",
        "raise RuntimeError('bad plugin')\n",
        "[genred.extractors]\nbroken = genred_broken:X\n",
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in ("genred_hello", "genred_needs_extra", "genred_broken"):
        sys.modules.pop(name, None)


def test_third_party_plugin_is_loaded_with_its_own_section(third_party: Path) -> None:
    config = parse_config(
        "plugins:\n  classifiers:\n    hello:\n      greeting: hey\n      repeat: 2\n", "g.yaml", {}
    )
    loaded = load_plugins(PluginContext(config))
    hello = loaded.get("classifiers", "hello")
    assert type(hello).__name__ == "HelloClassifier"
    assert (hello.settings.greeting, hello.settings.repeat) == ("hey", 2)
    assert hello.context.config is config
    assert isinstance(hello, ClassifierPlugin)
    assert check_plugin(hello, "classifiers") == []


def test_bad_key_in_plugin_section_has_line(third_party: Path) -> None:
    config = parse_config(
        "plugins:\n  classifiers:\n    hello:\n      greting: hey\n", "g.yaml", {}
    )
    with pytest.raises(ConfigError) as info:
        load_plugins(PluginContext(config))
    assert [str(i) for i in info.value.issues] == [
        "g.yaml:4 plugins.classifiers.hello.greting: unknown key "
        "(check the spelling; see config/genred.example.yaml)"
    ]


def test_missing_extra_is_reported_and_others_still_load(third_party: Path) -> None:
    infos = {(i.kind, i.name): i for i in discover()}
    fancy = infos[("classifiers", "fancy")]
    assert not fancy.available
    assert fancy.error == (
        "plugin 'fancy' (classifiers) needs fancy_missing_dep: "
        "install it with pip install 'genred_needs_extra[fancy]'"
    )
    broken = infos[("extractors", "broken")]
    assert broken.error == "plugin 'broken' (extractors) failed to load: RuntimeError: bad plugin"
    assert infos[("classifiers", "hello")].available

    config = parse_config("plugins:\n  classifiers: [hello, fancy]\n", "g.yaml", {})
    loaded = load_plugins(PluginContext(config))
    assert list(loaded.of("classifiers")) == ["hello"]
    with pytest.raises(PluginUnavailable, match=r"genred_needs_extra\[fancy\]"):
        loaded.get("classifiers", "fancy")


def test_unknown_plugin_name_lists_known_ones(third_party: Path) -> None:
    config = parse_config("plugins:\n  classifiers: [taxonomy, helo]\n", "g.yaml", {})
    with pytest.raises(ConfigError) as info:
        load_plugins(PluginContext(config))
    [issue] = [str(i) for i in info.value.issues]
    assert issue.startswith("g.yaml:2 plugins.classifiers[1]: unknown classifiers plugin (known: ")
    assert "hello" in issue and "taxonomy" in issue


def test_plugin_whose_constructor_fails_is_unavailable(third_party: Path, tmp_path: Path) -> None:
    make_dist(
        third_party,
        "genred_ctor",
        "genred_ctor",
        "class Boom:\n    def __init__(self, s, c):\n        raise ValueError('no server')\n",
        "[genred.writeback]\nboom = genred_ctor:Boom\n",
    )
    config = parse_config("plugins:\n  writeback: [boom]\n", "g.yaml", {})
    loaded = load_plugins(PluginContext(config))
    assert loaded.unavailable[("writeback", "boom")] == "ValueError: no server"
    sys.modules.pop("genred_ctor", None)


def test_builtin_plugins_are_registered_through_entry_points() -> None:
    names = {(i.kind, i.name) for i in discover()}
    assert ("classifiers", "taxonomy") in names


def test_reload_rebuilds_only_the_plugins_whose_config_changed(tmp_path: Path) -> None:
    (tmp_path / "music").mkdir()

    def config(album_factor: float, page_size: int, plex_token: str = "t1") -> str:
        return textwrap.dedent(
            f"""
            data_dir: {tmp_path / "data"}
            plex: {{url: "http://127.0.0.1:32400", token: {plex_token}}}
            folders: [{tmp_path / "music"}]
            plugins:
              sources:
                plex: {{}}
                folder: {{page_size: {page_size}}}
              classifiers:
                taxonomy: {{album_factor: {album_factor}}}
              writeback: [plex]
            schedule: {{sync: {{every: 1h}}}}
            """
        )

    first = load_plugins(PluginContext(parse_config(config(0.9, 500))))
    same = load_plugins(PluginContext(parse_config(config(0.9, 500))), previous=first)
    assert all(
        same.get(k, n) is first.get(k, n)
        for k, n in [("sources", "plex"), ("sources", "folder"), ("classifiers", "taxonomy")]
    )
    assert retired(first, same) == []

    edited = load_plugins(PluginContext(parse_config(config(0.7, 500))), previous=first)
    assert edited.get("classifiers", "taxonomy") is not first.get("classifiers", "taxonomy")
    assert edited.get("classifiers", "taxonomy").settings.album_factor == 0.7
    assert edited.get("sources", "plex") is first.get("sources", "plex")
    assert edited.get("sources", "folder") is first.get("sources", "folder")
    assert retired(first, edited) == [first.get("classifiers", "taxonomy")]

    # A new token (a secret: compared by value, never turned into text) rebuilds what uses
    # the `plex:` section, and only that.
    token = load_plugins(PluginContext(parse_config(config(0.9, 500, "t2"))), previous=first)
    assert token.get("sources", "plex") is not first.get("sources", "plex")
    assert token.get("writeback", "plex") is not first.get("writeback", "plex")
    assert token.get("classifiers", "taxonomy") is first.get("classifiers", "taxonomy")


# --------------------------------------------------------------------------- through the stage


def test_third_party_classifier_runs_through_the_real_classify_stage(
    third_party: Path, tmp_path: Path
) -> None:
    config = "plugins:\n  classifiers:\n    taxonomy: {}\n    hello: {greeting: hey}\n"
    with Harness(tmp_path, config) as lib:
        lib.add_tracks([track("So What", genres=["jazz"]), track("skip", genres=["Hip Hop"])])
        counts = lib.run("classify")
        assert lib.predictions("hello") == {"So What": {"genre": [("hey", 1.0)]}}
        assert lib.predictions("taxonomy") == {
            "So What": {"genre": [("Jazz", 1.0)]},
            "skip": {"genre": [("Hip-Hop", 1.0)]},
        }
        assert counts["hello.predicted"] == 1 and counts["hello.failed"] == 1
        [(_item, error)] = lib.failures("classify:hello").items()
        assert "no answer for skip" in error


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("tuples", "TupleClassifier.classify yielded a tuple, not a Prediction or Unclassified"),
        ("raising", "'NoneType' object has no attribute 'taxonomy'"),
    ],
)
def test_a_broken_classifier_is_recorded_as_its_own_failure_and_the_rest_goes_on(
    third_party: Path, tmp_path: Path, name: str, reason: str
) -> None:
    config = f"plugins:\n  classifiers: [{name}, taxonomy]\n"
    with Harness(tmp_path, config) as lib:
        ids = lib.add_tracks([track("A", genres=["Rock"]), track("B", genres=["Jazz"])])
        counts = lib.run("classify")
        assert counts[f"{name}.failed"] == 2 and counts[f"{name}.predicted"] == 0
        failures = lib.failures(f"classify:{name}")
        assert sorted(failures) == sorted(str(i) for i in ids)
        assert all(reason in error for error in failures.values())
        assert lib.predictions("taxonomy") == {
            "A": {"genre": [("Rock", 1.0)]},
            "B": {"genre": [("Jazz", 1.0)]},
        }


# --------------------------------------------------------------------------- the contract


class GoodSource:
    def scan(self, request):  # an untyped third-party plugin
        return iter(())

    def gone(self, source_ids):
        return set()


def test_check_plugin_finds_missing_methods_and_signatures_genred_cannot_call() -> None:
    class Renamed:
        def list_pages(self, request):
            return iter(())

        def gone(self, ids, extra):
            return set()

    class HalfHook(GoodSource):
        def load(self) -> None:  # LoadsModel without unload: not for a source, not checked
            pass

        def listen(self):  # Listens without the notify arg
            return None

    assert check_plugin(GoodSource, "sources") == []
    assert check_plugin(Renamed, "sources") == [
        "SourcePlugin: no method scan()",
        "SourcePlugin.gone(): requires 'extra', which genred never passes",
    ]
    assert check_plugin(HalfHook, "sources") == [
        "Listens.listen(): does not take the argument 'notify'"
    ]


def test_check_plugin_follows_the_protocol_so_a_renamed_hook_fails_every_builtin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a stage calls is what the protocol says: rename `scan` in the contract and no
    source keeps it any more."""
    from genred import hookspecs

    class Renamed(hookspecs.SourcePlugin, Protocol):
        def list_pages(self, request: object) -> object: ...

    kinds = dict(hookspecs.KINDS)
    kinds["sources"] = hookspecs.Kind("sources", "genred.sources", Renamed, "sync")
    monkeypatch.setattr("genred.testing.KINDS", kinds)
    sources = [i for i in discover(["sources"]) if i.cls is not None]
    assert {i.name for i in sources} >= {"plex", "folder"}
    for info in sources:
        assert "Renamed: no method list_pages()" in check_plugin(info.cls, "sources")


def test_every_builtin_plugin_class_keeps_the_contract_of_its_kind() -> None:
    found = [i for i in discover() if i.distribution == "genred"]
    assert {(i.kind, i.name) for i in found} >= {
        ("sources", "plex"),
        ("sources", "folder"),
        ("extractors", "handcrafted"),
        ("extractors", "embedding"),
        ("classifiers", "taxonomy"),
        ("classifiers", "llm-metadata"),
        ("classifiers", "llm-labels"),
        ("classifiers", "tagger"),
        ("classifiers", "audio-model"),
        ("classifiers", "audio-llm"),
        ("llm", "groq"),
        ("llm", "openai"),
        ("writeback", "plex"),
        ("executors", "ray"),
    }
    for info in found:
        assert info.cls is not None, info.error
        assert check_plugin(info.cls, info.kind) == [], (info.kind, info.name)


def test_plugin_commands_are_on_the_cli_and_a_broken_one_says_why(third_party: Path) -> None:
    from click.testing import CliRunner

    from genred.cli import cli

    make_dist(
        third_party,
        "genred_cmd",
        "genred_cmd",
        "import click\n\n@click.command('hello')\ndef hello():\n    click.echo('hello from a plugin')\n",
        "[genred.commands]\nhello = genred_cmd:hello\nbroken = genred_cmd:missing\n",
    )
    try:
        cli.__dict__.pop("_plugin_commands", None)  # discovered anew for this test
        runner = CliRunner()
        listing = runner.invoke(cli, ["--help"]).output
        assert "hello" in listing and "plex" in listing and "presets" in listing
        assert runner.invoke(cli, ["hello"]).output == "hello from a plugin\n"
        broken = runner.invoke(cli, ["broken"])
        assert broken.exit_code == 1
        assert "command 'broken' failed to load: AttributeError" in broken.output
    finally:
        cli.__dict__.pop("_plugin_commands", None)
        sys.modules.pop("genred_cmd", None)
