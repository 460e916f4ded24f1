"""The `handcrafted` extractor as the extract stage ran it before issue 13's items 7 and 8,
for bench_extract_memory to compare with in the same run (importable by the workers):
no warm-up (each worker compiles with an empty cache) and the STFT magnitude held whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genred_plugins.audio import handcrafted
from genred_plugins.audio.handcrafted_extractor import HandcraftedExtractor


class NaiveHandcrafted(HandcraftedExtractor):
    def warm_up_needed(self) -> str | None:
        return None  # the workers compile for themselves, as they did

    def extract(self, path: Path) -> Any:
        handcrafted.KEEP_WHOLE_FRAMES = 1 << 40  # hold the magnitude, however long
        return super().extract(path)
