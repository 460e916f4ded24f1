"""Prompt presets: user-defined labels ("Focus", "Happy Vocal") described in plain words.

One YAML file per preset in the presets folder (`presets_dir` in the config; default:
`prompts/` beside the config file). The file's name (without .yaml) is the preset's name.
A preset asks an LLM, track by track (album by album), whether its `target_label` applies;
the `llm-labels` classifier stores the answers as predictions of that label, the decide
stage turns them into decided genres, moods or labels (`kind`), and the Plex writeback
writes them. A malformed file is refused with its name, the key and the reason.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from genred.api import (
    Config,
    ConfigError,
    ConfigIssue,
    StrictModel,
    custom_label_set,
    parse_yaml,
    validation_issues,
)

SUFFIX = ".yaml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class PresetExamples(StrictModel):
    positive: list[str] = Field(default_factory=list, description="tracks that are the label")
    negative: list[str] = Field(default_factory=list, description="tracks that are not")


class Preset(StrictModel):
    """What a preset file holds."""

    target_label: str = Field(min_length=1, max_length=60, description="the label decided")
    kind: Literal["genre", "mood", "label"] = Field(
        description="genre: a custom genre; mood: a Plex mood; label: a Plex label (or mood)"
    )
    role: str = Field(
        "You are a music curator with a deep knowledge of artists and albums.",
        max_length=1000,
        description="who the model is, first line of the system message",
    )
    characteristics: list[str] = Field(
        min_length=1, description="what makes a track match, in plain words"
    )
    examples: PresetExamples = PresetExamples()
    model: str | None = Field(None, description="ask this model instead of the LLM's default")
    description: str | None = None

    @field_validator("target_label")
    @classmethod
    def _label_text(cls, value: str) -> str:
        text = " ".join(value.split())
        if not any(c.isalnum() for c in text):
            raise ValueError("must contain letters or digits")
        return text

    @field_validator("characteristics")
    @classmethod
    def _no_blank(cls, value: list[str]) -> list[str]:
        cleaned = [" ".join(v.split()) for v in value]
        if not all(cleaned):
            raise ValueError("an empty characteristic says nothing")
        return cleaned


@dataclass(frozen=True)
class NamedPreset:
    name: str
    preset: Preset
    file: Path

    @property
    def label_set(self) -> str:
        """How its predictions are stored: `kind:Target Label`."""
        return custom_label_set(self.preset.kind, self.preset.target_label)


def presets_dir(config: Config) -> Path:
    """`presets_dir`, else `prompts/` beside the config file (or in the data dir)."""
    if config.presets_dir is not None:
        return config.presets_dir
    file = Path(config.source.file)
    return file.parent / "prompts" if file.is_file() else config.data_dir / "prompts"


def preset_name(file: Path) -> str:
    return file.name.removesuffix(SUFFIX)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"preset name {name!r}: use lower-case letters, digits, - and _ (e.g. happy-vocal)"
        )
    return name


def parse_preset(text: str, file: str) -> Preset:
    """A preset from YAML text; ConfigError with file:line, key and reason otherwise."""
    data, source = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(file, 1, (), "a preset must be a mapping of keys")])
    try:
        return Preset.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_issues(exc, source)) from None


def load_preset(file: Path) -> NamedPreset:
    try:
        check_name(preset_name(file))
        text = file.read_text(encoding="utf-8")
    except ValueError as exc:
        raise ConfigError([ConfigIssue(str(file), None, (), str(exc))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([ConfigIssue(str(file), None, (), f"cannot read: {reason}")]) from None
    return NamedPreset(preset_name(file), parse_preset(text, str(file)), file)


def preset_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def load_presets(folder: Path) -> tuple[list[NamedPreset], list[ConfigError]]:
    """Every valid preset in `folder`, and the errors of the invalid ones (skipped)."""
    good: list[NamedPreset] = []
    bad: list[ConfigError] = []
    for file in preset_files(folder):
        try:
            good.append(load_preset(file))
        except ConfigError as exc:
            bad.append(exc)
    seen: dict[str, NamedPreset] = {}
    for named in good:
        other = seen.setdefault(named.label_set.casefold(), named)
        if other is not named:
            bad.append(
                ConfigError(
                    [
                        ConfigIssue(
                            str(named.file),
                            None,
                            ("target_label",),
                            f"{named.preset.kind} {named.preset.target_label!r} is already "
                            f"defined by {other.file.name}",
                        )
                    ]
                )
            )
    kept = {id(n) for n in seen.values()}
    return [n for n in good if id(n) in kept], bad


def dump_preset(preset: Preset) -> str:
    """The preset as YAML, keys in their documented order, unset ones left out."""
    data = preset.model_dump(mode="json", exclude_none=True)
    if not data["examples"]["positive"] and not data["examples"]["negative"]:
        data.pop("examples")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def import_preset(source: Path, folder: Path, *, name: str | None, force: bool) -> NamedPreset:
    """Validate `source` and copy it into `folder` as `name` (default: its file name).

    The file is written whole or not at all (temp file + rename); an existing preset of
    that name is only replaced with `force`.
    """
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([ConfigIssue(str(source), None, (), f"cannot read: {reason}")]) from None
    preset = parse_preset(text, str(source))
    name = check_name(name or preset_name(source).removesuffix(".yml"))
    target = folder / f"{name}{SUFFIX}"
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists: pass --force to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(target, text)
    return NamedPreset(name, preset, target)


def _write_atomic(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
