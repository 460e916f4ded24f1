"""Prompt presets: the file format, its errors, and `genred presets list|export|import`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from genred.cli import cli
from genred.config import ConfigError
from genred.records import split_label_set
from genred_plugins.llm.presets import (
    import_preset,
    load_preset,
    load_presets,
    parse_preset,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "config" / "prompts"

GOOD = """\
target_label: Focus
kind: label
role: You pick music for deep work.
characteristics:
  - mostly instrumental
  - steady pulse
examples:
  positive: [Brian Eno - Music for Airports]
  negative: [Slayer - Angel of Death]
"""


def test_the_shipped_examples_are_valid_presets() -> None:
    found, problems = load_presets(EXAMPLES)
    assert problems == []
    assert {(p.name, p.preset.kind, p.preset.target_label) for p in found} == {
        ("focus", "label", "Focus"),
        ("happy-vocal", "mood", "Happy Vocal"),
        ("workout", "label", "Workout"),
    }
    assert found[0].label_set == "label:Focus"


def test_a_preset_is_parsed_and_normalized() -> None:
    preset = parse_preset(GOOD.replace("Focus", "  Deep   Focus "), "focus.yaml")
    assert preset.target_label == "Deep Focus"
    assert preset.characteristics == ["mostly instrumental", "steady pulse"]
    assert preset.examples.negative == ["Slayer - Angel of Death"]
    assert preset.model is None


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"),
    [
        (GOOD.replace("kind: label", "kind: colour"), 2, "kind", "'genre', 'mood' or 'label'"),
        (GOOD.replace("kind: label\n", ""), None, "kind", "required key is missing"),
        (GOOD + "colour: blue\n", 10, "colour", "unknown key"),
        (GOOD.replace("  - steady pulse\n", "  - '  '\n"), 4, "characteristics", "empty"),
        (GOOD.replace("target_label: Focus", "target_label: '!!'"), 1, "target_label", "letters"),
        (GOOD.replace("  positive: [", "  positive: {"), None, None, "invalid YAML"),
    ],
)
def test_a_malformed_preset_names_file_line_key_and_reason(
    text: str, line: int | None, key: str | None, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_preset(text, "prompts/focus.yaml")
    message = str(caught.value)
    assert message.startswith("prompts/focus.yaml")
    if line is not None:
        assert message.startswith(f"prompts/focus.yaml:{line} ")
    if key is not None:
        assert f" {key}: " in message or f" {key}[" in message
    assert reason in message


def test_a_bad_file_is_skipped_and_reported_others_load(tmp_path: Path) -> None:
    (tmp_path / "focus.yaml").write_text(GOOD)
    (tmp_path / "broken.yaml").write_text("kind: mood\n")
    (tmp_path / "Bad Name.yaml").write_text(GOOD.replace("Focus", "Other"))
    (tmp_path / "again.yaml").write_text(GOOD)  # the same label twice
    found, problems = load_presets(tmp_path)
    assert [p.name for p in found] == ["again"]  # first in file order wins
    text = "\n".join(str(p) for p in problems)
    assert "broken.yaml" in text and "target_label: required key is missing" in text
    assert "Bad Name.yaml" in text and "use lower-case letters" in text
    assert "focus.yaml" in text and "already defined by again.yaml" in text


def test_label_sets_of_presets_are_told_apart_from_the_standard_ones() -> None:
    assert split_label_set("mood:Happy Vocal") == ("mood", "Happy Vocal")
    assert split_label_set("label:Focus:Deep") == ("label", "Focus:Deep")
    assert split_label_set("genre") is None
    assert split_label_set("colour:Red") is None
    assert split_label_set("mood:") is None


def test_import_is_whole_or_nothing_and_never_overwrites_silently(tmp_path: Path) -> None:
    source = tmp_path / "shared-focus.yaml"
    source.write_text(GOOD)
    folder = tmp_path / "prompts"
    named = import_preset(source, folder, name=None, force=False)
    assert named.file == folder / "shared-focus.yaml"
    assert load_preset(named.file).preset.target_label == "Focus"
    with pytest.raises(FileExistsError, match="--force"):
        import_preset(source, folder, name=None, force=False)
    source.write_text(GOOD.replace("Focus", "Flow"))
    import_preset(source, folder, name=None, force=True)
    assert load_preset(named.file).preset.target_label == "Flow"
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("kind: label", "kind: 3"))
    with pytest.raises(ConfigError, match=r"bad.yaml:2 kind: "):
        import_preset(bad, folder, name=None, force=False)
    assert sorted(p.name for p in folder.iterdir()) == ["shared-focus.yaml"]  # no temp left


def test_cli_list_export_import_round_trip(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    config = write_config(f"data_dir: {tmp_path / 'data'}\n")
    run = CliRunner().invoke
    listed = run(cli, ["presets", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert f"presets folder: {tmp_path / 'prompts'}" in listed.output
    assert "no presets yet" in listed.output

    imported = run(
        cli, ["presets", "import", str(EXAMPLES / "happy-vocal.yaml"), "--config", str(config)]
    )
    assert imported.exit_code == 0, imported.output
    assert "imported happy-vocal: mood 'Happy Vocal'" in imported.output
    again = run(
        cli, ["presets", "import", str(EXAMPLES / "happy-vocal.yaml"), "--config", str(config)]
    )
    assert again.exit_code == 1 and "--force" in again.output

    listed = run(cli, ["presets", "list", "--config", str(config)])
    assert "happy-vocal" in listed.output and "Happy Vocal" in listed.output

    out = tmp_path / "exported.yaml"
    exported = run(
        cli, ["presets", "export", "happy-vocal", "-o", str(out), "--config", str(config)]
    )
    assert exported.exit_code == 0, exported.output
    assert (
        parse_preset(out.read_text(), str(out)) == load_preset(EXAMPLES / "happy-vocal.yaml").preset
    )
    printed = run(cli, ["presets", "export", "happy-vocal", "--config", str(config)])
    assert printed.output.startswith("target_label: Happy Vocal\nkind: mood\n")

    missing = run(cli, ["presets", "export", "nope", "--config", str(config)])
    assert missing.exit_code == 1 and "no preset 'nope'" in missing.output

    broken = tmp_path / "broken.yaml"
    broken.write_text("target_label: X\nkind: mood\ncharacteristics: []\n")
    refused = run(cli, ["presets", "import", str(broken), "--config", str(config)])
    assert refused.exit_code == 1
    assert f"refused: {broken}:3 characteristics: " in refused.output
    assert not (tmp_path / "prompts" / "broken.yaml").exists()

    (tmp_path / "prompts" / "zzz.yaml").write_text("kind: nope\n")
    listed = run(cli, ["presets", "list", "--config", str(config)])
    assert listed.exit_code == 1
    assert "invalid: " in listed.output and "zzz.yaml:1 kind: " in listed.output
