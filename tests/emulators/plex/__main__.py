"""Run the emulator standalone: `python -m tests.emulators.plex --library generated --tracks N`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..http import serve_until_signal
from .faults import Faults
from .library import PlexLibrary
from .server import PlexEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators.plex", description="Serve an emulated Plex Media Server."
    )
    parser.add_argument("--library", choices=("freemusicc", "generated"), default="freemusicc")
    parser.add_argument(
        "--tracks", type=int, default=None, help="CSV rows (freemusicc) or tracks (generated)"
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--no-audio-map", action="store_true", help="leave out the fixture audio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=32400, help="0 picks a free port")
    parser.add_argument("--token", default="test-token")
    parser.add_argument(
        "--audio-root",
        type=Path,
        help="local folder mapped to the library root (/data/music) for section scans",
    )
    parser.add_argument("--audio-map-out", type=Path, help="write {plex path: local path} JSON")
    parser.add_argument("--listing-tag-limit", type=int, default=2, help="-1: no truncation")
    parser.add_argument(
        "--tag-edit-mode", choices=("replace-single", "add", "replace"), default="replace-single"
    )
    parser.add_argument("--scan-delay-s", type=float, default=0.0)
    faults = parser.add_argument_group("faults")
    faults.add_argument("--latency-ms", type=float, default=0.0)
    faults.add_argument("--error-5xx-rate", type=float, default=0.0)
    faults.add_argument("--error-status", type=int, default=500)
    faults.add_argument("--drop-rate", type=float, default=0.0)
    faults.add_argument("--put-504-rate", type=float, default=0.0)
    faults.add_argument("--put-504-after-apply", action="store_true")
    faults.add_argument("--throttle-429-rate", type=float, default=0.0)
    faults.add_argument("--retry-after-s", type=int, default=1)
    faults.add_argument("--fault-path-prefix", default="")
    faults.add_argument("--fault-seed", type=int, default=0)
    return parser.parse_args(argv)


def build_library(args: argparse.Namespace) -> PlexLibrary:
    if args.library == "generated":
        return PlexLibrary.generate(
            args.tracks if args.tracks is not None else 20_000,
            seed=args.seed,
            audio_map=not args.no_audio_map,
        )
    return PlexLibrary.from_freemusicc(limit=args.tracks, audio_map=not args.no_audio_map)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    library = build_library(args)
    faults = Faults(
        latency_ms=args.latency_ms,
        error_5xx_rate=args.error_5xx_rate,
        error_status=args.error_status,
        drop_rate=args.drop_rate,
        put_504_rate=args.put_504_rate,
        put_504_after_apply=args.put_504_after_apply,
        throttle_429_rate=args.throttle_429_rate,
        retry_after_s=args.retry_after_s,
        path_prefix=args.fault_path_prefix,
        seed=args.fault_seed,
    )
    emulator = PlexEmulator(
        library,
        token=args.token,
        faults=faults,
        scan_roots={library.root: args.audio_root} if args.audio_root else None,
        listing_tag_limit=None if args.listing_tag_limit < 0 else args.listing_tag_limit,
        tag_edit_mode=args.tag_edit_mode,
        scan_delay_s=args.scan_delay_s,
        host=args.host,
        port=args.port,
    ).start()
    if args.audio_map_out:
        mapping = {plex: str(local) for plex, local in library.audio_files.items()}
        args.audio_map_out.write_text(json.dumps(mapping, indent=2), encoding="utf-8")
    print(emulator.url, flush=True)
    print(
        f"# Plex emulator: {len(library)} tracks, section {emulator.section_id}, "
        f"token {args.token!r}, machineIdentifier {emulator.machine_identifier}, "
        f"built in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    serve_until_signal(emulator)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
