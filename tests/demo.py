"""`make demo`: the genred daemon against an emulated Plex server, end to end.

Starts the Plex emulator (tests/emulators/plex) with the 21,502 CC-licensed tracks of the
freemusi.cc catalogue and their messy genre tags, plus the real audio files of
tests/fixtures/audio mapped into its library; writes a config under .demo/ and starts
the real `genred run` (as systemd would: with a notify socket, whose STATUS lines are
shown). While it runs, a real audio file is copied into the watched folder, and the demo
shows its genres appearing in (emulated) Plex through plexapi. Nothing real is touched.

Then playlists from plain words: `genred spotify login` (the browser step done by the
demo) against an emulated Spotify (tests/emulators/spotify, the same freemusi.cc catalogue,
a tenth of it "not on Spotify"), `genred playlist create` pushed to Spotify and Plex, one
`genred playlist refine` with its diff, and the tracks Spotify does not have.

The `llm-metadata` classifier asks the LLM emulator (tests/emulators/llm: an
OpenAI/Groq-compatible server whose oracle knows freemusi.cc's genres), unless
GROQ_API_KEY is set: then it asks Groq itself, over a 300-track slice of the catalogue
(a free tier classifies about 60 albums a minute). The `llm-labels` classifier runs the
example preset config/prompts/focus.yaml; the demo says which LLM answered.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from plexapi.server import PlexServer

from tests.daemon_process import DaemonProcess, runs, wait_until
from tests.emulators.llm import UNLIMITED, GroundTruth, LLMEmulator
from tests.emulators.plex import PlexEmulator, PlexLibrary
from tests.emulators.spotify import Catalogue, SpotifyEmulator

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
TOKEN = "demo-token-not-secret"
SECRET = "demo-webhook-secret"
WEB_TOKEN = "demo-dashboard-token"  # the dashboard's login (web.api_token); not a secret here
NEW_FILE = ROOT / "tests" / "fixtures" / "audio" / "debian" / "asc_machine_wars.mp3"
LLM_KEY = "demo-llm-key-not-secret"
FOCUS_GENRES = {"ambient", "classical", "new age", "downtempo"}  # the emulator's "Focus"

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
  classifiers:
    taxonomy: {{}}
    llm-metadata: {{}}
    llm-labels: {{}}
    tagger: {{seconds: 30}}   # the real fixture audio: genres and moods from the sound
  llm:
    groq:
{llm}
  writeback: [plex]
  playlists:
    plex: {{}}
    spotify:                 # the EMULATED Spotify Web API and accounts service
      client_id: genred-test-client
      client_secret: genred-test-secret
      redirect_uri: http://127.0.0.1:8888/callback
      api_url: {spotify}/v1/
      accounts_url: {spotify}
playlists:
  targets: [spotify, plex]
presets_dir: {prompts}
decide:
  mood_min_confidence: 0.1   # musicnn's tag probabilities are modest
  cascade:                   # tags and the LLM first; the tagger only where they are unsure
    - {{classifiers: [taxonomy, llm-metadata], accept: 0.7}}
    - {{classifiers: [tagger]}}
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
  api_token: {web_token}
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


def show_focus(plex: PlexServer, db: Path) -> None:
    """The tracks genred labelled Focus, and that label as Plex now has it."""
    with sqlite3.connect(db) as conn:
        keys = [
            int(key)
            for (key,) in conn.execute(
                "SELECT t.source_id FROM decisions d JOIN tracks t ON t.id = d.track_id "
                "WHERE d.labels LIKE '%\"Focus\"%' ORDER BY t.id"
            )
        ]
    print(f"\nThe preset 'Focus' (config/prompts/focus.yaml) labelled {len(keys):,} tracks, e.g.:")
    for key in keys[:: max(1, len(keys) // 3)][:3]:
        item = plex.fetchItem(key)
        labels = ", ".join(label.tag for label in item.labels)
        print(f"  {item.grandparentTitle} – {item.title}: Plex labels {labels}")


def show_tagger(plex: PlexServer, db: Path) -> None:
    """What the audio tagger heard in the real fixture files, and the moods Plex now has."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT t.source_id, t.title, p.label_set, p.labels FROM predictions p "
            "JOIN tracks t ON t.id = p.track_id WHERE p.classifier = 'tagger' "
            "AND p.label_set IN ('genre', 'mood') ORDER BY t.id, p.label_set"
        ).fetchall()
    heard: dict[str, dict[str, str]] = {}
    for key, title, label_set, labels in rows:
        names = ", ".join(f"{n} {c:.2f}" for n, c in json.loads(labels)[:3]) or "-"
        heard.setdefault(key, {"title": title})[label_set] = names
    print(f"\nThe audio tagger (musicnn, offline) on the {len(heard)} real audio files:")
    for key, said in list(heard.items())[:8]:
        moods = ", ".join(m.tag for m in plex.fetchItem(int(key)).moods) or "-"
        print(f"  {said['title'][:40]:40}  genres {said.get('genre', '-')}")
        print(f"  {'':40}  moods  {said.get('mood', '-')}  → Plex moods: {moods}")


