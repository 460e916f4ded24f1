"""Download a listed model's files into the data dir, checked against their sha256.

Each file is streamed into a temporary file beside its destination while it is hashed;
only a file whose sha256 matches the spec is renamed into place (atomically), so a cut
connection or a wrong file never leaves anything that looks installed. Without a network
the error says where to copy the file by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from genred.api import GenredError

from .spec import LoadedSpec, ModelFile, file_sha256

CHUNK = 1 << 20
MAX_BYTES = 2 << 30  # no model file is this big; a server streaming forever is stopped here
TIMEOUT_S = 60.0

Opener = Callable[..., Any]  # urllib.request.urlopen's shape


class ModelFetchError(GenredError):
    """A model file could not be downloaded or did not match its checksum."""


@dataclass(frozen=True)
class Fetched:
    file: str
    path: Path
    downloaded: bool  # False: it was already there with the right checksum


def fetch_model(
    loaded: LoadedSpec,
    data_dir: Path,
    *,
    opener: Opener = urllib.request.urlopen,
    timeout: float = TIMEOUT_S,
) -> list[Fetched]:
    """Make every file of `loaded` that has a URL present in `<data_dir>/models/<name>/`.

    Raises ModelFetchError (nothing is left behind for the file that failed).
    """
    target = loaded.fetch_dir(data_dir)
    done = []
    for item in loaded.spec.files():
        if item.url is None:
            continue
        dest = target / item.file
        if dest.is_file() and file_sha256(dest) == item.sha256:
            done.append(Fetched(item.file, dest, downloaded=False))
            continue
        target.mkdir(parents=True, exist_ok=True)
        download(item, dest, opener=opener, timeout=timeout)
        done.append(Fetched(item.file, dest, downloaded=True))
    return done


def download(item: ModelFile, dest: Path, *, opener: Opener, timeout: float) -> None:
    """Stream `item.url` to `dest` through a temporary file; keep it only if its sha256 matches."""
    assert item.url is not None and item.sha256 is not None
    by_hand = f"download {item.url} and copy it to {dest} by hand (sha256 {item.sha256})"
    fd, part = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with opener(item.url, timeout=timeout) as response:
                    size = 0
                    while chunk := response.read(CHUNK):
                        size += len(chunk)
                        if size > MAX_BYTES:
                            raise ModelFetchError(
                                f"{item.url} sent more than {MAX_BYTES >> 20} MiB: refused"
                            )
                        digest.update(chunk)
                        out.write(chunk)
            except urllib.error.HTTPError as exc:
                raise ModelFetchError(
                    f"{item.url} answered HTTP {exc.code} {exc.reason}: {by_hand}"
                ) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                host = urlsplit(item.url).netloc or item.url
                raise ModelFetchError(f"cannot reach {host} ({reason}); {by_hand}") from None
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != item.sha256:
            source = "" if item.checksum_verified else " (that checksum comes from a third party)"
            raise ModelFetchError(
                f"{item.url} gave a file with sha256 {got}, not the {item.sha256} the spec "
                f"expects{source}: refused, nothing was installed"
            )
        os.replace(part, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
