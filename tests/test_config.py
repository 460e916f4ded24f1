from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from genred import config as cfg
from genred.config import ConfigError, load_config, parse_config, parse_duration
from tests.conftest import EXAMPLE_CONFIG


def issues_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "genred.yaml", env or {})
    return [str(i) for i in info.value.issues]


def test_example_config_loads_with_every_section() -> None:
    config = load_config(EXAMPLE_CONFIG, env={"PLEX_TOKEN": "abcd1234"})
    assert config.plex is not None
    assert str(config.plex.url) == "http://127.0.0.1:32400/"
    assert config.plex.token.get_secret_value() == "abcd1234"
    assert config.plex.path_map == {"/data/music": "/srv/music"}
    assert [f.path for f in config.folders] == [
        Path("/srv/music/incoming"),
        Path("/srv/music/library"),
    ]
    assert config.schedule.sync.every == timedelta(hours=1)
    assert config.schedule.writeback.cron == "30 3 * * *"
    assert config.writeback.levels == ["track", "album"]
    assert [e.name for e in config.plugins.enabled("classifiers")] == ["taxonomy"]
    assert config.taxonomy.aliases == {"8-bit": "Chiptune"}
    assert config.web.webhook_secret is None  # ${GENRED_WEBHOOK_SECRET:-} → empty → off


def test_unknown_key_names_line_and_path() -> None:
    text = "plex:\n  url: http://plex:32400\n  token: t0ken\n  sectoins: [Music]\n"
    assert issues_of(text) == [
        "genred.yaml:4 plex.sectoins: unknown key (check the spelling; see config/genred.example.yaml)"
    ]


def test_bad_url_is_reported_at_its_line() -> None:
    text = "data_dir: /tmp/x\n\nplex:\n  url: not a url\n  token: abc\n"
    [issue] = issues_of(text)
    assert issue.startswith("genred.yaml:4 plex.url: not a valid URL")


def test_several_errors_are_all_reported_with_list_indexes() -> None:
    text = """\
folders:
  - /music
  - path: /more
    recursive: maybe
writeback:
  mode: overwrite
logging:
  level: loud
"""
    got = issues_of(text)
    assert got[0].startswith("genred.yaml:4 folders[1].recursive:")
    assert got[1].startswith("genred.yaml:6 writeback.mode:")
    assert got[2].startswith("genred.yaml:8 logging.level:")
    assert len(got) == 3


def test_missing_required_key_points_at_parent() -> None:
    assert issues_of("plex:\n  url: http://x:32400\n") == [
        "genred.yaml:1 plex.token: required key is missing"
    ]


def test_yaml_syntax_error_has_line() -> None:
    [issue] = issues_of("plex:\n  url: [unclosed\n  token: x\n")
    assert issue.startswith("genred.yaml:3: invalid YAML")


def test_top_level_must_be_mapping() -> None:
    assert issues_of("- a\n- b\n") == ["genred.yaml:1: the file must be a mapping of keys"]


def test_env_interpolation_and_defaults() -> None:
    text = "data_dir: ${DATA:-/var/lib/genred}\nplex:\n  url: ${URL}\n  token: pre-${TOK}-post\n"
    config = parse_config(text, "g.yaml", {"URL": "http://10.0.0.2:32400", "TOK": "s3cr3t"})
    assert config.data_dir == Path("/var/lib/genred")
    assert config.plex is not None
    assert str(config.plex.url) == "http://10.0.0.2:32400/"
    assert config.plex.token.get_secret_value() == "pre-s3cr3t-post"