def show_dashboard(port: int, daemon: DaemonProcess, status: StatusPrinter) -> None:
    """The dashboard's address; with DEMO_KEEP=1 the demo stays up until Ctrl-C."""
    url = f"http://127.0.0.1:{port}/"
    print(f"\nThe dashboard: {url}  (log in with the token {WEB_TOKEN!r} to correct genres)")
    print(f"The REST API: {url}api/tracks, its schema at {url}api/openapi.json")
    if not os.environ.get("DEMO_KEEP"):
        print("(run `DEMO_KEEP=1 make demo` to keep it up and look around)")
        return
    print("DEMO_KEEP=1: genred keeps running; press Ctrl-C to stop it.", flush=True)
    try:
        while not daemon.exited():
            status()
            time.sleep(1)
    except KeyboardInterrupt:
        print()


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


def llm_settings(emulator: LLMEmulator | None) -> str:
    """The groq plugin's section: the emulator, or Groq itself with $GROQ_API_KEY."""
    if emulator is None:
        return "      api_key: ${GROQ_API_KEY}"
    return (
        f"      api_key: {LLM_KEY}\n      base_url: {emulator.url}\n"
        "      limits: {requests_per_minute: null, requests_per_day: null, "
        "tokens_per_minute: null, tokens_per_day: null}"
    )


def focus_truth(library: PlexLibrary, truth: GroundTruth) -> None:
    """The emulator's answer to the Focus preset: calm genres are Focus."""
    members = []
    for record in library.track_records():
        found = truth.lookup(
            {"artist": record.artist, "album": record.album, "title": record.title}
        )
        if found and FOCUS_GENRES & {g.casefold() for g in found.genres}:
            for artist in {record.artist, record.album_artist or record.artist}:
                members.append({"artist": artist, "album": record.album, "title": record.title})
    truth.set_label("Focus", members)


