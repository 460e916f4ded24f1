"""`make demo`: genred's round trip against an emulated Plex server, end to end.

Starts the Plex emulator (tests/emulators/plex) with the 21,502 CC-licensed tracks of the
freemusi.cc catalogue and their messy genre tags, writes a config for it under .demo/,
runs the real `genred` command for sync → classify → decide → writeback, and prints some
tracks' genres as Plex reports them before and after. Nothing real is touched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from plexapi.server import PlexServer

from tests.emulators.plex import PlexEmulator, PlexLibrary

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
TOKEN = "demo-token-not-secret"

CONFIG = """\
# Written by `make demo`: genred against the emulated Plex server on {url}.
data_dir: {data}
plex:
  url: {url}
  token: {token}
  sections: [Music]
plugins:
  sources: [plex]
  classifiers: [taxonomy]
  writeback: [plex]
writeback:
  mode: replace     # the demo shows the cleaned genres alone; the default is append
  levels: [track, album]
logging:
  level: warning
"""


def genred(config: Path, *args: str) -> None:
    command = [sys.executable, "-m", "genred", "--config", str(config), *args]
    print(f"\n$ genred {' '.join(args)}", flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True)
    print(f"  ({time.monotonic() - started:.1f} s)", flush=True)


def sample_keys(plex: PlexServer, section_title: str, count: int = 8) -> list[int]:
    """Tracks from different albums whose genre tags are visibly messy."""
    section = plex.library.section(section_title)
    picked: list[int] = []
    albums: set[str] = set()
    for track in section.searchTracks(maxresults=4000)[::37]:
        full = plex.fetchItem(track.ratingKey)
        tags = [g.tag for g in full.genres]
        messy = len(tags) >= 2 or any(t != t.title() for t in tags)
        if messy and full.parentRatingKey not in albums:
            picked.append(int(track.ratingKey))
            albums.add(full.parentRatingKey)
        if len(picked) == count:
            break
    return picked


def genres_of(plex: PlexServer, keys: list[int]) -> dict[int, tuple[str, str, list[str]]]:
    out = {}
    for key in keys:
        item = plex.fetchItem(key)
        out[key] = (item.grandparentTitle, item.title, [g.tag for g in item.genres])
    return out


def main() -> None:
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir()
    print("Building the emulated library (freemusi.cc, 21,502 tracks)…", flush=True)
    library = PlexLibrary.from_freemusicc()
    with PlexEmulator(library, token=TOKEN) as emu:
        print(f"Emulated Plex Media Server on {emu.url} (EMULATED: no real server is used)")
        config = WORK / "genred.yaml"
        config.write_text(CONFIG.format(url=emu.url, token=TOKEN, data=WORK / "data"))
        config.chmod(0o600)
        plex = PlexServer(emu.url, TOKEN)
        keys = sample_keys(plex, "Music")
        before = genres_of(plex, keys)
        for step in ("sync", "classify", "decide", "writeback"):
            genred(config, step)
        after = genres_of(plex, keys)
        genred(config, "status")
        print("\nGenres in (emulated) Plex, before → after:")
        for key in keys:
            artist, title, old = before[key]
            print(
                f"  {artist} – {title}\n      {', '.join(old) or '(none)'}  →  {', '.join(after[key][2])}"
            )
        puts = len(emu.puts())
        emu.clear_requests()
        genred(config, "writeback")
        print(f"\n{puts} edit requests reached Plex; the second writeback sent {len(emu.puts())}.")
        print(f"`genred revert --config {config}` would put every original back.")
    print(
        "\nTo use your own server: copy config/genred.example.yaml, set plex.url and "
        "plex.token (or $PLEX_TOKEN), then run `genred sync`, `classify`, `decide`, "
        "`writeback --dry-run` and `writeback`."
    )


if __name__ == "__main__":
    main()
