"""Tagger spec files: what an ONNX audio tagger expects and what its outputs mean.

A spec (YAML) names the model file (with its sha256, and a URL when it can be fetched),
the tag list, the exact preprocessing (sample rate, mel, log compression, patches), the
ONNX tensor names, and how tags map to canonical genres, moods and other labels. Adding a
model is a new spec file, not new code. Shipped specs are ``models/*/*.yaml`` in the
``genred.models`` package; fetched model files live in ``<data_dir>/models/<name>/``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from genred.api import GenredError

SPEC_SUFFIX = ".yaml"


class ModelSpecError(GenredError):
    """A tagger spec (or the files it names) cannot be used; the message says why and what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelFile(_Strict):
    file: str = Field(
        pattern=r"^[^/\\.][^/\\]*$",
        description="file name, beside the spec or in <data_dir>/models/<name>/",
    )
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    url: str | None = Field(
        None, pattern=r"^https?://", description="where `genred models fetch` downloads it"
    )
    checksum_verified: bool = Field(
        True, description="false: the sha256 comes from a third party, not the model's authors"
    )

    @model_validator(mode="after")
    def _fetchable_needs_checksum(self) -> ModelFile:
        if self.url and not self.sha256:
            raise ValueError("a file with a url needs its sha256 (nothing unchecked is installed)")
        return self


class AudioInput(_Strict):
    sample_rate: int = Field(gt=0)


class MelSettings(_Strict):
    """Arguments of librosa.feature.melspectrogram (power spectrum → mel filterbank)."""

    n_fft: int = Field(gt=0)
    hop_length: int = Field(gt=0)
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    power: float = 2.0
    n_mels: int = Field(gt=0)
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    norm: Literal["slaney"] | None = "slaney"


class LogCompression(_Strict):
    """L = log_base(multiplier · mel + offset)."""

    base: float = Field(10.0, gt=1)
    multiplier: float = Field(1.0, gt=0)
    offset: float = Field(1.0, gt=0)


class Patching(_Strict):
    frames: int = Field(gt=0, description="frames per patch (the model's fixed time length)")
    hop: int = Field(gt=0, description="frames between patch starts; leftover frames are dropped")


class OnnxInterface(_Strict):
    input: str
    layout: Literal["time_mel", "mel_time"] = "time_mel"
    tags_output: str
    tags_are: Literal["probabilities", "logits"] = "probabilities"
    embedding_output: str | None = None


class TaggerSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    licence: str = ""
    status: Literal["verified", "unverified"] = Field(
        "verified", description="unverified: preprocessing not checked against the reference"
    )
    model: ModelFile
    tags_file: ModelFile  # a plain file name is accepted too
    tags_key: str | None = Field(None, description="key of the tag list in a JSON object file")
    audio: AudioInput
    mel: MelSettings
    log: LogCompression
    patch: Patching
    onnx: OnnxInterface
    genres: dict[str, str] = Field(default_factory=dict, description="tag → canonical genre")
    moods: dict[str, str] = Field(default_factory=dict, description="tag → mood")
    labels: dict[str, str] = Field(default_factory=dict, description="tag → other label")
    ignore: list[str] = Field(default_factory=list)
    genres_from_taxonomy: bool = Field(
        False, description="map every tag not listed under genres through the taxonomy"
    )
    tag_separator: str | None = Field(
        None, description='"Electronic---House": try the part after it first, then before'
    )

    @model_validator(mode="before")
    @classmethod
    def _tags_file_as_model_file(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("tags_file"), str):
            return {**data, "tags_file": {"file": data["tags_file"]}}
        return data

    def files(self) -> tuple[ModelFile, ...]:
        return (self.model, self.tags_file)


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and the file it was read from (its model files are found beside it,
    or in the data dir when fetched)."""

    spec: TaggerSpec
    path: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def digest(self) -> str:
        """Changes when the spec or its model's checksum changes (part of classifier versions)."""
        blob = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def fetch_dir(self, data_dir: Path) -> Path:
        return Path(data_dir) / "models" / self.name

    def locate(self, item: ModelFile, data_dir: Path | None) -> Path | None:
        """The file on disk: beside the spec, else in the data dir; None when neither has it."""
        candidates = [self.path.parent / item.file]
        if data_dir is not None:
            candidates.append(self.fetch_dir(data_dir) / item.file)
        return next((c for c in candidates if c.is_file()), None)

    def require(self, item: ModelFile, data_dir: Path | None) -> Path:
        found = self.locate(item, data_dir)
        if found is not None:
            return found
        where = self.fetch_dir(data_dir) if data_dir is not None else self.path.parent
        how = (
            f"run `genred models fetch {self.name}`, or copy it there by hand"
            if item.url
            else "copy it there by hand"
        )
        raise ModelSpecError(f"model {self.name!r}: {item.file} is missing from {where}: {how}")

    def tags(self, data_dir: Path | None) -> list[str]:
        """The output names, in output-unit order; checks the mapping names only known tags."""
        path = self.require(self.spec.tags_file, data_dir)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelSpecError(
                f"model {self.name!r}: cannot read tag list {path}: {exc}"
            ) from None
        if self.spec.tags_key is not None and isinstance(data, dict):
            data = data.get(self.spec.tags_key)
        if not isinstance(data, list) or not data or not all(isinstance(t, str) for t in data):
            raise ModelSpecError(
                f"model {self.name!r}: {path} is not a list of tag names"
                + (f" under {self.spec.tags_key!r}" if self.spec.tags_key else "")
            )
        check_mapping(self.spec, data, str(self.path))
        return list(data)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_mapping(spec: TaggerSpec, tags: list[str], where: str) -> None:
    """Every mapped tag must exist; with a hand-written mapping every tag must be placed."""
    known = set(tags)
    sections = {"genres": spec.genres, "moods": spec.moods, "labels": spec.labels}
    mappings: list[tuple[str, Mapping[str, object]]] = [
        *sections.items(),
        ("ignore", dict.fromkeys(spec.ignore)),
    ]
    for section, mapping in mappings:
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ModelSpecError(
                f"{where}: {section} names tags the model does not have: {unknown}"
            )
    if not spec.genres_from_taxonomy:
        placed = set(spec.genres) | set(spec.moods) | set(spec.labels) | set(spec.ignore)
        missing = [t for t in tags if t not in placed]
        if missing:
            raise ModelSpecError(
                f"{where}: tags not listed under genres, moods, labels or ignore: {missing}"
            )


def read_spec(path: Path) -> LoadedSpec:
    """Parse and validate one spec file. Raises ModelSpecError naming the file and field."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelSpecError(f"cannot read model spec {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ModelSpecError(f"model spec {path} is not valid YAML: {exc}") from None
    try:
        spec = TaggerSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise ModelSpecError(f"model spec {path}: {problems}") from None
    return LoadedSpec(spec, Path(path))


def _shipped_paths() -> Iterator[Path]:
    root = resources.files("genred.models")
    for folder in sorted(root.iterdir(), key=lambda p: p.name):
        if not folder.is_dir() or folder.name.startswith(("_", ".")):
            continue
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.endswith(SPEC_SUFFIX):
                yield Path(str(item))


def shipped_specs() -> dict[str, LoadedSpec]:
    """Every spec shipped in the package, by name."""
    found: dict[str, LoadedSpec] = {}
    for path in _shipped_paths():
        loaded = read_spec(path)
        found[loaded.name] = loaded
    return found


def resolve_spec(model: str) -> LoadedSpec:
    """A shipped spec by name, or a spec file by path (anything with a '/' or '.yaml')."""
    if "/" in model or model.endswith(SPEC_SUFFIX):
        return read_spec(Path(model).expanduser())
    specs = shipped_specs()
    if model not in specs:
        raise ModelSpecError(
            f"unknown tagger model {model!r}: use one of {', '.join(sorted(specs))} "
            "(genred models list) or the path of a spec file"
        )
    return specs[model]