def genred(config: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "genred", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout + done.stderr


def spotify_login(config: Path) -> None:
    """`genred spotify login` as a person runs it: open the printed address, paste back."""
    import requests

    proc = subprocess.Popen(
        [sys.executable, "-m", "genred", "spotify", "login", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    url = ""
    while not url:
        line = proc.stdout.readline()
        if not line:
            break
        print(f"  {line.rstrip()}")
        if line.strip().startswith("http"):
            url = line.strip()
    answer = requests.get(url, allow_redirects=False, timeout=10)  # the "browser" approves
    pasted = answer.headers["Location"]
    print(f"  (pasted: {pasted[:60]}…)")
    out, _ = proc.communicate(pasted + "\n", timeout=60)
    for line in out.splitlines():
        print(f"  {line}")


def pushed_line(line: str) -> bool:
    """A line of `genred playlist …` about the pushes (and the tracks a target lacks)."""
    return (
        line.startswith(("spotify:", "plex:", "LLM requests", "  note:"))
        or "tracks are not at" in line
        or line.startswith(("    track ", "    … and"))
    )


def show_playlists(config: Path, spotify: SpotifyEmulator, plex: PlexServer) -> None:
    print("\nPlaylists from plain words, pushed to Spotify (EMULATED) and Plex (EMULATED)")
    print(f"\n$ genred spotify login --config {config}")
    spotify_login(config)
    prompt = "calm electronic for reading, 20 songs"
    print(f'\n$ genred playlist create "{prompt}" --name Reading')
    created = genred(config, "playlist", "create", prompt, "--name", "Reading")
    lines = created.splitlines()
    print("\n".join(f"  {line}" for line in lines[:24]))
    if len(lines) > 24:
        print("  … (the other tracks, each with its why: genred playlist show Reading)")
        for line in lines[24:]:
            if pushed_line(line):
                print(f"  {line}")
    change = "no ambient, no trip-hop"
    print(f'\n$ genred playlist refine Reading "{change}"')
    refined = genred(config, "playlist", "refine", "Reading", change).splitlines()
    for line in refined[:40]:
        print(f"  {line}")
    for line in refined[40:]:
        if pushed_line(line):
            print(f"  {line}")
    (remote,) = list(spotify.playlists.values())
    print(
        f"\nThe emulated Spotify now has playlist {remote.name!r} ({remote.id}) with "
        f"{len(remote.track_ids)} tracks: “{remote.description[:90]}…”"
    )
    for item in plex.playlists():
        if item.title == "Reading":
            print(
                f"Plex has playlist {item.title!r} ({item.ratingKey}) with {len(item.items())} tracks"
            )
    writes = spotify.writes()
    print(
        f"{len(writes)} writes reached the emulated Spotify ({len(spotify.violations())} violations "
        "of Spotify's OpenAPI spec); pushing again now would send nothing."
    )


def main() -> None:
    if WORK.exists():
        shutil.rmtree(WORK)
    music = WORK / "music"
    music.mkdir(parents=True)
    prompts = WORK / "prompts"
    prompts.mkdir()
    shutil.copyfile(ROOT / "config" / "prompts" / "focus.yaml", prompts / "focus.yaml")
    real_llm = bool(os.environ.get("GROQ_API_KEY"))
    limit = 300 if real_llm else None
    print(
        f"Building the emulated library (freemusi.cc, {limit or 21_502:,} tracks + 15 real "
        "audio files)…"
    )
    library = PlexLibrary.from_freemusicc(limit=limit)
    llm: LLMEmulator | None = None
    if real_llm:
        print("LLM: Groq itself (GROQ_API_KEY is set), llama-3.1-8b-instant, free-tier limits.")
    else:
        truth = GroundTruth.from_freemusicc()
        focus_truth(library, truth)
        llm = LLMEmulator(truth, key=LLM_KEY, limits=UNLIMITED).start()
        print(f"LLM: EMULATED on {llm.url} (tests/emulators/llm; set GROQ_API_KEY to ask Groq).")
    try:
        run_demo(library, music, prompts, llm)
    finally:
        if llm is not None:
            sent = [r for r in llm.requests if r.kind in ("classify", "label")]
            tokens = sum(r.tokens for r in sent)
            print(f"{len(sent)} LLM requests ({tokens:,} tokens) reached the emulated LLM.")
            llm.stop()


def run_demo(library: PlexLibrary, music: Path, prompts: Path, llm: LLMEmulator | None) -> None:
    catalogue = Catalogue.from_freemusicc(absent_fraction=0.1)
    with (
        PlexEmulator(library, token=TOKEN, scan_roots={library.root: music}) as emu,
        SpotifyEmulator(catalogue) as spotify,
    ):
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
                web_token=WEB_TOKEN,
                path_map="\n".join(f"    {k}: {v}" for k, v in path_map.items()),
                llm=llm_settings(llm),
                prompts=prompts,
                spotify=spotify.url,
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
            show_focus(plex, db)
            show_tagger(plex, db)

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
            show_dashboard(port, daemon, status)
            print("\nStopping with SIGTERM (as `systemctl stop genred` does)…")
            code = daemon.stop()
            status()
            print(f"  exit code {code}")
        subprocess.run(
            [sys.executable, "-m", "genred", "status", "--config", str(config)], check=False
        )
        print(f"\n{len(emu.puts())} edit requests reached the emulated Plex.")
        show_playlists(config, spotify, plex)
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
