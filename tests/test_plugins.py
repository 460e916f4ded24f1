"""Plugin discovery through entry points, with a real third-party package made in a temp dir."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from genred import plugins
from genred.config import ConfigError, parse_config
from genred.plugins import PluginContext, discover, load_plugins

PLUGIN_CODE = '''
from pydantic import BaseModel, ConfigDict

class HelloSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    greeting: str = "hi"
    repeat: int = 1

class HelloClassifier:
    """A tiny third-party classifier: every track is 'Hello'."""
    Config = HelloSettings
    version = "1"

    def __init__(self, settings, context):
        self.settings = settings
        self.context = context

    def classify(self, tracks):
        for t in tracks:
            yield (t, [(self.settings.greeting * self.settings.repeat, 1.0)])
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
        "[genred.classifiers]\nhello = genred_hello:HelloClassifier\n",
    )
    make_dist(
        site,
        "genred_needs_extra",
        "genred_needs_extra",
        "import fancy_missing_dep\n",
        "[genred.classifiers]\nfancy = genred_needs_extra:Fancy\n",
    )
    make_dist(
        site,
        "genred_broken",
        "genred_broken",
        "raise RuntimeError('bad plugin')\n",
        "[genred.extractors]\nbroken = genred_broken:X\n",
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(plugins.EXTRA_FOR_MODULE, "fancy_missing_dep", "fancy")
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
    assert list(hello.classify(["t1"])) == [("t1", [("heyhey", 1.0)])]
    assert isinstance(hello, plugins.ClassifierPlugin)


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
        "install it with pip install 'genred[fancy]'"
    )
    broken = infos[("extractors", "broken")]
    assert broken.error == "plugin 'broken' (extractors) failed to load: RuntimeError: bad plugin"
    assert infos[("classifiers", "hello")].available

    config = parse_config("plugins:\n  classifiers: [hello, fancy]\n", "g.yaml", {})
    loaded = load_plugins(PluginContext(config))
    assert list(loaded.of("classifiers")) == ["hello"]
    with pytest.raises(plugins.PluginUnavailable, match=r"genred\[fancy\]"):
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
    assert plugins.retired(first, same) == []

    edited = load_plugins(PluginContext(parse_config(config(0.7, 500))), previous=first)
    assert edited.get("classifiers", "taxonomy") is not first.get("classifiers", "taxonomy")
    assert edited.get("classifiers", "taxonomy").settings.album_factor == 0.7
    assert edited.get("sources", "plex") is first.get("sources", "plex")
    assert edited.get("sources", "folder") is first.get("sources", "folder")
    assert plugins.retired(first, edited) == [first.get("classifiers", "taxonomy")]

    # A new token (a secret: compared by value, never turned into text) rebuilds what uses
    # the `plex:` section, and only that.
    token = load_plugins(PluginContext(parse_config(config(0.9, 500, "t2"))), previous=first)
    assert token.get("sources", "plex") is not first.get("sources", "plex")
    assert token.get("writeback", "plex") is not first.get("writeback", "plex")
    assert token.get("classifiers", "taxonomy") is first.get("classifiers", "taxonomy")
