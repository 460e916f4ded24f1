"""The `handcrafted` extractor as the extract stage ran it before issue 13's items 7 and 8,
for bench_extract_memory to compare with in the same run (importable by the workers):
no warm-up (each worker compiles with an empty cache), the STFT magnitude held whole,
and glibc's heap left to keep large freed blocks (its dynamic mmap threshold, which
climbs to 32 MiB after the first large free, fixed there)."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

from genred_plugins.audio import handcrafted
from genred_plugins.audio.handcrafted_extractor import HandcraftedExtractor

M_MMAP_THRESHOLD = -3
DYNAMIC_MAX = 32 * 1024 * 1024


class NaiveHandcrafted(HandcraftedExtractor):
    def warm_up_needed(self) -> str | None:
        return None  # the workers compile for themselves, as they did

    def extract(self, path: Path) -> Any:
        handcrafted.KEEP_WHOLE_FRAMES = 1 << 40  # hold the magnitude, however long
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, DYNAMIC_MAX)
        return super().extract(path)
