"""Trained models in the data dir: `models/audio-model/<version>/{model.pt,card.json}`.

A version is `YYYYMMDD-HHMMSS-<8 hex>` (UTC time of training, hash of the weights and
its time), so versions sort in training order (within one second, by when they were
written). A new model is written into a hidden
directory and renamed into place whole; then `current` (a small file naming the version)
is replaced atomically, so a reader sees the old model or the new one, never half of one.
The newest `keep` versions (and the current one) are kept; older ones are deleted.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..errors import ModelUnavailable
from .card import ModelCard

if TYPE_CHECKING:
    from .model import TrainedModel

MODEL = "audio-model"
CURRENT = "current"
WEIGHTS = "model.pt"
CARD = "card.json"
VERSION_PATTERN = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")
INCOMING = ".incoming-"
STALE_INCOMING_S = 3600.0  # a half-written model older than this was left by a crash


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models" / MODEL


def new_version(created: datetime, content: bytes) -> str:
    return f"{created:%Y%m%d-%H%M%S}-{hashlib.sha256(content).hexdigest()[:8]}"


def is_version(text: str) -> bool:
    return bool(VERSION_PATTERN.match(text))


def versions(data_dir: Path) -> list[str]:
    """Stored versions, oldest first."""
    root = models_dir(data_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and is_version(p.name)]
    return [p.name for p in sorted(found, key=lambda p: (p.name[:15], _mtime_ns(p)))]


def current_version(data_dir: Path) -> str | None:
    """The version `current` names (None: no model trained yet)."""
    path = models_dir(data_dir) / CURRENT
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelUnavailable(f"cannot read {path}: {exc}") from None
    if not is_version(text):
        raise ModelUnavailable(
            f"{path} does not name a model version ({text[:40]!r}); run `genred train`"
        )
    return text


def save(
    data_dir: Path, card: ModelCard, weights: bytes, keep: int, *, activate: bool = True
) -> Path:
    """Store a model as `card.version`, make it current (unless not `activate`), prune
    old versions."""
    root = models_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / card.version
    if final.exists():
        raise ModelUnavailable(f"model version {card.version} already exists in {root}")
    incoming = root / f"{INCOMING}{card.version}-{os.getpid()}"
    incoming.mkdir()
    try:
        _write_synced(incoming / WEIGHTS, weights)
        _write_synced(incoming / CARD, card.model_dump_json(indent=2).encode())
        os.rename(incoming, final)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    if activate:
        set_current(data_dir, card.version)
    prune(data_dir, keep)
    return final


def set_current(data_dir: Path, version: str) -> None:
    if not is_version(version):
        raise ValueError(f"not a model version: {version!r}")
    root = models_dir(data_dir)
    temporary = root / f".{CURRENT}-{os.getpid()}"
    _write_synced(temporary, f"{version}\n".encode())
    os.replace(temporary, root / CURRENT)


def prune(data_dir: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` versions (never the current one); returns them."""
    root = models_dir(data_dir)
    current = current_version(data_dir)
    stored = versions(data_dir)
    doomed = [v for v in stored[: max(len(stored) - keep, 0)] if v != current]
    for version in doomed:
        shutil.rmtree(root / version, ignore_errors=True)
    now = time.time()
    for path in root.glob(f"{INCOMING}*"):
        try:
            if now - path.stat().st_mtime > STALE_INCOMING_S:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass
    return doomed


def read_card(data_dir: Path, version: str) -> ModelCard:
    if not is_version(version):
        raise ModelUnavailable(
            f"{version!r} is not a model version (like 20260101-093000-1a2b3c4d)"
        )
    path = models_dir(data_dir) / version / CARD
    try:
        card = ModelCard.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        have = ", ".join(versions(data_dir)) or "none"
        raise ModelUnavailable(
            f"no audio model {version} in {models_dir(data_dir)} (stored: {have})"
        ) from None
    except (OSError, ValidationError) as exc:
        raise ModelUnavailable(
            f"the card of audio model {version} ({path}) is unreadable or damaged: "
            f"{_first_line(exc)}; run `genred train` to train a new model"
        ) from None
    if card.version != version:
        raise ModelUnavailable(f"{path} describes version {card.version}, not {version}")
    return card


def weights_path(data_dir: Path, version: str) -> Path:
    return models_dir(data_dir) / version / WEIGHTS


def load_model(data_dir: Path, version: str) -> TrainedModel:
    """The stored model `version`, ready to predict."""
    from .model import TrainedModel, load_state

    card = read_card(data_dir, version)
    return TrainedModel(card, load_state(weights_path(data_dir, version), card.architecture))


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