def test_unset_env_var_is_an_error_at_its_line() -> None:
    text = "plex:\n  url: http://x:32400\n  token: ${PLEX_TOKEN}\n"
    assert issues_of(text, env={}) == [
        "genred.yaml:3 plex.token: environment variable PLEX_TOKEN is not set"
    ]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(90, 90), ("30s", 30), ("15m", 900), ("1h30m", 5400), ("2d", 172800), ("0.5s", 0.5)],
)
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["soon", "", "-5", 0, True, "1x"])
def test_bad_durations(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(raw)


def test_schedule_needs_exactly_one_trigger_and_a_valid_cron() -> None:
    text = """\
schedule:
  sync: {every: 1h, cron: "0 * * * *"}
  classify: {cron: "61 * * * *"}
  decide: {enabled: false}
"""
    got = issues_of(text)
    assert got[0] == "genred.yaml:2 schedule.sync: give exactly one of 'every' or 'cron'"
    assert got[1].startswith("genred.yaml:3 schedule.classify.cron: not a valid crontab line")
    assert len(got) == 2


def test_plugins_accept_list_and_mapping_forms() -> None:
    text = """\
plugins:
  sources: [plex, folder]
  classifiers:
    taxonomy:
    llm-metadata:
      enabled: false
      batch_tokens: 4000
"""
    config = parse_config(text, "g.yaml", {})
    assert [e.name for e in config.plugins.enabled("sources")] == ["plex", "folder"]
    assert [e.name for e in config.plugins.enabled("classifiers")] == ["taxonomy"]
    llm = config.plugins.classifiers[1]
    assert (llm.name, llm.enabled, llm.settings) == ("llm-metadata", False, {"batch_tokens": 4000})


def test_plugin_section_must_be_a_mapping() -> None:
    [issue] = issues_of("plugins:\n  sources:\n    plex: yes\n")
    assert issue.startswith("genred.yaml:2 plugins.sources:")
    assert "must be a mapping" in issue


def test_plex_section_enables_plex_source_and_writeback_by_default() -> None:
    config = parse_config("plex:\n  url: http://x:32400\n  token: abcd\n", "g.yaml", {})
    assert [e.name for e in config.plugins.enabled("sources")] == ["plex"]
    assert [e.name for e in config.plugins.enabled("writeback")] == ["plex"]
    bare = parse_config("data_dir: /tmp/x\n", "g.yaml", {})
    assert bare.plugins.enabled("sources") == []


def test_secrets_are_collected_for_redaction() -> None:
    text = """\
plex: {url: "http://x:32400", token: plex-tok-123}
web: {webhook_secret: hook-456}
plugins:
  llm:
    groq: {api_key: gsk_789abc}
"""
    config = parse_config(text, "g.yaml", {})
    assert sorted(config.secrets()) == ["gsk_789abc", "hook-456", "plex-tok-123"]
    assert "plex-tok-123" not in repr(config)


def test_locate_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = tmp_path / "explicit.yaml"
    from_env = tmp_path / "env.yaml"
    local = tmp_path / "config" / "genred.yaml"
    for p in (explicit, from_env, local):
        p.parent.mkdir(exist_ok=True)
        p.write_text("data_dir: /x\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cfg, "SEARCH_PATHS", (tmp_path / "etc.yaml", Path("config/genred.yaml")))
    env = {"GENRED_CONFIG": str(from_env)}
    assert cfg.locate(explicit, env) == explicit
    assert cfg.locate(None, env) == from_env
    assert cfg.locate(None, {}) == Path("config/genred.yaml")
    local.unlink()
    with pytest.raises(ConfigError, match="no config file found"):
        cfg.locate(None, {})
    with pytest.raises(ConfigError, match="no such config file"):
        cfg.locate(tmp_path / "nope.yaml", {})


def test_world_readable_secret_warning(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("plex:\n  token: abc123\n")
    os.chmod(path, 0o644)
    warning = cfg.world_readable_secret_warning(path, path.read_text())
    assert warning is not None and "chmod 600" in warning
    os.chmod(path, 0o600)
    assert cfg.world_readable_secret_warning(path, path.read_text()) is None
    path.write_text("plex:\n  token: ${PLEX_TOKEN}\n")
    os.chmod(path, 0o644)
    assert cfg.world_readable_secret_warning(path, path.read_text()) is None
