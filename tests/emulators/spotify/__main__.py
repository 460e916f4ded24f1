"""Run the emulator standalone: `python -m tests.emulators.spotify --port 8901`."""

from __future__ import annotations

import argparse
import sys
import time

from ..http import serve_until_signal
from .catalogue import Catalogue
from .faults import KINDS, FaultRule
from .server import SpotifyEmulator


def parse_fault(text: str) -> FaultRule:
    """`KIND:PATTERN[:TIMES]`, e.g. `429:/v1/search:3`, `5xx:*`, `drop:/v1/me`; TIMES 0 = for ever."""
    kind, _, rest = text.partition(":")
    pattern, _, times = rest.rpartition(":") if rest.count(":") else (rest, "", "1")
    if kind not in KINDS or not pattern:
        raise argparse.ArgumentTypeError(f"fault {text!r}: KIND:PATTERN[:TIMES], KIND in {KINDS}")
    count = int(times or 1) or None
    return FaultRule(kind, pattern, times=count, status={"5xx": 500}.get(kind, 429))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators.spotify", description="Serve an emulated Spotify Web API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8901, help="0 picks a free port")
    parser.add_argument("--tracks", type=int, default=None, help="first N freemusi.cc rows")
    parser.add_argument("--isrc-fraction", type=float, default=0.7)
    parser.add_argument("--absent-fraction", type=float, default=0.0)
    parser.add_argument("--client-id", default="genred-test-client")
    parser.add_argument("--client-secret", default="genred-test-secret")
    parser.add_argument(
        "--redirect-uri", action="append", help="repeatable; default http://127.0.0.1:8888/callback"
    )
    parser.add_argument("--token-lifetime-s", type=float, default=3600)
    parser.add_argument("--search-limit-max", type=int, default=10)
    parser.add_argument("--bare-array-body", choices=("reject", "accept"), default="reject")
    parser.add_argument("--no-legacy-fields", action="store_true", help="only items/item")
    parser.add_argument("--no-validate", action="store_true")
    parser.add_argument("--fault", action="append", type=parse_fault, default=[])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    catalogue = Catalogue.from_freemusicc(
        args.tracks, isrc_fraction=args.isrc_fraction, absent_fraction=args.absent_fraction
    )
    emulator = SpotifyEmulator(
        catalogue,
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=args.redirect_uri or ("http://127.0.0.1:8888/callback",),
        access_token_lifetime_s=args.token_lifetime_s,
        search_limit_max=args.search_limit_max,
        bare_array_body=args.bare_array_body,
        legacy_fields=not args.no_legacy_fields,
        validator=False if args.no_validate else None,
        host=args.host,
        port=args.port,
    )
    emulator.faults.add(*args.fault)
    emulator.start()
    print(emulator.url, flush=True)
    print(
        f"# Spotify emulator: {len(catalogue)} tracks, client {args.client_id!r}, user "
        f"{emulator.current_user.id}, API {emulator.api_url}, token {emulator.token_url}, "
        f"built in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    serve_until_signal(emulator)
    violations = emulator.violations()
    print(f"# {len(violations)} spec violations", file=sys.stderr)
    for violation in violations:
        print(f"#   {violation}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
