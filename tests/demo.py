"""`make demo`: the genred daemon against an emulated Plex server, end to end.

Starts the Plex emulator (tests/emulators/plex) with the 21,502 CC-licensed tracks of the
freemusi.cc catalogue and their messy genre tags, plus the real audio files of
../shared/fixtures/audio mapped into its library; writes a config under .demo/ and starts
the real `genred run` (as systemd would: with a notify socket, whose STATUS lines are
shown). While it runs, a real audio file is copied into the watched folder, and the demo
shows its genres appearing in (emulated) Plex through plexapi. Nothing real is touched.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from plexapi.server import PlexServer

from tests.daemon_process import DaemonProcess, runs, wait_until
from tests.emulators.plex import PlexEmulator, PlexLibrary

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
TOKEN = "demo-token-not-secret"
SECRET = "demo-webhook-secret"
NEW_FILE = ROOT.parent / "shared" / "fixtures" / "audio" / "debian" / "asc_machine_wars.mp3"

CONFIG = """\
# Written by `make demo`: genred against the EMULATED Plex server on {url}.
data_dir: {data}
plex:
  url: {url}
  token: {token}
  sections: [Music]
  path_map:
{path_map}
folders: [{music}]
plugins:
  sources:
    plex: {{scan_wait: 60s}}
  classifiers: [taxonomy]
  writeback: [plex]
schedule:
  first_sync_after: 1s
watch:
  settle: 2s
writeback:
  mode: replace     # the demo shows the cleaned genres alone; the default is append
  levels: [track, album]
web:
  port: {port}
  webhook_secret: {secret}
logging:
  level: warning
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_keys(plex: PlexServer, count: int = 6) -> list[int]:
    """Tracks from different albums whose genre tags are visibly messy."""
    section = plex.library.section("Music")
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


class StatusPrinter:
    """Prints the daemon's new notify messages (what `systemctl status` would show)."""

    def __init__(self, daemon: DaemonProcess) -> None:
        self.daemon = daemon
        self.seen = 0

    def __call__(self) -> None:
        messages = self.daemon.messages()
        for message in messages[self.seen :]:
            lines = [x for x in message.split("\n") if x != "WATCHDOG=1"]
            if lines:
                print(f"  [systemd] {' '.join(lines)}", flush=True)
        self.seen = len(messages)


def tag_new_file(dest: Path) -> None:
    """The fixture MP3 with tags a download might have, written beside and moved in whole."""
    from mutagen.easyid3 import EasyID3
    from mutagen.id3 import ID3NoHeaderError

    staging = WORK / dest.name
    shutil.copyfile(NEW_FILE, staging)
    try:
        tags = EasyID3(staging)
    except ID3NoHeaderError:
        tags = EasyID3()
    tags.update(
        {
            "title": "Machine Wars",
            "artist": "Ascension",
            "album": "Freshly Downloaded",
            "genre": "electronica / chip-tune",
        }
    )
    tags.save(staging)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staging, dest)


def main() -> None:
    if WORK.exists():
        shutil.rmtree(WORK)
    music = WORK / "music"
    music.mkdir(parents=True)
    print("Building the emulated library (freemusi.cc, 21,502 tracks + 15 real audio files)…")
    library = PlexLibrary.from_freemusicc()
    with PlexEmulator(library, token=TOKEN, scan_roots={library.root: music}) as emu:
        print(f"Plex Media Server on {emu.url}: EMULATED (tests/emulators/plex), not a real one.")
        path_map = {**library.audio_path_map(), library.root: music}
        port = free_port()
        config = WORK / "genred.yaml"
        config.write_text(
            CONFIG.format(
                url=emu.url,
                token=TOKEN,
                data=WORK / "data",
                music=music,
                port=port,
                secret=SECRET,
                path_map="\n".join(f"    {k}: {v}" for k, v in path_map.items()),
            )
        )
        config.chmod(0o600)
        plex = PlexServer(emu.url, TOKEN)
        keys = sample_keys(plex)
        before = genres_of(plex, keys)
        db = WORK / "data" / "genred.db"

        print(f"\n$ genred run --config {config}   (as systemd would start it)")
        with DaemonProcess(config, watchdog_usec=30_000_000) as daemon:
            status = StatusPrinter(daemon)
            started = time.monotonic()
            daemon.wait_ready(60)
            status()
            wait_until(
                lambda: status() or any(r[1] == "writeback" and r[3] == "ok" for r in runs(db)),
                300,
                "the first sync → classify → decide → writeback",
                interval=0.5,
            )
            status()
            print(f"  first sync and write-back done in {time.monotonic() - started:.1f} s")
            after = genres_of(plex, keys)
            print("\nGenres in (emulated) Plex, before → after (read back through plexapi):")
            for key in keys:
                artist, title, old = before[key]
                print(f"  {artist} – {title}")
                print(f"      {', '.join(old) or '(none)'}  →  {', '.join(after[key][2])}")

            dest = music / "Incoming" / "Ascension - Machine Wars.mp3"
            print(f"\nCopying a real MP3 (genre tag 'electronica / chip-tune') into {dest.parent}")
            dropped = time.monotonic()
            tag_new_file(dest)
            section = plex.library.section("Music")

            def arrived() -> list[str] | None:
                status()
                found = section.searchTracks(title="Machine Wars")
                found = [t for t in found if t.parentTitle == "Freshly Downloaded"]
                if not found:
                    return None
                genres = [g.tag for g in plex.fetchItem(found[0].ratingKey).genres]
                return genres if genres and "electronica / chip-tune" not in genres else None

            genres = wait_until(arrived, 120, "the new file's genres in Plex", interval=0.5)
            took = time.monotonic() - dropped
            print(
                f"  in Plex after {took:.1f} s (settle 2 s, Plex scan, sync, classify, decide, "
                f"write): genres {', '.join(genres)}"
            )
            print("\nStopping with SIGTERM (as `systemctl stop genred` does)…")
            code = daemon.stop()
            status()
            print(f"  exit code {code}")
        subprocess.run(
            [sys.executable, "-m", "genred", "status", "--config", str(config)], check=False
        )
        print(f"\n{len(emu.puts())} edit requests reached the emulated Plex.")
    print(
        "\nEmulated here: the Plex Media Server (and its webhook sender). Real: genred, "
        "plexapi, the files, the database.\n"
        "To use your own server: copy config/genred.example.yaml, set plex.url and "
        "plex.token (or $PLEX_TOKEN) and `folders`, check it with `genred config check`, "
        "try `genred writeback --dry-run`, then run `genred run` — or install the systemd "
        "unit (README, 'Run it as a service')."
    )


if __name__ == "__main__":
    main()
